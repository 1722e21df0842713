//! Command-line types (clap) and nothing else: they are turned into
//! [`crate::settings`] before any command runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::env;

#[derive(Debug, Parser)]
#[command(
    name = "shipit",
    version,
    about = "Ship a commit to Amazon ECS: build, push to ECR, deploy, watch the rollout, roll back on failure",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Run as if started in this directory (the repository root).
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Config file [default: shipit.toml in the repository, if present].
    #[arg(long, global = true, env = env::SHIPIT_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output form; `auto` picks progress bars on a terminal, plain lines otherwise.
    #[arg(long, global = true, env = env::SHIPIT_OUTPUT, value_enum, default_value_t = OutputArg::Auto)]
    pub output: OutputArg,
    /// Only errors and results.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail (every build log line, every poll).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Never draw progress bars, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// AWS region [default: from the AWS environment/profile].
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    Auto,
    Human,
    Lines,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the image for a commit (local only: no AWS calls).
    Build(BuildArgs),
    /// Build (unless the tag is already in ECR) and push the image.
    Push(PushArgs),
    /// Build, push, register a task definition, update the service, watch, roll back on failure.
    Deploy(DeployArgs),
    /// Show what `deploy` would do, including the task definition diff; changes nothing.
    Plan(DeployArgs),
    /// Roll the service back to the last revision shipit saw healthy (or `--to`).
    Rollback(RollbackArgs),
    /// Service, deployments, tasks, target health, recent stopped-task reasons and the last failure's report.
    Status(StatusArgs),
    /// Attach to the service's rollout in progress and give its verdict; changes nothing unless `--rollback`.
    Watch(WatchCommandArgs),
    /// Run a one-off task of the service's revision on its network configuration; exit with its exit code.
    Run(RunArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Build(_) => "build",
            Command::Push(_) => "push",
            Command::Deploy(_) => "deploy",
            Command::Plan(_) => "plan",
            Command::Rollback(_) => "rollback",
            Command::Status(_) => "status",
            Command::Watch(_) => "watch",
            Command::Run(_) => "run",
            Command::Completions { .. } => "completions",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ShaArgs {
    /// Commit to ship [default: GITHUB_SHA, CIRCLE_SHA1, then `git rev-parse HEAD`].
    #[arg(long, env = env::SHIPIT_SHA, value_name = "COMMIT")]
    pub sha: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    /// ECR repository name.
    #[arg(long, env = env::SHIPIT_REPOSITORY, value_name = "NAME")]
    pub repository: Option<String>,
    /// Dockerfile, relative to the repository [default: Dockerfile in the context].
    #[arg(long, short = 'f', env = env::SHIPIT_DOCKERFILE, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// Build context directory, relative to the repository [default: .].
    #[arg(long, env = env::SHIPIT_CONTEXT, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Build target stage.
    #[arg(long, env = env::SHIPIT_TARGET, value_name = "STAGE")]
    pub target: Option<String>,
    /// Build argument (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Tag with the full or the short (7 characters) commit SHA [default: full].
    #[arg(long, env = env::SHIPIT_TAG_FORMAT, value_enum)]
    pub tag_format: Option<TagFormatArg>,
    /// Extra tag to push as well (repeatable, or comma-separated in the env var).
    #[arg(long = "tag", env = env::SHIPIT_EXTRA_TAGS, value_delimiter = ',', value_name = "TAG")]
    pub extra_tags: Vec<String>,
    /// Builder: BuildKit when the engine can run it, else the classic builder [default: auto].
    #[arg(long, env = env::SHIPIT_BUILDER, value_enum)]
    pub builder: Option<BuilderArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuilderArg {
    Auto,
    Buildkit,
    Classic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TagFormatArg {
    Full,
    Short,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub sha: ShaArgs,
    #[command(flatten)]
    pub image: ImageArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PushOnlyArgs {
    /// Build and push even if the tag is already in ECR.
    #[arg(long)]
    pub force: bool,
    /// Create the ECR repository if it does not exist.
    #[arg(long)]
    pub create_repository: bool,
    /// With --create-repository: scan images on push.
    #[arg(long, requires = "create_repository")]
    pub scan_on_push: bool,
    /// With --create-repository: make tags immutable.
    #[arg(long, requires = "create_repository")]
    pub immutable_tags: bool,
    /// Do not reuse the layers of the image in ECR (the one the service runs, else the newest commit tag).
    #[arg(long, env = env::SHIPIT_NO_CACHE_FROM)]
    pub no_cache_from: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub sha: ShaArgs,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub push: PushOnlyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// ECS cluster.
    #[arg(long, env = env::SHIPIT_CLUSTER, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// ECS service. Repeatable for a deploy, plan, rollback or status of
    /// several services from one build; `NAME:CONTAINER[,CONTAINER]` names
    /// the containers that change in that service.
    #[arg(long, env = env::SHIPIT_SERVICE, value_name = "SERVICE")]
    pub service: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Last log lines of each failed container in the last failure's report
    /// (CloudWatch Logs, awslogs driver); 0 turns them off [default: 20].
    #[arg(long, value_name = "N")]
    pub log_lines: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// How often to poll the rollout, e.g. 5s.
    #[arg(long, env = env::SHIPIT_POLL_INTERVAL, value_name = "DURATION")]
    pub poll_interval: Option<String>,
    /// Deadline for a verdict, e.g. 15m.
    #[arg(long, env = env::SHIPIT_TIMEOUT, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Deadline for the rollback to become healthy.
    #[arg(long, env = env::SHIPIT_ROLLBACK_TIMEOUT, value_name = "DURATION")]
    pub rollback_timeout: Option<String>,
    /// Consecutive all-healthy polls required before the verdict is "healthy".
    #[arg(long, value_name = "N")]
    pub healthy_polls: Option<u32>,
    /// How long a new target may stay unhealthy before the deploy fails.
    #[arg(long, value_name = "DURATION")]
    pub unhealthy_grace: Option<String>,
    /// How many new-revision tasks may stop before the deploy fails.
    #[arg(long, value_name = "N")]
    pub max_task_failures: Option<u32>,
    /// Also wait until no task of an older revision is running.
    #[arg(long)]
    pub wait_for_drain: bool,
    /// What SIGINT/SIGTERM during the watch does [default: rollback].
    #[arg(long, env = env::SHIPIT_ON_INTERRUPT, value_enum)]
    pub on_interrupt: Option<OnInterruptArg>,
    /// How long every healthy criterion must hold before the verdict [default: 10s].
    #[arg(long, env = env::SHIPIT_SETTLE, value_name = "DURATION")]
    pub settle: Option<String>,
    /// How long to wait: `updated` (return after UpdateService), `healthy`
    /// (shipit's verdict) or `completed` (also ECS's own COMPLETED) [default: healthy].
    #[arg(long, env = env::SHIPIT_UNTIL, value_enum)]
    pub until: Option<UntilArg>,
    /// Last log lines of each failed container in the failure report
    /// (CloudWatch Logs, awslogs driver); 0 turns them off [default: 20].
    #[arg(long, value_name = "N")]
    pub log_lines: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UntilArg {
    Updated,
    Healthy,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnInterruptArg {
    /// Roll the service back to the revision it ran before, then exit 130/143.
    Rollback,
    /// Stop watching and leave the service on the new revision; exit 130/143.
    Leave,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub sha: ShaArgs,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub push: PushOnlyArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Container whose image changes (repeatable) [default: the one whose image is in the repository].
    #[arg(long = "container", env = env::SHIPIT_CONTAINERS, value_delimiter = ',', value_name = "NAME")]
    pub containers: Vec<String>,
    /// Task definition JSON file in the repository to start from (`${VAR}` substituted).
    #[arg(long, env = env::SHIPIT_TASK_DEFINITION, value_name = "FILE")]
    pub task_definition: Option<PathBuf>,
    /// Set an environment variable: `[CONTAINER:]KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "[CONTAINER:]KEY=VALUE")]
    pub env: Vec<String>,
    /// Set a secret: `[CONTAINER:]NAME=ARN` (repeatable).
    #[arg(long = "secret", value_name = "[CONTAINER:]NAME=ARN")]
    pub secrets: Vec<String>,
    /// Set a Docker label: `[CONTAINER:]KEY=VALUE` (repeatable).
    #[arg(long = "docker-label", value_name = "[CONTAINER:]KEY=VALUE")]
    pub docker_labels: Vec<String>,
    /// Set the service's desired count.
    #[arg(long, value_name = "N")]
    pub desired_count: Option<i32>,
    /// Ask ECS to start new tasks even if the task definition did not change.
    #[arg(long)]
    pub force_new_deployment: bool,
    /// Do not roll back when the deploy fails.
    #[arg(long)]
    pub no_rollback: bool,
    /// Plan only: print what would change and change nothing (same as `shipit plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// If another rollout is in progress on the service, wait for it instead of refusing.
    #[arg(long)]
    pub wait_for_rollout: bool,
    /// If UpdateService fails after the new revision was registered, deregister that revision.
    #[arg(long)]
    pub deregister_on_failure: bool,
    /// Run this command in a task of the new revision after it is registered and before the
    /// service is updated, e.g. migrations (repeatable, in order; replaces `[[ecs.before]]`).
    /// A failure stops the deploy: no update.
    #[arg(long = "before", value_name = "COMMAND")]
    pub before: Vec<String>,
    /// Container the --before commands run in [default: the container the deploy updates].
    #[arg(long, value_name = "NAME")]
    pub before_container: Option<String>,
    /// How long each --before task may take, from RunTask to its stop [default: 30m].
    #[arg(long, value_name = "DURATION")]
    pub before_timeout: Option<String>,
    /// Several services: deploy them one at a time in the order given (each
    /// waits for the verdict of the one before) instead of all together.
    #[arg(long)]
    pub in_order: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Revision to run: `current` (the service's), a revision number of its family, an ARN or a commit SHA.
    #[arg(long, value_name = "current|REV", default_value = "current")]
    pub revision: String,
    /// Container the command runs in [default: the only container, or the only essential one].
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Start the task and exit 0 once ECS placed it, without waiting for it.
    #[arg(long)]
    pub detach: bool,
    /// Set an environment variable for this task: `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Set a secret for this task: `NAME=ARN` (repeatable). ECS cannot override
    /// secrets per task, so this registers a revision with them.
    #[arg(long = "secret", value_name = "NAME=ARN")]
    pub secrets: Vec<String>,
    /// How long the task may take, from RunTask to its stop [default: 30m].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// How often to look at the task and read its log [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub poll_interval: Option<String>,
    /// Last log lines shown when the task fails; 0 turns them off.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub log_lines: usize,
    /// The command, in exec form: everything after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Revision number, task definition ARN, or commit SHA to roll back to.
    #[arg(long, value_name = "REVISION|ARN|SHA")]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchCommandArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    /// When the verdict is failed, roll back to the revision the rollout started from.
    #[arg(long)]
    pub rollback: bool,
}
