use super::*;
use crate::ecs::{ContainerState, Deployment, LoadBalancerRef, ServiceEvent};

const NEW: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:8";
const OLD: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:7";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/abc";
const T0: f64 = 1_000.0;

fn criteria() -> Criteria {
    Criteria {
        healthy_polls: 1,
        unhealthy_grace: Duration::from_secs(30),
        max_task_failures: 0,
        wait_for_drain: false,
        // The existing cases judge single polls; the hold has its own cases.
        settle: Duration::ZERO,
        ..Criteria::default()
    }
}

fn goal() -> Goal {
    Goal {
        task_definition: NEW.into(),
        deployment_id: Some("ecs-svc/new".into()),
        previous_task_definition: Some(OLD.into()),
        started_at: T0,
        health_checked: vec![],
        stops_after: None,
    }
}

fn deployment(id: &str, status: &str, td: &str, rollout: &str) -> Deployment {
    Deployment {
        id: id.into(),
        status: status.into(),
        task_definition: td.into(),
        rollout_state: Some(rollout.into()),
        ..Default::default()
    }
}

fn service(deployments: Vec<Deployment>) -> Service {
    Service {
        name: "web".into(),
        status: "ACTIVE".into(),
        desired_count: 1,
        task_definition: NEW.into(),
        deployments,
        load_balancers: vec![LoadBalancerRef {
            target_group_arn: TG.into(),
            container_name: "app".into(),
            container_port: 8080,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn rolling() -> Service {
    service(vec![
        deployment("ecs-svc/new", "PRIMARY", NEW, "IN_PROGRESS"),
        deployment("ecs-svc/old", "ACTIVE", OLD, "COMPLETED"),
    ])
}

fn task(id: &str, td: &str, status: &str, ip: &str) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:1:task/c/{id}"),
        task_definition: td.into(),
        last_status: status.into(),
        desired_status: "RUNNING".into(),
        started_by: Some(
            if td == NEW {
                "ecs-svc/new"
            } else {
                "ecs-svc/old"
            }
            .into(),
        ),
        private_ip: Some(ip.into()),
        created_at: Some(if td == NEW { T0 + 1.0 } else { T0 - 600.0 }),
        started_at: Some(if td == NEW { T0 + 2.0 } else { T0 - 590.0 }),
        ..Default::default()
    }
}

fn target(ip: &str, state: &str, reason: Option<&str>) -> TargetHealth {
    TargetHealth {
        id: ip.into(),
        port: Some(8080),
        state: state.into(),
        reason: reason.map(str::to_string),
        description: None,
    }
}

fn obs(now: f64, service: Service, tasks: Vec<Task>, targets: Vec<TargetHealth>) -> Observation {
    Observation {
        now,
        service,
        tasks,
        targets: vec![(TG.into(), targets)],
        ..Default::default()
    }
}

fn kind(v: &Verdict) -> Option<FailureKind> {
    match v {
        Verdict::Failed(f) => Some(f.kind),
        _ => None,
    }
}

/// An EC2 task in bridge mode: no task IP; its target is the instance and the host port.
fn bridge_task(id: &str, td: &str, instance: &str, host_port: i32) -> Task {
    Task {
        private_ip: None,
        instance_id: Some(instance.into()),
        bindings: vec![crate::ecs::PortBinding {
            container: "app".into(),
            container_port: 8080,
            host_port,
        }],
        ..task(id, td, "RUNNING", "unused")
    }
}

#[test]
fn bridge_mode_tasks_are_matched_to_instance_targets_by_instance_id_and_host_port() {
    let mut tracker = Tracker::new(criteria(), goal());
    let instance = |id: &str, port: i32, state: &str| TargetHealth {
        id: id.into(),
        port: Some(port),
        state: state.into(),
        reason: None,
        description: None,
    };
    let tasks = vec![bridge_task("n1", NEW, "i-0abc", 32768)];
    // Same instance, another task's port healthy: not ours, still pending.
    let v = tracker.assess(&obs(
        T0 + 10.0,
        rolling(),
        tasks.clone(),
        vec![
            instance("i-0abc", 32769, "healthy"),
            instance("i-0abc", 32768, "initial"),
        ],
    ));
    assert!(
        matches!(&v, Verdict::Pending(w) if w.contains("i-0abc:32768 in web initial")),
        "{v:?}"
    );
    let v = tracker.assess(&obs(
        T0 + 20.0,
        rolling(),
        tasks,
        vec![instance("i-0abc", 32768, "healthy")],
    ));
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
}

#[test]
fn healthy_when_our_primary_deployment_has_every_new_task_healthy_in_every_target_group() {
    let mut tracker = Tracker::new(criteria(), goal());
    let v = tracker.assess(&obs(
        T0 + 10.0,
        rolling(),
        vec![
            task("n1", NEW, "RUNNING", "10.0.0.5"),
            task("o1", OLD, "RUNNING", "10.0.0.4"),
        ],
        vec![
            target("10.0.0.5", "healthy", None),
            target("10.0.0.4", "healthy", None),
        ],
    ));
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
}

#[test]
fn pending_says_what_it_waits_for() {
    let cases: Vec<(&str, Vec<Task>, Vec<TargetHealth>, &str)> = vec![
        ("no task yet", vec![], vec![], "0/1 new tasks running"),
        (
            "task running, target initial",
            vec![task("n1", NEW, "RUNNING", "10.0.0.5")],
            vec![target(
                "10.0.0.5",
                "initial",
                Some("Elb.RegistrationInProgress"),
            )],
            "10.0.0.5:8080 in web initial",
        ),
        (
            "task running, not registered",
            vec![task("n1", NEW, "RUNNING", "10.0.0.5")],
            vec![],
            "not registered yet",
        ),
        (
            "old task healthy does not count",
            vec![task("o1", OLD, "RUNNING", "10.0.0.4")],
            vec![target("10.0.0.4", "healthy", None)],
            "0/1 new tasks running",
        ),
    ];
    for (name, tasks, targets, want) in cases {
        let mut tracker = Tracker::new(criteria(), goal());
        match tracker.assess(&obs(T0 + 5.0, rolling(), tasks, targets)) {
            Verdict::Pending(what) => assert!(what.contains(want), "{name}: {what}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn circuit_breaker_failed_rollout_is_a_failure_with_its_reason() {
    let svc = service(vec![Deployment {
        rollout_state_reason: Some("ECS deployment circuit breaker: tasks failed to start.".into()),
        ..deployment("ecs-svc/new", "PRIMARY", NEW, "FAILED")
    }]);
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 60.0, svc, vec![], vec![]));
    assert_eq!(kind(&v), Some(FailureKind::CircuitBreaker));
    assert!(format!("{v:?}").contains("tasks failed to start"));
}

#[test]
fn ecs_rolling_back_is_never_healthy_even_though_the_service_is_stable_and_healthy() {
    // After the circuit breaker rolled back: the old deployment is PRIMARY and COMPLETED,
    // its task healthy. A tool that waits for "stable" would report success here.
    let mut svc = service(vec![
        deployment("ecs-svc/old2", "PRIMARY", OLD, "COMPLETED"),
        deployment("ecs-svc/new", "ACTIVE", NEW, "FAILED"),
    ]);
    svc.task_definition = OLD.into();
    svc.events = vec![ServiceEvent {
        id: "e".into(),
        created_at: T0 + 50.0,
        message: "(service web) rolling back to deployment ecs-svc/old2".into(),
    }];
    let v = Tracker::new(criteria(), goal()).assess(&obs(
        T0 + 60.0,
        svc.clone(),
        vec![task("o2", OLD, "RUNNING", "10.0.0.9")],
        vec![target("10.0.0.9", "healthy", None)],
    ));
    // Not healthy, and (the contract since issue 10) not a failure for shipit
    // to roll back itself: ECS's own rollback to the recorded revision.
    assert!(
        matches!(&v, Verdict::EcsRollingBack { deployment_id: Some(id), task_definition, .. }
                if id == "ecs-svc/old2" && task_definition == OLD),
        "{v:?}"
    );

    // Same, but ECS already dropped our deployment from the list.
    svc.deployments.truncate(1);
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 60.0, svc, vec![], vec![]));
    assert!(matches!(v, Verdict::EcsRollingBack { .. }), "{v:?}");
    let reason = format!("{v:?}");
    assert!(
        reason.contains("rolled the service back to web:7")
            && reason.contains("ECS: (service web) rolling back"),
        "{reason}"
    );
}

#[test]
fn another_deployment_taking_over_is_superseded_saying_so() {
    let other = "arn:aws:ecs:us-east-1:1:task-definition/web:9";
    let svc = service(vec![
        deployment("ecs-svc/x", "PRIMARY", other, "IN_PROGRESS"),
        deployment("ecs-svc/new", "ACTIVE", NEW, "IN_PROGRESS"),
    ]);
    let v = Tracker::new(criteria(), goal()).assess(&obs(T0 + 5.0, svc, vec![], vec![]));
    assert!(
        matches!(&v, Verdict::Superseded(_))
            && format!("{v:?}").contains("another deployment took over"),
        "{v:?}"
    );
}

#[test]
fn a_stopped_new_task_fails_with_stopped_reason_and_exit_codes() {
    let cases = [
            ("image pull", "CannotPullContainerError: pull image manifest has been retried 5 time(s): 127.0.0.1:4566/web:nope: not found", None, "CannotPullContainerError"),
            ("elb health", "Task failed ELB health checks in (target-group arn)", Some(137), "Task failed ELB health checks"),
            ("exit", "Essential container in task exited", Some(3), "exit code 3"),
        ];
    for (name, reason, exit, want) in cases {
        let mut stopped = task("n1", NEW, "STOPPED", "10.0.0.5");
        stopped.stopped_reason = Some(reason.into());
        stopped.containers = vec![ContainerState {
            name: "app".into(),
            exit_code: exit,
            ..Default::default()
        }];
        let v = Tracker::new(criteria(), goal()).assess(&obs(
            T0 + 20.0,
            rolling(),
            vec![stopped],
            vec![],
        ));
        assert_eq!(kind(&v), Some(FailureKind::TasksStopped), "{name}");
        assert!(format!("{v:?}").contains(want), "{name}: {v:?}");
    }
}

#[test]
fn stopped_tasks_within_the_tolerance_and_stopped_old_tasks_do_not_fail() {
    let mut stopped = task("n1", NEW, "STOPPED", "10.0.0.5");
    stopped.stopped_reason = Some("Essential container in task exited".into());
    let tolerant = Criteria {
        max_task_failures: 1,
        ..criteria()
    };
    let v = Tracker::new(tolerant, goal()).assess(&obs(
        T0 + 20.0,
        rolling(),
        vec![stopped.clone()],
        vec![],
    ));
    assert!(matches!(v, Verdict::Pending(_)), "{v:?}");

    // Rolling back to web:7: its tasks stopped by the failed deploy are history, not failures.
    let rollback_goal = Goal {
        task_definition: OLD.into(),
        deployment_id: Some("ecs-svc/rb".into()),
        previous_task_definition: Some(NEW.into()),
        started_at: T0,
        health_checked: vec![],
        stops_after: None,
    };
    let mut svc = service(vec![deployment(
        "ecs-svc/rb",
        "PRIMARY",
        OLD,
        "IN_PROGRESS",
    )]);
    svc.task_definition = OLD.into();
    let mut old_stopped = task("o1", OLD, "STOPPED", "10.0.0.4");
    old_stopped.stopped_reason =
        Some("Scaling activity initiated by (deployment ecs-svc/new)".into());
    let v = Tracker::new(criteria(), rollback_goal).assess(&obs(
        T0 + 5.0,
        svc,
        vec![old_stopped],
        vec![],
    ));
    assert!(matches!(v, Verdict::Pending(_)), "{v:?}");
}

#[test]
fn an_unhealthy_target_fails_only_after_the_grace() {
    let mut tracker = Tracker::new(criteria(), goal());
    let tasks = vec![task("n1", NEW, "RUNNING", "10.0.0.5")];
    let unhealthy = vec![target(
        "10.0.0.5",
        "unhealthy",
        Some("Target.FailedHealthChecks"),
    )];
    assert!(matches!(
        tracker.assess(&obs(T0 + 10.0, rolling(), tasks.clone(), unhealthy.clone())),
        Verdict::Pending(_)
    ));
    assert!(matches!(
        tracker.assess(&obs(T0 + 35.0, rolling(), tasks.clone(), unhealthy.clone())),
        Verdict::Pending(_)
    ));
    let v = tracker.assess(&obs(T0 + 40.0, rolling(), tasks, unhealthy));
    assert_eq!(kind(&v), Some(FailureKind::TargetUnhealthy));
    assert!(
        format!("{v:?}").contains("Target.FailedHealthChecks"),
        "{v:?}"
    );
}

#[test]
fn a_slow_starter_that_turns_healthy_within_the_grace_passes() {
    let mut tracker = Tracker::new(criteria(), goal());
    let tasks = vec![task("n1", NEW, "RUNNING", "10.0.0.5")];
    for (at, state) in [
        (5.0, "initial"),
        (12.0, "unhealthy"),
        (20.0, "unhealthy"),
        (30.0, "healthy"),
    ] {
        let v = tracker.assess(&obs(
            T0 + at,
            rolling(),
            tasks.clone(),
            vec![target("10.0.0.5", state, None)],
        ));
        if state == "healthy" {
            assert!(matches!(v, Verdict::Healthy(_)), "{at}: {v:?}");
        } else {
            assert!(matches!(v, Verdict::Pending(_)), "{at}: {v:?}");
        }
    }
}

#[test]
fn the_services_health_check_grace_period_delays_the_unhealthy_clock() {
    let mut svc = rolling();
    svc.health_check_grace_seconds = 60;
    let mut tracker = Tracker::new(criteria(), goal());
    let tasks = vec![task("n1", NEW, "RUNNING", "10.0.0.5")];
    let unhealthy = vec![target("10.0.0.5", "unhealthy", Some("Target.Timeout"))];
    // Started at T0+2, grace until T0+62, our grace 30 s more: still pending at T0+80.
    assert!(matches!(
        tracker.assess(&obs(
            T0 + 10.0,
            svc.clone(),
            tasks.clone(),
            unhealthy.clone()
        )),
        Verdict::Pending(_)
    ));
    assert!(matches!(
        tracker.assess(&obs(
            T0 + 80.0,
            svc.clone(),
            tasks.clone(),
            unhealthy.clone()
        )),
        Verdict::Pending(_)
    ));
    assert_eq!(
        kind(&tracker.assess(&obs(T0 + 93.0, svc, tasks, unhealthy))),
        Some(FailureKind::TargetUnhealthy)
    );
}

#[test]
fn healthy_must_hold_for_the_configured_number_of_polls() {
    let mut tracker = Tracker::new(
        Criteria {
            healthy_polls: 2,
            ..criteria()
        },
        goal(),
    );
    let tasks = vec![task("n1", NEW, "RUNNING", "10.0.0.5")];
    let healthy = vec![target("10.0.0.5", "healthy", None)];
    assert!(matches!(
        tracker.assess(&obs(T0 + 5.0, rolling(), tasks.clone(), healthy.clone())),
        Verdict::Pending(_)
    ));
    // A relapse resets the streak.
    assert!(matches!(
        tracker.assess(&obs(
            T0 + 10.0,
            rolling(),
            tasks.clone(),
            vec![target("10.0.0.5", "initial", None)]
        )),
        Verdict::Pending(_)
    ));
    assert!(matches!(
        tracker.assess(&obs(T0 + 15.0, rolling(), tasks.clone(), healthy.clone())),
        Verdict::Pending(_)
    ));
    assert!(matches!(
        tracker.assess(&obs(T0 + 20.0, rolling(), tasks, healthy)),
        Verdict::Healthy(_)
    ));
}

#[test]
fn every_target_group_must_report_the_new_task_healthy() {
    let tg2 = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/admin/def";
    let mut svc = rolling();
    svc.load_balancers.push(LoadBalancerRef {
        target_group_arn: tg2.into(),
        container_name: "app".into(),
        container_port: 8080,
        ..Default::default()
    });
    let mut o = obs(
        T0 + 5.0,
        svc,
        vec![task("n1", NEW, "RUNNING", "10.0.0.5")],
        vec![target("10.0.0.5", "healthy", None)],
    );
    o.targets
        .push((tg2.into(), vec![target("10.0.0.5", "initial", None)]));
    let v = Tracker::new(criteria(), goal()).assess(&o);
    assert!(
        matches!(&v, Verdict::Pending(w) if w.contains("1/2 targets healthy") && w.contains("admin")),
        "{v:?}"
    );
}

#[test]
fn wait_for_drain_holds_until_old_tasks_are_gone() {
    let c = Criteria {
        wait_for_drain: true,
        ..criteria()
    };
    let tasks = vec![
        task("n1", NEW, "RUNNING", "10.0.0.5"),
        task("o1", OLD, "RUNNING", "10.0.0.4"),
    ];
    let v = Tracker::new(c.clone(), goal()).assess(&obs(
        T0 + 5.0,
        rolling(),
        tasks,
        vec![target("10.0.0.5", "healthy", None)],
    ));
    assert!(
        matches!(&v, Verdict::Pending(w) if w.contains("draining")),
        "{v:?}"
    );
    let v = Tracker::new(c, goal()).assess(&obs(
        T0 + 5.0,
        rolling(),
        vec![task("n1", NEW, "RUNNING", "10.0.0.5")],
        vec![target("10.0.0.5", "healthy", None)],
    ));
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
}

#[test]
fn a_service_without_load_balancers_is_healthy_on_running_tasks() {
    let mut svc = rolling();
    svc.load_balancers.clear();
    let v = Tracker::new(criteria(), goal()).assess(&Observation {
        now: T0 + 5.0,
        service: svc,
        tasks: vec![task("n1", NEW, "RUNNING", "10.0.0.5")],
        targets: vec![],
        ..Default::default()
    });
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
}

#[test]
fn started_by_that_names_no_deployment_falls_back_to_creation_time() {
    // Emulators set startedBy to `ecs-svc/<service>`: the new task is still ours.
    let mut new_task = task("n1", NEW, "RUNNING", "10.0.0.5");
    new_task.started_by = Some("ecs-svc/web".into());
    let v = Tracker::new(criteria(), goal()).assess(&obs(
        T0 + 5.0,
        rolling(),
        vec![new_task.clone()],
        vec![target("10.0.0.5", "healthy", None)],
    ));
    assert!(matches!(v, Verdict::Healthy(_)), "{v:?}");
    // …but one created long before the update is not.
    new_task.created_at = Some(T0 - 60.0);
    let v = Tracker::new(criteria(), goal()).assess(&obs(
        T0 + 5.0,
        rolling(),
        vec![new_task],
        vec![target("10.0.0.5", "healthy", None)],
    ));
    assert!(matches!(v, Verdict::Pending(_)), "{v:?}");
}

#[test]
fn an_inactive_service_is_a_failure() {
    let mut svc = rolling();
    svc.status = "DRAINING".into();
    assert_eq!(
        kind(&Tracker::new(criteria(), goal()).assess(&obs(T0, svc, vec![], vec![]))),
        Some(FailureKind::ServiceGone)
    );
}
