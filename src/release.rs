//! A release: several services of one cluster deployed from one build, with
//! one verdict. It composes the per-service pieces — [`plan::plan`], the
//! image pipeline (once), [`Rollout`] (update, tag) — and watches the
//! services together with shared, batched polls ([`watch::Fleet`]).
//!
//! - Everything is planned before the first change: a bad input in any
//!   service fails the whole run (exit 2) with nothing changed.
//! - The image is built and pushed once; each service gets its own new
//!   revision from its own current one.
//! - The `--before` tasks (a migration) run once, on the first service's new
//!   revision, after every revision is registered and before the first
//!   update; a failure there changes no service.
//! - Groups go one after the other (lowest first); the services of a group
//!   are updated together and watched together. A group that is not all
//!   healthy stops the release: the later groups are not started.
//! - One verdict: deployed only if every service is. When any fails (or a
//!   signal asks for it), every service this run updated is rolled back to
//!   the revision recorded in its plan, all together — except one whose
//!   PRIMARY deployment is someone else's by then (superseded: never undo
//!   another run), one the watch could not see (blind: nothing is rolled back
//!   blind), and one ECS is rolling back itself (watched, not repeated).
//! - The exit code is the worst service's ([`crate::conclusion::severity`]).

use futures_util::future::join_all;
use futures_util::FutureExt;

use crate::arn::short;
use crate::conclusion::{worst, Conclusion, RollbackCause};
use crate::ecs::taskdef;
use crate::error::{Error, ExitCode, Result};
use crate::failure::{ContainerLog, FailureReport};
use crate::git::Commit;
use crate::image::pipeline::{self, ImagePlan, PushedImage};
use crate::outcome::TaskOutcome;
use crate::outcome::{Outcome, Phase, RollbackOutcome, RolledBackBy, ServiceOutcome, WatchStats};
use crate::plan::{self, DeployPlan};
use crate::report::{for_service, Event, PhaseClock, Report, Timings};
use crate::rollout::{blind_warning, superseded_warning, taken_over, Leg, Move, Rollout};
use crate::settings::{OnInterrupt, ReleaseSettings, Until};
use crate::signals::Signals;
use crate::task::{self, Ended};
use crate::watch::{Fleet, Goal, Verdict, WatchOutcome};
use crate::world::Deps;

/// Where one service of the release stands.
#[derive(Debug, Clone)]
enum State {
    /// Planned and registered; its group has not started.
    Waiting,
    /// UpdateService was made; not judged (yet).
    Updated,
    /// `--until updated`: updated and not watched.
    NotWatched,
    /// UpdateService failed: the service was not changed.
    UpdateFailed(String),
    Healthy(String),
    Unverified(String),
    Superseded(String),
    Blind(String),
    Failed {
        reason: String,
        failure: Option<Box<FailureReport>>,
    },
    /// ECS itself is rolling it back (circuit breaker, alarms): follow that.
    EcsRollingBack {
        goal: Goal,
        reason: String,
    },
}

/// One service of the release, from its plan to its outcome.
struct Member<'a> {
    name: String,
    group: u32,
    plan: DeployPlan,
    rollout: Rollout<'a>,
    report: &'a Report,
    /// The desired count this run sets (`None`: unchanged).
    desired_count: Option<i32>,
    new_arn: Option<String>,
    goal: Option<Goal>,
    state: State,
    conclusion: Option<(Conclusion, String)>,
    rollback: Option<RollbackOutcome>,
    failure: Option<Box<FailureReport>>,
}

/// Runs the release. `Err` means no service was changed (exit 2 or 1);
/// from the first `UpdateService` on, the outcome carries every service's
/// conclusion. `image` reuses an image plan the caller already made.
pub async fn run(
    settings: &ReleaseSettings,
    commit: &Commit,
    deps: &Deps<'_>,
    report: &Report,
    image: Option<ImagePlan>,
) -> Result<Outcome> {
    let shared = &settings.shared;
    let mut signals = Signals::install();
    let mut timings = Timings::default();
    let reports: Vec<Report> = settings
        .services
        .iter()
        .map(|t| for_service(report, &t.deploy.service.service))
        .collect();

    // Plan every service, then the image: nothing changes before both are done.
    let prepared = async {
        let clock = PhaseClock::start(report, Phase::Plan);
        let plans = plan_all(settings, commit, deps, image, &reports).await?;
        // The one-off tasks run on the first service's revision: checked now.
        task::before_steps(&settings.services[0].deploy, &plans[0], "")
            .map_err(|err| err.context(format!("service `{}`", plans[0].service.name)))?;
        clock.finish(report, &mut timings);
        let pushed = pipeline::ensure(
            &plans[0].image,
            &shared.image,
            commit,
            deps.registry,
            deps.engine,
            report,
        )
        .await
        .map_err(|err| err.context("no service was changed"))?;
        Ok::<_, Error>((plans, pushed))
    };
    let (plans, pushed) = tokio::select! {
        prepared = prepared => prepared?,
        code = signals.next() => return Err(Error::interrupted(code, "interrupted before any service was changed")
            .hint("nothing was changed in ECS (an image may have been pushed); re-run the deploy")),
    };
    timings.extend(&pushed.timings);
    let mut members: Vec<Member> = settings
        .services
        .iter()
        .zip(plans)
        .zip(&reports)
        .map(|((target, plan), report)| Member {
            name: target.deploy.service.service.clone(),
            group: target.group,
            plan,
            rollout: Rollout {
                deps,
                report,
                service: &target.deploy.service,
                watch: &target.deploy.watch,
            },
            report,
            desired_count: target.deploy.desired_count,
            new_arn: None,
            goal: None,
            state: State::Waiting,
            conclusion: None,
            rollback: None,
            failure: None,
        })
        .collect();

    register_all(&mut members, &pushed, settings, deps, report, &mut timings).await?;

    let mut release = Release {
        settings,
        deps,
        report,
        signals,
        timings,
        polls: 0,
        watch_calls: 0,
        tasks: Vec::new(),
    };
    if let Some(stopped) = release.before(&mut members).await {
        return Ok(release.outcome(commit, &pushed, members, stopped));
    }
    let interrupted = match release.groups(&mut members).await {
        Ok(interrupted) => interrupted,
        Err(err) => match task::already_ran(&release.tasks) {
            Some(ran) => return Err(err.cause(ran)),
            None => return Err(err),
        },
    };
    release.conclude(&mut members, interrupted).await;
    let conclusion = worst(
        members
            .iter()
            .filter_map(|m| m.conclusion.as_ref().map(|c| c.0)),
    );
    Ok(release.outcome(commit, &pushed, members, conclusion))
}

/// Plans each service (read calls only, side by side). The first service
/// whose plan fails fails the run, named.
async fn plan_all(
    settings: &ReleaseSettings,
    commit: &Commit,
    deps: &Deps<'_>,
    image: Option<ImagePlan>,
    reports: &[Report],
) -> Result<Vec<DeployPlan>> {
    let image = match image {
        Some(image) => image,
        None => pipeline::plan(&settings.shared.image, commit, deps.registry).await?,
    };
    let plans = join_all(
        settings
            .services
            .iter()
            .map(|t| plan::plan(&t.deploy, commit, deps, Some(image.clone()))),
    )
    .await;
    let mut done = Vec::with_capacity(plans.len());
    for (plan, target) in plans.into_iter().zip(&settings.services) {
        let name = &target.deploy.service.service;
        done.push(plan.map_err(|err| {
            err.context(format!("service `{name}`"))
                .cause(format!(
                    "no service was changed: a deploy of several services starts only when every one of them can ({})",
                    settings
                        .services
                        .iter()
                        .map(|t| t.deploy.service.service.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
        })?);
    }
    for (plan, report) in done.iter().zip(reports) {
        plan::warn(plan, report);
    }
    Ok(done)
}

/// Registers every service's next revision. A failure registers nothing
/// more and changes no service; the revisions already registered are named
/// (deregistered with `--deregister-on-failure`).
async fn register_all(
    members: &mut [Member<'_>],
    pushed: &PushedImage,
    settings: &ReleaseSettings,
    deps: &Deps<'_>,
    report: &Report,
    timings: &mut Timings,
) -> Result<()> {
    let clock = PhaseClock::start(report, Phase::Register);
    for i in 0..members.len() {
        let member = &members[i];
        let mut next = member.plan.next.clone();
        // The repository may have been created by the push: render with the real URI.
        if member.plan.image.repository_uri.is_none() {
            taskdef::set_images(&mut next, &member.plan.containers, &pushed.reference);
        }
        match deps.ecs.register_task_definition(&next).await {
            Ok(arn) => {
                member
                    .report
                    .emit(&Event::TaskDefinitionRegistered { arn: arn.clone() });
                members[i].new_arn = Some(arn);
            }
            Err(err) => {
                let registered: Vec<String> = members[..i]
                    .iter()
                    .filter_map(|m| m.new_arn.clone())
                    .collect();
                let cleanup = orphans(
                    &registered,
                    settings.shared.deregister_on_failure,
                    deps,
                    report,
                )
                .await;
                let mut err =
                    err.context(format!("service `{}`: no service was changed", member.name));
                for line in cleanup {
                    err = err.cause(line);
                }
                return Err(
                    err.hint("nothing to roll back; fix the cause above and re-run the deploy")
                );
            }
        }
    }
    clock.finish(report, timings);
    Ok(())
}

/// Revisions registered and never deployed: deregistered when asked to,
/// else named, with the command that removes them.
async fn orphans(
    arns: &[String],
    deregister: bool,
    deps: &Deps<'_>,
    report: &Report,
) -> Vec<String> {
    let mut lines = Vec::new();
    for arn in arns {
        if !deregister {
            lines.push(format!(
                "revision {arn} was registered and no service uses it; remove it with --deregister-on-failure next time, or: aws ecs deregister-task-definition --task-definition {arn}"
            ));
            continue;
        }
        match deps.ecs.deregister_task_definition(arn).await {
            Ok(()) => {
                report.emit(&Event::Info {
                    message: format!("deregistered revision {} (no service used it)", short(arn)),
                });
                lines.push(format!(
                    "revision {arn} was registered, then deregistered (no service used it)"
                ));
            }
            Err(err) => lines.push(format!(
                "revision {arn} was registered and could not be deregistered: {}",
                err.message()
            )),
        }
    }
    lines
}

/// The release in progress, from the first update on.
struct Release<'a> {
    settings: &'a ReleaseSettings,
    deps: &'a Deps<'a>,
    report: &'a Report,
    signals: Signals,
    timings: Timings,
    /// Polls of the forward watches (the most any service needed per group, summed).
    polls: u32,
    /// AWS calls the forward watches made, all services together.
    watch_calls: u64,
    /// The `--before` tasks that ran.
    tasks: Vec<TaskOutcome>,
}

impl Release<'_> {
    /// The `--before` tasks, once for the release: on the first service's
    /// new revision (its container, subnets, security groups and roles),
    /// after every revision is registered and before the first update.
    /// `Some` ends the release there, with no service changed: a task failed
    /// (every new revision is tagged failed) or a signal stopped it.
    async fn before(&mut self, members: &mut [Member<'_>]) -> Option<Conclusion> {
        let first = &members[0];
        let arn = first.new_arn.clone().expect("registered");
        // Checked in the plan already: an error here still never skips a step.
        let steps = match task::before_steps(&self.settings.services[0].deploy, &first.plan, &arn) {
            Ok(steps) if steps.is_empty() => return None,
            Ok(steps) => steps,
            Err(err) => {
                let conclusion = Conclusion::Error(err.exit_code());
                for m in members.iter_mut() {
                    m.conclusion = Some((conclusion, err.message().to_string()));
                }
                return Some(conclusion);
            }
        };
        let clock = PhaseClock::start(self.report, Phase::Before);
        let mut stop = None;
        for step in &steps {
            match task::run(step, self.deps, first.report, &mut self.signals).await {
                Ended::Done(done) if done.success => self.tasks.push(done),
                Ended::Done(failed) => {
                    let why = format!("{}: {}", failed.label, failed.reason);
                    self.tasks.push(failed);
                    stop = Some((Conclusion::BeforeFailed, why));
                    break;
                }
                Ended::Interrupted(code, stopped) => {
                    let why = format!("{}: {}", stopped.label, stopped.reason);
                    self.tasks.push(stopped);
                    stop = Some((Conclusion::Interrupted(code), why));
                    break;
                }
            }
        }
        clock.finish(self.report, &mut self.timings);
        let (conclusion, why) = stop?;
        let failed = conclusion == Conclusion::BeforeFailed;
        let arns: Vec<String> = members.iter().filter_map(|m| m.new_arn.clone()).collect();
        if failed {
            for (m, arn) in members.iter().zip(&arns) {
                m.rollout.mark(arn, "failed").await;
            }
        }
        // No service used its revision: deregistered with
        // --deregister-on-failure, else named with the command that removes it.
        let cleanup = self.unused(members).await;
        for (m, line) in members.iter_mut().zip(cleanup) {
            m.conclusion = Some((
                conclusion,
                format!(
                    "{why}; the service `{}` was not changed (it still runs {}); {line}",
                    m.name,
                    short(&m.plan.current.arn)
                ),
            ));
        }
        self.report.emit(&Event::Warning {
            message: format!(
                "release stopped before any update: {why}; no service was changed{}",
                if failed {
                    format!(
                        "; the new revisions are tagged {}=failed",
                        crate::ecs::tags::VERDICT
                    )
                } else {
                    String::new()
                }
            ),
        });
        Some(conclusion)
    }

    /// Every revision this run registered, when no service came to use any:
    /// a line each (see [`orphans`]).
    async fn unused(&self, members: &[Member<'_>]) -> Vec<String> {
        let arns: Vec<String> = members.iter().filter_map(|m| m.new_arn.clone()).collect();
        let deregister = self.settings.shared.deregister_on_failure;
        orphans(&arns, deregister, self.deps, self.report).await
    }

    /// A revision this run registered and no service used: deregistered with
    /// --deregister-on-failure, else named with the command that removes it.
    async fn orphan(&self, arn: &str) -> String {
        let deregister = self.settings.shared.deregister_on_failure;
        orphans(&[arn.to_string()], deregister, self.deps, self.report)
            .await
            .remove(0)
    }

    /// Updates and watches the groups in order until one is not all healthy.
    /// `Ok(Some(code))`: a signal stopped it. `Err`: the first update of the
    /// release failed, so no service was changed.
    async fn groups(&mut self, members: &mut [Member<'_>]) -> Result<Option<ExitCode>> {
        let watch = &self.settings.shared.watch;
        for (number, (group, indexes)) in self.settings.groups().into_iter().enumerate() {
            let several_groups = self.settings.groups().len() > 1;
            if several_groups {
                let names: Vec<&str> = indexes.iter().map(|i| members[*i].name.as_str()).collect();
                self.report.emit(&Event::Info {
                    message: format!("group {group} ({}): {}", number + 1, names.join(", ")),
                });
            }
            // A signal that came since the last group (or during the registration).
            if let Some(code) = self.signals.next().now_or_never() {
                return self.interrupted_between(members, code).await;
            }
            let clock = PhaseClock::start(self.report, Phase::Update);
            let updates = join_all(indexes.iter().map(|i| {
                let m = &members[*i];
                let mv = Move {
                    to: m.new_arn.clone().expect("registered"),
                    from: Some(m.plan.current.arn.clone()),
                    desired_count: m.desired_count,
                    force_new_deployment: self.settings.shared.force_new_deployment,
                    health_checked: taskdef::health_checked_essential_containers(&m.plan.next),
                };
                async move { m.rollout.update(&mv).await }
            }))
            .await;
            clock.finish(self.report, &mut self.timings);
            let mut update_failed = false;
            for (i, update) in indexes.iter().copied().zip(updates) {
                match update {
                    Ok(goal) => {
                        members[i].goal = Some(goal);
                        members[i].state = State::Updated;
                    }
                    Err(err) => {
                        update_failed = true;
                        let m = &members[i];
                        let message = format!(
                            "the service `{}` was not changed (it still runs {}): {}",
                            m.name,
                            short(&m.plan.current.arn),
                            err.message()
                        );
                        m.report.emit(&Event::Warning {
                            message: message.clone(),
                        });
                        members[i].state = State::UpdateFailed(message);
                    }
                }
            }
            let changed = members.iter().any(|m| m.goal.is_some());
            if update_failed && !changed {
                // Nothing changed anywhere: an error, as for one service.
                let failed: Vec<&Member> = members
                    .iter()
                    .filter(|m| matches!(m.state, State::UpdateFailed(_)))
                    .collect();
                let cleanup = self.unused(members).await;
                let mut err = Error::failed(match &failed[0].state {
                    State::UpdateFailed(message) => message.clone(),
                    _ => unreachable!(),
                });
                for line in cleanup {
                    err = err.cause(line);
                }
                return Err(err.hint("no service was changed, nothing to roll back; fix the cause above and re-run the deploy"));
            }
            if update_failed {
                return Ok(None);
            }
            if watch.until == Until::Updated {
                for i in &indexes {
                    members[*i].state = State::NotWatched;
                }
                continue;
            }
            if let Some(code) = self.watch_group(members, &indexes).await {
                return Ok(Some(code));
            }
            let all_healthy = indexes
                .iter()
                .all(|i| matches!(members[*i].state, State::Healthy(_) | State::Unverified(_)));
            if !all_healthy {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// A signal before a group's update: with nothing updated yet, the run
    /// stops as a single deploy does; else it is a signal during the release.
    async fn interrupted_between(
        &mut self,
        members: &mut [Member<'_>],
        code: ExitCode,
    ) -> Result<Option<ExitCode>> {
        if members.iter().any(|m| m.goal.is_some()) {
            return Ok(Some(code));
        }
        let cleanup = self.unused(members).await;
        let mut err = Error::interrupted(code, "interrupted before any service was changed");
        for line in cleanup {
            err = err.cause(line);
        }
        Err(err.hint("nothing to roll back; re-run the deploy"))
    }

    /// Watches one group's services together. Stops at the first failure
    /// (the rest of the group is then not judged: the release is failed
    /// anyway). `Some(code)`: a signal stopped the watch.
    async fn watch_group(
        &mut self,
        members: &mut [Member<'_>],
        indexes: &[usize],
    ) -> Option<ExitCode> {
        let clock = PhaseClock::start(self.report, Phase::Watch);
        let fleet = Fleet {
            ecs: self.deps.ecs,
            elb: self.deps.elb,
            cluster: &self.settings.shared.service.cluster,
            interval: self.settings.shared.watch.poll_interval,
            calls: self.deps.calls.clone(),
        };
        let mut lanes: Vec<_> = indexes
            .iter()
            .map(|i| {
                let m = &members[*i];
                m.rollout
                    .lane(m.goal.clone().expect("updated"), Leg::Forward)
            })
            .collect();
        let stop = |v: &Verdict| matches!(v, Verdict::Failed(_) | Verdict::EcsRollingBack { .. });
        let watched = tokio::select! {
            results = fleet.run(&mut lanes, stop) => Ok(results),
            code = self.signals.next() => Err(code),
        };
        drop(lanes);
        clock.finish(self.report, &mut self.timings);
        let results = match watched {
            Ok(results) => results,
            Err(code) => return Some(code),
        };
        self.polls += results.iter().flatten().map(|o| o.polls).max().unwrap_or(0);
        self.watch_calls += results.iter().flatten().map(|o| o.calls).max().unwrap_or(0);
        for (i, result) in indexes.iter().copied().zip(results) {
            let Some(result) = result else {
                continue;
            };
            let state = self.judged(&members[i], result);
            members[i].state = state;
        }
        None
    }

    /// A service's verdict as a state, said as a single deploy says it.
    fn judged(&self, m: &Member<'_>, result: WatchOutcome) -> State {
        let new_arn = m.new_arn.as_deref().unwrap_or_default();
        let goal = m.goal.as_ref().expect("updated");
        let report = m.report;
        // The failure report is made from the last poll: no call, no delay to the rollback.
        let why = match &result.verdict {
            Verdict::Failed(failure) => result
                .failure_report(&failure.reason, new_arn, &m.plan.next, goal.started_at)
                .map(Box::new),
            _ => None,
        };
        match result.verdict {
            Verdict::Healthy(summary) => {
                report.emit(&Event::Verdict {
                    healthy: true,
                    reason: summary.clone(),
                    failure: None,
                });
                State::Healthy(summary)
            }
            Verdict::Unverifiable(reason) => {
                report.emit(&Event::Warning {
                    message: format!(
                        "nothing to verify: {reason}; the revision is not tagged healthy"
                    ),
                });
                State::Unverified(reason)
            }
            Verdict::Superseded(reason) => {
                report.emit(&Event::Warning {
                    message: superseded_warning(&reason, m.rollout.service),
                });
                State::Superseded(reason)
            }
            Verdict::Blind(what) => {
                let service = &m.rollout.service;
                report.emit(&Event::Warning {
                    message: blind_warning(
                        &what,
                        new_arn,
                        service,
                        &service.rollback_command(&m.plan.current.arn),
                    ),
                });
                State::Blind(what)
            }
            Verdict::EcsRollingBack {
                deployment_id,
                task_definition,
                reason,
            } => {
                report.emit(&Event::Verdict {
                    healthy: false,
                    reason: reason.clone(),
                    failure: None,
                });
                State::EcsRollingBack {
                    goal: Goal {
                        task_definition,
                        deployment_id,
                        previous_task_definition: Some(new_arn.to_string()),
                        started_at: goal.started_at,
                        health_checked: taskdef::health_checked_essential_containers(
                            &m.plan.current.json,
                        ),
                        stops_after: Some(goal.started_at),
                    },
                    reason,
                }
            }
            Verdict::Failed(failure) => {
                report.emit(&Event::Verdict {
                    healthy: false,
                    reason: failure.reason.clone(),
                    failure: why.clone(),
                });
                State::Failed {
                    reason: failure.reason,
                    failure: why,
                }
            }
            Verdict::Pending(_) => unreachable!("the watch returns only verdicts"),
        }
    }

    /// From the last group's end to every service's conclusion: the healthy
    /// release is tagged; a failed one is rolled back as a whole.
    async fn conclude(&mut self, members: &mut [Member<'_>], interrupted: Option<ExitCode>) {
        let failed: Vec<String> = members
            .iter()
            .filter_map(|m| match &m.state {
                State::Failed { reason, .. } | State::EcsRollingBack { reason, .. } => {
                    Some(format!("{}: {reason}", m.name))
                }
                State::UpdateFailed(reason) => Some(format!("{}: {reason}", m.name)),
                _ => None,
            })
            .collect();
        let leave =
            interrupted.is_some() && self.settings.shared.watch.on_interrupt == OnInterrupt::Leave;
        if interrupted.is_none() && failed.is_empty() {
            return self.without_rollback(members).await;
        }
        let why = match interrupted {
            Some(code) => format!("interrupted by {}", code.signal_name()),
            None => failed.join("; "),
        };
        for m in members.iter_mut() {
            if let State::Failed { failure, .. } = &m.state {
                m.failure = failure.clone();
            }
            if matches!(m.state, State::Failed { .. } | State::EcsRollingBack { .. }) {
                m.rollout
                    .mark(m.new_arn.as_deref().unwrap_or_default(), "failed")
                    .await;
            }
        }
        if leave {
            return self.left(members, &why, interrupted.expect("a signal"));
        }
        // The failed containers' last log lines are read while the rollback runs.
        let wanted: Vec<(usize, serde_json::Value, Box<FailureReport>, Report)> = members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let failure = m.failure.clone()?;
                Some((i, m.plan.next.clone(), failure, m.report.clone()))
            })
            .collect();
        let limit = self.settings.shared.watch.log_lines;
        let logs = last_logs(self.deps.logs.filter(|_| limit > 0), limit, wanted);
        let rolled = self.roll_back_all(members, &why, interrupted);
        let ((), logs) = tokio::join!(rolled, logs);
        for (i, found) in logs {
            if let Some(failure) = members[i].failure.as_mut() {
                failure.logs = found;
            }
        }
    }

    /// No failure and no signal: tag the healthy services, say what the others are.
    async fn without_rollback(&mut self, members: &mut [Member<'_>]) {
        for m in members.iter_mut() {
            let new_arn = m.new_arn.clone().unwrap_or_default();
            m.conclusion = Some(match &m.state {
                State::Healthy(summary) => {
                    m.rollout.mark(&new_arn, "healthy").await;
                    (Conclusion::Deployed, summary.clone())
                }
                State::Unverified(reason) => (Conclusion::Unverified, reason.clone()),
                State::NotWatched => {
                    m.report.emit(&Event::Info {
                        message: format!(
                            "not watching (--until updated): ECS rolls it out; check: {}",
                            m.rollout.service.status_command()
                        ),
                    });
                    (
                        Conclusion::Updated,
                        "the service was updated; the rollout was not watched".into(),
                    )
                }
                State::Superseded(reason) => (Conclusion::Superseded, reason.clone()),
                State::Blind(what) => (
                    Conclusion::Blind,
                    format!("the rollout could not be watched: {what}"),
                ),
                State::Waiting => {
                    let cleanup = self.orphan(&new_arn).await;
                    (
                        Conclusion::Planned,
                        format!(
                            "not started: an earlier group was not verified healthy; {cleanup}"
                        ),
                    )
                }
                // A group that ended without a failure judged every service.
                State::Updated => (Conclusion::Blind, "the rollout was not judged".into()),
                State::UpdateFailed(_) | State::Failed { .. } | State::EcsRollingBack { .. } => {
                    unreachable!("no failure")
                }
            });
        }
    }

    /// `--on-interrupt leave`: every updated service stays where it is.
    fn left(&self, members: &mut [Member<'_>], why: &str, code: ExitCode) {
        for m in members.iter_mut() {
            m.conclusion = Some(if m.goal.is_none() {
                (Conclusion::Planned, "not started: interrupted first".into())
            } else {
                let service = &m.rollout.service;
                m.report.emit(&Event::Warning {
                    message: format!(
                        "stopped watching (on_interrupt = leave): the service is updated to {} and ECS goes on rolling it out; check: {}; undo: {}",
                        short(m.new_arn.as_deref().unwrap_or_default()),
                        service.status_command(),
                        service.rollback_command(&m.plan.current.arn),
                    ),
                });
                (Conclusion::Interrupted(code), why.to_string())
            });
        }
    }

    /// Every service this run updated goes back to its recorded revision, all
    /// together and watched together, except those that must not be.
    async fn roll_back_all(
        &mut self,
        members: &mut [Member<'_>],
        why: &str,
        interrupted: Option<ExitCode>,
    ) {
        // One look (batched) before undoing what was not just judged failed:
        // never revert a release another run started since the last poll.
        let unsure: Vec<usize> = (0..members.len())
            .filter(|i| {
                members[*i].goal.is_some()
                    && !matches!(
                        members[*i].state,
                        State::Failed { .. }
                            | State::EcsRollingBack { .. }
                            | State::Superseded(_)
                            | State::Blind(_)
                    )
            })
            .collect();
        if !unsure.is_empty() {
            let names: Vec<String> = unsure.iter().map(|i| members[*i].name.clone()).collect();
            let cluster = &self.settings.shared.service.cluster;
            if let Ok(found) = self.deps.ecs.services(cluster, &names).await {
                for (i, svc) in unsure.iter().copied().zip(found) {
                    let goal = members[i].goal.as_ref().expect("updated");
                    if let Some(other) = svc.and_then(|s| taken_over(&s, goal)) {
                        members[i].report.emit(&Event::Warning {
                            message: superseded_warning(&other, members[i].rollout.service),
                        });
                        members[i].state = State::Superseded(other);
                    }
                }
            }
        }
        let rollback = self.settings.shared.watch.rollback;
        let clock = PhaseClock::start(self.report, Phase::Rollback);
        let mut lanes_of: Vec<usize> = Vec::new();
        let mut goals: Vec<(Goal, RolledBackBy)> = Vec::new();
        let mut settled = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let new_arn = m.new_arn.clone().unwrap_or_default();
            let service = &m.rollout.service;
            let own = match &m.state {
                State::Failed { reason, .. } => reason.clone(),
                _ => format!("rolled back with the release ({why})"),
            };
            let done = |c: Conclusion, reason: String| Some((c, reason));
            let mut update_failed: Option<RollbackOutcome> = None;
            let conclusion = match &m.state {
                State::Waiting => {
                    let cleanup = self.orphan(&new_arn).await;
                    done(
                        Conclusion::Planned,
                        format!("not started: {why}; {cleanup}"),
                    )
                }
                State::UpdateFailed(reason) => {
                    let cleanup = self.orphan(&new_arn).await;
                    done(
                        Conclusion::Error(ExitCode::Failed),
                        format!("{reason}; {cleanup}"),
                    )
                }
                State::Superseded(reason) => done(Conclusion::Superseded, reason.clone()),
                State::Blind(what) => done(
                    Conclusion::Blind,
                    format!("the rollout could not be watched: {what}"),
                ),
                State::EcsRollingBack { goal, reason } => {
                    m.report.emit(&Event::RollbackStarted {
                        to: goal.task_definition.clone(),
                        reason: reason.clone(),
                    });
                    goals.push((goal.clone(), RolledBackBy::Ecs));
                    lanes_of.push(i);
                    None
                }
                _ if !rollback => {
                    m.report.emit(&Event::Warning {
                        message: format!(
                            "not rolling back (--no-rollback): the service runs {}; to restore: {}",
                            short(&new_arn),
                            service.rollback_command(&m.plan.current.arn)
                        ),
                    });
                    match &m.state {
                        State::Healthy(summary) => done(
                            Conclusion::Deployed,
                            format!("{summary}; left on the new revision (--no-rollback)"),
                        ),
                        _ => done(Conclusion::Failed(interrupted), own),
                    }
                }
                _ => {
                    m.report.emit(&Event::RollbackStarted {
                        to: m.plan.current.arn.clone(),
                        reason: own.clone(),
                    });
                    let before = m.plan.service.desired_count;
                    let mv = Move {
                        to: m.plan.current.arn.clone(),
                        from: Some(new_arn.clone()),
                        desired_count: m.desired_count.filter(|n| *n != before).map(|_| before),
                        health_checked: taskdef::health_checked_essential_containers(
                            &m.plan.current.json,
                        ),
                        ..Move::default()
                    };
                    match m.rollout.update(&mv).await {
                        Ok(goal) => {
                            goals.push((goal, RolledBackBy::Shipit));
                            lanes_of.push(i);
                            None
                        }
                        Err(err) => {
                            let finish = service.rollback_command(&m.plan.current.arn);
                            let reason = format!(
                                "the service could not be updated back to {}: {}; it still runs the failed revision; to finish: {finish}",
                                short(&m.plan.current.arn),
                                err.message()
                            );
                            m.report.emit(&Event::RollbackFinished {
                                healthy: false,
                                reason: reason.clone(),
                                failure: None,
                            });
                            update_failed = Some(RollbackOutcome {
                                to: m.plan.current.arn.clone(),
                                healthy: false,
                                reason,
                                by: RolledBackBy::Shipit,
                                failure: None,
                                interrupted: None,
                            });
                            done(Conclusion::NeedsHuman(None), own)
                        }
                    }
                }
            };
            settled.push((i, conclusion, update_failed));
        }
        for (i, conclusion, update_failed) in settled {
            if let Some(conclusion) = conclusion {
                members[i].conclusion = Some(conclusion);
            }
            if update_failed.is_some() {
                members[i].rollback = update_failed;
            }
        }
        if lanes_of.is_empty() {
            clock.finish(self.report, &mut self.timings);
            return;
        }
        let fleet = Fleet {
            ecs: self.deps.ecs,
            elb: self.deps.elb,
            cluster: &self.settings.shared.service.cluster,
            interval: self.settings.shared.watch.poll_interval,
            calls: self.deps.calls.clone(),
        };
        let mut lanes: Vec<_> = lanes_of
            .iter()
            .zip(&goals)
            .map(|(i, (goal, _))| members[*i].rollout.lane(goal.clone(), Leg::Back))
            .collect();
        let watched = tokio::select! {
            results = fleet.run(&mut lanes, |_| false) => Ok(results),
            code = self.signals.next() => Err(code),
        };
        drop(lanes);
        clock.finish(self.report, &mut self.timings);
        for (n, i) in lanes_of.iter().copied().enumerate() {
            let (goal, by) = &goals[n];
            let to = goal.task_definition.clone();
            let m = &members[i];
            let mut rollback = RollbackOutcome {
                to: to.clone(),
                healthy: false,
                reason: String::new(),
                by: *by,
                failure: None,
                interrupted: None,
            };
            match &watched {
                Err(code) => {
                    rollback.reason = format!(
                        "interrupted while rolling back to {}: the service is updated but not yet seen healthy; to finish: {}",
                        short(&to),
                        m.rollout.service.rollback_command(&to)
                    );
                    rollback.interrupted = Some(*code);
                }
                Ok(results) => match &results[n] {
                    None => rollback.reason = "the rollback was not judged".into(),
                    Some(result) => {
                        (rollback.healthy, rollback.reason) = match &result.verdict {
                            Verdict::Healthy(summary) | Verdict::Unverifiable(summary) => {
                                (true, summary.clone())
                            }
                            Verdict::Failed(failure) => (false, failure.reason.clone()),
                            Verdict::Pending(what)
                            | Verdict::Superseded(what)
                            | Verdict::Blind(what)
                            | Verdict::EcsRollingBack { reason: what, .. } => (false, what.clone()),
                        };
                    }
                },
            }
            match watched
                .as_ref()
                .ok()
                .and_then(|results| results[n].as_ref())
            {
                // A rollback that failed too gets its own report and logs.
                Some(result) => {
                    m.rollout
                        .rollback_finished(&mut rollback, goal.started_at, result)
                        .await
                }
                None => m.report.emit(&Event::RollbackFinished {
                    healthy: false,
                    reason: rollback.reason.clone(),
                    failure: None,
                }),
            }
            let healthy = rollback.healthy;
            let own = match &m.state {
                State::Failed { reason, .. } | State::EcsRollingBack { reason, .. } => {
                    reason.clone()
                }
                _ => format!("rolled back with the release ({why})"),
            };
            let conclusion = match (healthy, interrupted) {
                (true, Some(code)) => Conclusion::RolledBack(RollbackCause::Signal(code)),
                (true, None) => Conclusion::RolledBack(RollbackCause::DeployFailed),
                (false, _) => Conclusion::NeedsHuman(None),
            };
            members[i].rollback = Some(rollback);
            members[i].conclusion = Some((conclusion, own));
        }
    }

    /// The run's result: the worst conclusion, and each service's.
    fn outcome(
        self,
        commit: &Commit,
        pushed: &PushedImage,
        members: Vec<Member<'_>>,
        conclusion: Conclusion,
    ) -> Outcome {
        let services: Vec<ServiceOutcome> = members
            .into_iter()
            .map(|m| {
                let (verdict, reason) = m
                    .conclusion
                    .unwrap_or((Conclusion::Planned, "not started".into()));
                ServiceOutcome {
                    service: m.name,
                    group: m.group,
                    previous_task_definition: Some(m.plan.current.arn.clone()),
                    new_task_definition: m.new_arn,
                    conclusion: verdict,
                    reason: Some(reason),
                    rollback: m.rollback,
                    failure: m.failure,
                }
            })
            .collect();
        let summary: Vec<String> = services
            .iter()
            .map(|s| format!("{} {}", s.service, s.conclusion.name()))
            .collect();
        let reason = format!("{} services: {}", services.len(), summary.join(", "));
        let line = format!("release: {} — {reason}", conclusion.name());
        if conclusion.is_success() {
            self.report.emit(&Event::Info { message: line });
        } else {
            self.report.emit(&Event::Warning { message: line });
        }
        Outcome {
            sha: Some(commit.sha.to_string()),
            image: Some(pushed.reference.clone()),
            digest: Some(pushed.digest.clone()),
            reason: Some(reason),
            watch: (self.polls > 0).then_some(WatchStats {
                polls: self.polls,
                aws_calls: self.watch_calls,
            }),
            timings: self.timings.to_vec(),
            services,
            tasks: self.tasks,
            ..Outcome::new("deploy", conclusion)
        }
    }
}

/// The failed containers' last log lines (one GetLogEvents each), per
/// failed service, reported as a block per service. Never fails.
async fn last_logs(
    reader: Option<&dyn crate::logs::ContainerLogs>,
    limit: usize,
    wanted: Vec<(usize, serde_json::Value, Box<FailureReport>, Report)>,
) -> Vec<(usize, Vec<ContainerLog>)> {
    let mut all = Vec::new();
    let Some(reader) = reader else {
        return all;
    };
    for (i, next, failure, report) in wanted {
        let requests = crate::failure::log_requests(&failure);
        if requests.is_empty() {
            continue;
        }
        // The same words as a one-service deploy's (`logs::unreadable`).
        let found = crate::failure::read_logs(reader, &next, requests, limit).await;
        report.emit(&Event::FailureLogs {
            logs: found.clone(),
        });
        all.push((i, found));
    }
    all
}
