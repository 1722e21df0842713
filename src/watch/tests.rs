//! The watch loop over a scripted ECS/ELB: blind verdicts (rule 10), the
//! call count from the real counter (issue 9), the paced deadline (rule 11).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::*;
use crate::ecs::{Deployment, LoadBalancerRef, ServiceUpdate, Task, TaskDefinitionDoc};
use crate::elb::{TargetHealth, TargetState};
use crate::error::Error;
use crate::report::Recorder;

const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/50dc6c495c0c9188";

#[derive(Clone, Copy)]
enum Step {
    Healthy,
    Fail(AwsErrorClass, &'static str),
}

struct Fake {
    steps: Mutex<VecDeque<Step>>,
    calls: ApiCalls,
}

impl Fake {
    fn new(steps: &[Step], calls: &ApiCalls) -> Self {
        Self {
            steps: Mutex::new(steps.iter().copied().collect()),
            calls: calls.clone(),
        }
    }
}

#[async_trait]
impl Ecs for Fake {
    async fn service(&self, _: &str, name: &str) -> Result<Option<Service>> {
        self.calls.record("ECS.DescribeServices");
        let step = self
            .steps
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Step::Healthy);
        if let Step::Fail(class, code) = step {
            return Err(Error::failed(format!(
                "describing ECS service `{name}` failed: {code}: ..."
            ))
            .with_aws(class, Some(code.into())));
        }
        Ok(Some(Service {
            name: name.into(),
            status: "ACTIVE".into(),
            desired_count: 1,
            task_definition: TD.into(),
            deployments: vec![Deployment {
                id: "ecs-svc/4715279036817256543".into(),
                status: "PRIMARY".into(),
                task_definition: TD.into(),
                rollout_state: Some("IN_PROGRESS".into()),
                ..Default::default()
            }],
            load_balancers: vec![LoadBalancerRef {
                target_group_arn: TG.into(),
                container_name: "app".into(),
                container_port: 8080,
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
    async fn task_definition(&self, _: &str) -> Result<TaskDefinitionDoc> {
        unreachable!()
    }
    async fn register_task_definition(&self, _: &Value) -> Result<String> {
        unreachable!()
    }
    async fn update_service(&self, _: &ServiceUpdate) -> Result<Service> {
        unreachable!()
    }
    async fn tasks(&self, _: &str, _: &str) -> Result<Vec<Task>> {
        self.calls.record("ECS.ListTasks");
        self.calls.record("ECS.ListTasks");
        self.calls.record("ECS.DescribeTasks");
        Ok(vec![Task {
            arn: "arn:aws:ecs:us-east-1:123456789012:task/prod/a1".into(),
            task_definition: TD.into(),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            started_by: Some("ecs-svc/4715279036817256543".into()),
            private_ip: Some("10.0.1.15".into()),
            ..Default::default()
        }])
    }
    async fn tag_task_definition(&self, _: &str, _: &[(String, String)]) -> Result<()> {
        unreachable!()
    }
    async fn deregister_task_definition(&self, _: &str) -> Result<()> {
        unreachable!()
    }
    async fn task_definition_arns(&self, _: &str) -> Result<Vec<String>> {
        unreachable!()
    }
}

#[async_trait]
impl LoadBalancing for Fake {
    async fn target_health(&self, _: &str) -> Result<Vec<TargetHealth>> {
        self.calls.record("ELBv2.DescribeTargetHealth");
        Ok(vec![TargetHealth {
            id: "10.0.1.15".into(),
            port: Some(8080),
            state: TargetState::Healthy,
            ..Default::default()
        }])
    }
}

fn tracker() -> Tracker {
    Tracker::new(
        Criteria {
            settle: Duration::ZERO,
            ..Criteria::default()
        },
        Goal {
            task_definition: TD.into(),
            deployment_id: Some("ecs-svc/4715279036817256543".into()),
            ..Default::default()
        },
    )
}

async fn watch(steps: &[Step]) -> (WatchOutcome, Vec<Event>) {
    let calls = ApiCalls::new();
    calls.record("ECS.UpdateService"); // before the watch: not the watch's
    let fake = Fake::new(steps, &calls);
    let recorder = Arc::new(Recorder::default());
    let report: Report = recorder.clone();
    let w = Watch {
        ecs: &fake,
        elb: &fake,
        report: &report,
        cluster: "prod",
        service: "web",
        interval: Duration::ZERO,
        deadline: Deadline::fixed(Duration::from_secs(60)),
        calls,
    };
    let outcome = w.run(&mut tracker()).await;
    (outcome, recorder.events())
}

#[tokio::test]
async fn case_10_refused_credentials_or_a_missing_permission_are_blind_at_once() {
    for (class, code, says) in [
        (
            AwsErrorClass::AccessDenied,
            "AccessDeniedException",
            "a permission the watch needs is missing",
        ),
        (
            AwsErrorClass::Credentials,
            "ExpiredTokenException",
            "credentials were refused",
        ),
    ] {
        let (outcome, _) = watch(&[Step::Fail(class, code)]).await;
        match &outcome.verdict {
            Verdict::Blind(what) => assert!(what.contains(says) && what.contains(code), "{what}"),
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(outcome.polls, 0);
    }
}

#[tokio::test]
async fn case_10_five_failed_polls_in_a_row_are_blind_not_failed() {
    let throttled = Step::Fail(AwsErrorClass::Throttled, "ThrottlingException");
    let (outcome, events) = watch(&[throttled; 5]).await;
    match &outcome.verdict {
        Verdict::Blind(what) => assert!(
            what.contains("throttled") && what.contains("on 5 polls in a row"),
            "{what}"
        ),
        other => panic!("{other:?}"),
    }
    let warnings = events
        .iter()
        .filter(|e| matches!(e, Event::Warning { message } if message.contains("poll failed")))
        .count();
    assert_eq!(warnings, 5);
}

#[tokio::test]
async fn throttled_polls_are_retried_and_the_calls_come_from_the_real_counter() {
    let throttled = Step::Fail(AwsErrorClass::Throttled, "ThrottlingException");
    let (outcome, _) = watch(&[throttled, throttled, Step::Healthy]).await;
    assert!(
        matches!(outcome.verdict, Verdict::Healthy(_)),
        "{:?}",
        outcome.verdict
    );
    assert_eq!(outcome.polls, 1);
    // 2 failed DescribeServices + 1 whole poll (DescribeServices, 2 ListTasks,
    // DescribeTasks, DescribeTargetHealth); the UpdateService before is not counted.
    assert_eq!(outcome.calls, 2 + 5);
}

fn watcher<'a>(fake: &'a Fake, report: &'a Report, deadline: Deadline) -> Watch<'a> {
    Watch {
        ecs: fake,
        elb: fake,
        report,
        cluster: "prod",
        service: "web",
        interval: Duration::ZERO,
        deadline,
        calls: ApiCalls::new(),
    }
}

#[test]
fn case_11_a_progressing_rollout_is_not_failed_before_its_pace_and_the_cap_is_hard() {
    let fake = Fake::new(&[], &ApiCalls::new());
    let report: Report = Arc::new(Recorder::default());
    let slow = pace(&PaceInput {
        desired_count: 4,
        maximum_percent: 100,
        minimum_healthy_percent: 50,
        grace_seconds: 0,
        target_groups: vec![TargetGroupInfo::default()],
    });
    let progress = |stalled: Duration| Progress {
        service_deployments: true,
        pace: Some(slow.clone()),
        groups: vec![],
        last: None,
        best: 2,
        last_progress: Instant::now().checked_sub(stalled).unwrap(),
        last_pending: "2/4 targets healthy".into(),
    };
    let w = watcher(&fake, &report, Deadline::default());
    // Before the pace's deadline: never, stalled or not.
    assert_eq!(
        w.deadline_passed(
            slow.deadline / 2,
            &progress(Duration::from_secs(600)),
            false
        ),
        None
    );
    // Past it, but a task turned healthy recently: still not.
    assert_eq!(
        w.deadline_passed(
            slow.deadline + Duration::from_secs(1),
            &progress(Duration::ZERO),
            false
        ),
        None
    );
    // Past it and stalled for a whole batch: failed.
    let v = w.deadline_passed(
        slow.deadline + Duration::from_secs(1),
        &progress(slow.per_batch),
        false,
    );
    assert!(
        matches!(&v, Some(Verdict::Failed(f)) if f.kind == FailureKind::Deadline),
        "{v:?}"
    );
    // Every task healthy, only ECS's COMPLETED awaited (deployment alarms' bake
    // time): not failed at the pace deadline, only an hour past it.
    assert_eq!(
        w.deadline_passed(
            slow.deadline + Duration::from_secs(1),
            &progress(slow.per_batch),
            true
        ),
        None
    );
    let v = w.deadline_passed(
        slow.deadline + Duration::from_secs(BAKE_ALLOWANCE_SECS + 1),
        &progress(Duration::ZERO),
        true,
    );
    assert!(
        matches!(&v, Some(Verdict::Failed(f)) if f.kind == FailureKind::Deadline),
        "{v:?}"
    );
    // The user's --timeout is a hard cap, progress or not.
    let capped = watcher(
        &fake,
        &report,
        Deadline {
            cap: Some(Duration::from_secs(120)),
            ..Deadline::default()
        },
    );
    let v = capped.deadline_passed(Duration::from_secs(120), &progress(Duration::ZERO), true);
    assert!(
        matches!(&v, Some(Verdict::Failed(f)) if f.reason.contains("no verdict within 120s")),
        "{v:?}"
    );
}
