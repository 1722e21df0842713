//! Step 4, the target tally: the load balancer's view of the running new
//! tasks, in every target group. A target is matched by IPv4 or IPv6 address
//! (awsvpc, rule 14) or by instance and host port (bridge/host); the
//! unhealthy clock is kept per (target group, target, port) (rule 15).
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html

use std::collections::HashSet;
use std::net::IpAddr;

use crate::ecs::{LoadBalancerRef, Task};
use crate::elb::{TargetHealth, TargetState};

use super::{failed, short, FailureKind, Observation, Tracker, Verdict};

pub(super) struct Tally<'o> {
    pub healthy_targets: usize,
    pub wanted_targets: usize,
    pub waiting: Vec<String>,
    /// ARNs of running tasks healthy in every target group.
    pub healthy_tasks: HashSet<&'o str>,
}

type Key = (String, String, i32);

impl Tracker {
    pub(super) fn target_tally<'o>(
        &mut self,
        obs: &Observation,
        running: &[&'o Task],
    ) -> Result<Tally<'o>, Verdict> {
        let groups: Vec<&LoadBalancerRef> = obs
            .service
            .load_balancers
            .iter()
            .filter(|lb| !lb.target_group_arn.is_empty())
            .collect();
        let mut tally = Tally {
            healthy_targets: 0,
            wanted_targets: running.len() * groups.len(),
            waiting: vec![],
            healthy_tasks: running.iter().map(|t| t.arn.as_str()).collect(),
        };
        let mut seen_unhealthy: Vec<Key> = Vec::new();
        for lb in groups {
            let targets = obs
                .targets
                .iter()
                .find(|(arn, _)| arn == &lb.target_group_arn)
                .map(|(_, t)| t.as_slice())
                .unwrap_or(&[]);
            for task in running {
                let healthy =
                    self.judge_target(obs, lb, task, targets, &mut tally, &mut seen_unhealthy)?;
                if healthy {
                    tally.healthy_targets += 1;
                } else {
                    tally.healthy_tasks.remove(task.arn.as_str());
                }
            }
        }
        self.unhealthy_since
            .retain(|key, _| seen_unhealthy.contains(key));
        Ok(tally)
    }

    /// Whether `task`'s target in `lb`'s group is healthy; Err past the unhealthy grace.
    fn judge_target(
        &mut self,
        obs: &Observation,
        lb: &LoadBalancerRef,
        task: &Task,
        targets: &[TargetHealth],
        tally: &mut Tally,
        seen_unhealthy: &mut Vec<Key>,
    ) -> Result<bool, Verdict> {
        let ids = task.target_ids(&lb.container_name, lb.container_port);
        let Some((first_id, first_port)) = ids.first() else {
            tally
                .waiting
                .push(format!("task {} has no IP or host port yet", task.id()));
            return Ok(false);
        };
        let found = ids.iter().find_map(|(id, port)| {
            targets
                .iter()
                .find(|t| same_target(&t.id, id) && t.port.is_none_or(|p| p == *port))
                .map(|t| (t, id, *port))
        });
        let (id, port) = found.map_or((first_id, *first_port), |(_, id, port)| (id, port));
        let name = format!("{id}:{port} in {}", short(&lb.target_group_arn));
        let Some((target, _, _)) = found else {
            tally.waiting.push(format!("{name} not registered yet"));
            return Ok(false);
        };
        match &target.state {
            TargetState::Healthy => return Ok(true),
            TargetState::Unhealthy => {
                let key = (lb.target_group_arn.clone(), id.clone(), port);
                seen_unhealthy.push(key.clone());
                self.unhealthy_target(obs, task, key, target, &name)?;
                tally.waiting.push(format!(
                    "{name} unhealthy ({})",
                    target.reason.as_deref().unwrap_or("no reason")
                ));
            }
            state => tally.waiting.push(format!("{name} {state}")),
        }
        Ok(false)
    }

    fn unhealthy_target(
        &mut self,
        obs: &Observation,
        task: &Task,
        key: Key,
        target: &TargetHealth,
        name: &str,
    ) -> Result<(), Verdict> {
        let first_seen = *self.unhealthy_since.entry(key).or_insert(obs.now);
        let grace_after_start = f64::from(obs.service.health_check_grace_seconds.max(0));
        let counts_from = first_seen.max(task.started_at.unwrap_or(first_seen) + grace_after_start);
        if obs.now - counts_from < self.criteria.unhealthy_grace.as_secs_f64() {
            return Ok(());
        }
        let why = [target.reason.as_deref(), target.description.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        Err(failed(
            FailureKind::TargetUnhealthy,
            format!(
                "target {name} is unhealthy ({why}) for {:.0}s, past the {}s grace",
                obs.now - first_seen,
                self.criteria.unhealthy_grace.as_secs()
            ),
        ))
    }
}

/// The same target id: equal instance ids, or equal IP addresses however
/// written (ELB and ECS may spell an IPv6 address differently).
fn same_target(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
