//! Observe the rollout until a verdict: one poll reads the service, its tasks
//! and the target health of every target group (and, only when a rule needs
//! them, ECS's service deployments); state changes are reported as they
//! happen; the verdict comes from the pure [`verdict::Tracker`]. A watch that
//! cannot see ends with [`Verdict::Blind`], never with an error.

pub mod fleet;
pub mod pace;
pub mod verdict;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::api_calls::ApiCalls;
use crate::arn::short as short_arn;
use crate::ecs::{Ecs, Service, TaskStatus};
use crate::elb::{LoadBalancing, TargetGroupInfo};
use crate::error::{AwsErrorClass, Error, Result};
use crate::failure::{Evidence, FailureReport};
use crate::report::{Event, Report};

pub use fleet::{Fleet, Lane};
pub use pace::{pace, Pace, PaceInput};
pub use verdict::{
    Criteria, Failure, FailureKind, Goal, Observation, Tracker, Verdict, DEFAULT_SETTLE,
};

/// How long past the pace deadline a rollout whose tasks are all healthy may
/// wait for ECS's own COMPLETED (deployment alarms' bake time).
const BAKE_ALLOWANCE_SECS: u64 = 60 * 60;

/// How many polls in a row may fail (throttling, 5xx, network) before the watch is blind.
const MAX_CONSECUTIVE_POLL_ERRORS: u32 = 5;

/// When the watch gives up without a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// A hard cap (the user's `--timeout`): never watched longer.
    pub cap: Option<Duration>,
    /// The least time a rollout gets, whatever its pace says.
    pub floor: Duration,
}

impl Deadline {
    /// Exactly `timeout`, progress or not.
    pub fn fixed(timeout: Duration) -> Self {
        Self {
            cap: Some(timeout),
            floor: timeout,
        }
    }
}

impl Default for Deadline {
    /// No cap; at least 5 minutes, longer where the rollout's pace says so.
    fn default() -> Self {
        Self {
            cap: None,
            floor: Duration::from_secs(5 * 60),
        }
    }
}

pub struct Watch<'a> {
    pub ecs: &'a dyn Ecs,
    pub elb: &'a dyn LoadBalancing,
    pub report: &'a Report,
    pub cluster: &'a str,
    pub service: &'a str,
    pub interval: Duration,
    pub deadline: Deadline,
    /// The run's real call counter (the same one the clients count into).
    pub calls: ApiCalls,
}

/// The verdict (never Pending) and what it took to reach it.
#[derive(Debug)]
pub struct WatchOutcome {
    pub verdict: Verdict,
    pub polls: u32,
    /// AWS API calls made during the watch, as [`ApiCalls`] counted them.
    pub calls: u64,
    pub elapsed: Duration,
    /// The last poll that answered: what the failure report is made from.
    pub last: Option<Box<Observation>>,
    /// The target groups' settings, as read once for the pace.
    pub target_groups: Vec<TargetGroupInfo>,
    /// The ARNs of the last poll's tasks that were this rollout's.
    pub ours: Vec<String>,
}

impl WatchOutcome {
    /// The failure report of a watch that ended `Failed` (`reason`), from its
    /// last poll; `None` when no poll answered.
    pub fn failure_report(
        &self,
        reason: &str,
        revision: &str,
        task_definition: &serde_json::Value,
        since: f64,
    ) -> Option<FailureReport> {
        let last = self.last.as_deref()?;
        Some(crate::failure::report(&Evidence {
            reason,
            revision,
            task_definition,
            since,
            service: &last.service,
            tasks: &last.tasks,
            ours: Some(&self.ours),
            targets: &last.targets,
            groups: &self.target_groups,
        }))
    }
}

pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// What one watch remembers between polls.
struct Progress {
    /// Whether ListServiceDeployments still answers.
    service_deployments: bool,
    /// The rollout's expected pace, worked out after the first poll.
    pace: Option<Pace>,
    /// The target groups' settings read for the pace.
    groups: Vec<TargetGroupInfo>,
    /// The last observation that answered.
    last: Option<Box<Observation>>,
    /// Most new tasks seen healthy, and when that number last grew.
    best: usize,
    last_progress: Instant,
    last_pending: String,
}

impl Watch<'_> {
    /// One poll: DescribeServices, 2 ListTasks, ⌈tasks/100⌉ DescribeTasks,
    /// 1 DescribeTargetHealth per target group, and (only when the tracker
    /// wants them) ListServiceDeployments + DescribeServiceDeployments.
    pub async fn observe(
        &self,
        tracker: &Tracker,
        service_deployments: &mut bool,
    ) -> Result<Observation> {
        let now = now_epoch();
        let service = self
            .ecs
            .service(self.cluster, self.service)
            .await?
            .unwrap_or_else(|| Service {
                name: self.service.to_string(),
                status: "MISSING".into(),
                ..Default::default()
            });
        let tasks = self.ecs.tasks(self.cluster, self.service).await?;
        let mut targets = Vec::new();
        for arn in target_groups(&service) {
            targets.push((arn.to_string(), self.elb.target_health(arn).await?));
        }
        let deployments = if *service_deployments && tracker.wants_service_deployments(&service) {
            self.service_deployments(tracker, service_deployments).await
        } else {
            None
        };
        Ok(Observation {
            now,
            service,
            tasks,
            targets,
            service_deployments: deployments,
        })
    }

    /// ECS's service deployments since the update; a failure or an endpoint
    /// without the API turns them off for the rest of the watch (rule 17:
    /// every rule still holds without them).
    async fn service_deployments(
        &self,
        tracker: &Tracker,
        available: &mut bool,
    ) -> Option<Vec<crate::ecs::ServiceDeployment>> {
        let since = tracker.goal().started_at - 60.0;
        match self
            .ecs
            .service_deployments(self.cluster, self.service, since)
            .await
        {
            Ok(Some(deployments)) => Some(deployments),
            Ok(None) => {
                *available = false;
                None
            }
            Err(err) => {
                *available = false;
                self.report.emit(&Event::Warning {
                    message: format!(
                        "service deployments cannot be read ({}); the verdict goes on from DescribeServices/DescribeTasks/DescribeTargetHealth",
                        err.message()
                    ),
                });
                None
            }
        }
    }

    pub async fn run(&self, tracker: &mut Tracker) -> WatchOutcome {
        let started = Instant::now();
        let calls_before = self.calls.snapshot().total;
        let outcome = |verdict, polls, progress: Progress, tracker: &Tracker| WatchOutcome {
            verdict,
            polls,
            calls: self.calls.snapshot().total.saturating_sub(calls_before),
            elapsed: started.elapsed(),
            ours: progress.last.as_ref().map_or_else(Vec::new, |obs| {
                obs.tasks
                    .iter()
                    .filter(|t| tracker.is_ours(t, &obs.service))
                    .map(|t| t.arn.clone())
                    .collect()
            }),
            last: progress.last,
            target_groups: progress.groups,
        };
        let mut seen = Seen::default();
        let mut polls = 0u32;
        let mut errors = 0u32;
        let mut progress = Progress {
            service_deployments: true,
            pace: None,
            groups: Vec::new(),
            last: None,
            best: 0,
            last_progress: Instant::now(),
            last_pending: String::from("the first poll"),
        };
        loop {
            let poll_started = Instant::now();
            // The SDK sets no operation timeout: a call that never answers
            // (a half-open connection) must not hang the watch past every
            // deadline. It counts as a poll with no answer.
            let observed = tokio::time::timeout(
                self.poll_timeout(),
                self.observe(tracker, &mut progress.service_deployments),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Error::failed(format!(
                    "no answer from AWS within {}s",
                    self.poll_timeout().as_secs()
                ))
                .with_aws(AwsErrorClass::NoAnswer, None))
            });
            match observed {
                Ok(obs) => {
                    errors = 0;
                    polls += 1;
                    if progress.pace.is_none() {
                        let (pace, groups) = self.pace_of(&obs.service).await;
                        progress.pace = Some(pace);
                        progress.groups = groups;
                    }
                    seen.report_changes(&obs, tracker, self.report);
                    let verdict = tracker.assess(&obs);
                    progress.last = Some(Box::new(obs));
                    match verdict {
                        Verdict::Pending(what) => {
                            self.report.emit(&Event::Waiting { what: what.clone() });
                            progress.last_pending = what;
                        }
                        verdict => return outcome(verdict, polls, progress, tracker),
                    }
                    if tracker.progress() > progress.best {
                        progress.best = tracker.progress();
                        progress.last_progress = Instant::now();
                    }
                }
                Err(err) => {
                    errors += 1;
                    if let Some(reason) = self.poll_failed(&err, errors) {
                        return outcome(Verdict::Blind(reason), polls, progress, tracker);
                    }
                }
            }
            let baking = tracker.awaiting_ecs_completion();
            if let Some(verdict) = self.deadline_passed(started.elapsed(), &progress, baking) {
                return outcome(verdict, polls, progress, tracker);
            }
            tokio::time::sleep(self.interval.saturating_sub(poll_started.elapsed())).await;
        }
    }

    /// How long one poll may take: generous (the SDK retries inside it), but bounded.
    fn poll_timeout(&self) -> Duration {
        (self.interval * 6).max(Duration::from_secs(60))
    }

    /// Reports a failed poll; `Some(what could not be seen)` when the watch is blind (rule 10):
    /// credentials or permissions refused at once, any other failure 5 polls in a row.
    fn poll_failed(&self, err: &Error, errors: u32) -> Option<String> {
        // Refused by AWS itself (a code such as ExpiredTokenException): retrying will not help.
        // A credential provider that failed locally (no code) may recover: retried.
        let lasting = err.is_blind()
            && !err.aws_class().is_some_and(AwsErrorClass::is_transient)
            && err.aws_code().is_some();
        let blind = lasting || errors >= MAX_CONSECUTIVE_POLL_ERRORS;
        let next = if blind { "giving up" } else { "retrying" };
        self.report.emit(&Event::Warning {
            message: format!(
                "poll failed ({errors}/{MAX_CONSECUTIVE_POLL_ERRORS}), {next}: {}",
                err.message()
            ),
        });
        if !blind {
            return None;
        }
        let what = match err.aws_class() {
            Some(AwsErrorClass::Throttled) => "AWS throttled the watch past its retries",
            Some(AwsErrorClass::Credentials) => {
                "the AWS credentials were refused (expired or invalid)"
            }
            Some(AwsErrorClass::AccessDenied) => "a permission the watch needs is missing",
            Some(AwsErrorClass::NoAnswer) => "AWS did not answer",
            _ => "AWS calls kept failing",
        };
        let polls = if lasting {
            String::new()
        } else {
            format!(" on {errors} polls in a row")
        };
        Some(format!(
            "could not observe service `{}`: {what}{polls}: {}",
            self.service,
            err.message()
        ))
    }

    /// Rule 11: the deadline follows the rollout's pace; a rollout still
    /// making progress is not failed for being slow; the cap is hard.
    fn deadline_passed(
        &self,
        elapsed: Duration,
        progress: &Progress,
        baking: bool,
    ) -> Option<Verdict> {
        let deadline = |reason: String| {
            Some(Verdict::Failed(Failure {
                kind: FailureKind::Deadline,
                reason,
            }))
        };
        if let Some(cap) = self.deadline.cap.filter(|cap| elapsed >= *cap) {
            return deadline(format!(
                "no verdict within {}s; still waiting for: {}",
                cap.as_secs(),
                progress.last_pending
            ));
        }
        let pace = progress.pace.as_ref();
        let due = pace.map_or(self.deadline.floor, |p| p.deadline.max(self.deadline.floor));
        let stall = pace.map_or(Duration::ZERO, |p| p.per_batch);
        let stalled_for = progress.last_progress.elapsed();
        // Every task healthy, only ECS's COMPLETED awaited: its bake time is
        // not a stall. Still bounded, by an hour past the pace.
        let due = if baking {
            due + Duration::from_secs(BAKE_ALLOWANCE_SECS)
        } else {
            due
        };
        if elapsed >= due && (stalled_for >= stall || baking) {
            return deadline(format!(
                "no verdict within {}s (the rollout's expected pace) and no new task healthy for {}s; still waiting for: {}",
                due.as_secs(),
                stalled_for.as_secs(),
                progress.last_pending
            ));
        }
        None
    }

    /// The rollout's pace, from the target groups' settings read once per
    /// watch; a failure to read them degrades to ELB's defaults, with a warning.
    async fn pace_of(&self, service: &Service) -> (Pace, Vec<TargetGroupInfo>) {
        let mut infos = Vec::new();
        for arn in target_groups(service) {
            match self.elb.target_group(arn).await {
                Ok(Some(info)) => infos.push(info),
                Ok(None) => infos.push(TargetGroupInfo::default()),
                Err(err) => {
                    self.report.emit(&Event::Warning {
                        message: format!(
                            "target group {} settings cannot be read ({}); the deadline assumes ELB's defaults",
                            short_arn(arn),
                            err.message()
                        ),
                    });
                    infos.push(TargetGroupInfo::default());
                }
            }
        }
        let groups = infos.clone();
        (pace(&PaceInput::of(service, infos)), groups)
    }
}

/// The service's target groups, each once (Classic Load Balancers have none).
fn target_groups(service: &Service) -> Vec<&str> {
    let mut groups: Vec<&str> = Vec::new();
    for lb in &service.load_balancers {
        let arn = lb.target_group_arn.as_str();
        if !arn.is_empty() && !groups.contains(&arn) {
            groups.push(arn);
        }
    }
    groups
}

/// What was last reported per task and per target, so only changes are said.
#[derive(Default)]
struct Seen {
    tasks: HashMap<String, String>,
    targets: HashMap<(String, String), String>,
}

impl Seen {
    fn report_changes(&mut self, obs: &Observation, tracker: &Tracker, report: &Report) {
        for task in &obs.tasks {
            // Report our tasks, and other revisions' tasks as they stop.
            let ours = tracker.is_ours(task, &obs.service);
            let state = format!("{}/{}", task.last_status, task.desired_status);
            if self.tasks.get(&task.arn) == Some(&state) {
                continue;
            }
            let first_sight = !self.tasks.contains_key(&task.arn);
            self.tasks.insert(task.arn.clone(), state);
            if !ours && first_sight {
                // Not ours and not stopping: not news; STOPPED at first sight: history.
                continue;
            }
            let detail = match task.last_status {
                TaskStatus::Stopped => Some(verdict::describe_stop(task)),
                TaskStatus::Running => task
                    .private_ip
                    .clone()
                    .or_else(|| task.ipv6.clone())
                    .map(|ip| format!("ip {ip}")),
                _ => None,
            };
            report.emit(&Event::TaskChanged {
                task: task.id().to_string(),
                revision: short_arn(&task.task_definition).to_string(),
                status: task.last_status.to_string(),
                detail,
            });
        }
        for (group, targets) in &obs.targets {
            for target in targets {
                let key = (
                    group.clone(),
                    format!("{}:{}", target.id, target.port.unwrap_or_default()),
                );
                let state = format!(
                    "{}{}",
                    target.state,
                    target
                        .reason
                        .as_deref()
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default()
                );
                if self.targets.get(&key) == Some(&state) {
                    continue;
                }
                self.targets.insert(key.clone(), state);
                report.emit(&Event::TargetChanged {
                    target_group: short_arn(group).to_string(),
                    target: key.1,
                    state: target.state.to_string(),
                    reason: target.reason.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
