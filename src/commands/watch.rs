//! `shipit watch`: attach to the rollout the service is in now (after a lost
//! watch, a cancelled CI job) and give the verdict a deploy would have given,
//! with the same rules. It changes nothing, except the `shipit:verdict=healthy`
//! tag on a healthy revision shipit registered, unless `--rollback` asks it to
//! roll a failed rollout back to the revision it started from.
//!
//! The goal comes from what ECS says now ([`attach`]): the PRIMARY deployment
//! (its id, task definition and `createdAt`), the revision it started from
//! (the newest other ACTIVE deployment's, else the `shipit:previous` tag), the
//! health-checked containers of its task definition. A service with nothing in
//! progress is judged as it is (healthy after the settle period).

use futures_util::future::join_all;

use super::deploy::verdict_line;
use super::Context;
use crate::arn::{short, Arn};
use crate::cli::WatchCommandArgs;
use crate::conclusion::{Conclusion, RollbackCause};
use crate::ecs::{tags, taskdef, Deployment, DeploymentStatus, RolloutState, Service};
use crate::error::{ExitCode, Result};
use crate::failure::{ContainerLog, FailureReport};
use crate::outcome::{Outcome, Phase, RollbackOutcome, RolledBackBy, WatchStats};
use crate::plan::active_service;
use crate::report::{for_one_of_several, Event, PhaseClock, Report, Timings};
use crate::rollback::choose_target;
use crate::rollout::{
    blind_warning, failure_logs, superseded_warning, Leg, Move, Rollout, Watched,
};
use crate::settings::{self, WatchCommandSettings};
use crate::signals::Signals;
use crate::watch::{self, Fleet, Goal, Verdict, WatchOutcome};
use crate::world::Deps;

pub async fn run(ctx: &Context<'_>, args: &WatchCommandArgs) -> Result<Outcome> {
    let mut all = settings::watch_commands(&ctx.file, args)?;
    // Before any call: a signal from here on stops the watch, never the process mid-call.
    let mut signals: Vec<Signals> = all.iter().map(|_| Signals::install()).collect();
    let clients = ctx.aws().await?;
    let deps = clients.deps(None, ctx.calls);
    if all.len() == 1 {
        let settings = all.remove(0);
        let attached = attach_to(&settings, &deps).await?;
        let outcome =
            watch_attached(&settings, &deps, ctx.report, &mut signals[0], attached).await?;
        ctx.say(verdict_line(&outcome));
        return Ok(outcome);
    }
    let outcome = watch_several(&all, &deps, ctx.report, &mut signals).await?;
    ctx.say(verdict_line(&outcome));
    Ok(outcome)
}

/// Several services (of one cluster), each attached to first (read calls
/// only: a service that cannot be attached to fails the command with nothing
/// watched), then watched together with the shared, batched polls of a
/// deploy of several ([`Fleet`]), and each concluded by its own rules, with
/// its own `--rollback`. They may not be one release, so a failed one is not
/// a reason to roll back another (a deploy's joint rollback is the deploy's).
/// The verdict is the worst service's.
async fn watch_several(
    all: &[WatchCommandSettings],
    deps: &Deps<'_>,
    report: &Report,
    signals: &mut [Signals],
) -> Result<Outcome> {
    let mut attached = Vec::with_capacity(all.len());
    for settings in all {
        let name = &settings.service.service;
        attached.push(
            attach_to(settings, deps)
                .await
                .map_err(|err| err.context(format!("service `{name}` (no service was watched)")))?,
        );
    }
    let reports: Vec<Report> = all
        .iter()
        .map(|s| for_one_of_several(report, &s.service.service))
        .collect();
    let begun: Vec<(Attachment, Attached, Outcome)> = all
        .iter()
        .zip(&reports)
        .zip(attached)
        .map(|((settings, report), attached)| Attachment::begin(settings, deps, report, attached))
        .collect();
    // One watch phase for all (each service's own would end the others').
    let mut timings = Timings::default();
    let clock = PhaseClock::start(report, Phase::Watch);
    let fleet = Fleet {
        ecs: deps.ecs,
        elb: deps.elb,
        cluster: &all[0].service.cluster,
        interval: all[0].watch.poll_interval,
        calls: deps.calls.clone(),
    };
    let mut lanes: Vec<_> = begun
        .iter()
        .map(|(attachment, attached, _)| {
            attachment.rollout.lane(attached.goal.clone(), Leg::Forward)
        })
        .collect();
    let (first, rest) = signals.split_first_mut().expect("several services");
    let watched = tokio::select! {
        results = fleet.run(&mut lanes, |_| false) => Ok(results),
        code = first.next() => Err(code),
    };
    drop(lanes);
    clock.finish(report, &mut timings);
    let watched: Vec<Watched> = match watched {
        Err(code) => begun.iter().map(|_| Watched::Interrupted(code)).collect(),
        // Nothing stops the fleet early: every lane has its verdict.
        Ok(results) => results
            .into_iter()
            .map(|r| Watched::Verdict(r.expect("a verdict for every lane")))
            .collect(),
    };
    let signals = std::iter::once(first).chain(rest.iter_mut());
    let results = join_all(begun.into_iter().zip(watched).zip(signals).map(
        |(((attachment, attached, outcome), watched), signals)| async move {
            attachment
                .conclude(&attached, watched, signals, outcome)
                .await
        },
    ))
    .await;
    let services = all
        .iter()
        .zip(&reports)
        .zip(results)
        .map(|((settings, report), result)| {
            super::service_part(
                &settings.service.service,
                result,
                report,
                "not watched to the end",
            )
        })
        .collect();
    Ok(Outcome {
        timings: timings.to_vec(),
        ..Outcome::of_services("watch", services)
    })
}

/// What `shipit watch` attaches to, read from the service as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Attached {
    pub goal: Goal,
    /// The PRIMARY deployment's rollout state when attaching (for the message).
    pub rollout_state: Option<RolloutState>,
    /// The revision the rollout started from: what `--rollback` returns to.
    pub previous: Option<String>,
    /// The PRIMARY is a return to an older revision from a deployment whose
    /// rollout FAILED (ECS's circuit breaker or alarm rollback): that failed
    /// revision. Healthy then means `rolled_back`, and nothing more is rolled back.
    pub recovering_from: Option<String>,
}

/// The goal from DescribeServices: pure, so the rules are unit-tested.
/// `previous_tag` is the `shipit:previous` tag of the PRIMARY's revision;
/// `health_checked` its essential containers with a `healthCheck`.
pub fn attach(
    service: &Service,
    previous_tag: Option<&str>,
    health_checked: Vec<String>,
) -> Attached {
    let primary = service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    let task_definition = primary.map_or(service.task_definition.clone(), |d| {
        d.task_definition.clone()
    });
    let others: Vec<&Deployment> = service
        .deployments
        .iter()
        .filter(|d| d.status == DeploymentStatus::Active)
        .filter(|d| primary.is_none_or(|p| p.id != d.id))
        .collect();
    let newest = |ds: Vec<&Deployment>| -> Option<String> {
        ds.into_iter()
            .max_by(|a, b| {
                a.created_at
                    .unwrap_or(0.0)
                    .total_cmp(&b.created_at.unwrap_or(0.0))
            })
            .map(|d| d.task_definition.clone())
    };
    // A deployment whose rollout FAILED was never serving: never a rollback target.
    let (failed, serving): (Vec<&Deployment>, Vec<&Deployment>) = others
        .into_iter()
        .partition(|d| d.rollout_state == Some(RolloutState::Failed));
    let recovering_from = newest(failed).filter(|failed| is_older(&task_definition, failed));
    let previous = newest(serving).or_else(|| previous_tag.map(str::to_string));
    Attached {
        goal: Goal {
            task_definition,
            deployment_id: primary.map(|d| d.id.clone()),
            previous_task_definition: previous.clone(),
            // Tasks created before the deployment are not ours; unknown: ECS's
            // `startedBy` (the deployment id) still tells.
            started_at: primary.and_then(|d| d.created_at).unwrap_or(0.0),
            health_checked,
            // Set by the caller to when it attached: older stops are history.
            stops_after: None,
        },
        rollout_state: primary.and_then(|d| d.rollout_state.clone()),
        previous,
        recovering_from,
    }
}

/// `a` is an older revision of `b`'s family (a return, not a fix-forward).
fn is_older(a: &str, b: &str) -> bool {
    Arn(a).family() == Arn(b).family()
        && matches!((Arn(a).revision(), Arn(b).revision()), (Some(x), Some(y)) if x < y)
}

/// One attached watch: what every step needs.
struct Attachment<'a> {
    settings: &'a WatchCommandSettings,
    deps: &'a Deps<'a>,
    report: &'a Report,
    rollout: Rollout<'a>,
    timings: Timings,
    /// The PRIMARY's revision has a `shipit:sha` tag: shipit registered it
    /// (and may tag it healthy).
    registered_by_shipit: bool,
    /// The PRIMARY's task definition JSON (for the failure report's log streams).
    task_definition: serde_json::Value,
}

/// What the service is doing now, and the task definition of its PRIMARY
/// deployment: read calls only.
async fn attach_to(
    settings: &WatchCommandSettings,
    deps: &Deps<'_>,
) -> Result<(Attached, crate::ecs::TaskDefinitionDoc)> {
    let service = &settings.service;
    let current = active_service(deps.ecs, &service.cluster, &service.service).await?;
    let primary_td = current
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
        .map_or(current.task_definition.clone(), |d| {
            d.task_definition.clone()
        });
    let doc = deps.ecs.task_definition(&primary_td).await?;
    let mut attached = attach(
        &current,
        doc.tag(tags::PREVIOUS),
        taskdef::health_checked_essential_containers(&doc.json),
    );
    attached.goal.stops_after = Some(watch::now_epoch());
    Ok((attached, doc))
}

/// Watches what [`attach_to`] found until a verdict, and concludes as a
/// deploy would have.
async fn watch_attached(
    settings: &WatchCommandSettings,
    deps: &Deps<'_>,
    report: &Report,
    signals: &mut Signals,
    attached: (Attached, crate::ecs::TaskDefinitionDoc),
) -> Result<Outcome> {
    let (mut attachment, attached, outcome) = Attachment::begin(settings, deps, report, attached);
    let clock = PhaseClock::start(report, Phase::Watch);
    let watched = attachment
        .rollout
        .watch(attached.goal.clone(), Leg::Forward, signals)
        .await;
    clock.finish(report, &mut attachment.timings);
    attachment
        .conclude(&attached, watched, signals, outcome)
        .await
}

impl<'a> Attachment<'a> {
    /// What watching `attached` needs, said; and the outcome so far.
    fn begin(
        settings: &'a WatchCommandSettings,
        deps: &'a Deps<'a>,
        report: &'a Report,
        (attached, doc): (Attached, crate::ecs::TaskDefinitionDoc),
    ) -> (Self, Attached, Outcome) {
        let attachment = Attachment {
            settings,
            deps,
            report,
            rollout: Rollout {
                deps,
                report,
                service: &settings.service,
                watch: &settings.watch,
            },
            timings: Timings::default(),
            registered_by_shipit: doc.tag(tags::SHA).is_some(),
            task_definition: doc.json.clone(),
        };
        attachment.say_attached(&attached);
        let outcome = Outcome {
            sha: doc.tag(tags::SHA).map(str::to_string),
            previous_task_definition: attached.previous.clone(),
            new_task_definition: Some(attached.goal.task_definition.clone()),
            ..Outcome::new("watch", Conclusion::Deployed)
        };
        (attachment, attached, outcome)
    }

    fn say_attached(&self, attached: &Attached) {
        let goal = &attached.goal;
        let age = if goal.started_at > 0.0 {
            format!(
                ", created {}s ago",
                (watch::now_epoch() - goal.started_at).max(0.0).round()
            )
        } else {
            String::new()
        };
        let state = attached
            .rollout_state
            .as_ref()
            .map_or(String::new(), |s| format!(", rollout {s}"));
        let from = match (&attached.recovering_from, &attached.previous) {
            (Some(failed), _) => format!("; it returns from the failed {}", short(failed)),
            (None, Some(previous)) => format!("; it started from {}", short(previous)),
            (None, None) => "; the revision it started from is unknown".to_string(),
        };
        self.report.emit(&Event::Info {
            message: format!(
                "attached to deployment {} of service `{}` ({}{age}{state}){from}; nothing will be changed{}",
                goal.deployment_id.as_deref().unwrap_or("(none reported)"),
                self.settings.service.service,
                short(&goal.task_definition),
                if self.settings.watch.rollback {
                    " unless it fails (--rollback)"
                } else {
                    ""
                },
            ),
        });
    }

    async fn conclude(
        self,
        attached: &Attached,
        watched: Watched,
        signals: &mut Signals,
        mut outcome: Outcome,
    ) -> Result<Outcome> {
        let registered_by_shipit = self.registered_by_shipit;
        let arn = attached.goal.task_definition.clone();
        let result = match watched {
            Watched::Interrupted(code) => return Ok(self.interrupted(&arn, code, outcome)),
            Watched::Verdict(result) => result,
        };
        outcome.watch = Some(stats(&result));
        // The report comes from the last poll: no call before any rollback.
        let why = match &result.verdict {
            Verdict::Failed(failure) => result
                .failure_report(
                    &failure.reason,
                    &arn,
                    &self.task_definition,
                    attached.goal.started_at,
                )
                .map(Box::new),
            _ => None,
        };
        let conclusion = match result.verdict {
            Verdict::Healthy(summary) | Verdict::Unverifiable(summary)
                if attached.recovering_from.is_some() =>
            {
                let failed = attached.recovering_from.as_deref().unwrap_or_default();
                let reason = format!(
                    "back on {} from the failed {}: {summary}",
                    short(&arn),
                    short(failed)
                );
                self.verdict(true, &reason);
                outcome.rollback = Some(rollback_outcome(&arn, true, reason.clone(), None));
                outcome.reason = Some(reason);
                Conclusion::RolledBack(RollbackCause::DeployFailed)
            }
            Verdict::Healthy(summary) => {
                self.verdict(true, &summary);
                if registered_by_shipit {
                    self.rollout.mark(&arn, "healthy").await;
                }
                outcome.reason = Some(summary);
                Conclusion::Deployed
            }
            Verdict::Unverifiable(reason) => {
                // Exit 0, never tagged healthy (it must not become a rollback target).
                self.verdict(true, &reason);
                outcome.reason = Some(reason);
                Conclusion::Unverified
            }
            Verdict::Failed(failure) if attached.recovering_from.is_some() => {
                // Already a rollback: a second one is for a human to decide.
                self.failed_verdict(&failure.reason, why.clone());
                outcome.failure = why;
                let logs = self.logs(outcome.failure.as_deref()).await;
                outcome = outcome.with_logs(logs);
                self.warn(format!(
                    "the return to {} is not healthy; nothing was changed; check: {}",
                    short(&arn),
                    self.settings.service.status_command()
                ));
                outcome.reason = Some(failure.reason.clone());
                outcome.rollback = Some(rollback_outcome(&arn, false, failure.reason, None));
                Conclusion::NeedsHuman(None)
            }
            Verdict::Failed(failure) => {
                self.failed_verdict(&failure.reason, why.clone());
                outcome.failure = why;
                outcome.reason = Some(failure.reason.clone());
                return self
                    .failed(
                        attached,
                        registered_by_shipit,
                        &failure.reason,
                        signals,
                        outcome,
                    )
                    .await;
            }
            Verdict::Superseded(reason) => self.superseded(reason, &mut outcome),
            Verdict::Blind(what) => self.blind(attached, what, &mut outcome),
            Verdict::EcsRollingBack {
                deployment_id,
                task_definition,
                reason,
            } => {
                self.verdict(false, &reason);
                outcome.reason = Some(reason.clone());
                let goal = Goal {
                    task_definition,
                    deployment_id,
                    previous_task_definition: Some(arn.clone()),
                    // ECS's rollback started after the deployment it undoes.
                    started_at: attached.goal.started_at,
                    health_checked: Vec::new(),
                    stops_after: attached.goal.stops_after,
                };
                return Ok(self
                    .watch_ecs_rollback(goal, &reason, signals, outcome)
                    .await);
            }
            Verdict::Pending(_) => unreachable!("the watch returns only verdicts"),
        };
        Ok(self.finish(outcome, conclusion))
    }

    fn superseded(&self, reason: String, outcome: &mut Outcome) -> Conclusion {
        self.warn(superseded_warning(&reason, &self.settings.service));
        outcome.reason = Some(reason);
        Conclusion::Superseded
    }

    fn blind(&self, attached: &Attached, what: String, outcome: &mut Outcome) -> Conclusion {
        self.warn(blind_warning(
            &what,
            &attached.goal.task_definition,
            &self.settings.service,
            &self.rollback_command(attached.previous.as_deref()),
        ));
        outcome.reason = Some(format!("the rollout could not be watched: {what}"));
        Conclusion::Blind
    }

    /// A failed rollout: without `--rollback`, say how to roll back and change
    /// nothing; with it, roll back as a deploy does.
    async fn failed(
        mut self,
        attached: &Attached,
        registered_by_shipit: bool,
        reason: &str,
        signals: &mut Signals,
        outcome: Outcome,
    ) -> Result<Outcome> {
        let arn = &attached.goal.task_definition;
        let logs = self.logs(outcome.failure.as_deref());
        if !self.settings.watch.rollback {
            self.warn(format!(
                "not rolling back (shipit watch changes nothing without --rollback): the service runs {}; to roll back: {}",
                short(arn),
                self.rollback_command(attached.previous.as_deref())
            ));
            let outcome = outcome.with_logs(logs.await);
            return Ok(self.finish(outcome, Conclusion::Failed(None)));
        }
        let target = match &attached.previous {
            Some(previous) => Ok(previous.clone()),
            // Unknown start: the last revision shipit saw healthy, as `shipit rollback` picks.
            None => choose_target(self.deps.ecs, arn, None).await,
        };
        let target = match target {
            Ok(target) if &target != arn => target,
            Ok(_) => {
                self.warn(format!(
                    "not rolling back: the rollout started from the same revision {} (a forced new deployment); nothing was changed; pick one: {}",
                    short(arn),
                    self.rollback_command(None)
                ));
                let outcome = outcome.with_logs(logs.await);
                return Ok(self.finish(outcome, Conclusion::Failed(None)));
            }
            Err(err) => {
                self.warn(format!(
                    "not rolling back: no revision to return to ({}); nothing was changed; pick one: {} --to <revision>",
                    err.message(),
                    self.rollback_command(None)
                ));
                let outcome = outcome.with_logs(logs.await);
                return Ok(self.finish(outcome, Conclusion::Failed(None)));
            }
        };
        if registered_by_shipit {
            self.rollout.mark(arn, "failed").await;
        }
        let mv = Move {
            to: target.clone(),
            from: Some(arn.clone()),
            health_checked: self.health_checked(&target).await,
            ..Move::default()
        };
        // The logs are read while the rollback runs: they never delay it.
        let (rolled, logs) = tokio::join!(
            self.rollout
                .roll_back(&mv, reason, signals, &mut self.timings),
            logs
        );
        let rolled = rolled.unwrap_or_else(|err| {
            rollback_outcome(&target, false, err.message().to_string(), None)
        });
        let conclusion = if rolled.healthy {
            Conclusion::RolledBack(RollbackCause::DeployFailed)
        } else {
            Conclusion::NeedsHuman(rolled.interrupted)
        };
        let mut outcome = outcome.with_logs(logs);
        outcome.rollback = Some(rolled);
        Ok(self.finish(outcome, conclusion))
    }

    /// ECS itself is moving the service back: watch that deployment to its
    /// verdict (no deployment of shipit's own).
    async fn watch_ecs_rollback(
        mut self,
        mut goal: Goal,
        reason: &str,
        signals: &mut Signals,
        mut outcome: Outcome,
    ) -> Outcome {
        let to = goal.task_definition.clone();
        goal.health_checked = self.health_checked(&to).await;
        let reason = format!("ECS is rolling back by itself: {reason}");
        let rolled = self
            .rollout
            .follow_ecs_rollback(goal, &reason, signals, &mut self.timings)
            .await;
        if let Some(code) = rolled.interrupted {
            return self.interrupted(&to, code, outcome);
        }
        let conclusion = if rolled.healthy {
            Conclusion::RolledBack(RollbackCause::DeployFailed)
        } else {
            self.warn(format!(
                "ECS's rollback to {} is not healthy; nothing was changed by shipit; check: {}",
                short(&to),
                self.settings.service.status_command()
            ));
            Conclusion::NeedsHuman(None)
        };
        outcome.rollback = Some(rolled);
        self.finish(outcome, conclusion)
    }

    /// A signal: stop watching, change nothing.
    fn interrupted(self, arn: &str, code: ExitCode, mut outcome: Outcome) -> Outcome {
        let service = &self.settings.service;
        self.warn(format!(
            "stopped watching ({}): nothing was changed and ECS goes on rolling out {}; check: {}; watch again: shipit watch --cluster {} --service {}",
            code.signal_name(),
            short(arn),
            service.status_command(),
            service.cluster,
            service.service,
        ));
        outcome.reason = Some(format!("interrupted by {}", code.signal_name()));
        self.finish(outcome, Conclusion::Interrupted(code))
    }

    /// The essential containers with a `healthCheck` in `arn` (none if it cannot be read).
    async fn health_checked(&self, arn: &str) -> Vec<String> {
        match self.deps.ecs.task_definition(arn).await {
            Ok(doc) => taskdef::health_checked_essential_containers(&doc.json),
            Err(err) => {
                self.warn(format!(
                    "cannot read {} ({}); its container health checks are not awaited",
                    short(arn),
                    err.message()
                ));
                Vec::new()
            }
        }
    }

    /// `shipit rollback … --to <to>`, or without `--to` (the last revision shipit saw healthy).
    fn rollback_command(&self, to: Option<&str>) -> String {
        let service = &self.settings.service;
        match to {
            Some(to) => service.rollback_command(to),
            None => format!(
                "shipit rollback --cluster {} --service {}",
                service.cluster, service.service
            ),
        }
    }

    fn verdict(&self, healthy: bool, reason: &str) {
        self.report.emit(&Event::Verdict {
            healthy,
            reason: reason.to_string(),
            failure: None,
        });
    }

    fn failed_verdict(&self, reason: &str, failure: Option<Box<FailureReport>>) {
        self.report.emit(&Event::Verdict {
            healthy: false,
            reason: reason.to_string(),
            failure,
        });
    }

    /// The failed containers' last log lines (see [`failure_logs`]).
    fn logs(
        &self,
        failure: Option<&FailureReport>,
    ) -> impl std::future::Future<Output = Vec<ContainerLog>> + Send + 'a {
        failure_logs(
            self.deps.logs,
            self.report,
            &self.task_definition,
            failure,
            self.settings.watch.log_lines,
        )
    }

    fn warn(&self, message: String) {
        self.report.emit(&Event::Warning { message });
    }

    fn finish(self, mut outcome: Outcome, conclusion: Conclusion) -> Outcome {
        outcome.conclusion = conclusion;
        outcome.timings = self.timings.to_vec();
        outcome
    }
}

fn stats(result: &WatchOutcome) -> WatchStats {
    WatchStats {
        polls: result.polls,
        aws_calls: result.calls,
    }
}

fn rollback_outcome(
    to: &str,
    healthy: bool,
    reason: String,
    interrupted: Option<ExitCode>,
) -> RollbackOutcome {
    RollbackOutcome {
        to: to.to_string(),
        healthy,
        reason,
        by: RolledBackBy::Shipit,
        failure: None,
        interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V7: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:7";
    const V8: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:8";
    const V6: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:6";

    fn dep(id: &str, status: &str, td: &str, rollout: &str, created: f64) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(rollout.into()),
            created_at: Some(created),
            ..Default::default()
        }
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service {
            task_definition: deployments[0].task_definition.clone(),
            deployments,
            ..Default::default()
        }
    }

    #[test]
    fn a_rollout_in_progress_is_watched_from_its_primary_back_to_the_newest_active() {
        let svc = service(vec![
            dep("d8", "PRIMARY", V8, "IN_PROGRESS", 300.0),
            dep("d6", "ACTIVE", V6, "COMPLETED", 100.0),
            dep("d7", "ACTIVE", V7, "COMPLETED", 200.0),
        ]);
        let a = attach(&svc, Some(V6), vec!["app".into()]);
        assert_eq!(a.goal.task_definition, V8);
        assert_eq!(a.goal.deployment_id.as_deref(), Some("d8"));
        assert_eq!(a.goal.started_at, 300.0);
        assert_eq!(a.goal.health_checked, ["app"]);
        assert_eq!(
            a.previous.as_deref(),
            Some(V7),
            "the newest ACTIVE wins over the tag"
        );
        assert_eq!(a.goal.previous_task_definition.as_deref(), Some(V7));
        assert_eq!(a.recovering_from, None);
    }

    #[test]
    fn with_nothing_in_progress_the_previous_revision_is_the_shipit_previous_tag() {
        let svc = service(vec![dep("d8", "PRIMARY", V8, "COMPLETED", 300.0)]);
        let a = attach(&svc, Some(V7), vec![]);
        assert_eq!(a.goal.task_definition, V8);
        assert_eq!(a.previous.as_deref(), Some(V7));
        let untagged = attach(&svc, None, vec![]);
        assert_eq!(untagged.previous, None);
    }

    #[test]
    fn a_failed_deployment_is_never_the_rollback_target_and_a_return_from_it_is_a_recovery() {
        // ECS's circuit breaker moved the service back from web:8 to web:7.
        let svc = service(vec![
            dep("back", "PRIMARY", V7, "IN_PROGRESS", 400.0),
            dep("d8", "ACTIVE", V8, "FAILED", 300.0),
        ]);
        let a = attach(&svc, Some(V6), vec![]);
        assert_eq!(a.goal.task_definition, V7);
        assert_eq!(a.recovering_from.as_deref(), Some(V8));
        assert_eq!(a.previous.as_deref(), Some(V6), "not the failed web:8");

        // A fix-forward over a failed deployment is a rollout like any other.
        let svc = service(vec![
            dep(
                "d9",
                "PRIMARY",
                "arn:aws:ecs:us-east-1:1:task-definition/web:9",
                "IN_PROGRESS",
                500.0,
            ),
            dep("d8", "ACTIVE", V8, "FAILED", 300.0),
        ]);
        assert_eq!(attach(&svc, Some(V8), vec![]).recovering_from, None);
    }
}
