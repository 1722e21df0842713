//! shipit: ship a commit to Amazon ECS.
//!
//! [`run`] is the whole program (the binary only parses and exits);
//! [`run_in`] is the same with the outside world handed in, so tests drive
//! the whole program in-process over scripted fakes. Where things are:
//! `commands/` (one file per command), `plan` (everything before the first
//! change), `deploy` (the orchestrator), `rollout` (update → watch → signals →
//! rollback), `watch` (observe; `watch::verdict` judges), `conclusion` (every
//! verdict, its name and exit code), `report` (one event stream, several renderers).

pub mod alarms;
pub mod api_calls;
pub mod argv;
pub mod arn;
pub mod aws_error;
pub mod cli;
pub mod commands;
pub mod conclusion;
pub mod deploy;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod env;
pub mod error;
pub mod failure;
pub mod git;
pub mod image;
pub mod logs;
pub mod outcome;
pub mod plan;
pub mod release;
pub mod report;
pub mod rollback;
pub mod rollout;
pub mod secret;
pub mod settings;
pub mod signals;
pub mod status;
pub mod task;
pub mod watch;
pub mod world;

use std::io::IsTerminal;
use std::sync::Arc;

use crate::api_calls::ApiCalls;
use crate::cli::{Cli, OutputArg};
use crate::conclusion::Conclusion;
use crate::error::ExitCode;
use crate::outcome::Outcome;
use crate::report::{Event, Report, Verbosity};
use crate::world::{Connect, RealWorld};

/// Runs one command against the real AWS and Docker engine; returns its exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let report = reporter(&cli);
    run_in(cli, &report, &RealWorld).await
}

/// Runs one command with the given reporter and outside world.
pub async fn run_in(cli: Cli, report: &Report, world: &dyn Connect) -> ExitCode {
    let command = cli.command.name();
    let calls = ApiCalls::new();
    let result = commands::dispatch(cli, report, &calls, world).await;
    let counted = Some(calls.snapshot()).filter(|c| c.total > 0);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err) => {
            report.emit(&Event::Error {
                command: command.to_string(),
                message: err.message().to_string(),
                causes: err.causes().to_vec(),
                hint: err.hint_text().map(str::to_string),
            });
            Outcome {
                reason: Some(err.message().to_string()),
                ..Outcome::new(command, Conclusion::Error(err.exit_code()))
            }
        }
    };
    let outcome = Outcome {
        aws_api_calls: counted,
        ..outcome
    };
    let code = outcome.exit_code();
    report.emit(&Event::Result(Box::new(outcome)));
    report.finish();
    code
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

#[cfg(test)]
mod tests {
    /// The README's "Where things are" names every entry of `src/`, and nothing else.
    #[test]
    fn the_readme_file_map_matches_the_source_tree() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Where things are")
            .nth(1)
            .expect("README has a file map");
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        let listed: std::collections::BTreeSet<String> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .map(str::to_string)
            .collect();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let actual: std::collections::BTreeSet<String> = std::fs::read_dir(src)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                if e.file_type().unwrap().is_dir() {
                    format!("{name}/")
                } else {
                    name
                }
            })
            .collect();
        assert_eq!(listed, actual, "README's file map vs ls src/");
    }
}
