//! Issue 13's benchmark: what a deploy of several services costs.
//!
//!   cargo bench --bench multi_service -- calls          # scripted endpoint, no stack
//!   cargo bench --bench multi_service -- wall [rounds]  # the local stack (scripts/local-stack env)
//!
//! `calls`: AWS calls per watch poll of one deploy of 1, 3 and 10 services
//! (web behind a target group, the others workers without a load balancer)
//! against the scripted endpoint of the aws_shaped tests, next to N deploys
//! of one service each: the calls the endpoint saw between the last
//! UpdateService and the first verdict tag, divided by the polls.
//!
//! `wall`: on the local stack, a web behind the ALB and two workers from one
//! image; per round (alternating), one deploy of the three against three
//! single-service deploys one after the other, each side with a fresh commit
//! (so each side builds and pushes once). Prints the seconds per round.

// The aws_shaped tests' scripted endpoint and N-service cluster, and the
// e2e provisioning (`fleet.rs` finds `aws` as `super::aws`).
#[allow(dead_code)]
#[path = "../tests/support/aws.rs"]
mod aws;
#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "../tests/support/provision.rs"]
mod provision;

use std::time::Instant;

use aws::FakeAws;
use fleet::{count, watch_calls, Cluster};
use provision::{Aws, BoxError, Container};

const SHIPIT: &str = env!("CARGO_BIN_EXE_shipit");

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs bench
    // targets too, without it and with libtest's flags (`--test-threads 8`).
    // That run is not a measurement: say so and leave.
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("multi_service: a benchmark; run it with `cargo bench --bench multi_service`");
        return Ok(());
    }
    args.retain(|a| a != "--bench");
    match args.first().map(String::as_str) {
        Some("calls") | None => calls().await,
        Some("wall") => wall(args.get(1).map_or(Ok(3), |r| r.parse())?).await,
        Some(other) => Err(format!("unknown part `{other}`: calls or wall").into()),
    }
}

/// Runs shipit against the scripted endpoint; the exit code.
async fn run(aws: &FakeAws, args: &[String]) -> Result<i32, BoxError> {
    let out = tokio::process::Command::new(SHIPIT)
        .args(args)
        .env("CI", "true")
        .env_remove("GITHUB_ACTIONS")
        .envs(aws.env())
        .output()
        .await?;
    Ok(out.status.code().unwrap_or(-1))
}

/// Watch calls and polls of one deploy of `cluster`'s services.
async fn measure(cluster: &Cluster) -> Result<(usize, usize), BoxError> {
    let aws = cluster.world().await;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n")?;
    let code = run(&aws, &cluster.deploy_args(dir.path().to_str().unwrap())).await?;
    if code != 0 {
        return Err(format!("deploy of {:?} exited {code}", cluster.names).into());
    }
    let watch = watch_calls(&aws);
    let per_poll = cluster.names.len().div_ceil(10);
    let polls = count(&watch, "ECS.DescribeServices") / per_poll;
    // Once per watch, not per poll: the target groups' settings (for the pace).
    let once = count(&watch, "ELBv2.DescribeTargetGroups")
        + count(&watch, "ELBv2.DescribeTargetGroupAttributes");
    Ok((watch.len() - once, polls))
}

async fn calls() -> Result<(), BoxError> {
    println!("| services | one deploy: calls per poll | N single-service deploys: calls per poll, summed | saved |");
    println!("|---|---|---|---|");
    for n in [1usize, 3, 10] {
        let names: Vec<String> = (0..n)
            .map(|i| {
                if i == 0 {
                    "web".into()
                } else {
                    format!("worker-{i}")
                }
            })
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let lb: Vec<bool> = (0..n).map(|i| i == 0).collect();
        let (calls, polls) = measure(&Cluster::new(&names, &lb, false)).await?;
        let together = calls as f64 / polls.max(1) as f64;
        let mut apart = 0.0;
        for (name, lb) in names.iter().zip(&lb) {
            let (calls, polls) = measure(&Cluster::new(&[*name], &[*lb], false)).await?;
            apart += calls as f64 / polls.max(1) as f64;
        }
        println!(
            "| {n} | {together:.1} ({calls} calls / {polls} polls) | {apart:.1} | {:.0}% |",
            100.0 * (1.0 - together / apart)
        );
    }
    Ok(())
}

/// Runs shipit on the local stack; seconds and exit code.
fn timed(args: &[&str]) -> Result<(f64, i32, String), BoxError> {
    let started = Instant::now();
    let out = std::process::Command::new(SHIPIT)
        .args(args)
        .env("CI", "true")
        .env_remove("GITHUB_ACTIONS")
        .output()?;
    Ok((
        started.elapsed().as_secs_f64(),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

async fn wall(rounds: usize) -> Result<(), BoxError> {
    const CLUSTER: &str = "shipit-bench";
    const REPOSITORY: &str = "shipit-bench-app";
    let busybox =
        std::env::var("SHIPIT_BUSYBOX").map_err(|_| "run under scripts/local-stack env")?;
    let aws = Aws::from_env().await;
    let web = format!("bench-multi-{}", std::process::id());
    let net = provision::network(&aws, &web, (std::process::id() % 150 + 60) as u8).await?;
    let alb = provision::alb(&aws, &web, &net, "/health").await?;
    let uri = provision::repository(&aws, REPOSITORY).await?;
    provision::cluster(&aws, CLUSTER).await?;
    let container = || Container {
        name: "app",
        image: format!("{uri}:bootstrap"),
        port: 8080,
        environment: vec![],
    };
    let workers = [format!("{web}-w1"), format!("{web}-w2")];
    provision::service(&aws, CLUSTER, &web, &[container()], &net, &alb).await?;
    for worker in &workers {
        provision::service_with(&aws, CLUSTER, worker, &[container()], &net, None).await?;
    }
    let app = tempfile::tempdir()?;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/app");
    for entry in walkdir::WalkDir::new(&src)
        .into_iter()
        .filter_map(Result::ok)
    {
        let to = app.path().join(entry.path().strip_prefix(&src)?);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to)?;
        } else if entry.file_name() != "busybox" {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    std::fs::copy(busybox, app.path().join("busybox"))?;
    let dir = app.path().to_str().unwrap().to_string();
    let services = [web.as_str(), workers[0].as_str(), workers[1].as_str()];
    let base = |sha: &str| -> Vec<String> {
        [
            "deploy",
            "-C",
            &dir,
            "--sha",
            sha,
            "--repository",
            REPOSITORY,
            "--cluster",
            CLUSTER,
            "--poll-interval",
            "2s",
            "--timeout",
            "4m",
            "--output",
            "lines",
            "--desired-count",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let sha = |round: usize, side: usize| {
        format!(
            "{:040x}",
            0xb3c0_0000_u64 + (std::process::id() as u64) * 100 + (round * 2 + side) as u64
        )
    };
    let together_run = |sha: String| -> Result<(f64, i32), BoxError> {
        let mut args = base(&sha);
        for s in services {
            args.extend(["--service".to_string(), s.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (secs, code, stderr) = timed(&args)?;
        if code != 0 {
            eprintln!("{stderr}");
        }
        Ok((secs, code))
    };
    let apart_run = |sha: String| -> Result<(f64, i32), BoxError> {
        let mut total = 0.0;
        for s in services {
            let mut args = base(&sha);
            args.extend(["--service".to_string(), s.to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (secs, code, stderr) = timed(&args)?;
            if code != 0 {
                eprintln!("{stderr}");
                return Ok((total + secs, code));
            }
            total += secs;
        }
        Ok((total, 0))
    };
    // Warm-up: the services' first tasks (desired count 0 → 1), not timed.
    together_run(sha(999, 0))?;
    println!("| round | one deploy of 3 services (s) | 3 single-service deploys (s) |");
    println!("|---|---|---|");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (together, apart) = if round % 2 == 0 {
            let t = together_run(sha(round, 0))?;
            (t, apart_run(sha(round, 1))?)
        } else {
            let p = apart_run(sha(round, 1))?;
            (together_run(sha(round, 0))?, p)
        };
        if together.1 != 0 || apart.1 != 0 {
            return Err(format!("round {round}: exit {} / {}", together.1, apart.1).into());
        }
        println!("| {round} | {:.1} | {:.1} |", together.0, apart.0);
        a.push(together.0);
        b.push(apart.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
        v[v.len() / 2]
    };
    println!("| median | {:.1} | {:.1} |", median(&mut a), median(&mut b));
    for s in services {
        let _ = aws
            .ecs
            .update_service()
            .cluster(CLUSTER)
            .service(s)
            .desired_count(0)
            .send()
            .await;
    }
    Ok(())
}
