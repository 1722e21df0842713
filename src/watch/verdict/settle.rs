//! Step 5, completeness and the hold: enough healthy new tasks, ECS's own
//! COMPLETED where required (rule 3), held continuously for the settle period
//! (rule 2) before the verdict is Healthy.

use crate::ecs::{RolloutState, Service, ServiceDeploymentStatus};

use super::health::Health;
use super::targets::Tally;
use super::tasks::Tasks;
use super::{short, Observation, Tracker, Verdict};

impl Tracker {
    /// What is still missing before "healthy" (empty: nothing).
    pub(super) fn completeness(
        &self,
        obs: &Observation,
        tasks: &Tasks,
        health: &Health,
        tally: &Tally,
    ) -> Vec<String> {
        let service = &obs.service;
        let desired = service.desired_count.max(0) as usize;
        let running = tasks.running.len();
        let mut missing: Vec<String> = Vec::new();
        if running < desired {
            let replaced = match tasks.replaced.len() {
                0 => String::new(),
                n => format!(" ({n} stopped by the infrastructure, being replaced)"),
            };
            missing.push(format!("{running}/{desired} new tasks running{replaced}"));
        }
        if !health.waiting.is_empty() {
            missing.push(format!(
                "{}/{running} new tasks' container health checks HEALTHY ({})",
                health.healthy.len(),
                health.waiting.join(", ")
            ));
        }
        if tally.healthy_targets < tally.wanted_targets {
            missing.push(format!(
                "{}/{} targets healthy ({})",
                tally.healthy_targets,
                tally.wanted_targets,
                tally.waiting.join(", ")
            ));
        }
        if self.criteria.wait_for_drain && tasks.old_live > 0 {
            missing.push(format!("{} old task(s) still draining", tasks.old_live));
        }
        missing
    }

    /// `--until completed`, or deployment alarms on the service: ECS's own verdict is needed.
    pub(super) fn completion_required(&self, service: &Service) -> bool {
        self.criteria.require_completed || service.deployment_configuration.alarms_enabled()
    }

    /// Rule 3: ECS keeps judging a deployment with alarms after its tasks are
    /// healthy (bake time); wait for COMPLETED or SUCCESSFUL.
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html
    fn ecs_completion(&self, obs: &Observation) -> Option<String> {
        let service = &obs.service;
        if !self.completion_required(service) {
            return None;
        }
        let ours = self.our_deployment(service);
        let completed = ours.is_some_and(|d| d.rollout_state == Some(RolloutState::Completed));
        let successful = self
            .our_service_deployment(obs)
            .is_some_and(|sd| sd.status == ServiceDeploymentStatus::Successful);
        // No rolloutState (Classic Load Balancer, old APIs): steady state is our deployment alone.
        // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html
        let steady =
            ours.is_some_and(|d| d.rollout_state.is_none()) && service.deployments.len() == 1;
        if completed || successful || steady {
            return None;
        }
        let why = if service.deployment_configuration.alarms_enabled() {
            "deployment alarms are on: ECS judges the deployment until its bake time ends"
        } else {
            "--until completed"
        };
        Some(format!(
            "ECS has not marked deployment {} COMPLETED yet ({why})",
            ours.map(|d| d.id.as_str()).unwrap_or("?")
        ))
    }

    /// Healthy once nothing is missing for `healthy_polls` polls and `settle`
    /// seconds, and ECS completed the deployment where that is required.
    pub(super) fn settle(
        &mut self,
        obs: &Observation,
        missing: Vec<String>,
        summary: String,
    ) -> Verdict {
        self.awaiting_ecs = false;
        if !missing.is_empty() {
            self.reset_hold();
            return Verdict::Pending(missing.join("; "));
        }
        self.healthy_streak += 1;
        let since = *self.healthy_since.get_or_insert(obs.now);
        let held = obs.now - since;
        let settle = self.criteria.settle.as_secs_f64();
        if self.healthy_streak >= self.criteria.healthy_polls && held >= settle {
            if let Some(wait) = self.ecs_completion(obs) {
                self.awaiting_ecs = true;
                return Verdict::Pending(format!("{summary}; {wait}"));
            }
            return Verdict::Healthy(if settle > 0.0 {
                format!("{summary}; held {held:.0}s")
            } else {
                summary
            });
        }
        // The poll count is worth saying only when more than one is required.
        let polls = if self.criteria.healthy_polls > 1 {
            format!(
                "{}/{} polls, ",
                self.healthy_streak.min(self.criteria.healthy_polls),
                self.criteria.healthy_polls
            )
        } else {
            String::new()
        };
        Verdict::Pending(format!(
            "{summary}; holding ({polls}{held:.0}/{settle:.0}s)"
        ))
    }

    /// A relapse: the hold starts again.
    pub(super) fn reset_hold(&mut self) {
        self.healthy_streak = 0;
        self.healthy_since = None;
    }

    pub(super) fn summary(&self, obs: &Observation, running: usize) -> String {
        let service = &obs.service;
        let desired = service.desired_count.max(0);
        let td = short(&self.goal.task_definition);
        if service.load_balancers.is_empty() {
            format!("{running}/{desired} new tasks running on {td}")
        } else {
            format!(
                "{running}/{desired} new tasks running on {td}, healthy in {} target group(s)",
                service.load_balancers.len()
            )
        }
    }
}
