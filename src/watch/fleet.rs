//! Several services of one cluster watched together: one poll reads them all
//! with batched calls, and each service keeps its own verdict, deadline,
//! pace and reported changes exactly as [`Watch::run`] would.
//!
//! A poll for N services costs ⌈N/10⌉ DescribeServices (up to 10 services per
//! call), 2 ListTasks per service (ListTasks filters by one `serviceName`),
//! ⌈tasks/100⌉ DescribeTasks for all of them together (up to 100 tasks per
//! call, one cluster), and one DescribeTargetHealth per target group, however
//! many of the services share it. ECS's service deployments are read per
//! service, and only on the polls that need them, as in [`Watch::observe`].
//! https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html
//! https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{
    now_epoch, target_groups, Observation, Progress, Seen, Tracker, Verdict, Watch, WatchOutcome,
};
use crate::api_calls::ApiCalls;
use crate::ecs::{Ecs, Service};
use crate::elb::LoadBalancing;
use crate::error::{AwsErrorClass, Error, Result};
use crate::report::Event;

/// One service of the fleet: how it is watched (its [`Watch`], whose report
/// names the service) and what it waits for.
pub struct Lane<'a> {
    pub watch: Watch<'a>,
    pub tracker: Tracker,
}

/// The services' shared poll.
pub struct Fleet<'a> {
    pub ecs: &'a dyn Ecs,
    pub elb: &'a dyn LoadBalancing,
    pub cluster: &'a str,
    pub interval: Duration,
    /// The run's real call counter.
    pub calls: ApiCalls,
}

/// What one lane remembers between polls (what [`Watch::run`] keeps in locals).
struct State {
    progress: Progress,
    seen: Seen,
    polls: u32,
    errors: u32,
    done: Option<WatchOutcome>,
}

impl Fleet<'_> {
    /// Watches every lane until each has a verdict, or until one lane's
    /// verdict makes `stop(verdict)` true (the others then get `None`: no
    /// verdict, watched no further). The outcomes are in the lanes' order;
    /// each one's `calls` is the whole fleet's, since the calls are shared.
    pub async fn run(
        &self,
        lanes: &mut [Lane<'_>],
        stop: impl Fn(&Verdict) -> bool,
    ) -> Vec<Option<WatchOutcome>> {
        let started = Instant::now();
        let calls_before = self.calls.snapshot().total;
        let mut states: Vec<State> = lanes
            .iter()
            .map(|_| State {
                progress: Progress {
                    service_deployments: true,
                    pace: None,
                    groups: Vec::new(),
                    last: None,
                    best: 0,
                    last_progress: Instant::now(),
                    last_pending: String::from("the first poll"),
                },
                seen: Seen::default(),
                polls: 0,
                errors: 0,
                done: None,
            })
            .collect();
        loop {
            let poll_started = Instant::now();
            let pending: Vec<usize> = (0..lanes.len())
                .filter(|i| states[*i].done.is_none())
                .collect();
            let observed = tokio::time::timeout(
                self.poll_timeout(),
                self.observe(lanes, &mut states, &pending),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Error::failed(format!(
                    "no answer from AWS within {}s",
                    self.poll_timeout().as_secs()
                ))
                .with_aws(AwsErrorClass::NoAnswer, None))
            });
            let calls = self.calls.snapshot().total.saturating_sub(calls_before);
            let mut stopped = false;
            match observed {
                Ok(observations) => {
                    for (i, obs) in pending.iter().copied().zip(observations) {
                        let (lane, state) = (&mut lanes[i], &mut states[i]);
                        if let Some(verdict) = assess(lane, state, obs).await {
                            stopped |= stop(&verdict);
                            state.done = Some(finish(verdict, lane, state, started, calls));
                        }
                    }
                }
                Err(err) => {
                    for i in pending.iter().copied() {
                        let (lane, state) = (&mut lanes[i], &mut states[i]);
                        state.errors += 1;
                        if let Some(reason) = lane.watch.poll_failed(&err, state.errors) {
                            let verdict = Verdict::Blind(reason);
                            stopped |= stop(&verdict);
                            state.done = Some(finish(verdict, lane, state, started, calls));
                        }
                    }
                }
            }
            for i in pending {
                let (lane, state) = (&mut lanes[i], &mut states[i]);
                if state.done.is_some() {
                    continue;
                }
                let baking = lane.tracker.awaiting_ecs_completion();
                if let Some(verdict) =
                    lane.watch
                        .deadline_passed(started.elapsed(), &state.progress, baking)
                {
                    stopped |= stop(&verdict);
                    state.done = Some(finish(verdict, lane, state, started, calls));
                }
            }
            if stopped || states.iter().all(|s| s.done.is_some()) {
                return states.into_iter().map(|s| s.done).collect();
            }
            tokio::time::sleep(self.interval.saturating_sub(poll_started.elapsed())).await;
        }
    }

    /// One poll of the `pending` lanes, in their order.
    async fn observe(
        &self,
        lanes: &[Lane<'_>],
        states: &mut [State],
        pending: &[usize],
    ) -> Result<Vec<Observation>> {
        let now = now_epoch();
        let names: Vec<String> = pending
            .iter()
            .map(|i| lanes[*i].watch.service.to_string())
            .collect();
        let services = self.ecs.services(self.cluster, &names).await?;
        let tasks = self.ecs.tasks_of(self.cluster, &names).await?;
        let services: Vec<Service> = services
            .into_iter()
            .zip(&names)
            .map(|(found, name)| {
                found.unwrap_or_else(|| Service {
                    name: name.clone(),
                    status: "MISSING".into(),
                    ..Default::default()
                })
            })
            .collect();
        // Each target group once per poll, whichever services share it.
        let mut health = BTreeMap::new();
        for service in &services {
            for arn in target_groups(service) {
                if !health.contains_key(arn) {
                    health.insert(arn.to_string(), self.elb.target_health(arn).await?);
                }
            }
        }
        let mut observations = Vec::with_capacity(pending.len());
        for ((i, service), tasks) in pending.iter().copied().zip(services).zip(tasks) {
            let (lane, state) = (&lanes[i], &mut states[i]);
            let targets = target_groups(&service)
                .into_iter()
                .map(|arn| (arn.to_string(), health[arn].clone()))
                .collect();
            let deployments = if state.progress.service_deployments
                && lane.tracker.wants_service_deployments(&service)
            {
                lane.watch
                    .service_deployments(&lane.tracker, &mut state.progress.service_deployments)
                    .await
            } else {
                None
            };
            observations.push(Observation {
                now,
                service,
                tasks,
                targets,
                service_deployments: deployments,
            });
        }
        Ok(observations)
    }

    /// As [`Watch::poll_timeout`]: generous, but bounded.
    fn poll_timeout(&self) -> Duration {
        (self.interval * 6).max(Duration::from_secs(60))
    }
}

/// One lane's share of a poll that answered: what [`Watch::run`] does with
/// an observation. `Some` is the lane's verdict.
async fn assess(lane: &mut Lane<'_>, state: &mut State, obs: Observation) -> Option<Verdict> {
    state.errors = 0;
    state.polls += 1;
    if state.progress.pace.is_none() {
        let (pace, groups) = lane.watch.pace_of(&obs.service).await;
        state.progress.pace = Some(pace);
        state.progress.groups = groups;
    }
    state
        .seen
        .report_changes(&obs, &lane.tracker, lane.watch.report);
    let verdict = lane.tracker.assess(&obs);
    state.progress.last = Some(Box::new(obs));
    match verdict {
        Verdict::Pending(what) => {
            lane.watch
                .report
                .emit(&Event::Waiting { what: what.clone() });
            state.progress.last_pending = what;
        }
        verdict => return Some(verdict),
    }
    if lane.tracker.progress() > state.progress.best {
        state.progress.best = lane.tracker.progress();
        state.progress.last_progress = Instant::now();
    }
    None
}

fn finish(
    verdict: Verdict,
    lane: &Lane<'_>,
    state: &mut State,
    started: Instant,
    calls: u64,
) -> WatchOutcome {
    let last = state.progress.last.take();
    WatchOutcome {
        verdict,
        polls: state.polls,
        calls,
        elapsed: started.elapsed(),
        ours: last.as_ref().map_or_else(Vec::new, |obs| {
            obs.tasks
                .iter()
                .filter(|t| lane.tracker.is_ours(t, &obs.service))
                .map(|t| t.arn.clone())
                .collect()
        }),
        last,
        target_groups: std::mem::take(&mut state.progress.groups),
    }
}
