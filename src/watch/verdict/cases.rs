//! One spec per numbered case of issue 10, over inputs shaped like the real
//! DescribeServices / DescribeTasks / DescribeTargetHealth /
//! DescribeServiceDeployments answers (ids, states and reason texts as ECS
//! and ELBv2 write them).

use std::time::Duration;

use super::*;
use crate::ecs::{
    CircuitBreaker, ContainerState, Deployment, DeploymentAlarms, DeploymentConfiguration,
    HealthStatus, LoadBalancerRef, PortBinding, RolloutState, ServiceDeploymentStatus,
    ServiceEvent, StopCode,
};
use crate::elb::TargetState;

const ACCOUNT: &str = "123456789012";
const T0: f64 = 1_733_000_000.0;
const OURS: &str = "ecs-svc/4715279036817256543";
const PREVIOUS: &str = "ecs-svc/1234567890123456789";

fn td(revision: u32) -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:{revision}")
}

fn tg() -> String {
    format!("arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/web/50dc6c495c0c9188")
}

fn criteria() -> Criteria {
    Criteria {
        settle: Duration::ZERO,
        ..Criteria::default()
    }
}

fn goal() -> Goal {
    Goal {
        task_definition: td(8),
        deployment_id: Some(OURS.into()),
        previous_task_definition: Some(td(7)),
        started_at: T0,
        health_checked: vec![],
        stops_after: None,
    }
}

fn dep(id: &str, status: &str, revision: u32, rollout: &str) -> Deployment {
    Deployment {
        id: id.into(),
        status: status.into(),
        task_definition: td(revision),
        rollout_state: Some(RolloutState::from_wire(rollout)),
        rollout_state_reason: Some(match rollout {
            "COMPLETED" => format!("ECS deployment {id} completed."),
            _ => format!("ECS deployment {id} in progress."),
        }),
        desired_count: 1,
        created_at: Some(if id == OURS { T0 } else { T0 - 3600.0 }),
        ..Default::default()
    }
}

fn service(deployments: Vec<Deployment>) -> Service {
    Service {
        arn: format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web"),
        name: "web".into(),
        status: "ACTIVE".into(),
        desired_count: 1,
        task_definition: td(8),
        deployments,
        load_balancers: vec![LoadBalancerRef {
            target_group_arn: tg(),
            container_name: "app".into(),
            container_port: 8080,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn rolling() -> Service {
    service(vec![
        dep(OURS, "PRIMARY", 8, "IN_PROGRESS"),
        dep(PREVIOUS, "ACTIVE", 7, "COMPLETED"),
    ])
}

fn task(id: &str, ip: &str) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task/prod/{id}"),
        task_definition: td(8),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        started_by: Some(OURS.into()),
        private_ip: Some(ip.into()),
        created_at: Some(T0 + 1.0),
        started_at: Some(T0 + 2.0),
        containers: vec![ContainerState {
            name: "app".into(),
            last_status: Some("RUNNING".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn stopped(mut t: Task, code: &str, reason: &str) -> Task {
    t.last_status = "STOPPED".into();
    t.desired_status = "STOPPED".into();
    t.stop_code = Some(StopCode::from_wire(code));
    t.stopped_reason = Some(reason.into());
    t
}

fn target(id: &str, port: i32, state: &str) -> TargetHealth {
    let (reason, description) = match state {
        "initial" => (
            Some("Elb.InitialHealthChecking"),
            Some("Initial health checks in progress"),
        ),
        "unhealthy" => (
            Some("Target.ResponseCodeMismatch"),
            Some("Health checks failed with these codes: [404]"),
        ),
        _ => (None, None),
    };
    TargetHealth {
        id: id.into(),
        port: Some(port),
        state: TargetState::from_wire(state),
        reason: reason.map(str::to_string),
        description: description.map(str::to_string),
    }
}

fn obs(now: f64, service: Service, tasks: Vec<Task>, targets: Vec<TargetHealth>) -> Observation {
    Observation {
        now,
        service,
        tasks,
        targets: vec![(tg(), targets)],
        service_deployments: None,
    }
}

fn failure(v: &Verdict) -> Option<(FailureKind, &str)> {
    match v {
        Verdict::Failed(f) => Some((f.kind, f.reason.as_str())),
        _ => None,
    }
}

fn pending(v: &Verdict) -> &str {
    match v {
        Verdict::Pending(what) => what,
        other => panic!("expected Pending, got {other:?}"),
    }
}

fn with_health(mut t: Task, task: &str, app: &str) -> Task {
    t.health_status = Some(HealthStatus::from_wire(task));
    t.containers[0].health_status = Some(HealthStatus::from_wire(app));
    t
}

// ---------------------------------------------------------------- 1 container health checks

#[test]
fn case_1_a_task_counts_only_once_its_health_checked_containers_are_healthy() {
    let checked = Goal {
        health_checked: vec!["app".into()],
        ..goal()
    };
    let mut tracker = Tracker::new(criteria(), checked);
    let alb_healthy = vec![target("10.0.1.15", 8080, "healthy")];
    let unknown = with_health(task("a1", "10.0.1.15"), "UNKNOWN", "UNKNOWN");
    let v = tracker.assess(&obs(
        T0 + 20.0,
        rolling(),
        vec![unknown],
        alb_healthy.clone(),
    ));
    assert!(
        pending(&v).contains("container app health check not HEALTHY yet"),
        "{v:?}"
    );
    let healthy = with_health(task("a1", "10.0.1.15"), "HEALTHY", "HEALTHY");
    let v = tracker.assess(&obs(T0 + 25.0, rolling(), vec![healthy], alb_healthy));
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
}

#[test]
fn case_1_an_unhealthy_container_fails_past_the_grace_though_the_alb_says_healthy() {
    let checked = Goal {
        health_checked: vec!["app".into()],
        ..goal()
    };
    let mut tracker = Tracker::new(criteria(), checked);
    let unhealthy = with_health(task("a1", "10.0.1.15"), "UNHEALTHY", "UNHEALTHY");
    let alb_healthy = vec![target("10.0.1.15", 8080, "healthy")];
    for at in [10.0, 30.0] {
        let v = tracker.assess(&obs(
            T0 + at,
            rolling(),
            vec![unhealthy.clone()],
            alb_healthy.clone(),
        ));
        assert!(
            pending(&v).contains("container app health check UNHEALTHY"),
            "{at}: {v:?}"
        );
    }
    let v = tracker.assess(&obs(T0 + 41.0, rolling(), vec![unhealthy], alb_healthy));
    let (kind, reason) = failure(&v).expect("failed");
    assert_eq!(kind, FailureKind::ContainerUnhealthy);
    assert!(reason.contains("past the 30s grace"), "{reason}");
}

#[test]
fn case_1_a_task_stopped_for_failed_container_health_checks_fails_with_that_reason() {
    let t = stopped(
        task("a1", "10.0.1.15"),
        "ServiceSchedulerInitiated",
        "Task failed container health checks",
    );
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 60.0, rolling(), vec![t], vec![]));
    let (kind, reason) = failure(&v).expect("failed");
    assert_eq!(kind, FailureKind::ContainerUnhealthy);
    assert!(
        reason.contains("Task failed container health checks"),
        "{reason}"
    );
}

// ---------------------------------------------------------------- 2 settle

#[test]
fn case_2_a_task_that_passes_one_check_and_crashes_seconds_later_is_not_deployed() {
    let settled = Criteria {
        settle: DEFAULT_SETTLE,
        ..criteria()
    };
    let mut tracker = Tracker::new(settled, goal());
    let healthy = vec![target("10.0.1.15", 8080, "healthy")];
    let v = tracker.assess(&obs(
        T0 + 30.0,
        rolling(),
        vec![task("a1", "10.0.1.15")],
        healthy.clone(),
    ));
    assert!(pending(&v).contains("holding"), "{v:?}");
    // 3 s after its first healthy check the app exits; ECS marks it on its way out.
    let mut crashed = task("a1", "10.0.1.15");
    crashed.last_status = "DEACTIVATING".into();
    crashed.desired_status = "STOPPED".into();
    crashed.stop_code = Some(StopCode::EssentialContainerExited);
    crashed.stopped_reason = Some("Essential container in task exited".into());
    crashed.containers[0].exit_code = Some(1);
    let v = tracker.assess(&obs(T0 + 35.0, rolling(), vec![crashed], healthy));
    let (kind, reason) = failure(&v).expect("failed, never Healthy");
    assert_eq!(kind, FailureKind::TasksStopped);
    assert!(
        reason.contains("Essential container in task exited"),
        "{reason}"
    );
}

#[test]
fn case_2_healthy_needs_the_whole_settle_period_and_a_relapse_starts_it_again() {
    let settled = Criteria {
        settle: Duration::from_secs(10),
        ..criteria()
    };
    let mut tracker = Tracker::new(settled, goal());
    let tasks = vec![task("a1", "10.0.1.15")];
    let at = |tracker: &mut Tracker, t: f64, state: &str| {
        tracker.assess(&obs(
            T0 + t,
            rolling(),
            tasks.clone(),
            vec![target("10.0.1.15", 8080, state)],
        ))
    };
    assert!(pending(&at(&mut tracker, 20.0, "healthy")).contains("0/10s"));
    assert!(pending(&at(&mut tracker, 25.0, "initial")).contains("initial"));
    assert!(pending(&at(&mut tracker, 30.0, "healthy")).contains("holding"));
    assert!(pending(&at(&mut tracker, 35.0, "healthy")).contains("5/10s"));
    assert!(matches!(
        at(&mut tracker, 40.0, "healthy"),
        Verdict::Healthy(_)
    ));
}

// ---------------------------------------------------------------- 3 alarms, --until completed

fn with_alarms(mut svc: Service, rollback: bool) -> Service {
    svc.deployment_configuration = DeploymentConfiguration {
        alarms: Some(DeploymentAlarms {
            names: vec!["web-5xx".into(), "web-latency-p99".into()],
            enable: true,
            rollback,
        }),
        ..Default::default()
    };
    svc
}

#[test]
fn case_3_with_deployment_alarms_healthy_waits_for_ecs_to_complete_the_deployment() {
    let mut tracker = Tracker::new(criteria(), goal());
    let tasks = vec![task("a1", "10.0.1.15")];
    let healthy = vec![target("10.0.1.15", 8080, "healthy")];
    let v = tracker.assess(&obs(
        T0 + 30.0,
        with_alarms(rolling(), true),
        tasks.clone(),
        healthy.clone(),
    ));
    assert!(pending(&v).contains("COMPLETED"), "{v:?}");
    assert!(tracker.wants_service_deployments(&with_alarms(rolling(), true)));
    // ECS's bake time ended: COMPLETED on DescribeServices …
    let done = with_alarms(service(vec![dep(OURS, "PRIMARY", 8, "COMPLETED")]), true);
    let v = tracker.assess(&obs(T0 + 400.0, done, tasks.clone(), healthy.clone()));
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
    // … or SUCCESSFUL on the service deployment.
    let mut o = obs(T0 + 400.0, with_alarms(rolling(), true), tasks, healthy);
    o.service_deployments = Some(vec![ServiceDeployment {
        arn: format!(
            "arn:aws:ecs:us-east-1:{ACCOUNT}:service-deployment/prod/web/NCWGC2ZR-taawPAYrIaU5"
        ),
        status: ServiceDeploymentStatus::Successful,
        created_at: Some(T0 + 0.5),
        ..Default::default()
    }]);
    let v = Tracker::new(criteria(), goal()).assess(&o);
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
}

#[test]
fn case_3_until_completed_waits_for_completed_without_alarms_too() {
    let completed = Criteria {
        require_completed: true,
        ..criteria()
    };
    let tasks = vec![task("a1", "10.0.1.15")];
    let healthy = vec![target("10.0.1.15", 8080, "healthy")];
    let v = Tracker::new(completed.clone(), goal()).assess(&obs(
        T0 + 30.0,
        rolling(),
        tasks.clone(),
        healthy.clone(),
    ));
    assert!(pending(&v).contains("--until completed"), "{v:?}");
    let done = service(vec![dep(OURS, "PRIMARY", 8, "COMPLETED")]);
    let v = Tracker::new(completed, goal()).assess(&obs(T0 + 60.0, done, tasks, healthy));
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
}

#[test]
fn case_3_an_alarm_rollback_names_the_alarms_that_fired() {
    let mut ours = dep(OURS, "ACTIVE", 8, "FAILED");
    ours.rollout_state_reason = None;
    let svc = with_alarms(
        service(vec![
            dep("ecs-svc/8012395811938592041", "PRIMARY", 7, "IN_PROGRESS"),
            ours,
        ]),
        true,
    );
    let mut o = obs(T0 + 300.0, svc, vec![], vec![]);
    o.service_deployments = Some(vec![ServiceDeployment {
        arn: format!(
            "arn:aws:ecs:us-east-1:{ACCOUNT}:service-deployment/prod/web/NCWGC2ZR-taawPAYrIaU5"
        ),
        status: ServiceDeploymentStatus::RollbackInProgress,
        created_at: Some(T0 + 0.5),
        alarm_names: vec!["web-5xx".into(), "web-latency-p99".into()],
        triggered_alarms: vec!["web-5xx".into()],
        ..Default::default()
    }]);
    match Tracker::new(criteria(), goal()).assess(&o) {
        Verdict::EcsRollingBack {
            task_definition,
            reason,
            ..
        } => {
            assert_eq!(task_definition, td(7));
            assert!(
                reason.contains("deployment alarms") && reason.contains("alarms in ALARM: web-5xx"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- 5 desiredCount 0

#[test]
fn case_5_desired_count_zero_on_our_primary_is_unverifiable() {
    let mut ours = dep(OURS, "PRIMARY", 8, "COMPLETED");
    ours.desired_count = 0;
    let mut svc = service(vec![ours]);
    svc.desired_count = 0;
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 5.0, svc, vec![], vec![]));
    assert!(
        matches!(&v, Verdict::Unverifiable(why) if why.contains("desiredCount is 0")),
        "{v:?}"
    );
}

// ---------------------------------------------------------------- 6 tasks on their way out

#[test]
fn case_6_tasks_on_their_way_out_never_count_and_a_task_listed_twice_counts_once() {
    let healthy = |ip: &str| target(ip, 8080, "healthy");
    let leaving = [
        ("RUNNING", "STOPPED"),
        ("DEACTIVATING", "STOPPED"),
        ("STOPPING", "STOPPED"),
        ("DEPROVISIONING", "STOPPED"),
    ];
    for (last, desired) in leaving {
        let mut t = task("a1", "10.0.1.15");
        t.last_status = last.into();
        t.desired_status = desired.into();
        let v = Tracker::new(criteria(), goal()).assess(&obs(
            T0 + 30.0,
            rolling(),
            vec![t],
            vec![healthy("10.0.1.15")],
        ));
        assert!(
            pending(&v).contains("0/1 new tasks running"),
            "{last}/{desired}: {v:?}"
        );
    }
    let mut two = rolling();
    two.desired_count = 2;
    let t = task("a1", "10.0.1.15");
    let v = Tracker::new(criteria(), goal()).assess(&obs(
        T0 + 30.0,
        two,
        vec![t.clone(), t],
        vec![healthy("10.0.1.15")],
    ));
    assert!(pending(&v).contains("1/2 new tasks running"), "{v:?}");
}

// ---------------------------------------------------------------- 7 superseded

#[test]
fn case_7_a_deployment_that_is_neither_ours_nor_ecs_rollback_supersedes_us() {
    let cases = [
        (
            "a newer pipeline run",
            dep("ecs-svc/5550001112223334445", "PRIMARY", 9, "IN_PROGRESS"),
            "web:9",
        ),
        (
            "force-new-deployment of our revision",
            dep("ecs-svc/5550001112223334446", "PRIMARY", 8, "IN_PROGRESS"),
            "web:8",
        ),
        // A person redeploying the recorded revision: nothing says ECS did it.
        (
            "a console redeploy of the previous revision",
            dep("ecs-svc/5550001112223334447", "PRIMARY", 7, "IN_PROGRESS"),
            "web:7",
        ),
    ];
    for (name, primary, now_deploys) in cases {
        let svc = service(vec![primary, dep(OURS, "ACTIVE", 8, "IN_PROGRESS")]);
        let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 40.0, svc, vec![], vec![]));
        assert!(
            matches!(&v, Verdict::Superseded(why) if why.contains(now_deploys)),
            "{name}: {v:?}"
        );
    }
}

// ---------------------------------------------------------------- 8 ECS rolling back

fn breaker(rollback: bool) -> DeploymentConfiguration {
    DeploymentConfiguration {
        maximum_percent: Some(200),
        minimum_healthy_percent: Some(100),
        circuit_breaker: Some(CircuitBreaker {
            enable: true,
            rollback,
        }),
        ..Default::default()
    }
}

#[test]
fn case_8_the_circuit_breaker_rolling_back_is_ecs_rolling_back_with_its_reason() {
    let mut ours = dep(OURS, "ACTIVE", 8, "FAILED");
    ours.rollout_state_reason =
        Some("ECS deployment circuit breaker: tasks failed to start.".into());
    ours.failed_tasks = 3;
    let mut svc = service(vec![
        dep("ecs-svc/8012395811938592041", "PRIMARY", 7, "IN_PROGRESS"),
        ours,
    ]);
    svc.deployment_configuration = breaker(true);
    svc.task_definition = td(7);
    match Tracker::new(criteria(), goal()).assess(&obs(T0 + 200.0, svc, vec![], vec![])) {
        Verdict::EcsRollingBack {
            deployment_id,
            task_definition,
            reason,
        } => {
            assert_eq!(
                deployment_id.as_deref(),
                Some("ecs-svc/8012395811938592041")
            );
            assert_eq!(task_definition, td(7));
            assert!(
                reason.contains(
                    "FAILED (circuit breaker): ECS deployment circuit breaker: tasks failed to start."
                ) && reason.contains("rolled the service back to web:7"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn case_8_a_failed_deployment_waits_a_bounded_time_for_ecs_rollback_then_fails() {
    let mut ours = dep(OURS, "PRIMARY", 8, "FAILED");
    ours.rollout_state_reason =
        Some("ECS deployment circuit breaker: tasks failed to start.".into());
    let mut svc = service(vec![ours, dep(PREVIOUS, "ACTIVE", 7, "COMPLETED")]);
    svc.deployment_configuration = breaker(true);
    let mut tracker = Tracker::new(criteria(), goal());
    for at in [100.0, 130.0, 159.0] {
        let v = tracker.assess(&obs(T0 + at, svc.clone(), vec![], vec![]));
        assert!(
            pending(&v).contains("waiting up to 60s for ECS's own rollback"),
            "{at}: {v:?}"
        );
    }
    let v = tracker.assess(&obs(T0 + 160.0, svc.clone(), vec![], vec![]));
    let (kind, reason) = failure(&v).expect("failed");
    assert_eq!(kind, FailureKind::CircuitBreaker);
    assert!(
        reason.contains("ECS started no rollback within 60s"),
        "{reason}"
    );
    // Without rollback configured there is nothing to wait for.
    svc.deployment_configuration = breaker(false);
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 100.0, svc, vec![], vec![]));
    assert_eq!(failure(&v).map(|f| f.0), Some(FailureKind::CircuitBreaker));
}

// ---------------------------------------------------------------- 9 infrastructure stops

#[test]
fn case_9_spot_termination_and_scale_in_stops_do_not_count_against_the_revision() {
    let cases = [
        ("SpotInterruption", "Your Spot Task was interrupted."),
        ("TerminationNotice", "Your Spot Task was interrupted."),
    ];
    for (code, reason) in cases {
        let t = stopped(task("a1", "10.0.1.15"), code, reason);
        let v =
            Tracker::new(criteria(), goal()).assess(&obs(T0 + 60.0, rolling(), vec![t], vec![]));
        assert!(
            pending(&v).contains("stopped by the infrastructure, being replaced"),
            "{code}: {v:?}"
        );
    }
    // Scale-in: desiredCount went 3 → 2 and the scheduler stopped a new task.
    let mut tracker = Tracker::new(criteria(), goal());
    let mut three = rolling();
    three.desired_count = 3;
    tracker.assess(&obs(T0 + 30.0, three, vec![], vec![]));
    let mut two = rolling();
    two.desired_count = 2;
    let t = stopped(
        task("a3", "10.0.1.17"),
        "ServiceSchedulerInitiated",
        &format!("Scaling activity initiated by (deployment {OURS})"),
    );
    let v = tracker.assess(&obs(T0 + 60.0, two, vec![t.clone()], vec![]));
    assert!(matches!(v, Verdict::Pending(_)), "{v:?}");
    // The deployment trimming a task it overshot (desiredCount unchanged): the
    // scheduler's choice too, not the revision's failure.
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 60.0, rolling(), vec![t], vec![]));
    assert!(matches!(v, Verdict::Pending(_)), "{v:?}");
}

#[test]
fn case_9_failures_to_start_and_essential_container_exits_still_fail_fast() {
    let cases = [
        ("TaskFailedToStart", "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc: not found"),
        ("EssentialContainerExited", "Essential container in task exited"),
        ("ServiceSchedulerInitiated", "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/50dc6c495c0c9188)"),
    ];
    for (code, reason) in cases {
        let t = stopped(task("a1", "10.0.1.15"), code, reason);
        let v =
            Tracker::new(criteria(), goal()).assess(&obs(T0 + 60.0, rolling(), vec![t], vec![]));
        let (kind, why) = failure(&v).unwrap_or_else(|| panic!("{code}: {v:?}"));
        assert_eq!(kind, FailureKind::TasksStopped, "{code}");
        assert!(why.contains(reason) && why.contains(code), "{why}");
    }
}

// ---------------------------------------------------------------- 14 IPv6

#[test]
fn case_14_ipv6_only_and_dual_stack_tasks_are_matched_to_their_targets() {
    let mut v6_only = task("a1", "unused");
    v6_only.private_ip = None;
    v6_only.ipv6 = Some("2600:1f18:4b0:ee00:0:0:0:1a".into());
    let mut dual = task("a1", "10.0.1.15");
    dual.ipv6 = Some("2600:1f18:4b0:ee00::1a".into());
    for (name, t) in [("IPv6-only", v6_only), ("dual-stack", dual)] {
        // An ipv6 target group registers the IPv6 address, spelled ELB's way.
        let v = Tracker::new(criteria(), goal()).assess(&obs(
            T0 + 30.0,
            rolling(),
            vec![t],
            vec![target("2600:1f18:4b0:ee00::1a", 8080, "healthy")],
        ));
        assert!(matches!(v, Verdict::Healthy(_)), "{name}: {v:?}");
    }
}

// ---------------------------------------------------------------- 15 bridge/host per port

#[test]
fn case_15_the_unhealthy_clock_is_per_instance_and_port() {
    let bridge = |id: &str, port: i32| Task {
        private_ip: None,
        instance_id: Some("i-0abcd1234ef567890".into()),
        bindings: vec![PortBinding {
            container: "app".into(),
            container_port: 8080,
            host_port: port,
        }],
        ..task(id, "unused")
    };
    let mut svc = rolling();
    svc.desired_count = 2;
    let tasks = vec![bridge("a1", 32768), bridge("a2", 32769)];
    let i = "i-0abcd1234ef567890";
    let mut tracker = Tracker::new(criteria(), goal());
    // Port 32768 unhealthy from +10 s, healthy at +30 s; 32769 unhealthy from +30 s.
    let at = |tracker: &mut Tracker, t: f64, a: &str, b: &str| {
        tracker.assess(&obs(
            T0 + t,
            svc.clone(),
            tasks.clone(),
            vec![target(i, 32768, a), target(i, 32769, b)],
        ))
    };
    at(&mut tracker, 10.0, "unhealthy", "initial");
    at(&mut tracker, 30.0, "healthy", "unhealthy");
    // A per-instance clock would say 35 s unhealthy (past the 30 s grace); it is 15 s.
    let v = at(&mut tracker, 45.0, "healthy", "unhealthy");
    assert!(
        pending(&v).contains(&format!("{i}:32769 in web unhealthy")),
        "{v:?}"
    );
    let v = at(&mut tracker, 61.0, "healthy", "unhealthy");
    assert_eq!(
        failure(&v).map(|f| f.0),
        Some(FailureKind::TargetUnhealthy),
        "{v:?}"
    );
}

// ---------------------------------------------------------------- 17 service deployments

#[test]
fn case_17_service_deployments_are_read_only_when_a_rule_needs_them_and_fill_the_reasons() {
    let tracker = Tracker::new(criteria(), goal());
    assert!(
        !tracker.wants_service_deployments(&rolling()),
        "a plain rollout needs none"
    );
    let mut ours = dep(OURS, "PRIMARY", 8, "FAILED");
    ours.rollout_state_reason =
        Some("ECS deployment circuit breaker: tasks failed to start.".into());
    let svc = service(vec![ours]);
    assert!(tracker.wants_service_deployments(&svc));
    let mut o = obs(T0 + 120.0, svc, vec![], vec![]);
    o.service_deployments = Some(vec![ServiceDeployment {
        arn: format!(
            "arn:aws:ecs:us-east-1:{ACCOUNT}:service-deployment/prod/web/NCWGC2ZR-taawPAYrIaU5"
        ),
        status: ServiceDeploymentStatus::Stopped,
        status_reason: Some("Service deployment stopped by the deployment circuit breaker.".into()),
        created_at: Some(T0 + 0.5),
        circuit_breaker: Some((3, 3)),
        ..Default::default()
    }]);
    let v = Tracker::new(criteria(), goal()).assess(&o);
    let (kind, reason) = failure(&v).expect("failed");
    assert_eq!(kind, FailureKind::CircuitBreaker);
    assert!(
        reason.contains("tasks failed to start")
            && reason.contains("circuit breaker counted 3/3 failed tasks")
            && reason.contains("service deployment STOPPED"),
        "{reason}"
    );
    // Without them (older regions, the emulator) the same verdict, from DescribeServices alone.
    o.service_deployments = None;
    assert_eq!(
        failure(&Tracker::new(criteria(), goal()).assess(&o)).map(|f| f.0),
        Some(FailureKind::CircuitBreaker)
    );
}

#[test]
fn a_rollback_event_without_rollback_config_still_tells_ecs_from_a_person() {
    // ECS's service event, the only sign on an old API: ECS rolling back.
    let mut svc = service(vec![dep(
        "ecs-svc/8012395811938592041",
        "PRIMARY",
        7,
        "IN_PROGRESS",
    )]);
    svc.events = vec![ServiceEvent {
        id: "5f4c2d6e-2b8a-4b7e-9d3f-1a2b3c4d5e6f".into(),
        created_at: T0 + 90.0,
        message: "(service web) rolling back to deployment ecs-svc/1234567890123456789.".into(),
    }];
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 100.0, svc, vec![], vec![]));
    assert!(matches!(v, Verdict::EcsRollingBack { .. }), "{v:?}");
}

#[test]
fn a_stop_from_before_the_watch_began_is_history_not_a_failure() {
    // `shipit watch` attached at T0+100 to a deployment one of whose tasks
    // crashed 40 minutes earlier (ListTasks still lists it for an hour).
    let goal = Goal {
        stops_after: Some(T0 + 100.0),
        ..goal()
    };
    let mut t = stopped(
        task("a1", "10.0.1.15"),
        "EssentialContainerExited",
        "Essential container in task exited",
    );
    t.stopped_at = Some(T0 + 100.0 - 2400.0);
    let v = Tracker::new(criteria(), goal.clone()).assess(&obs(
        T0 + 110.0,
        rolling(),
        vec![t.clone()],
        vec![],
    ));
    assert!(matches!(v, Verdict::Pending(_)), "{v:?}");
    // The same stop during the watch is evidence.
    t.stopped_at = Some(T0 + 105.0);
    let v = Tracker::new(criteria(), goal).assess(&obs(T0 + 110.0, rolling(), vec![t], vec![]));
    assert!(matches!(v, Verdict::Failed(_)), "{v:?}");
}

#[test]
fn an_instance_draining_or_fargate_maintenance_stop_is_replaced_not_failed() {
    for reason in [
        "Service web: container instance is in DRAINING state",
        "Task stopped because ECS is performing maintenance on the underlying infrastructure hosting the task",
    ] {
        let t = stopped(task("a2", "10.0.1.16"), "ServiceSchedulerInitiated", reason);
        let v =
            Tracker::new(criteria(), goal()).assess(&obs(T0 + 60.0, rolling(), vec![t], vec![]));
        assert!(matches!(v, Verdict::Pending(_)), "{reason}: {v:?}");
    }
}

#[test]
fn case_8_ecs_returning_to_an_older_completed_revision_is_ecs_rolling_back_too() {
    // Back-to-back deploys: web:7 (recorded) was still rolling out; the circuit
    // breaker returns to the most recent COMPLETED deployment, web:6.
    let mut ours = dep(OURS, "ACTIVE", 8, "FAILED");
    ours.rollout_state_reason =
        Some("ECS deployment circuit breaker: tasks failed to start.".into());
    let mut svc = service(vec![
        dep("ecs-svc/5012395811938592046", "PRIMARY", 6, "IN_PROGRESS"),
        ours,
    ]);
    svc.deployment_configuration = breaker(true);
    svc.task_definition = td(6);
    match Tracker::new(criteria(), goal()).assess(&obs(T0 + 200.0, svc.clone(), vec![], vec![])) {
        Verdict::EcsRollingBack {
            task_definition, ..
        } => assert_eq!(task_definition, td(6)),
        other => panic!("{other:?}"),
    }
    // Without any sign that ECS did it (ours not FAILED, no event), a person
    // deploying web:6 is someone else's deployment.
    svc.deployments[1] = dep(OURS, "ACTIVE", 8, "IN_PROGRESS");
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 200.0, svc, vec![], vec![]));
    assert!(matches!(v, Verdict::Superseded(_)), "{v:?}");
}
