//! Observe the rollout until a verdict: one poll reads the service, its tasks
//! and the target health of every target group; state changes are reported
//! as they happen; the verdict comes from the pure [`verdict::Tracker`].

pub mod verdict;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ecs::Ecs;
use crate::elb::LoadBalancing;
use crate::error::Result;
use crate::report::{short_arn, Event, Report};

pub use verdict::{Criteria, Failure, FailureKind, Goal, Observation, Tracker, Verdict};

/// How many polls in a row may fail (throttling, 5xx, network) before the watch gives up.
const MAX_CONSECUTIVE_POLL_ERRORS: u32 = 5;

pub struct Watch<'a> {
    pub ecs: &'a dyn Ecs,
    pub elb: &'a dyn LoadBalancing,
    pub report: &'a Report,
    pub cluster: &'a str,
    pub service: &'a str,
    pub interval: Duration,
    pub timeout: Duration,
}

/// The verdict (never Pending) and what it took to reach it.
#[derive(Debug)]
pub struct WatchOutcome {
    pub verdict: Verdict,
    pub polls: u32,
    /// AWS API calls made by the polls.
    pub calls: u64,
    pub elapsed: Duration,
}

pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl Watch<'_> {
    /// One poll: 1 DescribeServices + 2 ListTasks + ⌈tasks/100⌉ DescribeTasks + 1 DescribeTargetHealth per target group.
    pub async fn observe(&self) -> Result<(Observation, u64)> {
        let now = now_epoch();
        let service = self
            .ecs
            .service(self.cluster, self.service)
            .await?
            .unwrap_or_else(|| crate::ecs::Service {
                name: self.service.to_string(),
                status: "MISSING".into(),
                ..Default::default()
            });
        let tasks = self.ecs.tasks(self.cluster, self.service).await?;
        // 1 DescribeServices + 2 ListTasks, and DescribeTasks only when there are tasks.
        let mut calls = 3 + tasks.len().div_ceil(100) as u64;
        let mut targets = Vec::new();
        let mut groups: Vec<&str> = service
            .load_balancers
            .iter()
            .map(|lb| lb.target_group_arn.as_str())
            .collect();
        groups.dedup();
        for arn in groups {
            targets.push((arn.to_string(), self.elb.target_health(arn).await?));
            calls += 1;
        }
        Ok((
            Observation {
                now,
                service,
                tasks,
                targets,
            },
            calls,
        ))
    }

    pub async fn run(&self, tracker: &mut Tracker) -> Result<WatchOutcome> {
        let started = Instant::now();
        let mut seen = Seen::default();
        let mut polls = 0u32;
        let mut calls = 0u64;
        let mut errors = 0u32;
        let mut last_pending = String::from("the first poll");
        loop {
            let poll_started = Instant::now();
            match self.observe().await {
                Ok((obs, n)) => {
                    errors = 0;
                    polls += 1;
                    calls += n;
                    seen.report_changes(&obs, tracker, self.report);
                    match tracker.assess(&obs) {
                        Verdict::Pending(what) => {
                            self.report.emit(&Event::Waiting { what: what.clone() });
                            last_pending = what;
                        }
                        verdict => {
                            return Ok(WatchOutcome {
                                verdict,
                                polls,
                                calls,
                                elapsed: started.elapsed(),
                            })
                        }
                    }
                }
                Err(err) => {
                    errors += 1;
                    let next = if errors >= MAX_CONSECUTIVE_POLL_ERRORS {
                        "giving up"
                    } else {
                        "retrying"
                    };
                    self.report.emit(&Event::Warning {
                        message: format!(
                            "poll failed ({errors}/{MAX_CONSECUTIVE_POLL_ERRORS}), {next}: {}",
                            err.message()
                        ),
                    });
                    if errors >= MAX_CONSECUTIVE_POLL_ERRORS {
                        return Err(err.context(format!("watching service `{}`", self.service)));
                    }
                }
            }
            if started.elapsed() >= self.timeout {
                let reason = format!(
                    "no verdict within {}s; still waiting for: {last_pending}",
                    self.timeout.as_secs()
                );
                let verdict = Verdict::Failed(Failure {
                    kind: FailureKind::Deadline,
                    reason,
                });
                return Ok(WatchOutcome {
                    verdict,
                    polls,
                    calls,
                    elapsed: started.elapsed(),
                });
            }
            tokio::time::sleep(self.interval.saturating_sub(poll_started.elapsed())).await;
        }
    }
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
            if !ours && first_sight && task.last_status != "STOPPED" {
                continue;
            }
            if !ours && task.last_status == "STOPPED" && first_sight {
                continue; // history from before this watch
            }
            let detail = match task.last_status.as_str() {
                "STOPPED" => Some(verdict::describe_stop(task)),
                "RUNNING" => task.private_ip.clone().map(|ip| format!("ip {ip}")),
                _ => None,
            };
            report.emit(&Event::TaskChanged {
                task: task.id().to_string(),
                revision: short_arn(&task.task_definition).to_string(),
                status: task.last_status.clone(),
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
                    state: target.state.clone(),
                    reason: target.reason.clone(),
                });
            }
        }
    }
}
