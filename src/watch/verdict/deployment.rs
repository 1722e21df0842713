//! Step 1, the deployment state: service gone, superseded, ECS rolling back,
//! rollout FAILED, nothing to verify.

use crate::arn::Arn;
use crate::ecs::{
    Deployment, DeploymentStatus, RolloutState, Service, ServiceDeployment, ServiceStatus,
};

use super::{failed, short, with_event, FailureKind, Observation, Tracker, Verdict, SKEW_SECONDS};

impl Tracker {
    /// A verdict from the deployments alone, or `None` to go on to the tasks.
    pub(super) fn deployment_state(&mut self, obs: &Observation) -> Option<Verdict> {
        let service = &obs.service;
        if !matches!(&service.status, ServiceStatus::Active) && !service.status.as_str().is_empty()
        {
            return Some(failed(
                FailureKind::ServiceGone,
                format!("service {} is {}", service.name, service.status),
            ));
        }
        let ours = self.our_deployment(service);
        let primary = primary(service);
        let ours_is_primary = match (primary, ours) {
            (Some(p), Some(o)) => p.id == o.id,
            // Without deployment data (old API) trust the service's task definition.
            (None, _) => service.task_definition == self.goal.task_definition,
            (Some(_), None) => false,
        };
        if !ours_is_primary {
            return Some(self.not_primary(obs, primary, ours));
        }
        if let Some(dep) = ours.filter(|d| d.rollout_state == Some(RolloutState::Failed)) {
            return Some(self.failed_rollout(obs, dep));
        }
        self.failed_since = None;
        // Rule 5: nothing runs, nothing can be verified (ECS reports COMPLETED at once).
        if service.desired_count == 0 && ours.is_none_or(|d| d.desired_count == 0) {
            return Some(Verdict::Unverifiable(format!(
                "desiredCount is 0 on {}: no task runs, nothing could be verified",
                short(&self.goal.task_definition)
            )));
        }
        None
    }

    pub(super) fn our_deployment<'s>(&self, service: &'s Service) -> Option<&'s Deployment> {
        service
            .deployments
            .iter()
            .find(|d| match &self.goal.deployment_id {
                Some(id) => &d.id == id,
                None => d.task_definition == self.goal.task_definition,
            })
    }

    /// The service deployment our UpdateService created: the first one
    /// created after the update (ECS keeps an ECS rollback inside the same
    /// service deployment, as ROLLBACK_* statuses).
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html
    pub(super) fn our_service_deployment<'o>(
        &self,
        obs: &'o Observation,
    ) -> Option<&'o ServiceDeployment> {
        let all = obs.service_deployments.as_deref()?;
        all.iter()
            .rev()
            .find(|sd| {
                sd.created_at
                    .is_some_and(|at| at + SKEW_SECONDS >= self.goal.started_at)
            })
            .or_else(|| all.first().filter(|sd| sd.created_at.is_none()))
    }

    /// Rules 7 and 8: ECS's own rollback to the recorded revision, or someone else's deployment.
    fn not_primary(
        &self,
        obs: &Observation,
        primary: Option<&Deployment>,
        ours: Option<&Deployment>,
    ) -> Verdict {
        let service = &obs.service;
        let primary_td = primary
            .map(|p| p.task_definition.as_str())
            .unwrap_or(&service.task_definition);
        let to_recorded = self.goal.previous_task_definition.as_deref() == Some(primary_td);
        // ECS's circuit breaker returns to "the most recent deployment in a
        // COMPLETED state", which after back-to-back deploys may be older than
        // the recorded revision (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html):
        // an older revision of the same family, with the same evidence, is ECS's rollback too.
        let to_older = {
            let (new, back) = (Arn(&self.goal.task_definition), Arn(primary_td));
            new.family() == back.family()
                && matches!((back.revision(), new.revision()), (Some(b), Some(n)) if b < n)
        };
        if to_recorded || to_older {
            if let Some(evidence) = self.ecs_rollback_evidence(obs, primary, ours) {
                let back = format!(
                    "ECS rolled the service back to {}: the service may be stable, but not on this revision",
                    short(primary_td)
                );
                let detail = self.ecs_failure_detail(obs, ours);
                let reason = match ours.filter(|d| d.rollout_state == Some(RolloutState::Failed)) {
                    Some(dep) => format!(
                        "ECS marked deployment {} FAILED ({evidence}): {}; {back}",
                        dep.id,
                        detail.unwrap_or_else(|| "no reason given".into())
                    ),
                    None => match detail {
                        Some(detail) => format!("{back} ({evidence}: {detail})"),
                        None => format!("{back} ({evidence})"),
                    },
                };
                return Verdict::EcsRollingBack {
                    deployment_id: primary.map(|p| p.id.clone()),
                    task_definition: primary_td.to_string(),
                    reason: with_event(reason, service, self.goal.started_at),
                };
            }
        }
        let by = primary
            .map(|p| format!(" (deployment {})", p.id))
            .unwrap_or_default();
        Verdict::Superseded(with_event(
            format!(
                "another deployment took over: the service now deploys {}{by}",
                short(primary_td)
            ),
            service,
            self.goal.started_at,
        ))
    }

    /// Why the PRIMARY deployment on the recorded revision is ECS's rollback
    /// and not a person redeploying it (the mechanism, for the reason); `None`
    /// when nothing says so. The rule: our deployment is FAILED (only ECS's
    /// circuit breaker or alarms mark it so) and the service's configuration
    /// does not say rollback is off; or our service deployment is in a
    /// ROLLBACK_* status; or ECS wrote "rolling back" in a service event since
    /// the update or in the new deployment's rolloutStateReason.
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html
    fn ecs_rollback_evidence(
        &self,
        obs: &Observation,
        primary: Option<&Deployment>,
        ours: Option<&Deployment>,
    ) -> Option<String> {
        let service = &obs.service;
        let config = &service.deployment_configuration;
        let failed = ours.is_some_and(|d| d.rollout_state == Some(RolloutState::Failed));
        let config_known = config.circuit_breaker.is_some() || config.alarms.is_some();
        if failed && (config.ecs_rolls_back() || !config_known) {
            return Some(self.failure_mechanism(obs, ours).to_string());
        }
        if let Some(sd) = self
            .our_service_deployment(obs)
            .filter(|sd| sd.status.is_rollback() || sd.rollback.is_some())
        {
            return Some(format!("service deployment {}", sd.status));
        }
        let says_rolling_back = |text: &str| text.to_ascii_lowercase().contains("rolling back");
        let in_events = service
            .events
            .iter()
            .filter(|e| e.created_at + SKEW_SECONDS >= self.goal.started_at)
            .any(|e| says_rolling_back(&e.message));
        let in_reason = primary
            .and_then(|p| p.rollout_state_reason.as_deref())
            .is_some_and(says_rolling_back);
        (in_events || in_reason).then(|| self.failure_mechanism(obs, ours).to_string())
    }

    /// Rules 3 and 8: ECS marked our (still PRIMARY) deployment FAILED.
    fn failed_rollout(&mut self, obs: &Observation, dep: &Deployment) -> Verdict {
        let mechanism = self.failure_mechanism(obs, Some(dep));
        let kind = if mechanism == "deployment alarms" {
            FailureKind::Alarm
        } else {
            FailureKind::CircuitBreaker
        };
        let why = self
            .ecs_failure_detail(obs, Some(dep))
            .unwrap_or_else(|| "no reason given".into());
        let reason = format!(
            "ECS marked deployment {} FAILED ({mechanism}): {why}",
            dep.id
        );
        if !obs.service.deployment_configuration.ecs_rolls_back() {
            return failed(kind, reason);
        }
        // ECS will start its rollback deployment: give it a bounded time to appear.
        let since = *self.failed_since.get_or_insert(obs.now);
        let wait = self.criteria.ecs_rollback_wait.as_secs_f64();
        if obs.now - since < wait {
            return Verdict::Pending(format!(
                "{reason}; waiting up to {wait:.0}s for ECS's own rollback to appear"
            ));
        }
        failed(
            kind,
            format!("{reason}; ECS started no rollback within {wait:.0}s"),
        )
    }

    /// "deployment alarms" when an alarm fired, else "circuit breaker".
    fn failure_mechanism(&self, obs: &Observation, ours: Option<&Deployment>) -> &'static str {
        let alarm_fired = self
            .our_service_deployment(obs)
            .is_some_and(|sd| !sd.triggered_alarms.is_empty());
        let reason_says_alarm = ours
            .and_then(|d| d.rollout_state_reason.as_deref())
            .is_some_and(|r| r.to_ascii_lowercase().contains("alarm"));
        if alarm_fired || reason_says_alarm {
            "deployment alarms"
        } else {
            "circuit breaker"
        }
    }

    /// What ECS says about our deployment's failure: rolloutStateReason, the
    /// alarms in ALARM, the circuit breaker's count, the service deployment's
    /// status and rollback reason (rule 17).
    pub(super) fn ecs_failure_detail(
        &self,
        obs: &Observation,
        ours: Option<&Deployment>,
    ) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if let Some(reason) = ours.and_then(|d| d.rollout_state_reason.clone()) {
            parts.push(reason);
        }
        if let Some(sd) = self.our_service_deployment(obs) {
            if !sd.triggered_alarms.is_empty() {
                parts.push(format!(
                    "alarms in ALARM: {}",
                    sd.triggered_alarms.join(", ")
                ));
            }
            if let Some((count, threshold)) = sd.circuit_breaker.filter(|(c, _)| *c > 0) {
                parts.push(format!(
                    "circuit breaker counted {count}/{threshold} failed tasks"
                ));
            }
            if let Some(reason) = sd.status_reason.as_deref().filter(|r| !r.is_empty()) {
                parts.push(format!("service deployment {}: {reason}", sd.status));
            }
            if let Some(reason) = sd.rollback.as_ref().and_then(|r| r.reason.as_deref()) {
                parts.push(format!("rollback: {reason}"));
            }
        }
        parts.dedup();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Whether a poll should read ListServiceDeployments/DescribeServiceDeployments:
    /// only when a rule needs them (our deployment FAILED or no longer
    /// PRIMARY, or ECS's COMPLETED is required and everything else holds).
    pub fn wants_service_deployments(&self, service: &Service) -> bool {
        let ours = self.our_deployment(service);
        let failed = ours.is_some_and(|d| d.rollout_state == Some(RolloutState::Failed));
        let not_primary = primary(service).is_some_and(|p| ours.is_none_or(|o| o.id != p.id));
        let awaiting_completion = self.completion_required(service)
            && self.healthy_since.is_some()
            && ours.is_some_and(|d| d.rollout_state != Some(RolloutState::Completed));
        failed || not_primary || awaiting_completion
    }
}

pub(super) fn primary(service: &Service) -> Option<&Deployment> {
    service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
}
