//! Step 3, container health checks (rule 1): a new task counts as healthy only
//! when ECS reports its `healthStatus` HEALTHY and that of each essential
//! container with a `healthCheck`; UNHEALTHY past the grace is a failure, and
//! no load balancer verdict overrides it.
//! https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html

use std::collections::HashSet;

use crate::ecs::{HealthStatus, Task};

use super::{failed, FailureKind, Observation, Tracker, Verdict};

pub(super) struct Health<'o> {
    /// ARNs of running tasks whose container health allows counting them.
    pub healthy: HashSet<&'o str>,
    /// What the others wait for.
    pub waiting: Vec<String>,
}

impl Tracker {
    pub(super) fn container_health<'o>(
        &mut self,
        obs: &Observation,
        running: &[&'o Task],
    ) -> Result<Health<'o>, Verdict> {
        let mut health = Health {
            healthy: HashSet::new(),
            waiting: vec![],
        };
        let mut unhealthy_now: Vec<String> = Vec::new();
        for task in running {
            match self.task_health(task) {
                TaskHealth::Healthy => {
                    health.healthy.insert(task.arn.as_str());
                }
                TaskHealth::Waiting(what) => health.waiting.push(what),
                TaskHealth::Unhealthy(what) => {
                    unhealthy_now.push(task.arn.clone());
                    if let Some(verdict) = self.unhealthy_past_grace(obs, task, &what) {
                        return Err(verdict);
                    }
                    health.waiting.push(what);
                }
            }
        }
        self.container_unhealthy_since
            .retain(|arn, _| unhealthy_now.contains(arn));
        Ok(health)
    }

    fn task_health(&self, task: &Task) -> TaskHealth {
        let unhealthy: Vec<&str> = task
            .containers
            .iter()
            .filter(|c| self.goal.health_checked.contains(&c.name))
            .filter(|c| c.health_status == Some(HealthStatus::Unhealthy))
            .map(|c| c.name.as_str())
            .collect();
        // ECS reports a task UNHEALTHY only from essential containers' checks.
        if !unhealthy.is_empty() || task.health_status == Some(HealthStatus::Unhealthy) {
            let which = if unhealthy.is_empty() {
                "an essential container".to_string()
            } else {
                format!("container {}", unhealthy.join(", "))
            };
            return TaskHealth::Unhealthy(format!(
                "task {}: {which} health check UNHEALTHY",
                task.id()
            ));
        }
        if self.goal.health_checked.is_empty() {
            return TaskHealth::Healthy;
        }
        let pending: Vec<&str> = self
            .goal
            .health_checked
            .iter()
            .filter(|name| {
                !task
                    .containers
                    .iter()
                    .any(|c| &c.name == *name && c.health_status == Some(HealthStatus::Healthy))
            })
            .map(String::as_str)
            .collect();
        if pending.is_empty() && task.health_status == Some(HealthStatus::Healthy) {
            TaskHealth::Healthy
        } else {
            let which = if pending.is_empty() {
                "the task".to_string()
            } else {
                format!("container {}", pending.join(", "))
            };
            TaskHealth::Waiting(format!(
                "task {}: {which} health check not HEALTHY yet",
                task.id()
            ))
        }
    }

    fn unhealthy_past_grace(
        &mut self,
        obs: &Observation,
        task: &Task,
        what: &str,
    ) -> Option<Verdict> {
        let first_seen = *self
            .container_unhealthy_since
            .entry(task.arn.clone())
            .or_insert(obs.now);
        let grace_after_start = f64::from(obs.service.health_check_grace_seconds.max(0));
        let counts_from = first_seen.max(task.started_at.unwrap_or(first_seen) + grace_after_start);
        let grace = self.criteria.unhealthy_grace.as_secs_f64();
        (obs.now - counts_from >= grace).then(|| {
            failed(
                FailureKind::ContainerUnhealthy,
                format!(
                    "{what} for {:.0}s, past the {grace:.0}s grace",
                    obs.now - first_seen
                ),
            )
        })
    }
}

enum TaskHealth {
    Healthy,
    Waiting(String),
    Unhealthy(String),
}
