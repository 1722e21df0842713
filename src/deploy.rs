//! The deploy: plan → image → register → rollout → conclude. It speaks to the
//! world only through the seams in [`Deps`]; the rollout (update, watch,
//! signals, rollback) is [`crate::rollout`].

use futures_util::FutureExt;

use crate::arn::short;
use crate::conclusion::{Conclusion, RollbackCause};
use crate::ecs::taskdef;
use crate::error::{Error, ExitCode, Result};
use crate::failure::FailureReport;
use crate::git::Commit;
use crate::image::pipeline::{self, ImagePlan, PushedImage};
use crate::outcome::{Outcome, Phase, RollbackOutcome, RolledBackBy, WatchStats};
use crate::plan::{self, DeployPlan};
use crate::report::{Event, PhaseClock, Report, Timings};
use crate::rollout::{
    blind_warning, failure_logs, superseded_warning, Leg, Move, Rollout, Watched,
};
use crate::settings::{DeploySettings, OnInterrupt, Until};
use crate::signals::Signals;
use crate::task::{self, Ended};
use crate::watch::{Goal, Verdict};
use crate::world::Deps;

/// Runs the whole deploy. `Err` means nothing was deployed (exit 2 or 1);
/// from `UpdateService` on, the outcome carries the conclusion. `image`
/// reuses an image plan the caller already made.
pub async fn run(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
    report: &Report,
    image: Option<ImagePlan>,
) -> Result<Outcome> {
    let mut deploy = Deploy {
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
        signals: Signals::install(),
    };
    let (plan, pushed) = deploy.prepare(commit, image).await?;
    let mut outcome = Outcome {
        sha: Some(commit.sha.to_string()),
        previous_task_definition: Some(plan.current.arn.clone()),
        image: Some(pushed.reference.clone()),
        digest: Some(pushed.digest.clone()),
        ..Outcome::new("deploy", Conclusion::Deployed)
    };
    deploy.timings.extend(&pushed.timings);
    let new_arn = deploy.register(&plan, &pushed).await?;
    outcome.new_task_definition = Some(new_arn.clone());
    if let Some(stopped) = deploy.before_update(&plan, &new_arn, &mut outcome).await {
        return Ok(deploy.finish(outcome, stopped));
    }
    let rolled = match deploy.roll_out(&plan, &new_arn).await {
        Ok(rolled) => rolled,
        Err(err) => match task::already_ran(&outcome.tasks) {
            Some(ran) => return Err(err.cause(ran)),
            None => return Err(err),
        },
    };
    deploy.conclude(&plan, &new_arn, rolled, outcome).await
}

/// How far the rollout went before the conclusion.
enum Rolled {
    /// `--until updated`: not watched.
    Updated,
    /// Watched towards this goal.
    Watched(Box<(Watched, Goal)>),
}

/// One deploy in progress: what every step needs.
struct Deploy<'a> {
    settings: &'a DeploySettings,
    deps: &'a Deps<'a>,
    report: &'a Report,
    rollout: Rollout<'a>,
    timings: Timings,
    signals: Signals,
}

impl<'a> Deploy<'a> {
    /// Plan, then make sure the image is in ECR: everything before the first
    /// ECS change. Until the service changes, a SIGINT/SIGTERM only stops the
    /// work: nothing to roll back.
    async fn prepare(
        &mut self,
        commit: &Commit,
        image: Option<ImagePlan>,
    ) -> Result<(DeployPlan, PushedImage)> {
        let (settings, deps, report) = (self.settings, self.deps, self.report);
        let timings = &mut self.timings;
        let work = async move {
            let clock = PhaseClock::start(report, Phase::Plan);
            let plan = plan::plan(settings, commit, deps, image).await?;
            task::before_steps(settings, &plan, "")?;
            plan::warn(&plan, report);
            clock.finish(report, timings);
            let pushed = pipeline::ensure_with_cache(
                &plan.image,
                &settings.image,
                commit,
                deps.registry,
                deps.engine,
                report,
                &plan.running_images(),
            )
            .await
            .map_err(|err| err.context(not_changed(settings)))?;
            Ok((plan, pushed))
        };
        tokio::select! {
            prepared = work => prepared,
            code = self.signals.next() => Err(Error::interrupted(code, "interrupted before the service was changed")
                .hint("nothing was changed in ECS (an image may have been pushed); re-run the deploy")),
        }
    }

    /// Registers the next revision (with the pushed image's final reference).
    async fn register(&mut self, plan: &DeployPlan, pushed: &PushedImage) -> Result<String> {
        let mut next = plan.next.clone();
        // The repository may have been created by the push: render with the real URI.
        if plan.image.repository_uri.is_none() {
            taskdef::set_images(&mut next, &plan.containers, &pushed.reference);
        }
        let clock = PhaseClock::start(self.report, Phase::Register);
        let arn = self
            .deps
            .ecs
            .register_task_definition(&next)
            .await
            .map_err(|err| {
                err.context(not_changed(self.settings))
                    .hint("nothing to roll back; fix the cause above and re-run the deploy")
            })?;
        self.report
            .emit(&Event::TaskDefinitionRegistered { arn: arn.clone() });
        clock.finish(self.report, &mut self.timings);
        Ok(arn)
    }

    /// The `--before` tasks of the new revision, in order, before the service
    /// changes. `Some` ends the deploy there: a task failed (the revision is
    /// tagged failed) or a signal stopped it (nothing more is changed).
    async fn before_update(
        &mut self,
        plan: &DeployPlan,
        new_arn: &str,
        outcome: &mut Outcome,
    ) -> Option<Conclusion> {
        // Checked in the plan already: an error here still never skips a step.
        let steps = match task::before_steps(self.settings, plan, new_arn) {
            Ok(steps) if steps.is_empty() => return None,
            Ok(steps) => steps,
            Err(err) => {
                outcome.reason = Some(err.message().to_string());
                return Some(Conclusion::Error(err.exit_code()));
            }
        };
        let clock = PhaseClock::start(self.report, Phase::Before);
        let untouched = format!(
            "the service `{}` was not changed (it still runs {})",
            self.settings.service.service,
            short(&plan.current.arn)
        );
        let mut stop = None;
        for step in &steps {
            match task::run(step, self.deps, self.report, &mut self.signals).await {
                Ended::Done(done) if done.success => outcome.tasks.push(done),
                Ended::Done(failed) => {
                    outcome.reason =
                        Some(format!("{}: {}; {untouched}", failed.label, failed.reason));
                    outcome.tasks.push(failed);
                    stop = Some(Conclusion::BeforeFailed);
                    break;
                }
                Ended::Interrupted(code, stopped) => {
                    outcome.reason = Some(format!(
                        "{}: {}; {untouched}",
                        stopped.label, stopped.reason
                    ));
                    outcome.tasks.push(stopped);
                    stop = Some(Conclusion::Interrupted(code));
                    break;
                }
            }
        }
        clock.finish(self.report, &mut self.timings);
        if stop == Some(Conclusion::BeforeFailed) {
            self.rollout.mark(new_arn, "failed").await;
            self.report.emit(&Event::Warning {
                message: format!(
                    "deploy stopped before the update: {untouched}; {} is tagged {}=failed",
                    short(new_arn),
                    crate::ecs::tags::VERDICT
                ),
            });
        }
        // The service never used the revision: deregistered with
        // --deregister-on-failure, else named with the command that removes it.
        if stop.is_some() {
            let cleanup = self.orphan(new_arn).await;
            if let Some(reason) = outcome.reason.as_mut() {
                reason.push_str(&format!("; {cleanup}"));
            }
        }
        stop
    }

    /// Updates the service to the new revision and watches it. From the
    /// update on, a SIGINT/SIGTERM means "roll back", not "die".
    async fn roll_out(&mut self, plan: &DeployPlan, new_arn: &str) -> Result<Rolled> {
        // A signal that came during RegisterTaskDefinition: stop before the service changes.
        if let Some(code) = self.signals.next().now_or_never() {
            let cleanup = self.orphan(new_arn).await;
            return Err(
                Error::interrupted(code, "interrupted before the service was changed")
                    .cause(cleanup)
                    .hint("nothing to roll back; re-run the deploy"),
            );
        }
        let clock = PhaseClock::start(self.report, Phase::Update);
        let mv = Move {
            to: new_arn.to_string(),
            from: Some(plan.current.arn.clone()),
            desired_count: self.settings.desired_count,
            force_new_deployment: self.settings.force_new_deployment,
            health_checked: taskdef::health_checked_essential_containers(&plan.next),
        };
        let goal = match self.rollout.update(&mv).await {
            Ok(goal) => goal,
            Err(err) => {
                let cleanup = self.orphan(new_arn).await;
                return Err(err
                    .context(format!(
                        "the service `{}` was not changed (it still runs {})",
                        self.settings.service.service,
                        short(&plan.current.arn)
                    ))
                    .cause(cleanup)
                    .hint("nothing to roll back; fix the cause above and re-run the deploy"));
            }
        };
        clock.finish(self.report, &mut self.timings);
        if self.settings.watch.until == Until::Updated {
            return Ok(Rolled::Updated);
        }
        let clock = PhaseClock::start(self.report, Phase::Watch);
        let watched = self
            .rollout
            .watch(goal.clone(), Leg::Forward, &mut self.signals)
            .await;
        clock.finish(self.report, &mut self.timings);
        Ok(Rolled::Watched(Box::new((watched, goal))))
    }

    /// From the watch's end to the outcome: tag, and roll back on failure.
    async fn conclude(
        self,
        plan: &DeployPlan,
        new_arn: &str,
        rolled: Rolled,
        mut outcome: Outcome,
    ) -> Result<Outcome> {
        let (watched, goal) = match rolled {
            Rolled::Updated => return Ok(self.updated(outcome)),
            Rolled::Watched(watched) => *watched,
        };
        let result = match watched {
            Watched::Verdict(result) => result,
            Watched::Interrupted(code) => {
                let reason = format!("interrupted by {}", code.signal_name());
                if self.settings.watch.on_interrupt == OnInterrupt::Leave {
                    return Ok(self.leave(plan, new_arn, reason, code, outcome));
                }
                // The last poll may be seconds old: never revert someone else's release.
                if let Some(other) = self.taken_over(&goal).await {
                    return Ok(self.superseded(other, outcome));
                }
                return self
                    .failed(plan, new_arn, reason, Some(code), None, outcome)
                    .await;
            }
        };
        outcome.watch = Some(WatchStats {
            polls: result.polls,
            aws_calls: result.calls,
        });
        let why = match &result.verdict {
            Verdict::Failed(failure) => result
                .failure_report(&failure.reason, new_arn, &plan.next, goal.started_at)
                .map(Box::new),
            _ => None,
        };
        match result.verdict {
            Verdict::Healthy(summary) => Ok(self.healthy(new_arn, summary, outcome).await),
            Verdict::Unverifiable(reason) => Ok(self.unverified(reason, outcome)),
            Verdict::Superseded(reason) => Ok(self.superseded(reason, outcome)),
            Verdict::Blind(what) => Ok(self.blind(plan, new_arn, what, outcome)),
            Verdict::EcsRollingBack {
                deployment_id,
                task_definition,
                reason,
            } => {
                let ecs_rollback = Goal {
                    task_definition,
                    deployment_id,
                    previous_task_definition: Some(new_arn.to_string()),
                    started_at: goal.started_at,
                    health_checked: taskdef::health_checked_essential_containers(
                        &plan.current.json,
                    ),
                    // ECS may reuse the recorded revision's deployment id: its
                    // tasks that stopped before our update are history.
                    stops_after: Some(goal.started_at),
                };
                Ok(self
                    .ecs_rolled_back(new_arn, ecs_rollback, reason, outcome)
                    .await)
            }
            Verdict::Failed(failure) => {
                self.failed(plan, new_arn, failure.reason, None, why, outcome)
                    .await
            }
            Verdict::Pending(_) => unreachable!("the watch returns only verdicts"),
        }
    }

    /// One look before a signal's rollback: `Some(why)` when the PRIMARY
    /// deployment is no longer ours (another run or ECS took over since the
    /// last poll). If the look fails, the rollback goes ahead as asked.
    async fn taken_over(&self, goal: &Goal) -> Option<String> {
        let service = &self.settings.service;
        let svc = self
            .deps
            .ecs
            .service(&service.cluster, &service.service)
            .await
            .ok()??;
        crate::rollout::taken_over(&svc, goal)
    }

    async fn healthy(self, new_arn: &str, summary: String, mut outcome: Outcome) -> Outcome {
        self.report.emit(&Event::Verdict {
            healthy: true,
            reason: summary.clone(),
            failure: None,
        });
        self.rollout.mark(new_arn, "healthy").await;
        outcome.reason = Some(summary);
        self.finish(outcome, Conclusion::Deployed)
    }

    /// desiredCount 0: exit 0, but never tagged healthy (never a rollback target).
    fn unverified(self, reason: String, mut outcome: Outcome) -> Outcome {
        self.report.emit(&Event::Warning {
            message: format!("nothing to verify: {reason}; the revision is not tagged healthy"),
        });
        outcome.reason = Some(reason);
        self.finish(outcome, Conclusion::Unverified)
    }

    /// `--until updated`: the pipeline watches elsewhere.
    fn updated(self, mut outcome: Outcome) -> Outcome {
        let service = &self.settings.service;
        self.report.emit(&Event::Info {
            message: format!(
                "not watching (--until updated): ECS rolls it out; check: {}",
                service.status_command()
            ),
        });
        outcome.reason = Some("the service was updated; the rollout was not watched".into());
        self.finish(outcome, Conclusion::Updated)
    }

    /// Someone else's deployment took over: two runs must never undo each other.
    fn superseded(self, reason: String, mut outcome: Outcome) -> Outcome {
        self.report.emit(&Event::Warning {
            message: superseded_warning(&reason, &self.settings.service),
        });
        outcome.reason = Some(reason);
        self.finish(outcome, Conclusion::Superseded)
    }

    /// The watch could not see: roll nothing back blind.
    fn blind(
        self,
        plan: &DeployPlan,
        new_arn: &str,
        what: String,
        mut outcome: Outcome,
    ) -> Outcome {
        let service = &self.settings.service;
        self.report.emit(&Event::Warning {
            message: blind_warning(
                &what,
                new_arn,
                service,
                &service.rollback_command(&plan.current.arn),
            ),
        });
        outcome.reason = Some(format!("the rollout could not be watched: {what}"));
        self.finish(outcome, Conclusion::Blind)
    }

    /// ECS is already rolling back to the recorded revision: watch that, start nothing.
    async fn ecs_rolled_back(
        mut self,
        new_arn: &str,
        ecs_rollback: Goal,
        reason: String,
        mut outcome: Outcome,
    ) -> Outcome {
        self.report.emit(&Event::Verdict {
            healthy: false,
            reason: reason.clone(),
            failure: None,
        });
        self.rollout.mark(new_arn, "failed").await;
        outcome.reason = Some(reason.clone());
        let rolled = self
            .rollout
            .follow_ecs_rollback(ecs_rollback, &reason, &mut self.signals, &mut self.timings)
            .await;
        let conclusion = if rolled.healthy {
            Conclusion::RolledBack(RollbackCause::DeployFailed)
        } else {
            Conclusion::NeedsHuman(None)
        };
        outcome.rollback = Some(rolled);
        self.finish(outcome, conclusion)
    }

    /// The revision failed (or a signal asked to roll back): tag it, then roll
    /// back unless told not to.
    async fn failed(
        self,
        plan: &DeployPlan,
        new_arn: &str,
        reason: String,
        interrupted: Option<ExitCode>,
        failure: Option<Box<FailureReport>>,
        mut outcome: Outcome,
    ) -> Result<Outcome> {
        if interrupted.is_none() {
            // The report is made from the last poll: no call, no delay to the rollback.
            self.report.emit(&Event::Verdict {
                healthy: false,
                reason: reason.clone(),
                failure: failure.clone(),
            });
        }
        let logs = failure_logs(
            self.deps.logs,
            self.report,
            &plan.next,
            failure.as_deref(),
            self.settings.watch.log_lines,
        );
        outcome.failure = failure;
        self.rollout.mark(new_arn, "failed").await;
        outcome.reason = Some(reason.clone());
        if !self.settings.watch.rollback {
            self.report.emit(&Event::Warning {
                message: format!(
                    "not rolling back (--no-rollback): the service runs {}; to restore: {}",
                    short(new_arn),
                    self.settings.service.rollback_command(&plan.current.arn)
                ),
            });
            let logs = logs.await;
            return Ok(self
                .finish(outcome, Conclusion::Failed(interrupted))
                .with_logs(logs));
        }
        // The logs are read while the rollback runs: they never delay it.
        let (rolled, logs) = tokio::join!(
            self.roll_back(plan, new_arn, &reason, interrupted, outcome),
            logs
        );
        rolled.map(|outcome| outcome.with_logs(logs))
    }

    /// The automatic rollback to the recorded revision (and the desired count
    /// it had, if this run changed it).
    async fn roll_back(
        mut self,
        plan: &DeployPlan,
        new_arn: &str,
        reason: &str,
        interrupted: Option<ExitCode>,
        mut outcome: Outcome,
    ) -> Result<Outcome> {
        let before = plan.service.desired_count;
        let mv = Move {
            to: plan.current.arn.clone(),
            from: Some(new_arn.to_string()),
            desired_count: self
                .settings
                .desired_count
                .filter(|n| *n != before)
                .map(|_| before),
            health_checked: taskdef::health_checked_essential_containers(&plan.current.json),
            ..Move::default()
        };
        let rolled = self
            .rollout
            .roll_back(&mv, reason, &mut self.signals, &mut self.timings)
            .await
            .unwrap_or_else(|err| RollbackOutcome {
                to: plan.current.arn.clone(),
                healthy: false,
                reason: err.message().to_string(),
                by: RolledBackBy::Shipit,
                failure: None,
                interrupted: None,
            });
        let conclusion = match (rolled.healthy, interrupted) {
            (true, Some(code)) => Conclusion::RolledBack(RollbackCause::Signal(code)),
            (true, None) => Conclusion::RolledBack(RollbackCause::DeployFailed),
            (false, _) => Conclusion::NeedsHuman(None),
        };
        outcome.rollback = Some(rolled);
        Ok(self.finish(outcome, conclusion))
    }

    /// `--on-interrupt leave`: no verdict, no tag, no rollback.
    fn leave(
        self,
        plan: &DeployPlan,
        new_arn: &str,
        reason: String,
        code: ExitCode,
        mut outcome: Outcome,
    ) -> Outcome {
        let service = &self.settings.service;
        self.report.emit(&Event::Warning {
            message: format!(
                "stopped watching (on_interrupt = leave): the service is updated to {} and ECS goes on rolling it out; \
                 check: {}; undo: {}",
                short(new_arn),
                service.status_command(),
                service.rollback_command(&plan.current.arn),
            ),
        });
        outcome.reason = Some(reason);
        self.finish(outcome, Conclusion::Interrupted(code))
    }

    fn finish(self, mut outcome: Outcome, conclusion: Conclusion) -> Outcome {
        outcome.conclusion = conclusion;
        outcome.timings = self.timings.to_vec();
        outcome
    }

    /// A revision registered but never deployed: deregister it when asked to,
    /// and say in words what state it is left in.
    async fn orphan(&self, arn: &str) -> String {
        if !self.settings.deregister_on_failure {
            return format!(
                "revision {arn} was registered and no service uses it; remove it with --deregister-on-failure next time, or: aws ecs deregister-task-definition --task-definition {arn}"
            );
        }
        match self.deps.ecs.deregister_task_definition(arn).await {
            Ok(()) => {
                self.report.emit(&Event::Info {
                    message: format!("deregistered revision {} (no service used it)", short(arn)),
                });
                format!("revision {arn} was registered, then deregistered (no service used it)")
            }
            Err(err) => format!(
                "revision {arn} was registered and could not be deregistered: {}",
                err.message()
            ),
        }
    }
}

fn not_changed(settings: &DeploySettings) -> String {
    format!("the service `{}` was not changed", settings.service.service)
}
