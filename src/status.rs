//! `shipit status`: the service as shipit judges it, in one screen.

use crate::deploy::Deps;
use crate::ecs::{Task, TaskStatus};
use crate::error::{Error, Result};
use crate::report::short_arn;
use crate::settings::ServiceSettings;
use crate::watch::verdict::describe_stop;

pub async fn render(service: &ServiceSettings, deps: &Deps<'_>) -> Result<String> {
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
    let mut out = String::new();
    out.push_str(&format!(
        "service {} ({}) in {}: desired {}, task definition {}\n",
        svc.name,
        svc.status,
        short_arn(&svc.cluster),
        svc.desired_count,
        short_arn(&svc.task_definition)
    ));
    out.push_str("\ndeployments:\n");
    for d in &svc.deployments {
        out.push_str(&format!(
            "  {:<8} {:<28} {:<14} rollout {}{}\n",
            d.status,
            d.id,
            short_arn(&d.task_definition),
            d.rollout_state.as_ref().map_or("-", |s| s.as_str()),
            d.rollout_state_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    let (stopped, live): (Vec<&Task>, Vec<&Task>) = tasks
        .iter()
        .partition(|t| t.last_status == TaskStatus::Stopped);
    out.push_str("\ntasks:\n");
    if live.is_empty() {
        out.push_str("  none running\n");
    }
    for t in &live {
        out.push_str(&format!(
            "  {:<34} {:<14} {:<10} {}\n",
            t.id(),
            short_arn(&t.task_definition),
            t.last_status,
            t.private_ip.as_deref().unwrap_or("-")
        ));
    }
    for lb in &svc.load_balancers {
        out.push_str(&format!(
            "\ntarget group {} (container {}:{}):\n",
            short_arn(&lb.target_group_arn),
            lb.container_name,
            lb.container_port
        ));
        let targets = deps.elb.target_health(&lb.target_group_arn).await?;
        if targets.is_empty() {
            out.push_str("  no targets\n");
        }
        for t in targets {
            out.push_str(&format!(
                "  {}:{} {}{}\n",
                t.id,
                t.port.unwrap_or_default(),
                t.state,
                t.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ));
        }
    }
    let mut stopped = stopped;
    stopped.sort_by(|a, b| {
        b.created_at
            .partial_cmp(&a.created_at)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if !stopped.is_empty() {
        out.push_str("\nrecently stopped:\n");
        for t in stopped.iter().take(5) {
            out.push_str(&format!(
                "  {} {}: {}\n",
                t.id(),
                short_arn(&t.task_definition),
                describe_stop(t)
            ));
        }
    }
    if !svc.events.is_empty() {
        out.push_str("\nevents:\n");
        for e in svc.events.iter().take(5) {
            out.push_str(&format!("  {}\n", e.message));
        }
    }
    Ok(out)
}
