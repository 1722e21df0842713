//! How long a rolling update is expected to take (rule 11), from the numbers
//! ECS and the load balancer work with: batches from the desired count and
//! maximumPercent/minimumHealthyPercent, the time a new target needs to turn
//! healthy, and the deregistration delay old targets drain for between batches.
//! https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html

use std::time::Duration;

use crate::ecs::Service;
use crate::elb::TargetGroupInfo;

/// Seconds a new task needs from UpdateService to RUNNING (scheduling,
/// provisioning, image pull, start): a generous constant, since nothing in the
/// API says it in advance.
const START_SECONDS: u64 = 60;

/// The deadline is this many times the expected duration (rollouts vary).
const MARGIN: f64 = 1.5;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaceInput {
    pub desired_count: u32,
    /// Default 200 (rolling update).
    pub maximum_percent: u32,
    /// Default 100.
    pub minimum_healthy_percent: u32,
    /// `healthCheckGracePeriodSeconds`.
    pub grace_seconds: u32,
    /// The service's target groups (their health check and deregistration settings).
    pub target_groups: Vec<TargetGroupInfo>,
}

impl PaceInput {
    pub fn of(service: &Service, target_groups: Vec<TargetGroupInfo>) -> Self {
        let config = &service.deployment_configuration;
        let percent =
            |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
        Self {
            desired_count: u32::try_from(service.desired_count).unwrap_or(0),
            maximum_percent: percent(config.maximum_percent, 200),
            minimum_healthy_percent: percent(config.minimum_healthy_percent, 100),
            grace_seconds: u32::try_from(service.health_check_grace_seconds).unwrap_or(0),
            target_groups,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    /// Batches of new tasks the scheduler can start.
    pub batches: u32,
    /// One batch: start, turn healthy in every target group.
    pub per_batch: Duration,
    /// The whole rollout, including the drains between batches.
    pub expected: Duration,
    /// `expected` with a margin: no progressing rollout fails before it.
    pub deadline: Duration,
}

/// The expected pace of a rolling update.
pub fn pace(input: &PaceInput) -> Pace {
    let desired = input.desired_count.max(1);
    // maximumPercent rounds down, minimumHealthyPercent rounds up.
    let most = desired * input.maximum_percent / 100;
    let least = (desired * input.minimum_healthy_percent).div_ceil(100);
    let batch = most.saturating_sub(least).max(1);
    let batches = desired.div_ceil(batch);
    // A target turns healthy after `healthy threshold` passing checks, one per
    // interval, the last one taking up to the timeout.
    let to_healthy = input
        .target_groups
        .iter()
        .map(|tg| u64::from(tg.interval_seconds * tg.healthy_threshold + tg.timeout_seconds))
        .max()
        .unwrap_or(0);
    let drain = input
        .target_groups
        .iter()
        .map(|tg| u64::from(tg.deregistration_delay_seconds))
        .max()
        .unwrap_or(0);
    let per_batch = START_SECONDS + to_healthy.max(u64::from(input.grace_seconds));
    let expected = u64::from(batches) * per_batch + u64::from(batches - 1) * drain;
    Pace {
        batches,
        per_batch: Duration::from_secs(per_batch),
        expected: Duration::from_secs(expected),
        deadline: Duration::from_secs_f64(expected as f64 * MARGIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tg(interval: u32, threshold: u32, timeout: u32, delay: u32) -> TargetGroupInfo {
        TargetGroupInfo {
            interval_seconds: interval,
            healthy_threshold: threshold,
            timeout_seconds: timeout,
            deregistration_delay_seconds: delay,
            ..Default::default()
        }
    }

    #[test]
    fn pace_follows_batches_health_checks_and_deregistration_delay() {
        let cases = [
            // (desired, max%, min%, grace, tgs, batches, expected seconds)
            // 200/100: all new tasks at once; ALB defaults 30 s × 5 + 5 s.
            (4, 200, 100, 0, vec![tg(30, 5, 5, 300)], 1, 60 + 155),
            // 100/50 on 4 tasks: two batches of 2, a drain between them.
            (4, 100, 50, 0, vec![tg(30, 5, 5, 300)], 2, 2 * 215 + 300),
            // 100/100 cannot start anything before stopping: one by one.
            (
                3,
                100,
                100,
                0,
                vec![tg(10, 2, 5, 30)],
                3,
                3 * (60 + 25) + 2 * 30,
            ),
            // The grace period is longer than the checks: it sets the batch time.
            (1, 200, 100, 120, vec![tg(10, 2, 5, 30)], 1, 60 + 120),
            // No load balancer: only the start time.
            (2, 200, 100, 0, vec![], 1, 60),
            // desiredCount 0 still gets one batch (no zero deadline).
            (0, 200, 100, 0, vec![], 1, 60),
        ];
        for (desired, max, min, grace, tgs, batches, expected) in cases {
            let p = pace(&PaceInput {
                desired_count: desired,
                maximum_percent: max,
                minimum_healthy_percent: min,
                grace_seconds: grace,
                target_groups: tgs,
            });
            assert_eq!(p.batches, batches, "{desired} {max}/{min}");
            assert_eq!(
                p.expected,
                Duration::from_secs(expected),
                "{desired} {max}/{min}"
            );
            assert_eq!(p.deadline, Duration::from_secs_f64(expected as f64 * 1.5));
        }
    }

    #[test]
    fn the_slowest_target_group_sets_the_pace() {
        let p = pace(&PaceInput {
            desired_count: 2,
            maximum_percent: 200,
            minimum_healthy_percent: 100,
            grace_seconds: 0,
            target_groups: vec![tg(5, 2, 2, 10), tg(30, 3, 10, 60)],
        });
        assert_eq!(p.expected, Duration::from_secs(60 + 100));
    }

    #[test]
    fn pace_input_uses_ecs_defaults_when_the_service_does_not_say() {
        let service = Service {
            desired_count: 3,
            health_check_grace_seconds: 45,
            ..Default::default()
        };
        let input = PaceInput::of(&service, vec![]);
        assert_eq!(
            (
                input.maximum_percent,
                input.minimum_healthy_percent,
                input.grace_seconds
            ),
            (200, 100, 45)
        );
    }
}
