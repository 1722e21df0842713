//! One file per command: each resolves its settings, connects to what it
//! needs, calls the domain (deploy, rollback, status, the image pipeline) and
//! says its result. A new command is a new file here and one arm below.

mod build;
mod completions;
mod deploy;
mod plan;
mod push;
mod rollback;
mod run;
mod status;
mod watch;

use std::path::PathBuf;

use crate::api_calls::ApiCalls;
use crate::cli::{Cli, Command, GlobalArgs, ShaArgs};
use crate::error::Result;
use crate::git::{self, Commit};
use crate::image::ContainerEngine;
use crate::outcome::Outcome;
use crate::report::{Event, Report};
use crate::settings::{self, FileConfig, ImageSettings};
use crate::world::{Clients, Connect};

/// One service's part of a command run on several, each on its own
/// (`rollback`, `watch`): its outcome, or its error said on its `report`
/// (`doing` names what did not happen, e.g. "not rolled back") and kept.
fn service_part(
    name: &str,
    result: Result<Outcome>,
    report: &Report,
    doing: &str,
) -> crate::outcome::ServiceOutcome {
    use crate::outcome::ServiceOutcome;
    match result {
        Ok(outcome) => ServiceOutcome::of(name, outcome),
        Err(err) => {
            let hint = err
                .hint_text()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            report.emit(&Event::Warning {
                message: format!("{doing}: {}{hint}", err.message()),
            });
            ServiceOutcome::error(name, &err)
        }
    }
}

/// What every command gets.
pub struct Context<'a> {
    pub repo: PathBuf,
    pub file: FileConfig,
    pub region: Option<String>,
    pub report: &'a Report,
    pub calls: &'a ApiCalls,
    pub world: &'a dyn Connect,
}

impl Context<'_> {
    /// Data for stdout (the renderers decide: nothing of it with `--output json`).
    pub fn say(&self, text: impl Into<String>) {
        self.report.emit(&Event::Output { text: text.into() });
    }

    pub async fn aws(&self) -> Result<Clients> {
        self.world.aws(self.region.as_deref(), self.calls).await
    }

    /// The container engine, only when an image must be built (and then
    /// only with a Dockerfile to build from).
    pub async fn engine_if(
        &self,
        needed: bool,
        image: &ImageSettings,
    ) -> Result<Option<Box<dyn ContainerEngine>>> {
        if !needed {
            return Ok(None);
        }
        image.require_dockerfile()?;
        Ok(Some(self.world.engine().await?))
    }

    /// The commit to ship, said as it is resolved.
    pub fn commit(&self, args: &ShaArgs) -> Result<Commit> {
        let commit = git::resolve(&settings::sha_inputs(args), &self.repo)?;
        self.report.emit(&Event::Info {
            message: format!("commit {} (from {})", commit.sha, commit.source),
        });
        if commit.dirty {
            self.report.emit(&Event::Warning {
                message: "the work tree has uncommitted changes: the image will contain them, but its tag names only the commit".into(),
            });
        }
        Ok(commit)
    }
}

pub async fn dispatch(
    cli: Cli,
    report: &Report,
    calls: &ApiCalls,
    world: &dyn Connect,
) -> Result<Outcome> {
    if let Command::Completions { shell } = cli.command {
        return completions::run(shell, report);
    }
    let ctx = context(&cli.global, report, calls, world)?;
    match cli.command {
        Command::Build(args) => build::run(&ctx, &args).await,
        Command::Push(args) => push::run(&ctx, &args).await,
        Command::Deploy(args) if args.dry_run => plan::run(&ctx, &args).await,
        Command::Deploy(args) => deploy::run(&ctx, &args).await,
        Command::Plan(args) => plan::run(&ctx, &args).await,
        Command::Rollback(args) => rollback::run(&ctx, &args).await,
        Command::Status(args) => status::run(&ctx, &args).await,
        Command::Watch(args) => watch::run(&ctx, &args).await,
        Command::Run(args) => run::run(&ctx, &args).await,
        Command::Completions { .. } => unreachable!("handled above"),
    }
}

fn context<'a>(
    global: &GlobalArgs,
    report: &'a Report,
    calls: &'a ApiCalls,
    world: &'a dyn Connect,
) -> Result<Context<'a>> {
    let repo = settings::repo_dir(global)?;
    let (file, _path) = FileConfig::load(&repo, global.config.as_deref())?;
    Ok(Context {
        repo,
        file,
        region: global.region.clone(),
        report,
        calls,
        world,
    })
}
