//! Verdict lag: how long after the first API-visible decisive signal shipit
//! gives its verdict. An independent poller (every 200 ms) watches the stack;
//! shipit runs with `--output json`, whose `verdict` event carries its time.
//!
//!   healthy: signal = the first moment a task of the new revision is RUNNING
//!            and its target is `healthy`;
//!   failure: signal = the first moment a task of the new revision is STOPPED
//!            (APP_MODE=crash).
//!
//! It also records the lag to shipit's exit (for a failing deploy that includes
//! the rollback, watched until healthy), the watch's polls and AWS calls, and
//! the AWS API calls of the whole run (`aws_api_calls` in the result).
//! With `BENCH_TSV=<file>` each deploy is appended there as one line:
//! `kind round lag_verdict_s lag_exit_s polls watch_calls api_calls_total
//! rollback_start_s` (the last: from the Failed verdict's event to the
//! `rollback_started` event, which shipit emits right before the rollback's
//! UpdateService; `-` for a healthy deploy), and
//! `BENCH_TSV=<file>.ops` gets the per-operation counts of each deploy.
//!
//! Run on the local stack: `benches/verdict-lag.sh [rounds]` (or `benches/run`).

#[path = "../tests/support/provision.rs"]
mod provision;

use std::collections::HashSet;
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

/// Every task of the service, running or stopped, as ListTasks reports it now.
async fn task_arns(aws: &Aws, service: &str) -> Result<Vec<String>, BoxError> {
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
    Ok(arns)
}

/// What the independent poller saw first among the tasks started after the
/// deploy began (not in `before`) and running a revision other than `baseline`.
/// (Tasks of older revisions stopped by earlier rounds are not signals.)
async fn first_signal(
    aws: &Aws,
    service: &str,
    tg: &str,
    baseline: &str,
    before: &HashSet<String>,
    healthy: bool,
) -> Result<f64, BoxError> {
    loop {
        let at = now();
        let mut arns = task_arns(aws, service).await?;
        arns.retain(|arn| !before.contains(arn));
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
    /// When the `rollback_started` event was emitted (a failing deploy).
    rollback_at: Option<f64>,
    exited_at: f64,
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
    let (mut verdict_at, mut rollback_at) = (None, None);
    while let Some(line) = events.next_line().await? {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let at = || -> Result<f64, BoxError> {
            let time = chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())?;
            Ok(time.timestamp_millis() as f64 / 1000.0)
        };
        if event["type"] == "verdict" && verdict_at.is_none() {
            verdict_at = Some(at()?);
        }
        if event["type"] == "rollback_started" && rollback_at.is_none() {
            rollback_at = Some(at()?);
        }
    }
    let out = child.wait_with_output().await?;
    let exited_at = now();
    let result = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(Run {
        verdict_at: verdict_at.ok_or("shipit printed no verdict")?,
        rollback_at,
        exited_at,
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

    let tsv = std::env::var("BENCH_TSV").ok();
    let (mut healthy, mut failing, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    let (mut healthy_exit, mut failing_exit) = (Vec::new(), Vec::new());
    let mut rollback_starts = Vec::new();
    for round in 0..rounds {
        for (good, lags, exits) in [
            (true, &mut healthy, &mut healthy_exit),
            (false, &mut failing, &mut failing_exit),
        ] {
            let baseline = current_td(&aws, &service).await?;
            let before: HashSet<String> = task_arns(&aws, &service).await?.into_iter().collect();
            let env = if good {
                format!("ROUND={round}")
            } else {
                "APP_MODE=crash".to_string()
            };
            let env_args = ["--env", env.as_str()];
            let (signal, run) = tokio::join!(
                first_signal(&aws, &service, &alb.target_group, &baseline, &before, good),
                deploy(&shipit, &app, &service, &env_args)
            );
            let (signal, run) = (signal?, run?);
            lags.push(run.verdict_at - signal);
            exits.push(run.exited_at - signal);
            let watch = &run.result["watch"];
            let (polls, watch_calls) = (
                watch["polls"].as_f64().unwrap_or(0.0),
                watch["aws_calls"].as_f64().unwrap_or(0.0),
            );
            calls.push(watch_calls / polls.max(1.0));
            let rollback_start = run.rollback_at.map(|at| at - run.verdict_at);
            rollback_starts.extend(rollback_start);
            let want = if good { "deployed" } else { "rolled_back" };
            assert_eq!(run.result["verdict"], want, "{}", run.result);
            if let Some(path) = &tsv {
                let kind = if good { "healthy" } else { "failure" };
                let api = &run.result["aws_api_calls"];
                append(
                    path,
                    &format!(
                        "{kind}\t{round}\t{:.3}\t{:.3}\t{polls}\t{watch_calls}\t{}\t{}\n",
                        run.verdict_at - signal,
                        run.exited_at - signal,
                        api["total"].as_u64().map_or("-".into(), |n| n.to_string()),
                        rollback_start.map_or("-".into(), |s| format!("{s:.3}"))
                    ),
                )?;
                append(
                    &format!("{path}.ops"),
                    &format!("{kind}\t{round}\t{}\n", api["by_operation"]),
                )?;
            }
        }
    }
    // A service left running costs the emulator CPU on every later benchmark.
    aws.ecs
        .update_service()
        .cluster(CLUSTER)
        .service(&service)
        .desired_count(0)
        .send()
        .await?;
    println!("verdict lag (shipit's verdict minus the first decisive signal seen by a 200 ms poller), poll interval 5 s, {rounds} rounds");
    stats("healthy", &healthy);
    stats("failure", &failing);
    println!("lag to exit (failure: after the rollback is watched healthy)");
    stats("healthy", &healthy_exit);
    stats("failure", &failing_exit);
    println!("AWS calls per poll (1 target group): {:?}", calls);
    if !rollback_starts.is_empty() {
        println!("from the Failed verdict to the rollback's start (event times, ms resolution)");
        stats("failure", &rollback_starts);
    }
    Ok(())
}

fn append(path: &str, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}
