//! The one orchestrator: plan → image → register → update → watch → verdict
//! → rollback. It speaks to the world only through the seams in [`Deps`].

use std::time::Instant;

use futures_util::FutureExt;

use serde_json::Value;

use crate::ecr::Registry;
use crate::ecs::{
    tags, taskdef, DeploymentStatus, Ecs, Service, ServiceStatus, ServiceUpdate, TaskDefinitionDoc,
};
use crate::elb::LoadBalancing;
use crate::error::{Error, ExitCode, Result};
use crate::git::Commit;
use crate::image::pipeline::{self, ImagePlan};
use crate::image::ContainerEngine;
use crate::report::{short_arn, Event, Outcome, Phase, Report, RollbackOutcome, WatchStats};
use crate::rollback;
use crate::settings::{DeploySettings, OnInterrupt, WatchSettings};
use crate::signals::Signals;
use crate::watch::{self, Criteria, Goal, Tracker, Verdict, Watch};

/// The seams the orchestrator talks to.
pub struct Deps<'a> {
    pub registry: &'a dyn Registry,
    pub ecs: &'a dyn Ecs,
    pub elb: &'a dyn LoadBalancing,
    /// The run's AWS call counter (the watch reports its polls' calls from it).
    pub calls: crate::api_calls::ApiCalls,
    /// Connected only when a build is needed.
    pub engine: Option<&'a dyn ContainerEngine>,
}

/// Everything worked out before the first change.
#[derive(Debug, Clone)]
pub struct DeployPlan {
    pub image: ImagePlan,
    pub service: Service,
    pub current: TaskDefinitionDoc,
    pub containers: Vec<String>,
    /// The RegisterTaskDefinition body of the next revision.
    pub next: Value,
    pub diff: String,
    pub target_groups: Vec<String>,
}

impl DeployPlan {
    pub fn family(&self) -> &str {
        self.next
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Looks the service up; a missing or inactive one is bad input.
pub async fn active_service(ecs: &dyn Ecs, cluster: &str, name: &str) -> Result<Service> {
    let service = ecs.service(cluster, name).await?.ok_or_else(|| {
        Error::bad_input(format!(
            "ECS service `{name}` not found in cluster `{cluster}`"
        ))
        .hint("check --cluster/--service (SHIPIT_CLUSTER/SHIPIT_SERVICE) and the AWS region")
    })?;
    if service.status != ServiceStatus::Active {
        return Err(Error::bad_input(format!(
            "ECS service `{name}` in cluster `{cluster}` is {}",
            service.status
        ))
        .hint("only an ACTIVE service can be deployed to; recreate it or pick another"));
    }
    if let Some(controller) = service
        .deployment_controller
        .as_deref()
        .filter(|c| *c != "ECS")
    {
        // UpdateService cannot change its task definition: refuse before registering anything.
        return Err(Error::bad_input(format!(
            "ECS service `{name}` uses the {controller} deployment controller; shipit deploys rolling (ECS) services"
        ))
        .hint(if controller == "CODE_DEPLOY" {
            "deploy it through CodeDeploy (blue/green), or recreate the service with the ECS controller"
        } else {
            "deploy it with the tool that owns its task sets, or recreate the service with the ECS controller"
        }));
    }
    Ok(service)
}

/// Another rollout is running when a deployment other than the PRIMARY still
/// has running tasks: ECS is moving the service between revisions.
pub fn rollout_in_progress(service: &Service) -> Option<String> {
    let primary = service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    let old = service
        .deployments
        .iter()
        .find(|d| d.status != DeploymentStatus::Primary && d.running_count > 0)?;
    Some(format!(
        "deployment {} ({}) still runs {} task(s) while {} rolls out",
        old.id,
        short_arn(&old.task_definition),
        old.running_count,
        primary
            .map(|p| short_arn(&p.task_definition))
            .unwrap_or("another revision")
    ))
}

pub async fn plan(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
) -> Result<DeployPlan> {
    plan_with(settings, commit, deps, None).await
}

/// [`plan`], reusing an image plan already made (the caller needed it to know
/// whether to connect to the engine): two ECR calls fewer.
pub async fn plan_with(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
    image: Option<ImagePlan>,
) -> Result<DeployPlan> {
    let cluster = &settings.service.cluster;
    let mut service = active_service(deps.ecs, cluster, &settings.service.service).await?;
    let deadline = Instant::now() + settings.watch.timeout;
    while let Some(busy) = rollout_in_progress(&service) {
        if !settings.wait_for_rollout {
            return Err(Error::bad_input(format!(
                "another rollout is in progress on service `{}`: {busy}",
                service.name
            ))
            .hint(
                "wait for it to finish (or pass --wait-for-rollout); deploying now would fight it",
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "the rollout in progress on `{}` did not finish in time: {busy}",
                service.name
            ))
            .hint("nothing was changed; look at `shipit status` and try again"));
        }
        tokio::time::sleep(settings.watch.poll_interval).await;
        service = active_service(deps.ecs, cluster, &settings.service.service).await?;
    }
    let current = deps.ecs.task_definition(&service.task_definition).await?;
    let image = match image {
        Some(image) => image,
        None => pipeline::plan(&settings.image, commit, deps.registry).await?,
    };
    let repository_uri = image
        .repository_uri
        .clone()
        .unwrap_or_else(|| format!("<new repository {}>", image.repository));
    let reference = format!("{repository_uri}:{}", image.tag);

    let base = match &settings.task_definition_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| {
                Error::bad_input(format!(
                    "cannot read task definition file {}",
                    path.display()
                ))
                .caused_by(&err)
                .hint("check that the file exists and that this user may read it")
            })?;
            let text = taskdef::substitute(&text, |name| std::env::var(name).ok())?;
            let mut value: Value = serde_json::from_str(&text).map_err(|err| {
                Error::bad_input(format!("task definition file {} is not valid JSON", path.display()))
                    .caused_by(&err)
                    .hint("the file holds a RegisterTaskDefinition request (or a DescribeTaskDefinition `taskDefinition`)")
            })?;
            if let Some(inner) = value.get("taskDefinition").cloned() {
                value = inner;
            }
            value
        }
        None => current.json.clone(),
    };
    let family = base
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if image.repository_uri.is_none() && settings.containers.is_empty() {
        // No container can use an image from a repository that does not exist yet.
        return Err(Error::bad_input(format!(
            "ECR repository `{}` does not exist yet, so shipit cannot tell which container of `{family}` to update",
            image.repository
        ))
        .hint("name the container(s) with --container <name> when creating the repository"));
    }
    let containers =
        taskdef::pick_containers(&base, &settings.containers, &repository_uri, &family)?;

    let mut changes = taskdef::Changes::default();
    for name in &containers {
        changes.images.insert(name.clone(), reference.clone());
    }
    for (container, change) in &settings.changes {
        let target = if container.is_empty() {
            match containers.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(Error::bad_input("--env/--secret/--docker-label without a container name, but several containers change")
                        .hint("prefix them with the container: --env app:KEY=VALUE"))
                }
            }
        } else {
            container.clone()
        };
        changes.containers.insert(target, change.clone());
    }
    changes.tags = vec![
        (tags::SHA.to_string(), commit.sha.full().to_string()),
        (tags::PREVIOUS.to_string(), current.arn.clone()),
    ];
    let carried: Vec<(String, String)> = current
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("shipit:"))
        .cloned()
        .collect();
    let next = taskdef::next_revision(&base, &carried, &changes)?;
    let diff = taskdef::diff(&current.json, &next);
    let mut target_groups: Vec<String> = service
        .load_balancers
        .iter()
        .map(|lb| lb.target_group_arn.clone())
        .collect();
    target_groups.dedup();
    Ok(DeployPlan {
        image,
        service,
        current,
        containers,
        next,
        diff,
        target_groups,
    })
}

/// The plan as a person reads it (what `shipit plan` prints).
pub fn render_plan(plan: &DeployPlan, commit: &Commit) -> String {
    let mut out = String::new();
    let image = plan.image.reference().unwrap_or_else(|| {
        format!(
            "<new repository {}>:{}",
            plan.image.repository, plan.image.tag
        )
    });
    out.push_str(&format!("commit:        {}\n", commit.sha));
    match (&plan.image.existing_digest, plan.image.build) {
        (Some(digest), false) => out.push_str(&format!(
            "image:         {image} (already in ECR, {digest}: no build)\n"
        )),
        _ => out.push_str(&format!("image:         {image} (will build and push)\n")),
    }
    out.push_str(&format!(
        "service:       {} ({}, desired {})\n",
        plan.service.name, plan.service.status, plan.service.desired_count
    ));
    out.push_str(&format!("current:       {}\n", plan.current.arn));
    if !plan.current.tags.is_empty() {
        let tags: Vec<String> = plan
            .current
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("  tags:        {}\n", tags.join(", ")));
    }
    out.push_str(&format!(
        "next:          a new revision of `{}`, changing container(s) {}\n",
        plan.family(),
        plan.containers.join(", ")
    ));
    out.push_str(&format!("rollback to:   {}\n", plan.current.arn));
    if plan.target_groups.is_empty() {
        out.push_str("target groups: none (verdict from running tasks only)\n");
    }
    for tg in &plan.target_groups {
        out.push_str(&format!("target group:  {tg}\n"));
    }
    out.push_str("\ntask definition diff:\n");
    out.push_str(&plan.diff);
    out
}

pub fn criteria(watch: &WatchSettings) -> Criteria {
    Criteria {
        healthy_polls: watch.healthy_polls,
        unhealthy_grace: watch.unhealthy_grace,
        max_task_failures: watch.max_task_failures,
        wait_for_drain: watch.wait_for_drain,
        ..Criteria::default()
    }
}

fn phase<T>(
    report: &Report,
    phase: Phase,
    timings: &mut Vec<(Phase, f64)>,
    started: Instant,
    value: T,
) -> T {
    let elapsed = started.elapsed();
    report.emit(&Event::PhaseFinished { phase, elapsed });
    timings.push((phase, elapsed.as_secs_f64()));
    value
}

/// Runs the whole deploy. `Err` means nothing was deployed (exit 2 or 1);
/// from `UpdateService` on, the outcome carries the exit code.
pub async fn run(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
    report: &Report,
) -> Result<Outcome> {
    run_with(settings, commit, deps, report, None).await
}

/// [`run`] with an image plan already made (see [`plan_with`]).
pub async fn run_with(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
    report: &Report,
    image: Option<ImagePlan>,
) -> Result<Outcome> {
    let mut timings = Vec::new();
    // Until the service changes, a SIGINT/SIGTERM only stops the work: say so
    // and exit, nothing to roll back. From UpdateService on it means "roll back".
    let mut signals = Signals::install();
    let signals = &mut signals;
    let prepared = tokio::select! {
        prepared = prepare(settings, commit, deps, report, &mut timings, image) => prepared?,
        code = signals.next() => {
            return Err(Error::interrupted(code, "interrupted before the service was changed")
                .hint("nothing was changed in ECS (an image may have been pushed); re-run the deploy"))
        }
    };
    let (plan, pushed) = prepared;
    let mut outcome = Outcome {
        command: "deploy".into(),
        sha: Some(commit.sha.to_string()),
        previous_task_definition: Some(plan.current.arn.clone()),
        ..Default::default()
    };
    outcome.image = Some(pushed.reference.clone());
    outcome.digest = Some(pushed.digest.clone());
    timings.extend(pushed.timings.iter().copied());

    // The repository may have been created by the push: render with the real URI.
    let next = if plan.image.repository_uri.is_none() {
        let mut next = plan.next.clone();
        if let Some(defs) = next
            .get_mut("containerDefinitions")
            .and_then(Value::as_array_mut)
        {
            for def in defs.iter_mut().filter(|d| {
                plan.containers
                    .iter()
                    .any(|c| d.get("name").and_then(Value::as_str) == Some(c))
            }) {
                def["image"] = Value::String(pushed.reference.clone());
            }
        }
        next
    } else {
        plan.next.clone()
    };

    let started = Instant::now();
    report.emit(&Event::PhaseStarted {
        phase: Phase::Register,
    });
    let new_arn = deps
        .ecs
        .register_task_definition(&next)
        .await
        .map_err(|err| {
            err.context(format!(
                "the service `{}` was not changed",
                settings.service.service
            ))
            .hint("nothing to roll back; fix the cause above and re-run the deploy")
        })?;
    report.emit(&Event::TaskDefinitionRegistered {
        arn: new_arn.clone(),
    });
    phase(report, Phase::Register, &mut timings, started, ());
    outcome.new_task_definition = Some(new_arn.clone());

    // A signal that came during RegisterTaskDefinition: stop before the service changes.
    if let Some(code) = signals.next().now_or_never() {
        let cleanup = orphan(deps.ecs, &new_arn, settings.deregister_on_failure, report).await;
        return Err(
            Error::interrupted(code, "interrupted before the service was changed")
                .cause(cleanup)
                .hint("nothing to roll back; re-run the deploy"),
        );
    }

    // From here on the service changes (its current revision is recorded in
    // the plan), and a SIGINT/SIGTERM means "roll back", not "die".
    let started = Instant::now();
    report.emit(&Event::PhaseStarted {
        phase: Phase::Update,
    });
    let update = ServiceUpdate {
        cluster: settings.service.cluster.clone(),
        service: settings.service.service.clone(),
        task_definition: new_arn.clone(),
        desired_count: settings.desired_count,
        force_new_deployment: settings.force_new_deployment,
    };
    let update_started_at = watch::now_epoch();
    let updated = match deps.ecs.update_service(&update).await {
        Ok(updated) => updated,
        Err(err) => {
            let cleanup = orphan(deps.ecs, &new_arn, settings.deregister_on_failure, report).await;
            return Err(err
                .context(format!(
                    "the service `{}` was not changed (it still runs {})",
                    settings.service.service,
                    short_arn(&plan.current.arn)
                ))
                .cause(cleanup)
                .hint("nothing to roll back; fix the cause above and re-run the deploy"));
        }
    };
    let deployment_id = primary_deployment(&updated, &new_arn);
    report.emit(&Event::ServiceUpdated {
        task_definition: new_arn.clone(),
        deployment_id: deployment_id.clone(),
    });
    phase(report, Phase::Update, &mut timings, started, ());

    let goal = Goal {
        task_definition: new_arn.clone(),
        deployment_id,
        previous_task_definition: Some(plan.current.arn.clone()),
        started_at: update_started_at,
        health_checked: taskdef::health_checked_essential_containers(&next),
    };
    let started = Instant::now();
    report.emit(&Event::PhaseStarted {
        phase: Phase::Watch,
    });
    let watcher = Watch {
        ecs: deps.ecs,
        elb: deps.elb,
        report,
        cluster: &settings.service.cluster,
        service: &settings.service.service,
        interval: settings.watch.poll_interval,
        deadline: watch::Deadline::fixed(settings.watch.timeout),
        calls: deps.calls.clone(),
    };
    let mut tracker = Tracker::new(criteria(&settings.watch), goal);
    let watched = tokio::select! {
        watched = watcher.run(&mut tracker) => Watched::Done(watched),
        signal = signals.next() => Watched::Interrupted(signal),
    };
    phase(report, Phase::Watch, &mut timings, started, ());

    if let Watched::Done(result) = &watched {
        outcome.watch = Some(WatchStats {
            polls: result.polls,
            aws_calls: result.calls,
        });
    }
    let (failure_reason, interrupted) = match watched {
        Watched::Done(result) => match result.verdict {
            Verdict::Healthy(summary) => {
                report.emit(&Event::Verdict {
                    healthy: true,
                    reason: summary.clone(),
                });
                mark(deps.ecs, &new_arn, "healthy", report).await;
                outcome.verdict = "deployed".into();
                outcome.reason = Some(summary);
                outcome.exit_code = ExitCode::Success.code();
                outcome.timings = timings.into_iter().map(Into::into).collect();
                return Ok(outcome);
            }
            Verdict::Unverifiable(reason) => {
                // Exit 0 as before, but never tagged healthy (not a rollback target).
                report.emit(&Event::Verdict {
                    healthy: true,
                    reason: reason.clone(),
                });
                outcome.verdict = "unverified".into();
                outcome.reason = Some(reason);
                outcome.exit_code = ExitCode::Success.code();
                outcome.timings = timings.into_iter().map(Into::into).collect();
                return Ok(outcome);
            }
            Verdict::Failed(failure) => (failure.reason, None),
            // Until the rollout module handles these: treated like a failure, as before.
            Verdict::Superseded(reason) | Verdict::EcsRollingBack { reason, .. } => (reason, None),
            Verdict::Blind(what) => (format!("the rollout could not be watched: {what}"), None),
            Verdict::Pending(_) => unreachable!("the watch returns only verdicts"),
        },
        Watched::Interrupted(code) => (
            format!(
                "interrupted by {}",
                if code == ExitCode::Interrupted {
                    "SIGINT"
                } else {
                    "SIGTERM"
                }
            ),
            Some(code),
        ),
    };
    if let (Some(code), OnInterrupt::Leave) = (interrupted, settings.watch.on_interrupt) {
        // Asked to leave the rollout alone: no verdict, no tag, no rollback.
        outcome.verdict = "interrupted".into();
        outcome.reason = Some(failure_reason);
        outcome.exit_code = code.code();
        outcome.timings = timings.into_iter().map(Into::into).collect();
        report.emit(&Event::Warning {
            message: format!(
                "stopped watching (on_interrupt = leave): the service is updated to {} and ECS goes on rolling it out; \
                 check: shipit status --cluster {c} --service {s}; undo: shipit rollback --cluster {c} --service {s} --to {}",
                short_arn(&new_arn),
                plan.current.arn,
                c = settings.service.cluster,
                s = settings.service.service,
            ),
        });
        return Ok(outcome);
    }
    if interrupted.is_none() {
        report.emit(&Event::Verdict {
            healthy: false,
            reason: failure_reason.clone(),
        });
    }
    mark(deps.ecs, &new_arn, "failed", report).await;
    outcome.reason = Some(failure_reason.clone());

    if !settings.watch.rollback {
        outcome.verdict = "failed".into();
        outcome.exit_code = interrupted.unwrap_or(ExitCode::NeedsHuman).code();
        outcome.timings = timings.into_iter().map(Into::into).collect();
        report.emit(&Event::Warning {
            message: format!(
                "not rolling back (--no-rollback): the service runs {}; to restore: shipit rollback --cluster {} --service {} --to {}",
                short_arn(&new_arn), settings.service.cluster, settings.service.service, plan.current.arn
            ),
        });
        return Ok(outcome);
    }

    let started = Instant::now();
    let rolled = rollback::to_revision(
        deps,
        report,
        &settings.service.cluster,
        &settings.service.service,
        &plan.current.arn,
        Some(&new_arn),
        &failure_reason,
        &settings.watch,
        signals,
    )
    .await;
    timings.push((Phase::Rollback, started.elapsed().as_secs_f64()));
    outcome.timings = timings.into_iter().map(Into::into).collect();
    outcome.exit_code = match (&rolled, interrupted) {
        (Ok(r), Some(code)) if r.healthy => code.code(),
        (Ok(r), None) if r.healthy => ExitCode::Failed.code(),
        _ => ExitCode::NeedsHuman.code(),
    };
    outcome.verdict = match &rolled {
        Ok(r) if r.healthy => "rolled_back".into(),
        _ => "needs_human".into(),
    };
    outcome.rollback = Some(match rolled {
        Ok(r) => r,
        Err(err) => RollbackOutcome {
            to: plan.current.arn.clone(),
            healthy: false,
            reason: err.message().to_string(),
            interrupted: None,
        },
    });
    Ok(outcome)
}

/// Plan, then make sure the image is in ECR: everything before the first ECS change.
async fn prepare(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
    report: &Report,
    timings: &mut Vec<(Phase, f64)>,
    image: Option<ImagePlan>,
) -> Result<(DeployPlan, pipeline::PushedImage)> {
    let started = Instant::now();
    report.emit(&Event::PhaseStarted { phase: Phase::Plan });
    let plan = plan_with(settings, commit, deps, image).await?;
    phase(report, Phase::Plan, timings, started, ());
    let pushed = pipeline::ensure(
        &plan.image,
        &settings.image,
        commit,
        deps.registry,
        deps.engine,
        report,
    )
    .await
    .map_err(|err| {
        err.context(format!(
            "the service `{}` was not changed",
            settings.service.service
        ))
    })?;
    Ok((plan, pushed))
}

/// A revision registered but never deployed: deregister it when asked to,
/// and say in words what state it is left in.
async fn orphan(ecs: &dyn Ecs, arn: &str, deregister: bool, report: &Report) -> String {
    if !deregister {
        return format!(
            "revision {arn} was registered but is not used; remove it with --deregister-on-failure next time, or: aws ecs deregister-task-definition --task-definition {arn}"
        );
    }
    match ecs.deregister_task_definition(arn).await {
        Ok(()) => {
            report.emit(&Event::Info {
                message: format!("deregistered the unused revision {}", short_arn(arn)),
            });
            format!("revision {arn} was registered, then deregistered (never used)")
        }
        Err(err) => format!(
            "revision {arn} was registered and could not be deregistered: {}",
            err.message()
        ),
    }
}

enum Watched {
    Done(watch::WatchOutcome),
    Interrupted(ExitCode),
}

/// The PRIMARY deployment on `task_definition` in UpdateService's answer.
pub fn primary_deployment(service: &Service, task_definition: &str) -> Option<String> {
    service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary && d.task_definition == task_definition)
        .map(|d| d.id.clone())
}

/// Tags the revision with shipit's verdict; a failure to tag is only a warning.
pub async fn mark(ecs: &dyn Ecs, arn: &str, verdict: &str, report: &Report) {
    let tags = [(tags::VERDICT.to_string(), verdict.to_string())];
    if let Err(err) = ecs.tag_task_definition(arn, &tags).await {
        report.emit(&Event::Warning {
            message: format!("could not tag {arn} as {verdict}: {}", err.message()),
        });
    }
}
