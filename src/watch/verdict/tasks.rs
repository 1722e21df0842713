//! Step 2, the tasks: which are ours and running, which of ours stopped, and
//! whether a stop is the revision's fault.

use std::collections::HashMap;

use crate::ecs::{Task, TaskStatus};

use super::{
    describe_stop, failed, with_event, FailureKind, Observation, Tracker, Verdict, SKEW_SECONDS,
};

/// The tasks of one poll, each counted once.
pub(super) struct Tasks<'o> {
    /// Ours, RUNNING, and not on their way out (rule 6).
    pub running: Vec<&'o Task>,
    /// Ours, stopped (or stopping with a reason) for the revision's own reasons.
    pub failed: Vec<&'o Task>,
    /// Ours, stopped by the infrastructure (Spot, termination notice, scale-in): ECS replaces them.
    pub replaced: Vec<&'o Task>,
    /// Other revisions' tasks not yet STOPPED.
    pub old_live: usize,
}

impl Tracker {
    pub(super) fn tasks<'o>(&self, obs: &'o Observation) -> Tasks<'o> {
        let service = &obs.service;
        let mut tasks = Tasks {
            running: vec![],
            failed: vec![],
            replaced: vec![],
            old_live: 0,
        };
        for task in unique(&obs.tasks) {
            if !self.is_ours(task, service) {
                let other_revision = task.task_definition != self.goal.task_definition;
                if other_revision && task.last_status != TaskStatus::Stopped {
                    tasks.old_live += 1;
                }
                continue;
            }
            if task.last_status == TaskStatus::Running && !task.is_leaving() {
                tasks.running.push(task);
            } else if is_stopped(task) {
                if self.stopped_before_the_watch(task) {
                    continue;
                }
                if task.stopped_by_infrastructure() {
                    tasks.replaced.push(task);
                } else {
                    tasks.failed.push(task);
                }
            }
        }
        tasks
    }

    /// A stop that happened before this watch began (an old crash of a reused
    /// deployment, history of the revision `shipit watch` attached to).
    fn stopped_before_the_watch(&self, task: &Task) -> bool {
        let since = self.goal.stops_after.unwrap_or(self.goal.started_at);
        task.stopped_at.is_some_and(|at| at + SKEW_SECONDS < since)
    }

    /// New-revision tasks that stopped for the revision's own reasons.
    pub(super) fn stopped_tasks(&self, obs: &Observation, tasks: &Tasks) -> Option<Verdict> {
        if tasks.failed.len() as u32 <= self.criteria.max_task_failures {
            return None;
        }
        let first = tasks.failed[0];
        let kind = if failed_container_health_checks(first) {
            FailureKind::ContainerUnhealthy
        } else {
            FailureKind::TasksStopped
        };
        let reason = format!(
            "{} new task(s) stopped; task {}: {}",
            tasks.failed.len(),
            first.id(),
            describe_stop(first)
        );
        Some(failed(
            kind,
            with_event(reason, &obs.service, self.goal.started_at),
        ))
    }
}

/// ECS stopped the task because an essential container's health check failed.
fn failed_container_health_checks(task: &Task) -> bool {
    task.stopped_reason
        .as_deref()
        .is_some_and(|r| r.contains("failed container health checks"))
}

/// STOPPED, or on its way out with a reason already given (fail fast).
fn is_stopped(task: &Task) -> bool {
    task.last_status == TaskStatus::Stopped || (task.is_leaving() && task.stopped_reason.is_some())
}

/// Each task once (ListTasks for RUNNING and STOPPED may both name a task
/// that changes state between the calls): the furthest state wins.
fn unique(tasks: &[Task]) -> Vec<&Task> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_arn: HashMap<&str, &Task> = HashMap::new();
    for task in tasks {
        match by_arn.get(task.arn.as_str()) {
            Some(seen) if stage(seen) >= stage(task) => {}
            Some(_) => {
                by_arn.insert(&task.arn, task);
            }
            None => {
                order.push(&task.arn);
                by_arn.insert(&task.arn, task);
            }
        }
    }
    order.into_iter().map(|arn| by_arn[arn]).collect()
}

/// How far along its lifecycle a task is.
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
fn stage(task: &Task) -> u8 {
    let lifecycle = match task.last_status {
        TaskStatus::Provisioning => 1,
        TaskStatus::Pending => 2,
        TaskStatus::Activating => 3,
        TaskStatus::Running => 4,
        TaskStatus::Deactivating => 5,
        TaskStatus::Stopping => 6,
        TaskStatus::Deprovisioning => 7,
        TaskStatus::Stopped => 8,
        TaskStatus::Deleted => 9,
        TaskStatus::Other(_) => 0,
    };
    lifecycle * 2 + u8::from(task.is_leaving())
}
