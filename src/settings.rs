//! Flags > `SHIPIT_*` environment > `shipit.toml` → validated settings.
//!
//! This is the only module that sees clap types; everything after it takes
//! the plain structs defined here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli;
use crate::error::{Error, Result};
use crate::watch::Deadline;

pub const CONFIG_FILE: &str = "shipit.toml";

// ---------------------------------------------------------------- the file

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub image: FileImage,
    #[serde(default)]
    pub ecs: FileEcs,
    #[serde(default)]
    pub watch: FileWatch,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileImage {
    pub repository: Option<String>,
    pub dockerfile: Option<PathBuf>,
    pub context: Option<PathBuf>,
    pub target: Option<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    pub tag_format: Option<TagFormat>,
    #[serde(default)]
    pub extra_tags: Vec<String>,
    pub create_repository: Option<bool>,
    pub scan_on_push: Option<bool>,
    pub immutable_tags: Option<bool>,
    /// `auto`, `buildkit` or `classic`.
    pub builder: Option<BuilderRequest>,
    /// `false`: do not reuse the layers of the image in ECR.
    pub cache_from: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEcs {
    pub cluster: Option<String>,
    pub service: Option<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    pub task_definition: Option<PathBuf>,
    pub desired_count: Option<i32>,
    /// `[ecs.environment.<container>] KEY = "value"`
    #[serde(default)]
    pub environment: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub docker_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub deregister_on_failure: Option<bool>,
    /// `[[ecs.before]]`: one-off tasks of the new revision before the update.
    #[serde(default)]
    pub before: Vec<FileBefore>,
    /// `[[ecs.services]]`: several services deployed from one build.
    #[serde(default)]
    pub services: Vec<FileService>,
}

/// One `[[ecs.services]]` table: a service of a deploy of several, with the
/// changes that are its own. What it leaves out comes from `[ecs]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileService {
    pub name: String,
    #[serde(default)]
    pub containers: Vec<String>,
    pub task_definition: Option<PathBuf>,
    pub desired_count: Option<i32>,
    #[serde(default)]
    pub environment: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub docker_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Groups are deployed one after the other, lowest first; each waits for
    /// the verdict of the one before. Services of one group go together.
    pub group: Option<u32>,
}

/// One `[[ecs.before]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBefore {
    /// `"bin/migrate --all"` (split as a shell would) or `["bin/migrate", "--all"]`.
    pub command: FileCommand,
    pub container: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FileCommand {
    Line(String),
    Words(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWatch {
    pub poll_interval: Option<String>,
    pub timeout: Option<String>,
    pub rollback_timeout: Option<String>,
    pub healthy_polls: Option<u32>,
    pub unhealthy_grace: Option<String>,
    pub max_task_failures: Option<u32>,
    pub wait_for_drain: Option<bool>,
    pub rollback: Option<bool>,
    pub on_interrupt: Option<OnInterrupt>,
    pub settle: Option<String>,
    pub until: Option<Until>,
    pub log_lines: Option<usize>,
}

/// How long a deploy waits (`--until`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Until {
    /// Return right after UpdateService: the pipeline watches elsewhere.
    Updated,
    /// shipit's verdict.
    #[default]
    Healthy,
    /// shipit's verdict and ECS's own: the deployment COMPLETED.
    Completed,
}

/// What SIGINT/SIGTERM during the watch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInterrupt {
    /// Roll back to the recorded revision, then exit 130/143.
    #[default]
    Rollback,
    /// Stop watching; the service stays on the new revision.
    Leave,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagFormat {
    #[default]
    Full,
    Short,
}

impl FileConfig {
    /// Loads `path` if given (must exist), else `<repo>/shipit.toml` if present.
    pub fn load(repo: &Path, explicit: Option<&Path>) -> Result<(Self, Option<PathBuf>)> {
        let path = match explicit {
            Some(path) => {
                let path = repo.join(path);
                if !path.is_file() {
                    return Err(Error::bad_input(format!(
                        "config file {} does not exist",
                        path.display()
                    ))
                    .hint("check --config / SHIPIT_CONFIG, or remove it to use shipit.toml in the repository"));
                }
                path
            }
            None => {
                let path = repo.join(CONFIG_FILE);
                if !path.is_file() {
                    return Ok((Self::default(), None));
                }
                path
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|err| {
            Error::bad_input(format!("cannot read config file {}", path.display()))
                .caused_by(&err)
                .hint("check that this user may read it, or point --config elsewhere")
        })?;
        let config = Self::parse(&text).map_err(|err| {
            Error::bad_input(format!("invalid config file {}", path.display()))
                .cause(err.to_string().trim().to_string())
                .hint(
                    "fix the key named above; the README's configuration reference lists every key",
                )
        })?;
        Ok((config, Some(path)))
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

// ---------------------------------------------------------------- resolved settings

/// What the user asked for (`--builder`, `SHIPIT_BUILDER`, `[image] builder`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuilderRequest {
    /// BuildKit when the engine can, else the classic builder.
    #[default]
    Auto,
    BuildKit,
    Classic,
}

#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// Repository root: paths in the config are relative to it.
    pub repo_dir: PathBuf,
    pub repository: Option<String>,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub target: Option<String>,
    pub build_args: Vec<(String, String)>,
    pub tag_format: TagFormat,
    pub extra_tags: Vec<String>,
    pub create_repository: bool,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    pub force: bool,
    pub builder: BuilderRequest,
    /// Where a builder other than auto was asked for, as the output names it
    /// (`--builder classic`); empty for auto.
    pub builder_asked: String,
    /// `DOCKER_BUILDKIT` as set, when neither `--builder` nor `[image]
    /// builder` is: it decides the builder in its place
    /// ([`crate::image::builder::docker_buildkit`]).
    pub docker_buildkit: Option<String>,
    /// Reuse the layers of the image in ECR (push and deploy; `shipit build`
    /// makes no AWS call, so never).
    pub cache_from: bool,
}

impl ImageSettings {
    /// A build needs the Dockerfile; a deploy whose image is already in ECR
    /// does not (build in one CI job, deploy in another), so this is checked
    /// only once a build is known to be needed, still before any change.
    pub fn require_dockerfile(&self) -> Result<()> {
        if self.dockerfile.is_file() {
            return Ok(());
        }
        Err(Error::bad_input(format!("Dockerfile {} does not exist", self.dockerfile.display()))
            .hint("pass --dockerfile <file> relative to the repository, or set `[image] dockerfile` in shipit.toml"))
    }

    pub fn repository(&self) -> Result<&str> {
        self.repository.as_deref().ok_or_else(|| {
            Error::bad_input("no ECR repository given")
                .hint("pass --repository <name>, set SHIPIT_REPOSITORY, or add `[image] repository = \"<name>\"` to shipit.toml")
        })
    }
}

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub cluster: String,
    pub service: String,
}

impl ServiceSettings {
    /// The command that puts the service on `to` (the one recovery command
    /// every message prints).
    pub fn rollback_command(&self, to: &str) -> String {
        format!(
            "shipit rollback --cluster {} --service {} --to {to}",
            self.cluster, self.service
        )
    }

    /// The command that shows the service as shipit sees it.
    pub fn status_command(&self) -> String {
        format!(
            "shipit status --cluster {} --service {}",
            self.cluster, self.service
        )
    }
}

/// `shipit rollback`, resolved.
#[derive(Debug, Clone)]
pub struct RollbackSettings {
    pub service: ServiceSettings,
    pub watch: WatchSettings,
    /// `--to`: a revision number, an ARN or a commit SHA.
    pub to: Option<String>,
}

pub use crate::ecs::taskdef::ContainerChanges;

#[derive(Debug, Clone)]
pub struct DeploySettings {
    pub image: ImageSettings,
    pub service: ServiceSettings,
    pub watch: WatchSettings,
    pub containers: Vec<String>,
    pub task_definition_file: Option<PathBuf>,
    /// Per-container changes; the key `""` means "the one target container".
    pub changes: BTreeMap<String, ContainerChanges>,
    pub desired_count: Option<i32>,
    pub force_new_deployment: bool,
    pub dry_run: bool,
    pub wait_for_rollout: bool,
    /// Deregister the new revision when UpdateService fails.
    pub deregister_on_failure: bool,
    /// One-off tasks of the new revision before the update, in order.
    pub before: Vec<BeforeSettings>,
}

/// One `--before` step (or `[[ecs.before]]` table), resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct BeforeSettings {
    /// Exec form.
    pub command: Vec<String>,
    /// `None`: the container the deploy updates.
    pub container: Option<String>,
    pub timeout: Duration,
}

/// How long a one-off task may take unless told.
pub const ONE_OFF_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `shipit run`, resolved.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub service: ServiceSettings,
    /// `None`: the service's current revision.
    pub revision: Option<String>,
    pub container: Option<String>,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub secrets: BTreeMap<String, String>,
    pub detach: bool,
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub log_lines: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchSettings {
    pub poll_interval: Duration,
    /// The deploy watch's deadline: the given `timeout` as a hard cap, else
    /// the rollout's pace with `timeout`'s default as the floor.
    pub timeout: Duration,
    pub timeout_given: bool,
    pub rollback_timeout: Duration,
    pub rollback_timeout_given: bool,
    pub settle: Duration,
    pub until: Until,
    pub healthy_polls: u32,
    pub unhealthy_grace: Duration,
    pub max_task_failures: u32,
    pub wait_for_drain: bool,
    pub rollback: bool,
    pub on_interrupt: OnInterrupt,
    /// Last log lines per failed container in the failure report (0: none).
    pub log_lines: usize,
}

impl WatchSettings {
    /// The deploy watch's deadline: a given `timeout` is a hard cap; by
    /// default a rollout that keeps making progress is watched past it, as
    /// its pace says (`watch::pace`).
    pub fn deadline(&self) -> Deadline {
        deadline(self.timeout, self.timeout_given)
    }

    /// The same for a rollback, from `rollback_timeout`.
    pub fn rollback_deadline(&self) -> Deadline {
        deadline(self.rollback_timeout, self.rollback_timeout_given)
    }
}

fn deadline(timeout: Duration, given: bool) -> Deadline {
    if given {
        Deadline::fixed(timeout)
    } else {
        Deadline {
            cap: None,
            floor: timeout,
        }
    }
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(15 * 60),
            timeout_given: false,
            rollback_timeout: Duration::from_secs(10 * 60),
            rollback_timeout_given: false,
            settle: crate::watch::DEFAULT_SETTLE,
            until: Until::Healthy,
            healthy_polls: 1,
            unhealthy_grace: Duration::from_secs(30),
            max_task_failures: 0,
            wait_for_drain: false,
            rollback: true,
            on_interrupt: OnInterrupt::Rollback,
            log_lines: 20,
        }
    }
}

/// `shipit status --log-lines`: the flag, else `[watch] log_lines`, else 20.
pub fn status_log_lines(file: &FileConfig, flag: Option<usize>) -> usize {
    flag.or(file.watch.log_lines)
        .unwrap_or(WatchSettings::default().log_lines)
}

pub fn repo_dir(global: &cli::GlobalArgs) -> Result<PathBuf> {
    let dir = match &global.directory {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|err| {
            Error::bad_input("cannot read the current directory")
                .caused_by(&err)
                .hint("run shipit from the repository, or pass -C <dir>")
        })?,
    };
    if !dir.is_dir() {
        return Err(
            Error::bad_input(format!("directory {} does not exist", dir.display()))
                .hint("check the -C/--directory argument"),
        );
    }
    Ok(dir)
}

pub fn image(
    repo: &Path,
    file: &FileImage,
    args: &cli::ImageArgs,
    push: Option<&cli::PushOnlyArgs>,
) -> Result<ImageSettings> {
    let context_rel = args
        .context
        .clone()
        .or_else(|| file.context.clone())
        .unwrap_or_else(|| PathBuf::from("."));
    let context = if context_rel == Path::new(".") {
        repo.to_path_buf()
    } else {
        repo.join(&context_rel)
    };
    if !context.is_dir() {
        return Err(Error::bad_input(format!("build context {} is not a directory", context.display()))
            .hint("pass --context <dir> relative to the repository, or set `[image] context` in shipit.toml"));
    }
    let dockerfile = match args.dockerfile.clone().or_else(|| file.dockerfile.clone()) {
        Some(path) => repo.join(path),
        None => context.join("Dockerfile"),
    };
    let mut build_args: BTreeMap<String, String> = file.build_args.clone();
    for arg in &args.build_args {
        let (key, value) = split_assignment(arg).ok_or_else(|| {
            Error::bad_input(format!("invalid --build-arg `{arg}`")).hint("write it as KEY=VALUE")
        })?;
        build_args.insert(key.to_string(), value.to_string());
    }
    let tag_format = match args.tag_format {
        Some(cli::TagFormatArg::Full) => TagFormat::Full,
        Some(cli::TagFormatArg::Short) => TagFormat::Short,
        None => file.tag_format.unwrap_or_default(),
    };
    let extra_tags = if args.extra_tags.is_empty() {
        file.extra_tags.clone()
    } else {
        args.extra_tags.clone()
    };
    for tag in &extra_tags {
        validate_tag(tag)?;
    }
    let repository = args.repository.clone().or_else(|| file.repository.clone());
    if let Some(name) = &repository {
        validate_repository(name)?;
    }
    let (builder, builder_asked) = builder_request(
        args.builder,
        file.builder,
        crate::env::var(crate::env::SHIPIT_BUILDER).as_deref(),
    );
    let docker_buildkit = (args.builder.is_none() && file.builder.is_none())
        .then(|| crate::env::var(crate::env::DOCKER_BUILDKIT))
        .flatten();
    Ok(ImageSettings {
        repo_dir: repo.to_path_buf(),
        repository,
        dockerfile,
        context,
        target: args.target.clone().or_else(|| file.target.clone()),
        build_args: build_args.into_iter().collect(),
        tag_format,
        extra_tags,
        create_repository: push.is_some_and(|p| p.create_repository)
            || file.create_repository.unwrap_or(false),
        scan_on_push: push.is_some_and(|p| p.scan_on_push) || file.scan_on_push.unwrap_or(false),
        immutable_tags: push.is_some_and(|p| p.immutable_tags)
            || file.immutable_tags.unwrap_or(false),
        force: push.is_some_and(|p| p.force),
        builder,
        builder_asked,
        docker_buildkit,
        cache_from: push.is_some_and(|p| !p.no_cache_from) && file.cache_from.unwrap_or(true),
    })
}

/// The builder asked for, and where: `--builder`/`SHIPIT_BUILDER` >
/// `[image] builder` > auto. Under both, `DOCKER_BUILDKIT` (kept raw in
/// [`ImageSettings::docker_buildkit`]: read only when an image is built, as
/// `docker build` reads it).
fn builder_request(
    flag: Option<cli::BuilderArg>,
    file: Option<BuilderRequest>,
    shipit_builder: Option<&str>,
) -> (BuilderRequest, String) {
    let name = |request: BuilderRequest| match request {
        BuilderRequest::Auto => "auto",
        BuilderRequest::BuildKit => "buildkit",
        BuilderRequest::Classic => "classic",
    };
    if let Some(flag) = flag {
        let request = match flag {
            cli::BuilderArg::Auto => BuilderRequest::Auto,
            cli::BuilderArg::Buildkit => BuilderRequest::BuildKit,
            cli::BuilderArg::Classic => BuilderRequest::Classic,
        };
        // clap reads SHIPIT_BUILDER into the flag: name both when it says
        // what was used (a flag given too wins over it).
        let asked = match shipit_builder {
            Some(value) if value == name(request) => {
                format!("--builder or SHIPIT_BUILDER={value}")
            }
            _ => format!("--builder {}", name(request)),
        };
        return (request, asked);
    }
    match file {
        Some(request) => (request, format!("[image] builder = \"{}\"", name(request))),
        None => (BuilderRequest::Auto, String::new()),
    }
}

/// The one service a command works on (`shipit run`, a deploy of one).
pub fn service(file: &FileEcs, args: &cli::ServiceArgs) -> Result<ServiceSettings> {
    let mut all = services(file, args)?;
    if all.len() > 1 {
        let names: Vec<&str> = all.iter().map(|s| s.service.as_str()).collect();
        return Err(Error::bad_input(format!(
            "this command takes one service, and {} were given ({})",
            all.len(),
            names.join(", ")
        ))
        .hint(
            "pass one --service <name> (deploy, plan, rollback, status and watch take several)",
        ));
    }
    Ok(all.remove(0))
}

/// The services a command works on: the `--service` flags (or
/// SHIPIT_SERVICE), else the `[[ecs.services]]` tables, else `[ecs] service`.
pub fn services(file: &FileEcs, args: &cli::ServiceArgs) -> Result<Vec<ServiceSettings>> {
    let cluster = args
        .cluster
        .clone()
        .or_else(|| file.cluster.clone())
        .ok_or_else(|| {
            Error::bad_input("no ECS cluster given").hint(
                "pass --cluster <name>, set SHIPIT_CLUSTER, or add `[ecs] cluster` to shipit.toml",
            )
        })?;
    Ok(service_specs(file, args)?
        .into_iter()
        .map(|spec| ServiceSettings {
            cluster: cluster.clone(),
            service: spec.name,
        })
        .collect())
}

/// A service as given: `NAME` or `NAME:CONTAINER[,CONTAINER]` (or an ARN,
/// `arn:…:service/<cluster>/<name>[:CONTAINER…]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    /// The containers named after `:`; `None` when none were.
    pub containers: Option<Vec<String>>,
}

impl ServiceSpec {
    pub fn parse(text: &str) -> Result<Self> {
        // A service ARN holds `:`s of its own; the containers follow the name after the last `/`.
        let split_at = match text.rfind('/') {
            Some(slash) if text.starts_with("arn:") => text[slash..].find(':').map(|i| slash + i),
            Some(_) => None,
            None if text.starts_with("arn:") => None,
            None => text.find(':'),
        };
        let (name, containers) = match split_at {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        let containers = containers.map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        if name.is_empty() || containers.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::bad_input(format!("invalid --service `{text}`"))
                .hint("write it as --service NAME or --service NAME:CONTAINER[,CONTAINER]"));
        }
        Ok(Self {
            name: name.to_string(),
            containers,
        })
    }
}

/// The services given, in order: flags, else `[[ecs.services]]`, else
/// `[ecs] service`. A name given twice is bad input.
pub fn service_specs(file: &FileEcs, args: &cli::ServiceArgs) -> Result<Vec<ServiceSpec>> {
    let specs: Vec<ServiceSpec> = if !args.service.is_empty() {
        args.service
            .iter()
            .map(|s| ServiceSpec::parse(s))
            .collect::<Result<_>>()?
    } else if !file.services.is_empty() {
        file.services
            .iter()
            .map(|t| ServiceSpec {
                name: t.name.clone(),
                containers: None,
            })
            .collect()
    } else {
        match &file.service {
            Some(name) => vec![ServiceSpec::parse(name)?],
            None => vec![],
        }
    };
    if specs.is_empty() {
        return Err(Error::bad_input("no ECS service given").hint(
            "pass --service <name>, set SHIPIT_SERVICE, or add `[ecs] service` (or `[[ecs.services]]` tables) to shipit.toml",
        ));
    }
    for (i, spec) in specs.iter().enumerate() {
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Err(
                Error::bad_input(format!("service `{}` is given twice", spec.name)).hint(
                    "name each service once (its containers after `:`: --service web:app,proxy)",
                ),
            );
        }
    }
    Ok(specs)
}

pub fn watch(file: &FileWatch, args: &cli::WatchArgs, no_rollback: bool) -> Result<WatchSettings> {
    let defaults = WatchSettings::default();
    let duration = |flag: &Option<String>,
                    file: &Option<String>,
                    name: &str,
                    default: Duration|
     -> Result<Duration> {
        match flag.as_ref().or(file.as_ref()) {
            Some(text) => parse_duration(text).map_err(|msg| {
                Error::bad_input(format!("invalid {name} `{text}`: {msg}"))
                    .hint("write a duration like 5s, 90s, 10m or 1h")
            }),
            None => Ok(default),
        }
    };
    let settings = WatchSettings {
        poll_interval: duration(
            &args.poll_interval,
            &file.poll_interval,
            "poll interval",
            defaults.poll_interval,
        )?,
        timeout: duration(&args.timeout, &file.timeout, "timeout", defaults.timeout)?,
        timeout_given: args.timeout.is_some() || file.timeout.is_some(),
        rollback_timeout: duration(
            &args.rollback_timeout,
            &file.rollback_timeout,
            "rollback timeout",
            defaults.rollback_timeout,
        )?,
        rollback_timeout_given: args.rollback_timeout.is_some() || file.rollback_timeout.is_some(),
        settle: duration(&args.settle, &file.settle, "settle", defaults.settle)?,
        until: match args.until {
            Some(cli::UntilArg::Updated) => Until::Updated,
            Some(cli::UntilArg::Healthy) => Until::Healthy,
            Some(cli::UntilArg::Completed) => Until::Completed,
            None => file.until.unwrap_or_default(),
        },
        healthy_polls: args
            .healthy_polls
            .or(file.healthy_polls)
            .unwrap_or(defaults.healthy_polls),
        unhealthy_grace: duration(
            &args.unhealthy_grace,
            &file.unhealthy_grace,
            "unhealthy grace",
            defaults.unhealthy_grace,
        )?,
        max_task_failures: args
            .max_task_failures
            .or(file.max_task_failures)
            .unwrap_or(defaults.max_task_failures),
        wait_for_drain: args.wait_for_drain || file.wait_for_drain.unwrap_or(false),
        rollback: !no_rollback && file.rollback.unwrap_or(true),
        on_interrupt: match args.on_interrupt {
            Some(cli::OnInterruptArg::Rollback) => OnInterrupt::Rollback,
            Some(cli::OnInterruptArg::Leave) => OnInterrupt::Leave,
            None => file.on_interrupt.unwrap_or_default(),
        },
        log_lines: args
            .log_lines
            .or(file.log_lines)
            .unwrap_or(defaults.log_lines),
    };
    if settings.poll_interval < Duration::from_secs(1) {
        return Err(Error::bad_input("poll interval must be at least 1s")
            .hint("AWS throttles faster polling; use --poll-interval 5s"));
    }
    if settings.healthy_polls == 0 {
        return Err(Error::bad_input("--healthy-polls must be at least 1")
            .hint("1 (the default) gives the verdict on the first all-healthy poll; raise it to require a streak"));
    }
    Ok(settings)
}

pub fn deploy(repo: &Path, file: &FileConfig, args: &cli::DeployArgs) -> Result<DeploySettings> {
    let service = service(&file.ecs, &args.service)?;
    deploy_to(repo, file, args, service)
}

/// [`deploy`] of `service`, whatever `--service` says.
fn deploy_to(
    repo: &Path,
    file: &FileConfig,
    args: &cli::DeployArgs,
    service: ServiceSettings,
) -> Result<DeploySettings> {
    let image = image(repo, &file.image, &args.image, Some(&args.push))?;
    image.repository()?;
    let watch = watch(&file.watch, &args.watch, args.no_rollback)?;
    let containers = if args.containers.is_empty() {
        file.ecs.containers.clone()
    } else {
        args.containers.clone()
    };

    let mut changes: BTreeMap<String, ContainerChanges> = BTreeMap::new();
    let fields: [(&str, &Vec<String>, &PerContainer, Field); 3] = [
        ("--env", &args.env, &file.ecs.environment, |c| {
            &mut c.environment
        }),
        ("--secret", &args.secrets, &file.ecs.secrets, |c| {
            &mut c.secrets
        }),
        (
            "--docker-label",
            &args.docker_labels,
            &file.ecs.docker_labels,
            |c| &mut c.docker_labels,
        ),
    ];
    for (flag, values, from_file, field) in fields {
        merge_container_maps(&mut changes, flag, values, from_file, field)?;
    }
    let task_definition_file = match args
        .task_definition
        .clone()
        .or_else(|| file.ecs.task_definition.clone())
    {
        Some(path) => {
            let path = repo.join(path);
            if !path.is_file() {
                return Err(Error::bad_input(format!("task definition file {} does not exist", path.display()))
                    .hint("pass --task-definition <file> relative to the repository, or omit it to start from the service's current revision"));
            }
            Some(path)
        }
        None => None,
    };
    let desired_count = args.desired_count.or(file.ecs.desired_count);
    if desired_count.is_some_and(|n| n < 0) {
        return Err(Error::bad_input("--desired-count must be 0 or more")
            .hint("leave it out to keep the service's desired count"));
    }
    Ok(DeploySettings {
        image,
        service,
        watch,
        containers,
        task_definition_file,
        changes,
        desired_count,
        force_new_deployment: args.force_new_deployment,
        dry_run: args.dry_run,
        wait_for_rollout: args.wait_for_rollout,
        deregister_on_failure: args.deregister_on_failure
            || file.ecs.deregister_on_failure.unwrap_or(false),
        before: before(file, args)?,
    })
}

/// `--before` (each split as a shell would), else `[[ecs.before]]`.
fn before(file: &FileConfig, args: &cli::DeployArgs) -> Result<Vec<BeforeSettings>> {
    let timeout = |given: Option<&str>, what: &str| -> Result<Duration> {
        match given {
            None => Ok(ONE_OFF_TIMEOUT),
            Some(text) => parse_duration(text).map_err(|err| {
                Error::bad_input(format!("invalid {what} `{text}`: {err}"))
                    .hint("write a duration such as 90s, 10m or 1h")
            }),
        }
    };
    let bad_command = |text: &str, why: String, hint: &str| {
        Error::bad_input(format!("cannot parse the before command `{text}`: {why}"))
            .hint(hint.to_string())
    };
    if !args.before.is_empty() {
        let timeout = timeout(args.before_timeout.as_deref(), "--before-timeout")?;
        return args
            .before
            .iter()
            .map(|text| {
                let command = crate::argv::parse(text).map_err(|why| {
                    bad_command(
                        text,
                        why,
                        "quote it as a shell would: --before \"sh -c 'bin/migrate && bin/seed'\"",
                    )
                })?;
                Ok(BeforeSettings {
                    command,
                    container: args.before_container.clone(),
                    timeout,
                })
            })
            .collect();
    }
    file.ecs
        .before
        .iter()
        .map(|step| {
            let command = match &step.command {
                FileCommand::Line(text) => crate::argv::parse(text).map_err(|why| {
                    bad_command(text, why, "in [[ecs.before]], write `command` as a shell would, or as a list of words")
                })?,
                FileCommand::Words(words) if words.is_empty() => {
                    return Err(bad_command("[]", "the command is empty".into(), "give [[ecs.before]] a command"))
                }
                FileCommand::Words(words) => words.clone(),
            };
            Ok(BeforeSettings {
                command,
                container: args.before_container.clone().or_else(|| step.container.clone()),
                timeout: timeout(
                    args.before_timeout.as_deref().or(step.timeout.as_deref()),
                    "[[ecs.before]] timeout",
                )?,
            })
        })
        .collect()
}

/// `shipit run`.
pub fn run(file: &FileConfig, args: &cli::RunArgs) -> Result<RunSettings> {
    let service = service(&file.ecs, &args.service)?;
    let duration = |given: &Option<String>, flag: &str, default: Duration| -> Result<Duration> {
        match given {
            None => Ok(default),
            Some(text) => parse_duration(text).map_err(|err| {
                Error::bad_input(format!("invalid {flag} `{text}`: {err}"))
                    .hint("write a duration such as 90s, 10m or 1h")
            }),
        }
    };
    let poll_interval = duration(
        &args.poll_interval,
        "--poll-interval",
        Duration::from_secs(5),
    )?;
    if poll_interval < Duration::from_secs(1) {
        return Err(Error::bad_input("--poll-interval must be at least 1s")
            .hint("ECS and CloudWatch Logs throttle faster polling; use 1s or more"));
    }
    let mut environment = Vec::new();
    for value in &args.env {
        let (key, val) = split_assignment(value).ok_or_else(|| {
            Error::bad_input(format!("invalid --env `{value}`")).hint("write it as --env KEY=VALUE")
        })?;
        environment.push((key.to_string(), val.to_string()));
    }
    let mut secrets = BTreeMap::new();
    for value in &args.secrets {
        let (key, val) = split_assignment(value).ok_or_else(|| {
            Error::bad_input(format!("invalid --secret `{value}`"))
                .hint("write it as --secret NAME=ARN (a Secrets Manager or SSM parameter ARN)")
        })?;
        secrets.insert(key.to_string(), val.to_string());
    }
    if args.command.is_empty() || args.command[0].is_empty() {
        return Err(Error::bad_input("no command to run").hint(
            "put the command after `--`: shipit run --cluster C --service S -- bin/migrate",
        ));
    }
    Ok(RunSettings {
        service,
        revision: Some(args.revision.clone()).filter(|r| r != "current"),
        container: args.container.clone(),
        command: args.command.clone(),
        environment,
        secrets,
        detach: args.detach,
        timeout: duration(&args.timeout, "--timeout", ONE_OFF_TIMEOUT)?,
        poll_interval,
        log_lines: args.log_lines,
    })
}

/// What `shipit deploy` (and `plan`) works on: one service, or several from one build.
#[derive(Debug, Clone)]
pub enum DeployTargets {
    /// One service, exactly as before several existed.
    One(Box<DeploySettings>),
    Several(Box<ReleaseSettings>),
}

/// A deploy of several services from one build.
#[derive(Debug, Clone)]
pub struct ReleaseSettings {
    /// What every service shares (image, watch, flags); its own service
    /// fields are the first service's.
    pub shared: DeploySettings,
    /// Each service as a deploy of its own, in the order given.
    pub services: Vec<ServiceTarget>,
}

/// One service of a [`ReleaseSettings`].
#[derive(Debug, Clone)]
pub struct ServiceTarget {
    pub deploy: DeploySettings,
    /// Groups go one after the other, lowest first.
    pub group: u32,
}

impl ReleaseSettings {
    /// The groups in order, each with the indexes of its services.
    pub fn groups(&self) -> Vec<(u32, Vec<usize>)> {
        let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, target) in self.services.iter().enumerate() {
            match groups.iter_mut().find(|(g, _)| *g == target.group) {
                Some((_, members)) => members.push(i),
                None => groups.push((target.group, vec![i])),
            }
        }
        groups.sort_by_key(|(g, _)| *g);
        groups
    }
}

/// `shipit deploy`/`plan`: one service as [`deploy`] resolves it, or several
/// (several `--service`, or `[[ecs.services]]` tables). For each service,
/// flags > `SHIPIT_*` > its `[[ecs.services]]` table > `[ecs]`; maps merge
/// key by key in that order (flags win): `[ecs.environment.<c>]`, then the
/// table's `environment.<c>`, then `--env`.
pub fn deploy_targets(
    repo: &Path,
    file: &FileConfig,
    args: &cli::DeployArgs,
) -> Result<DeployTargets> {
    let specs = service_specs(&file.ecs, &args.service)?;
    let table = |name: &str| file.ecs.services.iter().find(|t| t.name == name);
    if let [spec] = specs.as_slice() {
        if spec.containers.is_none() && table(&spec.name).is_none() {
            return Ok(DeployTargets::One(Box::new(deploy(repo, file, args)?)));
        }
    }
    let cluster = services(&file.ecs, &args.service)?.remove(0).cluster;
    let several = specs.len() > 1;
    if several && (args.task_definition.is_some() || file.ecs.task_definition.is_some()) {
        return Err(Error::bad_input(
            "--task-definition (or `[ecs] task_definition`) names one file, and several services are deployed",
        )
        .hint("give each service its file: `task_definition = \"…\"` in its [[ecs.services]] table"));
    }
    let mut targets = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let table = table(&spec.name).cloned().unwrap_or_default();
        let service = ServiceSettings {
            cluster: cluster.clone(),
            service: spec.name.clone(),
        };
        let mut deploy = deploy_to(repo, file, args, service)?;
        deploy.containers = match &spec.containers {
            Some(containers) => containers.clone(),
            None if !args.containers.is_empty() => args.containers.clone(),
            None if !table.containers.is_empty() => table.containers.clone(),
            None => file.ecs.containers.clone(),
        };
        let mut changes: BTreeMap<String, ContainerChanges> = BTreeMap::new();
        let fields: [(&str, &Vec<String>, &PerContainer, &PerContainer, Field); 3] = [
            (
                "--env",
                &args.env,
                &file.ecs.environment,
                &table.environment,
                |c| &mut c.environment,
            ),
            (
                "--secret",
                &args.secrets,
                &file.ecs.secrets,
                &table.secrets,
                |c| &mut c.secrets,
            ),
            (
                "--docker-label",
                &args.docker_labels,
                &file.ecs.docker_labels,
                &table.docker_labels,
                |c| &mut c.docker_labels,
            ),
        ];
        for (flag, values, global, own, field) in fields {
            merge_container_maps(&mut changes, flag, &[], global, field)?;
            merge_container_maps(&mut changes, flag, values, own, field)?;
        }
        deploy.changes = changes;
        if let Some(path) = table
            .task_definition
            .as_ref()
            .filter(|_| args.task_definition.is_none())
        {
            let path = repo.join(path);
            if !path.is_file() {
                return Err(Error::bad_input(format!(
                    "task definition file {} of service `{}` does not exist",
                    path.display(),
                    spec.name
                ))
                .hint("fix `task_definition` in its [[ecs.services]] table (relative to the repository), or remove it to start from the service's current revision"));
            }
            deploy.task_definition_file = Some(path);
        }
        deploy.desired_count = args
            .desired_count
            .or(table.desired_count)
            .or(file.ecs.desired_count);
        if deploy.desired_count.is_some_and(|n| n < 0) {
            return Err(Error::bad_input(format!(
                "the desired count of service `{}` must be 0 or more",
                spec.name
            ))
            .hint("leave it out to keep the service's desired count"));
        }
        let group = if args.in_order {
            i as u32
        } else {
            table.group.unwrap_or(0)
        };
        targets.push(ServiceTarget { deploy, group });
    }
    if !several {
        // One service (with its table or containers): the single-service deploy.
        return Ok(DeployTargets::One(Box::new(targets.remove(0).deploy)));
    }
    // The one-off tasks (`--before`, `[[ecs.before]]`) run once per release,
    // on the first service's new revision (crate::release).
    let shared = targets[0].deploy.clone();
    Ok(DeployTargets::Several(Box::new(ReleaseSettings {
        shared,
        services: targets,
    })))
}

/// `shipit rollback` of each service given (`--to` applies to every one).
pub fn rollbacks(file: &FileConfig, args: &cli::RollbackArgs) -> Result<Vec<RollbackSettings>> {
    let services = services(&file.ecs, &args.service)?;
    if services.len() > 1 {
        if let Some(to) = args.to.as_deref() {
            let sha = to.len() >= 7 && to.chars().all(|c| c.is_ascii_hexdigit());
            if !sha {
                return Err(Error::bad_input(format!(
                    "--to `{to}` names a revision of one family, and {} services are rolled back",
                    services.len()
                ))
                .hint("with several services, --to takes a commit SHA (each goes back to its revision of that commit), or leave it out (each goes back to its last revision seen healthy)"));
            }
        }
    }
    let one = rollback(
        file,
        &cli::RollbackArgs {
            service: cli::ServiceArgs {
                cluster: Some(services[0].cluster.clone()),
                service: vec![services[0].service.clone()],
            },
            watch: args.watch.clone(),
            to: args.to.clone(),
        },
    )?;
    Ok(services
        .into_iter()
        .map(|service| RollbackSettings {
            service,
            ..one.clone()
        })
        .collect())
}

/// `[ecs.<kind>.<container>]` tables: container → KEY → value.
type PerContainer = BTreeMap<String, BTreeMap<String, String>>;
/// Which map of [`ContainerChanges`] a flag fills.
type Field = fn(&mut ContainerChanges) -> &mut BTreeMap<String, String>;

/// The file's `[ecs.<kind>.<container>]` tables, then the flag's
/// `[CONTAINER:]KEY=VALUE` values on top (a flag wins key by key).
fn merge_container_maps(
    changes: &mut BTreeMap<String, ContainerChanges>,
    flag: &str,
    values: &[String],
    from_file: &PerContainer,
    field: Field,
) -> Result<()> {
    for (container, vars) in from_file {
        field(changes.entry(container.clone()).or_default()).extend(vars.clone());
    }
    for value in values {
        let (container, key, val) = split_container_assignment(value).ok_or_else(|| {
            Error::bad_input(format!("invalid {flag} `{value}`"))
                .hint(format!("write it as {flag} [CONTAINER:]KEY=VALUE"))
        })?;
        field(changes.entry(container.to_string()).or_default())
            .insert(key.to_string(), val.to_string());
    }
    Ok(())
}

/// Where the commit can come from: `--sha`/`SHIPIT_SHA`, then CI's variables.
pub fn sha_inputs(args: &cli::ShaArgs) -> crate::git::ShaInputs {
    use crate::env;
    crate::git::ShaInputs {
        flag: args.sha.clone(),
        github_sha: env::var(env::GITHUB_SHA),
        circle_sha1: env::var(env::CIRCLE_SHA1),
    }
}

/// `shipit rollback`: for a manual rollback the rollback is the rollout, so
/// `--timeout` bounds it too (unless `--rollback-timeout` is given).
pub fn rollback(file: &FileConfig, args: &cli::RollbackArgs) -> Result<RollbackSettings> {
    let service = service(&file.ecs, &args.service)?;
    let mut watch = watch(&file.watch, &args.watch, false)?;
    if args.watch.timeout.is_some() && args.watch.rollback_timeout.is_none() {
        watch.rollback_timeout = watch.timeout;
        watch.rollback_timeout_given = true;
    }
    Ok(RollbackSettings {
        service,
        watch,
        to: args.to.clone(),
    })
}

/// `shipit watch`, resolved.
#[derive(Debug, Clone)]
pub struct WatchCommandSettings {
    pub service: ServiceSettings,
    /// `watch.rollback` is `--rollback` only: attaching never rolls back
    /// unless asked on the command line (the file's `rollback = true` default
    /// is for deploys).
    pub watch: WatchSettings,
}

/// `shipit watch`: the watch settings of a deploy (`--timeout` for the
/// rollout, `--rollback-timeout` for a `--rollback`).
/// Several `--service` flags: one each, with the same watch settings.
pub fn watch_commands(
    file: &FileConfig,
    args: &cli::WatchCommandArgs,
) -> Result<Vec<WatchCommandSettings>> {
    let services = services(&file.ecs, &args.service)?;
    let mut watch = watch(&file.watch, &args.watch, !args.rollback)?;
    watch.rollback = args.rollback;
    Ok(services
        .into_iter()
        .map(|service| WatchCommandSettings {
            service,
            watch: watch.clone(),
        })
        .collect())
}

// ---------------------------------------------------------------- small parsers

fn split_assignment(text: &str) -> Option<(&str, &str)> {
    let (key, value) = text.split_once('=')?;
    (!key.is_empty()).then_some((key, value))
}

/// `[CONTAINER:]KEY=VALUE` → (container or "", key, value).
fn split_container_assignment(text: &str) -> Option<(&str, &str, &str)> {
    let (lhs, value) = text.split_once('=')?;
    let (container, key) = match lhs.split_once(':') {
        Some((container, key)) => (container, key),
        None => ("", lhs),
    };
    (!key.is_empty()).then_some((container, key, value))
}

/// `90`, `90s`, `5m`, `1h`, `1m30s`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("unknown unit `{ch}`")),
        };
        let value: u64 = number.parse().map_err(|_| {
            if text.contains("ms") {
                "whole seconds only (s, m or h); milliseconds are not supported".to_string()
            } else {
                "a number must come before each unit".to_string()
            }
        })?;
        total += value * unit;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err("missing unit (s, m or h)".into());
    }
    Ok(Duration::from_secs(total))
}

fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_input(format!("invalid image tag `{tag}`")).hint(
            "tags are up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
        ))
    }
}

fn validate_repository(name: &str) -> Result<()> {
    let ok = (2..=256).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(
            Error::bad_input(format!("invalid ECR repository name `{name}`")).hint(
                "use the repository *name* (lowercase, e.g. `web` or `team/web`), not its URI",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse_cli(args: &[&str]) -> cli::Cli {
        cli::Cli::try_parse_from(std::iter::once("shipit").chain(args.iter().copied())).unwrap()
    }

    fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    #[test]
    fn before_steps_come_from_the_file_unless_before_flags_replace_them() {
        let file = FileConfig::parse(
            "[[ecs.before]]\ncommand = \"bin/migrate --all\"\ntimeout = \"5m\"\n\n[[ecs.before]]\ncommand = [\"bin/seed\", \"a b\"]\ncontainer = \"worker\"\n",
        )
        .unwrap();
        let cli = parse_cli(&["deploy", "--repository", "web"]);
        let cli::Command::Deploy(args) = cli.command else {
            unreachable!()
        };
        let steps = before(&file, &args).unwrap();
        assert_eq!(
            steps,
            [
                BeforeSettings {
                    command: vec!["bin/migrate".into(), "--all".into()],
                    container: None,
                    timeout: Duration::from_secs(300),
                },
                BeforeSettings {
                    command: vec!["bin/seed".into(), "a b".into()],
                    container: Some("worker".into()),
                    timeout: ONE_OFF_TIMEOUT,
                },
            ]
        );
        let cli = parse_cli(&[
            "deploy",
            "--repository",
            "web",
            "--before",
            "sh -c 'x && y'",
            "--before-timeout",
            "90s",
        ]);
        let cli::Command::Deploy(args) = cli.command else {
            unreachable!()
        };
        let steps = before(&file, &args).unwrap();
        assert_eq!(steps.len(), 1, "--before replaces the file's steps");
        assert_eq!(steps[0].command, ["sh", "-c", "x && y"]);
        assert_eq!(steps[0].timeout, Duration::from_secs(90));
        let cli = parse_cli(&["deploy", "--repository", "web", "--before", "echo 'oops"]);
        let cli::Command::Deploy(args) = cli.command else {
            unreachable!()
        };
        let err = before(&file, &args).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
        assert!(err.hint_text().is_some());
        assert!(FileConfig::parse("[[ecs.before]]\ncommand = \"x\"\nimage = \"y\"\n").is_err());
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let repo = repo_with(&[
            ("Dockerfile", "FROM scratch"),
            ("sub/Dockerfile", "FROM scratch"),
        ]);
        let file =
            FileConfig::parse("[image]\nrepository = \"from-file\"\ntarget = \"file-stage\"\n")
                .unwrap();
        let cli = parse_cli(&["build", "--repository", "from-flag"]);
        let cli::Command::Build(args) = cli.command else {
            unreachable!()
        };
        let image = image(repo.path(), &file.image, &args.image, None).unwrap();
        assert_eq!(
            image.repository.as_deref(),
            Some("from-flag"),
            "flag wins over file"
        );
        assert_eq!(
            image.target.as_deref(),
            Some("file-stage"),
            "file fills what flags leave out"
        );
        assert_eq!(
            image.tag_format,
            TagFormat::Full,
            "default when neither says"
        );
        assert_eq!(image.dockerfile, repo.path().join("Dockerfile"));
    }

    #[test]
    fn env_beats_file_and_flag_beats_env() {
        // No other unit test reads this variable, so setting it here races nothing.
        std::env::set_var(crate::env::SHIPIT_ROLLBACK_TIMEOUT, "7m");
        let file = FileConfig::parse("[watch]\nrollback_timeout = \"3m\"\n").unwrap();
        let from = |args: &[&str]| {
            let cli = parse_cli(args);
            let cli::Command::Rollback(args) = cli.command else {
                unreachable!()
            };
            watch(&file.watch, &args.watch, false)
                .unwrap()
                .rollback_timeout
        };
        let env_over_file = from(&["rollback"]);
        let flag_over_env = from(&["rollback", "--rollback-timeout", "2m"]);
        std::env::remove_var(crate::env::SHIPIT_ROLLBACK_TIMEOUT);
        assert_eq!(env_over_file, Duration::from_secs(7 * 60), "env beats file");
        assert_eq!(flag_over_env, Duration::from_secs(2 * 60), "flag beats env");
        assert_eq!(
            from(&["rollback"]),
            Duration::from_secs(3 * 60),
            "file beats default"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_rejected_naming_the_key() {
        let err = FileConfig::parse("[image]\nrepositry = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("repositry"), "{err}");
        let err = FileConfig::parse("[watch]\nhealthy_polls = \"two\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("healthy_polls"), "{err}");
        let err = FileConfig::parse("[deploy]\n").unwrap_err().to_string();
        assert!(err.contains("deploy"), "{err}");
    }

    #[test]
    fn malformed_config_file_is_bad_input_naming_the_file() {
        let repo = repo_with(&[("shipit.toml", "[image\n")]);
        let err = FileConfig::load(repo.path(), None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
        assert!(err.message().contains("shipit.toml"), "{}", err.message());
    }

    #[test]
    fn missing_dockerfile_and_context_are_bad_input_with_hints() {
        let repo = repo_with(&[]);
        let cli = parse_cli(&["build", "--repository", "web"]);
        let cli::Command::Build(args) = cli.command else {
            unreachable!()
        };
        let err = image(repo.path(), &FileImage::default(), &args.image, None)
            .and_then(|image| image.require_dockerfile())
            .unwrap_err();
        assert!(err.message().contains("Dockerfile"), "{}", err.message());
        assert!(err.hint_text().unwrap().contains("--dockerfile"));

        let cli = parse_cli(&["build", "--context", "nope"]);
        let cli::Command::Build(args) = cli.command else {
            unreachable!()
        };
        let err = image(repo.path(), &FileImage::default(), &args.image, None).unwrap_err();
        assert!(err.message().contains("context"), "{}", err.message());
    }

    #[test]
    fn durations() {
        let cases = [
            ("5s", 5),
            ("90", 90),
            ("10m", 600),
            ("1h", 3600),
            ("1m30s", 90),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in ["", "5x", "m", "1.5m", "s5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn container_assignments() {
        assert_eq!(
            split_container_assignment("app:KEY=v=1"),
            Some(("app", "KEY", "v=1"))
        );
        assert_eq!(split_container_assignment("KEY=v"), Some(("", "KEY", "v")));
        assert_eq!(split_container_assignment("=v"), None);
        assert_eq!(split_container_assignment("KEY"), None);
    }

    #[test]
    fn a_service_may_name_its_containers_and_an_arn_keeps_its_colons() {
        let spec = ServiceSpec::parse("web:app,proxy").unwrap();
        assert_eq!(spec.name, "web");
        assert_eq!(spec.containers, Some(vec!["app".into(), "proxy".into()]));
        assert_eq!(ServiceSpec::parse("worker").unwrap().containers, None);
        let arn = "arn:aws:ecs:us-east-1:123456789012:service/prod/web";
        assert_eq!(ServiceSpec::parse(arn).unwrap().name, arn);
        let with = ServiceSpec::parse(&format!("{arn}:app")).unwrap();
        assert_eq!(
            (with.name.as_str(), with.containers),
            (arn, Some(vec!["app".into()]))
        );
        for bad in ["", ":app", "web:", "web:,"] {
            let err = ServiceSpec::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::ExitCode::Usage, "{bad}");
            assert!(err.hint_text().is_some());
        }
    }

    fn release_of(toml: &str, args: &[&str]) -> Result<DeployTargets> {
        let repo = repo_with(&[("Dockerfile", "FROM scratch"), ("web.json", "{}")]);
        let file = FileConfig::parse(toml).unwrap();
        let mut argv = vec!["deploy", "--repository", "web", "--cluster", "prod"];
        argv.extend_from_slice(args);
        let cli::Command::Deploy(args) = parse_cli(&argv).command else {
            unreachable!()
        };
        deploy_targets(repo.path(), &file, &args)
    }

    #[test]
    fn the_builder_comes_from_the_flag_then_the_file() {
        use cli::BuilderArg;
        use BuilderRequest::{Auto, BuildKit, Classic};
        type Case<'a> = (
            Option<BuilderArg>,
            Option<BuilderRequest>,
            Option<&'a str>,
            BuilderRequest,
            &'a str,
        );
        let cases: &[Case] = &[
            (None, None, None, Auto, ""),
            (
                None,
                Some(BuildKit),
                None,
                BuildKit,
                "[image] builder = \"buildkit\"",
            ),
            (
                Some(BuilderArg::Auto),
                Some(Classic),
                None,
                Auto,
                "--builder auto",
            ),
            (
                Some(BuilderArg::Classic),
                None,
                None,
                Classic,
                "--builder classic",
            ),
            (
                Some(BuilderArg::Classic),
                None,
                Some("classic"),
                Classic,
                "--builder or SHIPIT_BUILDER=classic",
            ),
            // `--builder buildkit` over SHIPIT_BUILDER=classic: the flag's.
            (
                Some(BuilderArg::Buildkit),
                None,
                Some("classic"),
                BuildKit,
                "--builder buildkit",
            ),
        ];
        for (flag, file, shipit_builder, request, asked) in cases {
            assert_eq!(
                builder_request(*flag, *file, *shipit_builder),
                (*request, asked.to_string()),
                "{flag:?} {file:?} {shipit_builder:?}"
            );
        }
    }

    #[test]
    fn before_tasks_with_several_services_run_once_for_the_release() {
        let targets = release_of(
            "",
            &[
                "--service",
                "web",
                "--service",
                "worker",
                "--before",
                "bin/migrate --fast",
            ],
        )
        .unwrap();
        let DeployTargets::Several(release) = targets else {
            panic!("two services are a release");
        };
        // crate::release runs the steps of the first service's settings.
        assert_eq!(release.services[0].deploy.service.service, "web");
        assert_eq!(
            release.services[0].deploy.before[0].command,
            ["bin/migrate", "--fast"]
        );
        // One service with --before is a deploy like any other.
        assert!(matches!(
            release_of("", &["--service", "web", "--before", "bin/migrate"]),
            Ok(DeployTargets::One(_))
        ));
    }

    #[test]
    fn several_services_get_their_tables_under_the_flags_and_groups_in_order() {
        let toml = r#"
[ecs]
containers = ["app"]
[ecs.environment.app]
LOG = "info"
SHARED = "file"

[[ecs.services]]
name = "worker"
group = 0
desired_count = 3
environment.app = { QUEUE = "jobs", SHARED = "table" }

[[ecs.services]]
name = "web"
group = 1
task_definition = "web.json"
"#;
        let DeployTargets::Several(release) =
            release_of(toml, &["--env", "app:SHARED=flag"]).unwrap()
        else {
            panic!("two tables are two services")
        };
        let worker = &release.services[0].deploy;
        assert_eq!(worker.service.service, "worker");
        assert_eq!(worker.desired_count, Some(3));
        assert_eq!(worker.containers, ["app"]);
        let env = &worker.changes["app"].environment;
        assert_eq!(env["LOG"], "info", "[ecs] maps reach every service");
        assert_eq!(env["QUEUE"], "jobs", "the table's own");
        assert_eq!(env["SHARED"], "flag", "flags > table > [ecs]");
        let web = &release.services[1].deploy;
        assert!(web
            .task_definition_file
            .as_ref()
            .unwrap()
            .ends_with("web.json"));
        assert_eq!(web.changes["app"].environment["SHARED"], "flag");
        assert_eq!(
            release.groups(),
            [(0, vec![0]), (1, vec![1])],
            "worker's group first"
        );

        // Flags replace the list; --in-order makes each its own group, in order.
        let DeployTargets::Several(release) = release_of(
            toml,
            &["--service", "web:app", "--service", "worker", "--in-order"],
        )
        .unwrap() else {
            panic!("two services")
        };
        assert_eq!(release.services[0].deploy.service.service, "web");
        assert_eq!(release.groups(), [(0, vec![0]), (1, vec![1])]);
        // One flag of a table's service is the single-service deploy, with its table.
        let DeployTargets::One(one) = release_of(toml, &["--service", "worker"]).unwrap() else {
            panic!("one service")
        };
        assert_eq!(one.desired_count, Some(3));
    }

    #[test]
    fn one_task_definition_file_for_several_services_or_a_service_twice_is_bad_input() {
        let err = release_of(
            "",
            &[
                "--service",
                "a",
                "--service",
                "b",
                "--task-definition",
                "web.json",
            ],
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
        assert!(err.hint_text().unwrap().contains("[[ecs.services]]"));
        let err = release_of("", &["--service", "a", "--service", "a:app"]).unwrap_err();
        assert!(err.message().contains("given twice"), "{}", err.message());
        let err = FileConfig::parse("[[ecs.services]]\nname = \"a\"\ngroups = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("groups"), "{err}");
    }

    #[test]
    fn repository_must_be_a_name_not_a_uri() {
        assert!(validate_repository("web").is_ok());
        assert!(validate_repository("team/web-api").is_ok());
        assert!(validate_repository("Web").is_err());
        assert!(validate_repository("127.0.0.1:4566/web").is_err());
    }
}
