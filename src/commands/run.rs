//! `shipit run`: one task of the service's revision on the service's own
//! placement, with the command of one container overridden, followed to its
//! end ([`crate::task`]). It exits with that container's exit code, so a CI
//! job can gate on it; `--detach` returns once ECS placed the task.

use std::collections::BTreeMap;

use super::Context;
use crate::arn::short;
use crate::cli::RunArgs;
use crate::conclusion::Conclusion;
use crate::ecs::taskdef::{self, Changes, ContainerChanges};
use crate::error::{Error, ExitCode, Result};
use crate::outcome::{Outcome, Phase};
use crate::report::{Event, PhaseClock, Timings};
use crate::settings::{self, RunSettings};
use crate::signals::Signals;
use crate::task::{self, Ended, OneOff};
use crate::world::Deps;

/// The tag on a revision `shipit run --secret` registers: the revision it was made from.
pub const RUN_OF_TAG: &str = "shipit:run-of";

pub async fn run(ctx: &Context<'_>, args: &RunArgs) -> Result<Outcome> {
    let settings = settings::run(&ctx.file, args)?;
    // Before any call: a signal from here on stops the task, never the process mid-call.
    let mut signals = Signals::install();
    let clients = ctx.aws().await?;
    let deps = clients.deps(None, ctx.calls);
    let outcome = run_task(&settings, &deps, ctx, &mut signals).await?;
    let task = outcome
        .tasks
        .first()
        .and_then(|t| t.task_arn.as_deref())
        .unwrap_or("");
    ctx.say(format!("{} {task}\n", outcome.conclusion.name()));
    Ok(outcome)
}

async fn run_task(
    settings: &RunSettings,
    deps: &Deps<'_>,
    ctx: &Context<'_>,
    signals: &mut Signals,
) -> Result<Outcome> {
    let report = ctx.report;
    let mut timings = Timings::default();
    let clock = PhaseClock::start(report, Phase::Plan);
    let oneoff = prepare(settings, deps).await?;
    clock.finish(report, &mut timings);
    // Only now may something change: a revision with the secrets, then the task.
    let oneoff = with_secrets(oneoff, settings, deps, report).await?;
    let clock = PhaseClock::start(report, Phase::Run);
    let mut outcome = Outcome {
        previous_task_definition: None,
        new_task_definition: Some(oneoff.run.task_definition.clone()),
        ..Outcome::new("run", Conclusion::Ok)
    };
    let (conclusion, done) = if settings.detach {
        let started = task::start(&oneoff, deps, report).await;
        let conclusion = if started.success {
            Conclusion::TaskStarted
        } else {
            Conclusion::Error(ExitCode::Failed)
        };
        (conclusion, started)
    } else {
        match task::run(&oneoff, deps, report, signals).await {
            Ended::Done(done) => {
                let conclusion = match done.exit_code {
                    // The container ran to its end: its code is the verdict.
                    Some(code) => Conclusion::TaskExited(u8::try_from(code).unwrap_or(255)),
                    // Never placed, never started, timed out: shipit's own failure.
                    None => Conclusion::Error(ExitCode::Failed),
                };
                (conclusion, done)
            }
            Ended::Interrupted(code, stopped) => (Conclusion::Interrupted(code), stopped),
        }
    };
    clock.finish(report, &mut timings);
    outcome.reason = Some(done.reason.clone());
    outcome.tasks.push(done);
    outcome.conclusion = conclusion;
    outcome.timings = timings.to_vec();
    Ok(outcome)
}

/// Everything before the first change: the service, the revision, the
/// container, the placement. Bad input fails here, with nothing started.
async fn prepare(settings: &RunSettings, deps: &Deps<'_>) -> Result<OneOff> {
    let svc = &settings.service;
    let service = deps
        .ecs
        .service(&svc.cluster, &svc.service)
        .await?
        .filter(|s| s.status == crate::ecs::ServiceStatus::Active)
        .ok_or_else(|| {
            Error::bad_input(format!(
                "no ACTIVE ECS service `{}` in cluster `{}`",
                svc.service, svc.cluster
            ))
            .hint("check --cluster/--service (SHIPIT_CLUSTER/SHIPIT_SERVICE) and the AWS region; nothing was started")
        })?;
    let arn = match settings.revision.as_deref() {
        None => service.task_definition.clone(),
        Some(revision) => {
            crate::rollback::choose_target(deps.ecs, &service.task_definition, Some(revision))
                .await
                .map_err(|err| {
                    err.context(format!("--revision {revision}"))
                        .hint("give `current`, a revision number of the service's family, an ARN or a commit SHA shipit deployed; nothing was started")
                })?
        }
    };
    let doc = deps.ecs.task_definition(&arn).await?;
    let container = task::pick_container(&doc.json, settings.container.as_deref(), None)?;
    let place = task::placement(&svc.cluster, &service, &doc.json)?;
    Ok(OneOff {
        label: "run".into(),
        run: task::task_run(
            &place,
            &doc.arn,
            container,
            settings.command.clone(),
            settings.environment.clone(),
            task::STARTED_BY_RUN,
        ),
        task_definition: doc.json,
        timeout: settings.timeout,
        poll_interval: settings.poll_interval,
        log_lines: settings.log_lines,
    })
}

/// ECS overrides a container's environment per task, but not its secrets
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html):
/// with `--secret`, the task runs a revision registered with them, tagged
/// with the revision it was made from.
async fn with_secrets(
    mut oneoff: OneOff,
    settings: &RunSettings,
    deps: &Deps<'_>,
    report: &crate::report::Report,
) -> Result<OneOff> {
    if settings.secrets.is_empty() {
        return Ok(oneoff);
    }
    let from = oneoff.run.task_definition.clone();
    let doc = deps.ecs.task_definition(&from).await?;
    let tags: Vec<(String, String)> = doc
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("shipit:"))
        .cloned()
        .collect();
    let changes = Changes {
        containers: BTreeMap::from([(
            oneoff.run.container.clone(),
            ContainerChanges {
                secrets: settings.secrets.clone(),
                ..ContainerChanges::default()
            },
        )]),
        tags: vec![(RUN_OF_TAG.to_string(), from.clone())],
        ..Changes::default()
    };
    let body = taskdef::next_revision(&doc.json, &tags, &changes)?;
    let arn = deps
        .ecs
        .register_task_definition(&body)
        .await
        .map_err(|err| err.context("registering a revision with the --secret values"))?;
    report.emit(&Event::Info {
        message: format!(
            "registered {} ({} with the --secret values) for this task",
            short(&arn),
            short(&from)
        ),
    });
    oneoff.run.task_definition = arn;
    oneoff.task_definition = body;
    Ok(oneoff)
}
