//! `shipit status`: the service as shipit judges it, in one screen.
//! [`gather`] makes the read calls; [`render`] (the screen) and [`view`]
//! (the JSON result's `snapshots`) are pure functions of what they returned.

use serde::Serialize;

use crate::arn::short;
use crate::ecs::{LoadBalancerRef, Service, Task, TaskStatus};
use crate::elb::{TargetGroupInfo, TargetHealth};
use crate::error::{Error, Result};
use crate::failure::{self, FailureReport};
use crate::settings::ServiceSettings;
use crate::watch::verdict::describe_stop;
use crate::world::Deps;

/// How many of the service's events (newest first) the screen and the JSON show.
const EVENTS_SHOWN: usize = 5;

/// What one look at the service saw.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub service: Service,
    pub tasks: Vec<Task>,
    /// Per load balancer of the service, its target group's targets.
    pub targets: Vec<(LoadBalancerRef, Vec<TargetHealth>)>,
    /// The failure report for the most recent failed tasks, when some stopped
    /// for their revision's own reasons.
    pub failure: Option<(String, FailureReport)>,
}

/// The revision of the newest task that stopped for its own reasons (not
/// scaled in, not stopped by a user or by the infrastructure).
pub fn last_failed_revision(tasks: &[Task]) -> Option<&str> {
    tasks
        .iter()
        .filter(|t| t.last_status == TaskStatus::Stopped)
        // The scheduler's own stops count when they are the revision's fault
        // ("Task failed ELB health checks"), not when it scales or drains.
        .filter(|t| !t.stopped_from_outside())
        .filter(|t| t.stopped_reason.is_some() || t.stop_code.is_some())
        .max_by(|a, b| {
            a.created_at
                .unwrap_or_default()
                .total_cmp(&b.created_at.unwrap_or_default())
        })
        .map(|t| t.task_definition.as_str())
}

/// The failure report of `revision`'s stopped tasks (one DescribeTaskDefinition
/// call, for exit-code meanings, memory limits and container names).
fn failure_of(
    revision: &str,
    td: &serde_json::Value,
    svc: &Service,
    tasks: &[Task],
    targets: &[(LoadBalancerRef, Vec<TargetHealth>)],
    groups: &[TargetGroupInfo],
) -> FailureReport {
    let targets: Vec<(String, Vec<TargetHealth>)> = targets
        .iter()
        .map(|(lb, t)| (lb.target_group_arn.clone(), t.clone()))
        .collect();
    failure::report(&failure::Evidence {
        reason: "tasks of this revision stopped",
        revision,
        task_definition: td,
        since: 0.0,
        service: svc,
        tasks,
        ours: None,
        targets: &targets,
        groups,
    })
}

/// The read calls of one look at `service`; with a failure, its report gets
/// the failed containers' last `log_lines` lines (0: none).
pub async fn gather(
    service: &ServiceSettings,
    deps: &Deps<'_>,
    log_lines: usize,
) -> Result<Snapshot> {
    let svc = deps
        .ecs
        .service(&service.cluster, &service.service)
        .await?
        .ok_or_else(|| {
            Error::bad_input(format!(
                "ECS service `{}` not found in cluster `{}`",
                service.service, service.cluster
            ))
            .hint("check --cluster/--service and the AWS region")
        })?;
    let tasks = deps.ecs.tasks(&service.cluster, &service.service).await?;
    let mut targets = Vec::new();
    for lb in &svc.load_balancers {
        targets.push((
            lb.clone(),
            deps.elb.target_health(&lb.target_group_arn).await?,
        ));
    }
    let mut failure = None;
    if let Some(revision) = last_failed_revision(&tasks) {
        // Without the task definition the report is still made (fewer details).
        let td = deps
            .ecs
            .task_definition(revision)
            .await
            .map(|doc| doc.json)
            .unwrap_or(serde_json::Value::Null);
        // The health checks in words (path, matcher); a group that cannot be
        // read is left out, the report says less.
        let mut groups = Vec::new();
        for (lb, _) in &targets {
            if let Ok(Some(info)) = deps.elb.target_group(&lb.target_group_arn).await {
                groups.push(info);
            }
        }
        let mut report = failure_of(revision, &td, &svc, &tasks, &targets, &groups);
        if let Some(reader) = deps.logs.filter(|_| log_lines > 0) {
            let requests = failure::log_requests(&report);
            report.logs = failure::read_logs(reader, &td, requests, log_lines).await;
        }
        failure = Some((revision.to_string(), report));
    }
    Ok(Snapshot {
        service: svc,
        tasks,
        targets,
        failure,
    })
}

/// The snapshot as `shipit status --output json` gives it, one per service.
pub fn view(snapshot: &Snapshot) -> serde_json::Value {
    let svc = &snapshot.service;
    let view = View {
        service: &svc.name,
        cluster: &svc.cluster,
        status: svc.status.as_str(),
        desired_count: svc.desired_count,
        task_definition: &svc.task_definition,
        deployments: svc
            .deployments
            .iter()
            .map(|d| DeploymentView {
                id: &d.id,
                status: d.status.as_str(),
                task_definition: &d.task_definition,
                rollout_state: d.rollout_state.as_ref().map(|r| r.as_str()),
                rollout_state_reason: d.rollout_state_reason.as_deref(),
                desired_count: d.desired_count,
                running_count: d.running_count,
                failed_tasks: d.failed_tasks,
            })
            .collect(),
        tasks: snapshot
            .tasks
            .iter()
            .map(|t| TaskView {
                task: t.id(),
                task_definition: &t.task_definition,
                last_status: t.last_status.as_str(),
                health_status: t.health_status.as_ref().map(|h| h.as_str()),
                private_ip: t.private_ip.as_deref(),
                started_by: t.started_by.as_deref(),
                stopped_reason: t.stopped_reason.as_deref(),
                stop_code: t.stop_code.as_ref().map(|c| c.as_str()),
            })
            .collect(),
        target_groups: snapshot
            .targets
            .iter()
            .map(|(lb, targets)| TargetGroupView {
                target_group: &lb.target_group_arn,
                container: &lb.container_name,
                container_port: lb.container_port,
                targets: targets
                    .iter()
                    .map(|t| TargetView {
                        id: &t.id,
                        port: t.port,
                        state: t.state.as_str(),
                        reason: t.reason.as_deref(),
                        description: t.description.as_deref(),
                    })
                    .collect(),
            })
            .collect(),
        events: svc
            .events
            .iter()
            .take(EVENTS_SHOWN)
            .map(|e| e.message.as_str())
            .collect(),
        last_failure: snapshot
            .failure
            .as_ref()
            .map(|(revision, report)| FailureView {
                task_definition: revision,
                report,
            }),
    };
    serde_json::to_value(view).unwrap_or_default()
}

#[derive(Serialize)]
struct View<'a> {
    service: &'a str,
    cluster: &'a str,
    status: &'a str,
    desired_count: i32,
    task_definition: &'a str,
    deployments: Vec<DeploymentView<'a>>,
    tasks: Vec<TaskView<'a>>,
    target_groups: Vec<TargetGroupView<'a>>,
    /// The newest [`EVENTS_SHOWN`], newest first.
    events: Vec<&'a str>,
    last_failure: Option<FailureView<'a>>,
}

#[derive(Serialize)]
struct DeploymentView<'a> {
    id: &'a str,
    status: &'a str,
    task_definition: &'a str,
    rollout_state: Option<&'a str>,
    rollout_state_reason: Option<&'a str>,
    desired_count: i32,
    running_count: i32,
    failed_tasks: i32,
}

#[derive(Serialize)]
struct TaskView<'a> {
    task: &'a str,
    task_definition: &'a str,
    last_status: &'a str,
    health_status: Option<&'a str>,
    private_ip: Option<&'a str>,
    started_by: Option<&'a str>,
    stopped_reason: Option<&'a str>,
    stop_code: Option<&'a str>,
}

#[derive(Serialize)]
struct TargetGroupView<'a> {
    target_group: &'a str,
    container: &'a str,
    container_port: i32,
    targets: Vec<TargetView<'a>>,
}

#[derive(Serialize)]
struct TargetView<'a> {
    id: &'a str,
    port: Option<i32>,
    state: &'a str,
    reason: Option<&'a str>,
    description: Option<&'a str>,
}

/// The last failure: the revision, and its report (cause, hint, stops,
/// targets, events, log lines) as deploy's `failure` has it.
#[derive(Serialize)]
struct FailureView<'a> {
    task_definition: &'a str,
    #[serde(flatten)]
    report: &'a FailureReport,
}

pub fn render(snapshot: &Snapshot) -> String {
    let svc = &snapshot.service;
    let mut out = format!(
        "service {} ({}) in {}: desired {}, task definition {}\n",
        svc.name,
        svc.status,
        short(&svc.cluster),
        svc.desired_count,
        short(&svc.task_definition)
    );
    out.push_str(&deployments(svc));
    let (stopped, live): (Vec<&Task>, Vec<&Task>) = snapshot
        .tasks
        .iter()
        .partition(|t| t.last_status == TaskStatus::Stopped);
    out.push_str(&running(&live));
    for (lb, targets) in &snapshot.targets {
        out.push_str(&target_group(lb, targets));
    }
    out.push_str(&recently_stopped(stopped));
    if let Some((revision, report)) = &snapshot.failure {
        out.push_str(&format!("\nlast failure ({}):\n", short(revision)));
        for line in failure::lines(report) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if !svc.events.is_empty() {
        out.push_str("\nevents:\n");
        for e in svc.events.iter().take(EVENTS_SHOWN) {
            out.push_str(&format!("  {}\n", e.message));
        }
    }
    out
}

fn deployments(svc: &Service) -> String {
    let mut out = String::from("\ndeployments:\n");
    for d in &svc.deployments {
        out.push_str(&format!(
            "  {:<8} {:<28} {:<14} rollout {}{}\n",
            d.status,
            d.id,
            short(&d.task_definition),
            d.rollout_state.as_ref().map_or("-", |s| s.as_str()),
            d.rollout_state_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    out
}

fn running(live: &[&Task]) -> String {
    let mut out = String::from("\ntasks:\n");
    if live.is_empty() {
        out.push_str("  none running\n");
    }
    for t in live {
        out.push_str(&format!(
            "  {:<34} {:<14} {:<10} {}\n",
            t.id(),
            short(&t.task_definition),
            t.last_status,
            t.private_ip.as_deref().unwrap_or("-")
        ));
    }
    out
}

fn target_group(lb: &LoadBalancerRef, targets: &[TargetHealth]) -> String {
    let mut out = format!(
        "\ntarget group {} (container {}:{}):\n",
        short(&lb.target_group_arn),
        lb.container_name,
        lb.container_port
    );
    if targets.is_empty() {
        out.push_str("  no targets\n");
    }
    for t in targets {
        out.push_str(&format!(
            "  {}:{} {}{}\n",
            t.id,
            t.port.unwrap_or_default(),
            t.state,
            t.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// The five most recently created stopped tasks, with their reasons.
fn recently_stopped(mut stopped: Vec<&Task>) -> String {
    if stopped.is_empty() {
        return String::new();
    }
    stopped.sort_by(|a, b| {
        b.created_at
            .partial_cmp(&a.created_at)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out = String::from("\nrecently stopped:\n");
    for t in stopped.iter().take(5) {
        out.push_str(&format!(
            "  {} {}: {}\n",
            t.id(),
            short(&t.task_definition),
            describe_stop(t)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::{Deployment, StopCode};

    #[test]
    fn the_screen_shows_deployments_tasks_targets_and_stop_reasons() {
        let td = "arn:aws:ecs:us-east-1:1:task-definition/web:8";
        let lb = LoadBalancerRef {
            target_group_arn: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/abc".into(),
            container_name: "app".into(),
            container_port: 8080,
            ..Default::default()
        };
        let snapshot = Snapshot {
            service: Service {
                name: "web".into(),
                status: "ACTIVE".into(),
                cluster: "arn:aws:ecs:us-east-1:1:cluster/prod".into(),
                desired_count: 1,
                task_definition: td.into(),
                deployments: vec![Deployment {
                    id: "ecs-svc/123".into(),
                    status: "PRIMARY".into(),
                    task_definition: td.into(),
                    rollout_state: Some("IN_PROGRESS".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            tasks: vec![
                Task {
                    arn: "arn:aws:ecs:us-east-1:1:task/prod/run1".into(),
                    task_definition: td.into(),
                    last_status: "RUNNING".into(),
                    private_ip: Some("10.0.0.5".into()),
                    ..Default::default()
                },
                Task {
                    arn: "arn:aws:ecs:us-east-1:1:task/prod/stop1".into(),
                    task_definition: td.into(),
                    last_status: "STOPPED".into(),
                    stopped_reason: Some("Essential container in task exited".into()),
                    stop_code: Some(StopCode::EssentialContainerExited),
                    containers: vec![crate::ecs::ContainerState {
                        name: "app".into(),
                        exit_code: Some(139),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            targets: vec![(
                lb,
                vec![TargetHealth {
                    id: "10.0.0.5".into(),
                    port: Some(8080),
                    state: "healthy".into(),
                    reason: None,
                    description: None,
                }],
            )],
            failure: None,
        };
        let revision = last_failed_revision(&snapshot.tasks).unwrap().to_string();
        assert_eq!(revision, td);
        let report = failure_of(
            &revision,
            &serde_json::json!({"containerDefinitions": [{"name": "app"}]}),
            &snapshot.service,
            &snapshot.tasks,
            &snapshot.targets,
            &[],
        );
        let snapshot = Snapshot {
            failure: Some((revision, report)),
            ..snapshot
        };
        let text = render(&snapshot);
        for want in [
            "service web (ACTIVE) in prod: desired 1, task definition web:8",
            "PRIMARY  ecs-svc/123",
            "rollout IN_PROGRESS",
            "run1",
            "10.0.0.5",
            "target group web (container app:8080):",
            "  10.0.0.5:8080 healthy",
            "recently stopped:\n  stop1 web:8: Essential container in task exited",
            "last failure (web:8):\n  why: container exited — container `app` exited with code 139 (segmentation fault (SIGSEGV))",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
