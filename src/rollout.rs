//! One rollout: put the service on a revision, watch it until a verdict, and
//! react to signals. The deploy moves forward with it; the automatic rollback
//! and `shipit rollback` move back with it ([`Rollout::roll_back`]).

use crate::arn::short;
use crate::ecs::{tags, DeploymentStatus, Service, ServiceUpdate};
use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::failure::{self, ContainerLog, FailureReport};
use crate::logs::ContainerLogs;
use crate::outcome::{Phase, RollbackOutcome, RolledBackBy};
use crate::report::{Event, PhaseClock, Report, Timings};
use crate::settings::{ServiceSettings, Until, WatchSettings};
use crate::signals::Signals;
use crate::watch::{self, Criteria, Goal, Tracker, Verdict, Watch, WatchOutcome};
use crate::world::Deps;

/// A service and how to watch it.
pub struct Rollout<'a> {
    pub deps: &'a Deps<'a>,
    pub report: &'a Report,
    pub service: &'a ServiceSettings,
    pub watch: &'a WatchSettings,
}

/// One move of the service to a revision.
#[derive(Debug, Clone, Default)]
pub struct Move {
    pub to: String,
    /// The revision the service ran before (to tell ECS's rollback from a takeover).
    pub from: Option<String>,
    pub desired_count: Option<i32>,
    pub force_new_deployment: bool,
    /// Essential containers with a `healthCheck` in `to`: each must turn HEALTHY.
    pub health_checked: Vec<String>,
}

/// How a watch ended.
#[derive(Debug)]
pub enum Watched {
    /// A verdict (never Pending).
    Verdict(WatchOutcome),
    /// SIGINT/SIGTERM arrived first.
    Interrupted(ExitCode),
}

impl Rollout<'_> {
    /// `UpdateService` to `mv.to`; returns what the watch waits for.
    pub async fn update(&self, mv: &Move) -> Result<Goal> {
        let update = ServiceUpdate {
            cluster: self.service.cluster.clone(),
            service: self.service.service.clone(),
            task_definition: mv.to.clone(),
            desired_count: mv.desired_count,
            force_new_deployment: mv.force_new_deployment,
        };
        let started_at = watch::now_epoch();
        let updated = self.deps.ecs.update_service(&update).await?;
        let deployment_id = primary_deployment(&updated, &mv.to);
        self.report.emit(&Event::ServiceUpdated {
            task_definition: mv.to.clone(),
            deployment_id: deployment_id.clone(),
        });
        Ok(Goal {
            task_definition: mv.to.clone(),
            deployment_id,
            previous_task_definition: mv.from.clone(),
            started_at,
            health_checked: mv.health_checked.clone(),
            stops_after: None,
        })
    }

    /// Watches `goal` until a verdict, the deadline, or a signal.
    pub async fn watch(&self, goal: Goal, leg: Leg, signals: &mut Signals) -> Watched {
        let (deadline, until_completed) = match leg {
            Leg::Forward => (self.watch.deadline(), self.watch.until == Until::Completed),
            Leg::Back => (self.watch.rollback_deadline(), false),
        };
        let watcher = Watch {
            ecs: self.deps.ecs,
            elb: self.deps.elb,
            report: self.report,
            cluster: &self.service.cluster,
            service: &self.service.service,
            interval: self.watch.poll_interval,
            deadline,
            calls: self.deps.calls.clone(),
        };
        let mut tracker = Tracker::new(criteria(self.watch, until_completed), goal);
        tokio::select! {
            watched = watcher.run(&mut tracker) => Watched::Verdict(watched),
            code = signals.next() => Watched::Interrupted(code),
        }
    }

    /// `goal` as one lane of a [`watch::Fleet`] (several services watched
    /// with shared polls), with the same rules and deadline as [`Self::watch`].
    pub fn lane(&self, goal: Goal, leg: Leg) -> watch::Lane<'_> {
        let (deadline, until_completed) = match leg {
            Leg::Forward => (self.watch.deadline(), self.watch.until == Until::Completed),
            Leg::Back => (self.watch.rollback_deadline(), false),
        };
        watch::Lane {
            watch: Watch {
                ecs: self.deps.ecs,
                elb: self.deps.elb,
                report: self.report,
                cluster: &self.service.cluster,
                service: &self.service.service,
                interval: self.watch.poll_interval,
                deadline,
                calls: self.deps.calls.clone(),
            },
            tracker: Tracker::new(criteria(self.watch, until_completed), goal),
        }
    }

    /// Puts the service back on `to` and watches it with the same rules until
    /// healthy or the rollback deadline. A signal stops the waiting at once,
    /// saying which command finishes the recovery. `Err` only when the
    /// rollback's own `UpdateService` failed.
    pub async fn roll_back(
        &self,
        mv: &Move,
        reason: &str,
        signals: &mut Signals,
        timings: &mut Timings,
    ) -> Result<RollbackOutcome> {
        let clock = self.rollback_started(&mv.to, reason);
        let goal = match self.update(mv).await {
            Ok(goal) => goal,
            Err(err) => {
                clock.record(timings);
                return Err(self.rollback_update_failed(&mv.to, err));
            }
        };
        Ok(self
            .watch_back(goal, RolledBackBy::Shipit, clock, signals, timings)
            .await)
    }

    /// ECS itself is rolling the service back (circuit breaker, alarms):
    /// start no second deployment, watch ECS's to its verdict.
    pub async fn follow_ecs_rollback(
        &self,
        goal: Goal,
        reason: &str,
        signals: &mut Signals,
        timings: &mut Timings,
    ) -> RollbackOutcome {
        let clock = self.rollback_started(&goal.task_definition, reason);
        self.watch_back(goal, RolledBackBy::Ecs, clock, signals, timings)
            .await
    }

    fn rollback_started(&self, to: &str, reason: &str) -> PhaseClock {
        let clock = PhaseClock::start(self.report, Phase::Rollback);
        self.report.emit(&Event::RollbackStarted {
            to: to.to_string(),
            reason: reason.to_string(),
        });
        clock
    }

    async fn watch_back(
        &self,
        goal: Goal,
        by: RolledBackBy,
        clock: PhaseClock,
        signals: &mut Signals,
        timings: &mut Timings,
    ) -> RollbackOutcome {
        let to = goal.task_definition.clone();
        let since = goal.started_at;
        let outcome = |healthy, reason, interrupted| RollbackOutcome {
            to: to.clone(),
            healthy,
            reason,
            by,
            failure: None,
            interrupted,
        };
        let watched = match self.watch(goal, Leg::Back, signals).await {
            Watched::Interrupted(code) => {
                let message = format!(
                    "interrupted while rolling back to {}: the service is updated but not yet seen healthy; to finish: {}",
                    short(&to),
                    self.service.rollback_command(&to)
                );
                self.report.emit(&Event::RollbackFinished {
                    healthy: false,
                    reason: message.clone(),
                    failure: None,
                });
                clock.record(timings);
                return outcome(false, message, Some(code));
            }
            Watched::Verdict(watched) => watched,
        };
        let mut rolled = match &watched.verdict {
            // desiredCount 0: nothing to be unhealthy; the service is where it was.
            Verdict::Healthy(summary) | Verdict::Unverifiable(summary) => {
                outcome(true, summary.clone(), None)
            }
            Verdict::Failed(failure) => outcome(false, failure.reason.clone(), None),
            Verdict::Pending(what)
            | Verdict::Superseded(what)
            | Verdict::Blind(what)
            | Verdict::EcsRollingBack { reason: what, .. } => outcome(false, what.clone(), None),
        };
        clock.finish(self.report, timings);
        self.rollback_finished(&mut rolled, since, &watched).await;
        rolled
    }

    /// Says how a watched rollback ended. One that failed too gets its own
    /// report, of the revision rolled back to (its task definition read now:
    /// nothing waits on it any more), then its containers' last log lines.
    pub(crate) async fn rollback_finished(
        &self,
        rolled: &mut RollbackOutcome,
        since: f64,
        watched: &WatchOutcome,
    ) {
        let document = match &watched.verdict {
            Verdict::Failed(_) => self.deps.ecs.task_definition(&rolled.to).await.ok(),
            _ => None,
        };
        let failure = document.as_ref().and_then(|doc| {
            watched
                .failure_report(&rolled.reason, &rolled.to, &doc.json, since)
                .map(Box::new)
        });
        self.report.emit(&Event::RollbackFinished {
            healthy: rolled.healthy,
            reason: rolled.reason.clone(),
            failure: failure.clone(),
        });
        if let (Some(doc), Some(mut failure)) = (document, failure) {
            failure.logs = failure_logs(
                self.deps.logs,
                self.report,
                &doc.json,
                Some(&failure),
                self.watch.log_lines,
            )
            .await;
            rolled.failure = Some(failure);
        }
    }

    fn rollback_update_failed(&self, to: &str, err: Error) -> Error {
        let finish = self.service.rollback_command(to);
        self.report.emit(&Event::RollbackFinished {
            healthy: false,
            reason: format!(
                "the service could not be updated back to {}: {}; it still runs the failed revision; to finish: {finish}",
                short(to),
                err.message()
            ),
            failure: None,
        });
        err.context(format!("rolling back to {to}"))
            .with_kind(ErrorKind::NeedsHuman)
            .hint(format!("retry: {finish}"))
    }

    /// Tags the revision with shipit's verdict; a failure to tag is only a warning.
    pub async fn mark(&self, arn: &str, verdict: &str) {
        let tags = [(tags::VERDICT.to_string(), verdict.to_string())];
        if let Err(err) = self.deps.ecs.tag_task_definition(arn, &tags).await {
            self.report.emit(&Event::Warning {
                message: format!("could not tag {arn} as {verdict}: {}", err.message()),
            });
        }
    }
}

/// Which way a watch looks: the deploy's own rollout, or a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The deploy: `timeout`, and `--until completed` applies.
    Forward,
    /// A rollback: `rollback_timeout`; healthy is enough.
    Back,
}

/// The verdict's criteria from the watch settings.
pub fn criteria(watch: &WatchSettings, until_completed: bool) -> Criteria {
    Criteria {
        healthy_polls: watch.healthy_polls,
        unhealthy_grace: watch.unhealthy_grace,
        max_task_failures: watch.max_task_failures,
        wait_for_drain: watch.wait_for_drain,
        settle: watch.settle,
        require_completed: until_completed,
        ..Criteria::default()
    }
}

/// The PRIMARY deployment on `task_definition` in UpdateService's answer.
pub fn primary_deployment(service: &Service, task_definition: &str) -> Option<String> {
    service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary && d.task_definition == task_definition)
        .map(|d| d.id.clone())
}

/// The failed containers' last log lines for `failure` (one GetLogEvents
/// each, at most `failure::MAX_ITEMS`), or in words why there are none;
/// emitted as one block when read. Never fails, and borrows nothing of the
/// caller's, so it runs beside the rollback (`tokio::join!`), never before it.
pub fn failure_logs<'a>(
    reader: Option<&'a dyn ContainerLogs>,
    report: &'a Report,
    task_definition: &serde_json::Value,
    failure: Option<&FailureReport>,
    limit: usize,
) -> impl std::future::Future<Output = Vec<ContainerLog>> + Send + 'a {
    let requests = failure.map(failure::log_requests).unwrap_or_default();
    let task_definition = task_definition.clone();
    async move {
        let Some(reader) = reader.filter(|_| limit > 0 && !requests.is_empty()) else {
            return Vec::new();
        };
        let found = failure::read_logs(reader, &task_definition, requests, limit).await;
        report.emit(&Event::FailureLogs {
            logs: found.clone(),
        });
        found
    }
}

/// The warning of a rollout another deployment took over (the same words
/// for a deploy, a release's service and `shipit watch`).
pub fn superseded_warning(reason: &str, service: &ServiceSettings) -> String {
    format!(
        "superseded: {reason}; shipit changes nothing more on this service; check: {}",
        service.status_command()
    )
}

/// The warning of a rollout the watch could not see: the service is left on
/// `left_on` (nothing is rolled back blind); how to check, and the command
/// that rolls back (`rollback_command`).
pub fn blind_warning(
    what: &str,
    left_on: &str,
    service: &ServiceSettings,
    rollback_command: &str,
) -> String {
    format!(
        "could not watch the rollout ({what}): the service is left on {}, nothing was rolled back; check: {}; to roll back: {rollback_command}",
        short(left_on),
        service.status_command(),
    )
}

/// `Some(why)` when the service's PRIMARY deployment is no longer this
/// run's (another run or ECS took over since the last poll).
pub fn taken_over(svc: &Service, goal: &Goal) -> Option<String> {
    let primary = svc
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)?;
    let ours = match goal.deployment_id.as_deref() {
        Some(id) => primary.id == id,
        None => primary.task_definition == goal.task_definition,
    };
    (!ours).then(|| {
        format!(
            "another deployment took over before the rollback: the service now deploys {} (deployment {})",
            short(&primary.task_definition),
            primary.id
        )
    })
}
