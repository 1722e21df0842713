//! The verdict: a deterministic function of what the polls saw.
//!
//! [`Tracker::assess`] takes one [`Observation`] and returns a [`Verdict`]
//! with the reason in words. It runs small named steps, each of which may end
//! the assessment:
//!
//! 1. [`deployment`](deployment): is the service there, is our deployment
//!    still PRIMARY (else Superseded, or ECS rolling back), did ECS mark it
//!    FAILED, is there anything to verify (desiredCount 0).
//! 2. [`tasks`](tasks): which tasks are ours and running, which of ours
//!    stopped, and whether a stop is the revision's fault.
//! 3. [`health`](health): container health checks of the running new tasks.
//! 4. [`targets`](targets): the load balancer's view of them.
//! 5. [`settle`](settle): completeness (enough healthy tasks, ECS COMPLETED
//!    where required) held continuously for the settle period.
//!
//! The only memory kept across polls is what the criteria need (since when
//! healthy, since when a target or container is unhealthy, since when our
//! deployment is FAILED, the highest desired count). It never calls AWS and
//! never reads a clock: time is `Observation::now`.

mod deployment;
mod health;
mod settle;
mod targets;
pub(crate) mod tasks;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use crate::ecs::{Service, ServiceDeployment, Task};
use crate::elb::TargetHealth;

/// One poll's view of the world.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Seconds since the epoch when the poll started (the clock of the caller).
    pub now: f64,
    pub service: Service,
    pub tasks: Vec<Task>,
    /// Target group ARN → its targets.
    pub targets: Vec<(String, Vec<TargetHealth>)>,
    /// ListServiceDeployments/DescribeServiceDeployments, newest first, when
    /// this poll read them ([`Tracker::wants_service_deployments`]) and the API answered.
    pub service_deployments: Option<Vec<ServiceDeployment>>,
}

/// The settle period by default: long enough that a task which passes one
/// check and crashes a few seconds later is seen leaving by a later 5 s poll
/// (ECS marks a task whose essential container exited DEACTIVATING/STOPPING
/// within a second or two), short enough to cost ~10 s per deploy (two polls).
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    /// Consecutive healthy polls needed (besides `settle`).
    pub healthy_polls: u32,
    /// How long a target or a container may stay unhealthy (after ECS's
    /// health check grace period) before that is a failure.
    pub unhealthy_grace: Duration,
    /// New tasks that may stop (for the revision's own reasons) before that is a failure.
    pub max_task_failures: u32,
    pub wait_for_drain: bool,
    /// Every healthy criterion must hold continuously this long (by `Observation::now`).
    pub settle: Duration,
    /// Healthy also requires ECS's own verdict: our deployment COMPLETED (or
    /// its service deployment SUCCESSFUL). Forced on when the service has
    /// deployment alarms enabled.
    pub require_completed: bool,
    /// After ECS marked our deployment FAILED with a rollback configured, how
    /// long to wait for ECS's rollback deployment to appear before calling it
    /// Failed (so that shipit rolls back itself).
    pub ecs_rollback_wait: Duration,
}

impl Default for Criteria {
    fn default() -> Self {
        Self {
            healthy_polls: 1,
            unhealthy_grace: Duration::from_secs(30),
            max_task_failures: 0,
            wait_for_drain: false,
            settle: DEFAULT_SETTLE,
            require_completed: false,
            ecs_rollback_wait: Duration::from_secs(60),
        }
    }
}

/// What this watch is waiting for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Goal {
    /// The task definition that must end up serving.
    pub task_definition: String,
    /// The deployment UpdateService started, when known.
    pub deployment_id: Option<String>,
    /// The revision the service ran before (to tell "ECS rolled back" from "superseded").
    pub previous_task_definition: Option<String>,
    /// Seconds since the epoch when the update was made: older tasks are not ours.
    pub started_at: f64,
    /// Essential containers with a `healthCheck`
    /// (`taskdef::health_checked_essential_containers`): each must be HEALTHY.
    pub health_checked: Vec<String>,
    /// Stops before this (seconds since the epoch) are history, not this
    /// watch's evidence; `None`: `started_at`. `shipit watch` sets it to the
    /// moment it attached: the deployment it attaches to may be days old, and
    /// ListTasks keeps stopped tasks listed for at least an hour
    /// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html).
    pub stops_after: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pending(String),
    /// Every healthy criterion held for the whole settle period (and, where
    /// required, ECS said COMPLETED / SUCCESSFUL).
    Healthy(String),
    /// desiredCount is 0 on our PRIMARY deployment: nothing can be verified.
    Unverifiable(String),
    /// The revision's own fault: roll back.
    Failed(Failure),
    /// A deployment that is neither ours nor ECS's rollback to the recorded
    /// revision became PRIMARY: change nothing.
    Superseded(String),
    /// ECS itself (circuit breaker or alarm rollback) is moving the service back
    /// to the recorded revision: do not start a second deployment, watch this one.
    EcsRollingBack {
        deployment_id: Option<String>,
        task_definition: String,
        reason: String,
    },
    /// The watch could not observe (throttling past retries, expired credentials,
    /// access denied): roll nothing back; `reason` says what could not be seen.
    Blind(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// rolloutState FAILED (the deployment circuit breaker).
    CircuitBreaker,
    /// rolloutState FAILED because a deployment alarm went into ALARM.
    Alarm,
    /// The PRIMARY deployment is no longer ours (no longer produced: see
    /// [`Verdict::Superseded`] and [`Verdict::EcsRollingBack`]).
    NotPrimary,
    /// New-revision tasks stopped.
    TasksStopped,
    /// A container health check stayed UNHEALTHY past the grace, or ECS
    /// stopped a task for failing it.
    ContainerUnhealthy,
    /// A new target stayed unhealthy past the grace.
    TargetUnhealthy,
    /// The service itself is gone or inactive.
    ServiceGone,
    /// The deadline passed.
    Deadline,
}

/// Clock skew tolerated between this machine and ECS when deciding whether a task is "ours".
const SKEW_SECONDS: f64 = 5.0;

#[derive(Debug)]
pub struct Tracker {
    criteria: Criteria,
    goal: Goal,
    healthy_streak: u32,
    /// When every healthy criterion started to hold (reset by a relapse).
    healthy_since: Option<f64>,
    /// (target group, target id, port) → when it was first seen unhealthy in its current run.
    unhealthy_since: HashMap<(String, String, i32), f64>,
    /// Task ARN → when its container health was first seen UNHEALTHY.
    container_unhealthy_since: HashMap<String, f64>,
    /// When our deployment was first seen FAILED with an ECS rollback expected.
    failed_since: Option<f64>,
    /// New tasks healthy in every respect at the last assessment.
    progress: usize,
    /// At the last assessment everything held and only ECS's own COMPLETED
    /// was missing (its bake time with deployment alarms).
    awaiting_ecs: bool,
}

impl Tracker {
    pub fn new(criteria: Criteria, goal: Goal) -> Self {
        Self {
            criteria,
            goal,
            healthy_streak: 0,
            healthy_since: None,
            unhealthy_since: HashMap::new(),
            container_unhealthy_since: HashMap::new(),
            failed_since: None,
            progress: 0,
            awaiting_ecs: false,
        }
    }

    pub fn goal(&self) -> &Goal {
        &self.goal
    }

    pub fn criteria(&self) -> &Criteria {
        &self.criteria
    }

    /// New tasks that were healthy in every respect at the last assessment
    /// (the watch's measure of progress).
    pub fn progress(&self) -> usize {
        self.progress
    }

    /// Everything holds and only ECS's own verdict is awaited: ECS keeps an
    /// alarmed deployment IN_PROGRESS through its bake time, which no pace
    /// can foresee (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html).
    pub fn awaiting_ecs_completion(&self) -> bool {
        self.awaiting_ecs
    }

    /// Whether a task belongs to this rollout (right revision, started by our deployment or after the update).
    ///
    /// ECS sets `startedBy` to the deployment id; where it names a deployment
    /// of the service that is trusted, otherwise (older APIs, emulators) the
    /// task must have been created after the update.
    pub fn is_ours(&self, task: &Task, service: &Service) -> bool {
        if task.task_definition != self.goal.task_definition {
            return false;
        }
        if let Some(by) = &task.started_by {
            if self.goal.deployment_id.as_ref() == Some(by) {
                return true;
            }
            if service.deployments.iter().any(|d| &d.id == by) {
                return false;
            }
        }
        task.created_at
            .is_none_or(|at| at + SKEW_SECONDS >= self.goal.started_at)
    }

    pub fn assess(&mut self, obs: &Observation) -> Verdict {
        if let Some(verdict) = self.deployment_state(obs) {
            self.reset_hold();
            return verdict;
        }
        let tasks = self.tasks(obs);
        if let Some(verdict) = self.stopped_tasks(obs, &tasks) {
            return verdict;
        }
        let health = match self.container_health(obs, &tasks.running) {
            Ok(health) => health,
            Err(verdict) => return verdict,
        };
        let tally = match self.target_tally(obs, &tasks.running) {
            Ok(tally) => tally,
            Err(verdict) => return verdict,
        };
        self.progress = tasks
            .running
            .iter()
            .filter(|t| health.healthy.contains(t.arn.as_str()))
            .filter(|t| tally.healthy_tasks.contains(t.arn.as_str()))
            .count();
        let missing = self.completeness(obs, &tasks, &health, &tally);
        self.settle(obs, missing, self.summary(obs, tasks.running.len()))
    }
}

fn failed(kind: FailureKind, reason: String) -> Verdict {
    Verdict::Failed(Failure { kind, reason })
}

/// Adds the newest service event since the update, where ECS gave one.
fn with_event(reason: String, service: &Service, since: f64) -> String {
    match service
        .events
        .iter()
        .find(|e| e.created_at + SKEW_SECONDS >= since)
    {
        Some(event) => format!("{reason} (ECS: {})", event.message),
        None => reason,
    }
}

/// `stoppedReason` plus each container's exit code and reason.
pub fn describe_stop(task: &Task) -> String {
    let mut parts = vec![task
        .stopped_reason
        .clone()
        .unwrap_or_else(|| "stopped".into())];
    if let Some(code) = &task.stop_code {
        parts[0] = format!("{} [{code}]", parts[0]);
    }
    for c in &task.containers {
        let mut bits = Vec::new();
        if let Some(code) = c.exit_code {
            bits.push(format!("exit code {code}"));
        }
        if let Some(reason) = c.reason.as_deref().filter(|r| !r.is_empty()) {
            bits.push(reason.to_string());
        }
        if !bits.is_empty() {
            parts.push(format!("container {}: {}", c.name, bits.join(", ")));
        }
    }
    parts.join("; ")
}

fn short(arn: &str) -> &str {
    crate::arn::short(arn)
}
