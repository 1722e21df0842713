//! Verdict lag: how long after the first API-visible decisive signal shipit
//! gives its verdict. An independent poller (every 200 ms) watches the stack;
//! shipit runs with `--output json`, whose `verdict` event carries its time.
//!
//!   healthy: signal = the first moment a task of the new revision is RUNNING
//!            and its target is `healthy`;
//!   failure: signal = the first moment a task of the new revision is STOPPED
//!            (APP_MODE=crash).
//!
//! Run on the local stack: `benches/verdict-lag.sh [rounds]`.

#[path = "../tests/support/provision.rs"]
mod provision;

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ecs::types::DesiredStatus;
use provision::{Aws, BoxError, Container};
use tokio::io::{AsyncBufReadExt, BufReader};

const CLUSTER: &str = "shipit-bench";
const REPOSITORY: &str = "shipit-bench-app";
const SHA: &str = "be0c0000000000000000000000000000000000b1";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What the independent poller saw first, after `since`, for revisions other than `baseline`.
async fn first_signal(
    aws: &Aws,
    service: &str,
    tg: &str,
    baseline: &str,
    healthy: bool,
) -> Result<f64, BoxError> {
    loop {
        let at = now();
        let mut arns = Vec::new();
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let out = aws
                .ecs
                .list_tasks()
                .cluster(CLUSTER)
                .service_name(service)
                .desired_status(status)
                .send()
                .await?;
            arns.extend(out.task_arns().iter().cloned());
        }
        if !arns.is_empty() {
            let tasks = aws
                .ecs
                .describe_tasks()
                .cluster(CLUSTER)
                .set_tasks(Some(arns))
                .send()
                .await?;
            let new: Vec<_> = tasks
                .tasks()
                .iter()
                .filter(|t| t.task_definition_arn() != Some(baseline))
                .collect();
            if !healthy && new.iter().any(|t| t.last_status() == Some("STOPPED")) {
                return Ok(at);
            }
            if healthy {
                let ips: Vec<String> = new
                    .iter()
                    .filter(|t| t.last_status() == Some("RUNNING"))
                    .flat_map(|t| t.attachments().iter().flat_map(|a| a.details()))
                    .filter(|d| d.name() == Some("privateIPv4Address"))
                    .filter_map(|d| d.value().map(str::to_string))
                    .collect();
                let health = aws
                    .elb
                    .describe_target_health()
                    .target_group_arn(tg)
                    .send()
                    .await?;
                let healthy_new = health.target_health_descriptions().iter().any(|d| {
                    d.target()
                        .and_then(|t| t.id())
                        .is_some_and(|id| ips.iter().any(|ip| ip == id))
                        && d.target_health()
                            .and_then(|h| h.state())
                            .map(|s| s.as_str())
                            == Some("healthy")
                });
                if healthy_new {
                    return Ok(at);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Run {
    verdict_at: f64,
    result: serde_json::Value,
}

async fn deploy(shipit: &str, app: &str, service: &str, extra: &[&str]) -> Result<Run, BoxError> {
    let mut child = tokio::process::Command::new(shipit)
        .args([
            "deploy",
            "-C",
            app,
            "--sha",
            SHA,
            "--repository",
            REPOSITORY,
            "--cluster",
            CLUSTER,
            "--service",
            service,
            "--output",
            "json",
            "--unhealthy-grace",
            "15s",
        ])
        .args(extra)
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut events = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut verdict_at = None;
    while let Some(line) = events.next_line().await? {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["type"] == "verdict" && verdict_at.is_none() {
            let time = chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())?;
            verdict_at = Some(time.timestamp_millis() as f64 / 1000.0);
        }
    }
    let out = child.wait_with_output().await?;
    let result = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(Run {
        verdict_at: verdict_at.ok_or("shipit printed no verdict")?,
        result,
    })
}

async fn current_td(aws: &Aws, service: &str) -> Result<String, BoxError> {
    let out = aws
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(service)
        .send()
        .await?;
    Ok(out.services()[0]
        .task_definition()
        .unwrap_or_default()
        .to_string())
}

fn stats(name: &str, lags: &[f64]) {
    let mut sorted = lags.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = sorted[sorted.len() / 2];
    println!(
        "{name:<8} lag s: {:?}  median {median:.2}  min {:.2}  max {:.2}",
        lags.iter()
            .map(|l| (l * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        sorted[0],
        sorted[sorted.len() - 1]
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let shipit = args
        .next()
        .ok_or("usage: bench_verdict <shipit-binary> <app-dir> [rounds]")?;
    let app = args
        .next()
        .ok_or("usage: bench_verdict <shipit-binary> <app-dir> [rounds]")?;
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let aws = Aws::from_env().await;
    let service = format!("bench-{}", std::process::id());
    let net = provision::network(&aws, &service, (std::process::id() % 150 + 60) as u8).await?;
    let alb = provision::alb(&aws, &service, &net, "/health").await?;
    let uri = provision::repository(&aws, REPOSITORY).await?;
    provision::cluster(&aws, CLUSTER).await?;
    let app_container = Container {
        name: "app",
        image: format!("{uri}:bootstrap"),
        port: 8080,
        environment: vec![],
    };
    provision::service(&aws, CLUSTER, &service, &[app_container], &net, &alb).await?;
    let first = deploy(
        &shipit,
        &app,
        &service,
        &["--desired-count", "1", "--create-repository"],
    )
    .await?;
    assert_eq!(first.result["verdict"], "deployed", "{}", first.result);

    let (mut healthy, mut failing, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for (good, lags) in [(true, &mut healthy), (false, &mut failing)] {
            let baseline = current_td(&aws, &service).await?;
            let env = if good {
                format!("ROUND={round}")
            } else {
                "APP_MODE=crash".to_string()
            };
            let (signal, run) = tokio::join!(
                first_signal(&aws, &service, &alb.target_group, &baseline, good),
                deploy(&shipit, &app, &service, &["--env", &env])
            );
            let (signal, run) = (signal?, run?);
            lags.push(run.verdict_at - signal);
            let watch = &run.result["watch"];
            calls.push(
                watch["aws_calls"].as_f64().unwrap_or(0.0) / watch["polls"].as_f64().unwrap_or(1.0),
            );
            let want = if good { "deployed" } else { "rolled_back" };
            assert_eq!(run.result["verdict"], want, "{}", run.result);
        }
    }
    println!("verdict lag (shipit's verdict minus the first decisive signal seen by a 200 ms poller), poll interval 5 s, {rounds} rounds");
    stats("healthy", &healthy);
    stats("failure", &failing);
    println!("AWS calls per poll (1 target group): {:?}", calls);
    Ok(())
}
