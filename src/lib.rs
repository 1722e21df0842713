//! shipit: ship a commit to Amazon ECS.
//!
//! [`run`] is the whole program (the binary only parses and exits), so tests
//! can drive it in-process. The orchestrator is [`deploy`]; the verdict is the
//! pure [`watch::verdict`]; every outside system sits behind a small trait.

pub mod api_calls;
pub mod aws_error;
pub mod cli;
pub mod deploy;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod env;
pub mod error;
pub mod git;
pub mod image;
pub mod report;
pub mod rollback;
pub mod secret;
pub mod settings;
pub mod signals;
pub mod status;
pub mod watch;

use std::io::IsTerminal;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;

use crate::api_calls::ApiCalls;
use crate::cli::{Cli, Command, OutputArg};
use crate::deploy::Deps;
use crate::error::{Error, ExitCode, Result};
use crate::image::{ContainerEngine, DockerEngine};
use crate::report::{Event, Outcome, Report, Verbosity};
use crate::settings::FileConfig;

/// Runs one command and returns its exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let report = reporter(&cli);
    let json = cli.global.output == OutputArg::Json;
    let command = cli.command.name();
    let calls = ApiCalls::new();
    let result = dispatch(cli, &report, &calls).await;
    let counted = Some(calls.snapshot()).filter(|c| c.total > 0);
    let code = match result {
        Ok(mut outcome) => {
            outcome.aws_api_calls = counted;
            let code = exit_code_of(outcome.exit_code);
            report.emit(&Event::Result(Box::new(outcome)));
            code
        }
        Err(err) => {
            // JSON output gets the error as an event; everything else as text.
            if !json {
                print_error(&err);
            }
            report.emit(&Event::Error {
                command: command.to_string(),
                message: err.message().to_string(),
                causes: err.causes().to_vec(),
                hint: err.hint_text().map(str::to_string),
            });
            report.emit(&Event::Result(Box::new(Outcome {
                command: command.to_string(),
                verdict: "error".into(),
                reason: Some(err.message().to_string()),
                exit_code: err.exit_code().code(),
                aws_api_calls: counted,
                ..Default::default()
            })));
            err.exit_code()
        }
    };
    report.finish();
    code
}

fn exit_code_of(code: i32) -> ExitCode {
    [
        ExitCode::Success,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::NeedsHuman,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ]
    .into_iter()
    .find(|c| c.code() == code)
    .unwrap_or(ExitCode::Failed)
}

/// `error: …`, then `Caused by:` lines, then `hint: …`, on stderr.
fn print_error(err: &Error) {
    let mut text = format!("error: {}\n", err.message());
    for cause in err.causes() {
        for line in cause.lines() {
            text.push_str(&format!("  Caused by: {line}\n"));
        }
    }
    if let Some(hint) = err.hint_text() {
        text.push_str(&format!("hint: {hint}\n"));
    }
    eprint!("{text}");
}

fn reporter(cli: &Cli) -> Report {
    let verbosity = if cli.global.quiet {
        Verbosity::Quiet
    } else if cli.global.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let interactive =
        std::io::stderr().is_terminal() && env::var(env::CI).is_none() && !cli.global.no_progress;
    let base: Report = match cli.global.output {
        OutputArg::Json => Arc::new(report::Json::standard()),
        OutputArg::Human => Arc::new(report::Human::new(verbosity)),
        OutputArg::Lines => Arc::new(report::Lines::stderr(verbosity)),
        OutputArg::Auto if interactive => Arc::new(report::Human::new(verbosity)),
        OutputArg::Auto => Arc::new(report::Lines::stderr(verbosity)),
    };
    if env::var(env::GITHUB_ACTIONS).as_deref() == Some("true") {
        let github = report::GithubActions::new(
            env::var(env::GITHUB_STEP_SUMMARY).map(Into::into),
            env::var(env::GITHUB_OUTPUT).map(Into::into),
            Box::new(std::io::stderr()),
        );
        return Arc::new(report::Tee(vec![base, Arc::new(github)]));
    }
    base
}

/// Loads AWS configuration and checks region and credentials before anything else.
async fn aws(region: Option<&str>) -> Result<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(Error::bad_input("no AWS region configured")
            .hint("set AWS_REGION (or AWS_DEFAULT_REGION, a profile's region, or --region)"));
    }
    let provider = config.credentials_provider().ok_or_else(|| {
        Error::bad_input("no AWS credentials provider")
            .hint("configure AWS credentials (env, profile, or OIDC in CI)")
    })?;
    provider.provide_credentials().await.map_err(|err| {
        Error::bad_input("no AWS credentials found")
            .caused_by(&err)
            .hint("set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use OIDC (aws-actions/configure-aws-credentials) in CI")
    })?;
    Ok(config)
}

struct AwsClients {
    registry: ecr::Ecr,
    ecs: ecs::AwsEcs,
    elb: elb::Elbv2,
    calls: ApiCalls,
}

impl AwsClients {
    fn new(config: &aws_config::SdkConfig, calls: &ApiCalls) -> Self {
        Self {
            registry: ecr::Ecr::new(config, calls),
            ecs: ecs::AwsEcs::new(config, calls),
            elb: elb::Elbv2::new(config, calls),
            calls: calls.clone(),
        }
    }

    fn deps<'a>(&'a self, engine: Option<&'a dyn ContainerEngine>) -> Deps<'a> {
        Deps {
            registry: &self.registry,
            ecs: &self.ecs,
            elb: &self.elb,
            calls: self.calls.clone(),
            engine,
        }
    }
}

async fn dispatch(cli: Cli, report: &Report, calls: &ApiCalls) -> Result<Outcome> {
    let repo = settings::repo_dir(&cli.global)?;
    // With --output json, stdout carries only the final result object.
    let plain = cli.global.output != OutputArg::Json;
    let say = |text: &str| {
        if plain {
            print!("{text}");
        }
    };
    let needs_config = !matches!(cli.command, Command::Completions { .. });
    let (file, _path) = if needs_config {
        FileConfig::load(&repo, cli.global.config.as_deref())?
    } else {
        Default::default()
    };
    let region = cli.global.region.clone();
    match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "shipit", &mut std::io::stdout());
            Ok(Outcome {
                command: "completions".into(),
                verdict: "ok".into(),
                ..Default::default()
            })
        }
        Command::Build(args) => {
            let image = settings::image(&repo, &file.image, &args.image, None)?;
            let commit = commit(&args.sha, &repo, report)?;
            let engine = DockerEngine::connect().await?;
            let name = image
                .repository
                .clone()
                .unwrap_or_else(|| "shipit-build".into());
            let tag = image::pipeline::tag_for(&image, &commit);
            let local = format!("{name}:{tag}");
            let id = image::pipeline::build(&image, &commit, &local, &engine, report).await?;
            say(&format!("{local} {id}\n"));
            Ok(Outcome {
                command: "build".into(),
                sha: Some(commit.sha.to_string()),
                image: Some(local),
                digest: Some(id),
                verdict: "built".into(),
                ..Default::default()
            })
        }
        Command::Push(args) => {
            let image = settings::image(&repo, &file.image, &args.image, Some(&args.push))?;
            image.repository()?;
            let commit = commit(&args.sha, &repo, report)?;
            let config = aws(region.as_deref()).await?;
            let clients = AwsClients::new(&config, calls);
            let plan = image::pipeline::plan(&image, &commit, &clients.registry).await?;
            let engine = if plan.build {
                Some(DockerEngine::connect().await?)
            } else {
                None
            };
            let pushed = image::pipeline::ensure(
                &plan,
                &image,
                &commit,
                &clients.registry,
                engine.as_ref().map(|e| e as &dyn ContainerEngine),
                report,
            )
            .await?;
            say(&format!("{}@{}\n", pushed.reference, pushed.digest));
            Ok(Outcome {
                command: "push".into(),
                sha: Some(commit.sha.to_string()),
                image: Some(pushed.reference),
                digest: Some(pushed.digest),
                verdict: if pushed.built {
                    "pushed".into()
                } else {
                    "already_pushed".into()
                },
                timings: pushed.timings.into_iter().map(Into::into).collect(),
                ..Default::default()
            })
        }
        Command::Deploy(args) => {
            let settings = settings::deploy(&repo, &file, &args)?;
            let commit = commit(&args.sha, &repo, report)?;
            let config = aws(region.as_deref()).await?;
            let clients = AwsClients::new(&config, calls);
            if settings.dry_run {
                let plan = deploy::plan(&settings, &commit, &clients.deps(None)).await?;
                say(&deploy::render_plan(&plan, &commit));
                return Ok(planned(&plan, &commit));
            }
            // Connect to the engine before any change when a build will be needed.
            let image_plan =
                image::pipeline::plan(&settings.image, &commit, &clients.registry).await?;
            let engine = if image_plan.build {
                Some(DockerEngine::connect().await?)
            } else {
                None
            };
            let deps = clients.deps(engine.as_ref().map(|e| e as &dyn ContainerEngine));
            let outcome =
                deploy::run_with(&settings, &commit, &deps, report, Some(image_plan)).await?;
            say(&format!(
                "{} {}\n",
                outcome.verdict,
                outcome.new_task_definition.as_deref().unwrap_or("")
            ));
            Ok(outcome)
        }
        Command::Plan(args) => {
            let settings = settings::deploy(&repo, &file, &args)?;
            let commit = commit(&args.sha, &repo, report)?;
            let config = aws(region.as_deref()).await?;
            let clients = AwsClients::new(&config, calls);
            let plan = deploy::plan(&settings, &commit, &clients.deps(None)).await?;
            say(&deploy::render_plan(&plan, &commit));
            Ok(planned(&plan, &commit))
        }
        Command::Rollback(args) => {
            let service = settings::service(&file.ecs, &args.service)?;
            let mut watch = settings::watch(&file.watch, &args.watch, false)?;
            // For a manual rollback the rollback is the rollout: --timeout bounds it too.
            if args.watch.timeout.is_some() && args.watch.rollback_timeout.is_none() {
                watch.rollback_timeout = watch.timeout;
            }
            let config = aws(region.as_deref()).await?;
            let clients = AwsClients::new(&config, calls);
            let mut signals = signals::Signals::install();
            let outcome = rollback::run(
                &service,
                &watch,
                args.to.as_deref(),
                &clients.deps(None),
                report,
                &mut signals,
            )
            .await?;
            say(&format!(
                "{} {}\n",
                outcome.verdict,
                outcome.new_task_definition.as_deref().unwrap_or("")
            ));
            Ok(outcome)
        }
        Command::Status(args) => {
            let service = settings::service(&file.ecs, &args)?;
            let config = aws(region.as_deref()).await?;
            let clients = AwsClients::new(&config, calls);
            say(&status::render(&service, &clients.deps(None)).await?);
            Ok(Outcome {
                command: "status".into(),
                verdict: "ok".into(),
                ..Default::default()
            })
        }
    }
}

fn planned(plan: &deploy::DeployPlan, commit: &git::Commit) -> Outcome {
    Outcome {
        command: "plan".into(),
        sha: Some(commit.sha.to_string()),
        image: plan.image.reference(),
        digest: plan.image.existing_digest.clone(),
        previous_task_definition: Some(plan.current.arn.clone()),
        verdict: "planned".into(),
        ..Default::default()
    }
}

fn commit(args: &cli::ShaArgs, repo: &std::path::Path, report: &Report) -> Result<git::Commit> {
    let inputs = git::ShaInputs {
        flag: args.sha.clone(),
        github_sha: env::var(env::GITHUB_SHA),
        circle_sha1: env::var(env::CIRCLE_SHA1),
    };
    let commit = git::resolve(&inputs, repo)?;
    report.emit(&Event::Info {
        message: format!("commit {} (from {})", commit.sha, commit.source),
    });
    if commit.dirty {
        report.emit(&Event::Warning {
            message: "the work tree has uncommitted changes: the image will contain them, but its tag names only the commit".into(),
        });
    }
    Ok(commit)
}
