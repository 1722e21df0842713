//! The real `shipit` binary, with its real SDK adapters, against scripted
//! AWS responses shaped as the ECS, ELBv2, ECR and CloudWatch API references
//! describe them, including what the local emulator never shows (deployments
//! that complete, circuit breakers, ECS's own rollbacks, deployment alarms,
//! container health, stop codes, IPv6).
//!
//! Every test deploys commit [`SHA`] of service `web` in cluster `prod`
//! (revision 7 → 8, one task, one `ip` target group). The image tag is
//! already in ECR, so no Docker engine is involved. Polls are 1 s apart.
//!
//! Three groups:
//! - `harness_*`: the scripted documents parse into the SDK's typed shapes.
//! - `today_*`: what shipit does now; they prove the harness and must pass.
//! - `issue_10_*`: the verdict and orchestration of issue 10 as
//!   /work/CONTRACT.md specifies them (verdict names, exit codes). They fail
//!   until that work is merged, each saying what it expected.
//!
//! Tests pass `--settle 1s` once the binary has a settle flag ([`settle`]),
//! except the one that proves the default settle period catches a crash.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::aws::*;

const CLUSTER: &str = "prod";
const SERVICE: &str = "web";
const REPOSITORY: &str = "web";
const CONTAINER: &str = "app";
const PORT: i32 = 8080;
const SHA: &str = "5a1f00d2c0ffee0000000000000000000000a5e1";
const OLD_SHA: &str = "01d5000000000000000000000000000000000007";
const DIGEST: &str = "sha256:8b1a9953c4611296a827abf8c47804d7e6c49c6b2a4f1f1f3b1b1b2b3c4d5e6f";
const OLD_DIGEST: &str = "sha256:07a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f";

const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7";
const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
/// Someone else's revision (a newer pipeline run, a console deploy).
const OTHER: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:9";
const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067";
const TG_GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/0f1e2d3c4b5a6978";

/// The deployment serving revision 7 before the deploy.
const OLD_DEP: &str = "ecs-svc/4919275820175283721";
/// The deployment UpdateService to revision 8 starts.
const NEW_DEP: &str = "ecs-svc/6182051290346153823";
/// The deployment that takes the service back to revision 7 (shipit's or ECS's rollback).
const BACK_DEP: &str = "ecs-svc/7301922376511830480";
/// Someone else's deployment.
const OTHER_DEP: &str = "ecs-svc/8450013377281954602";

const OLD_IP: &str = "10.0.1.17";
const NEW_IP: &str = "10.0.2.28";
const NEW_IP_2: &str = "10.0.2.44";
const BACK_IP: &str = "10.0.1.61";
const OTHER_IP: &str = "10.0.3.12";

fn task(n: u64) -> String {
    task_arn(CLUSTER, n)
}

/// Revision 7's task, started long before the deploy.
fn old_task() -> TaskDoc {
    TaskDoc::running(&task(7), OLD, OLD_DEP, CONTAINER, OLD_IP).started_at(now() - 3_600.0)
}

fn new_task(n: u64, ip: &str) -> TaskDoc {
    TaskDoc::running(&task(n), NEW, NEW_DEP, CONTAINER, ip)
}

/// The task the rollback deployment (to revision 7) starts.
fn back_task() -> TaskDoc {
    TaskDoc::running(&task(70), OLD, BACK_DEP, CONTAINER, BACK_IP)
}

/// The service as it is before the deploy: revision 7, one deployment, COMPLETED.
fn service_on_old() -> ServiceDoc {
    ServiceDoc::new(CLUSTER, SERVICE, OLD, 1)
        .target_group(TG, CONTAINER, PORT)
        .deployment(
            DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "COMPLETED")
                .counts(1, 1, 0)
                .created_at(now() - 86_000.0),
        )
}

/// `service` with its `taskDefinition` and `deployments` replaced.
fn rolling(
    service: ServiceDoc,
    task_definition: &str,
    deployments: Vec<DeploymentDoc>,
) -> ServiceDoc {
    let mut service = service
        .set("/taskDefinition", json!(task_definition))
        .set("/deployments", json!([]));
    for d in deployments {
        service = service.deployment(d);
    }
    service
}

fn new_primary(rollout: &str, running: i32) -> DeploymentDoc {
    DeploymentDoc::new(NEW_DEP, "PRIMARY", NEW, rollout).counts(1, running, 0)
}

fn old_active(running: i32) -> DeploymentDoc {
    DeploymentDoc::new(OLD_DEP, "ACTIVE", OLD, "COMPLETED")
        .counts(1, running, 0)
        .created_at(now() - 86_000.0)
}

/// The usual rollout of revision 8: a new task comes up, its target turns
/// healthy, ECS completes the deployment and stops the old task.
fn healthy_rollout(base: ServiceDoc) -> Vec<Frame> {
    let starting = rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 0), old_active(1)],
    );
    let both = rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 1), old_active(1)],
    );
    let done = rolling(base, NEW, vec![new_primary("COMPLETED", 1)]);
    vec![
        Frame::new(starting)
            .task(old_task())
            .task(new_task(8, NEW_IP).status("PENDING", "RUNNING"))
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
        Frame::new(both.clone())
            .task(old_task())
            .task(new_task(8, NEW_IP))
            .targets(
                TG,
                vec![
                    target(OLD_IP, PORT, "healthy"),
                    target(NEW_IP, PORT, "initial"),
                ],
            ),
        Frame::new(both)
            .task(old_task())
            .task(new_task(8, NEW_IP))
            .targets(
                TG,
                vec![
                    target(OLD_IP, PORT, "draining"),
                    target(NEW_IP, PORT, "healthy"),
                ],
            ),
        Frame::new(done)
            .task(old_task().stopped(
                "ServiceSchedulerInitiated",
                "Scaling activity initiated by (deployment ecs-svc/6182051290346153823)",
            ))
            .task(new_task(8, NEW_IP))
            .targets(TG, vec![target(NEW_IP, PORT, "healthy")]),
    ]
}

/// A rollback to revision 7 (by shipit's UpdateService, or ECS's own) that goes well.
fn healthy_return(base: ServiceDoc, failed: DeploymentDoc) -> Vec<Frame> {
    let back = |rollout: &str, running: i32| {
        DeploymentDoc::new(BACK_DEP, "PRIMARY", OLD, rollout).counts(1, running, 0)
    };
    vec![
        Frame::new(rolling(
            base.clone(),
            OLD,
            vec![back("IN_PROGRESS", 0), failed.clone()],
        ))
        .task(back_task().status("PENDING", "RUNNING"))
        .targets(TG, vec![]),
        Frame::new(rolling(
            base.clone(),
            OLD,
            vec![back("IN_PROGRESS", 1), failed],
        ))
        .task(back_task())
        .targets(TG, vec![target(BACK_IP, PORT, "healthy")]),
        Frame::new(rolling(base, OLD, vec![back("COMPLETED", 1)]))
            .task(back_task())
            .targets(TG, vec![target(BACK_IP, PORT, "healthy")]),
    ]
}

/// Revision 7 as DescribeTaskDefinition returns it.
fn old_task_definition() -> Value {
    task_definition(
        OLD,
        CONTAINER,
        &format!("{}:{OLD_SHA}", ecr_uri(REPOSITORY)),
        PORT,
    )
}

/// The scripted account: ECR holds both images, revision 7 is described
/// with the tags shipit put on it, RegisterTaskDefinition answers revision
/// 8, and before the deploy the service runs revision 7 healthy.
async fn world(service: ServiceDoc, old_td: Value) -> FakeAws {
    let aws = FakeAws::start().await;
    aws.on("ECR.DescribeRepositories")
        .when("repositoryNames", REPOSITORY)
        .reply(Reply::Doc(ecr_repositories(REPOSITORY)));
    aws.on("ECR.DescribeImages")
        .reply(ecr_image_not_found(REPOSITORY, "?"));
    aws.on("ECR.DescribeImages")
        .when("imageIds", SHA)
        .reply(Reply::Doc(ecr_images(REPOSITORY, SHA, DIGEST)));
    aws.on("ECR.DescribeImages")
        .when("imageIds", OLD_SHA)
        .reply(Reply::Doc(ecr_images(REPOSITORY, OLD_SHA, OLD_DIGEST)));
    aws.on("ECS.DescribeTaskDefinition")
        .when("taskDefinition", OLD)
        .reply(Reply::Doc(describe_task_definition(
            old_td,
            &[
                ("shipit:sha", OLD_SHA),
                ("shipit:verdict", "healthy"),
                ("team", "web"),
            ],
        )));
    aws.on("ECS.DescribeTaskDefinition")
        .when("taskDefinition", NEW)
        .reply(Reply::Doc(describe_task_definition(
            task_definition(
                NEW,
                CONTAINER,
                &format!("{}:{SHA}", ecr_uri(REPOSITORY)),
                PORT,
            ),
            &[
                ("shipit:sha", SHA),
                ("shipit:previous", OLD),
                ("team", "web"),
            ],
        )));
    aws.on("ECS.RegisterTaskDefinition")
        .reply(Reply::Registered(NEW.into()));
    let before = Frame::new(service)
        .task(old_task())
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")]);
    aws.before(vec![before]);
    aws
}

/// A deploy run and what it printed.
struct Deploy {
    code: i32,
    result: Value,
    stderr: String,
}

impl Deploy {
    fn verdict(&self) -> &str {
        self.result["verdict"].as_str().unwrap_or("<none>")
    }

    fn reason(&self) -> String {
        self.result["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// What a failed assertion shows: the outcome and the mutating calls.
    fn story(&self, aws: &FakeAws) -> String {
        format!(
            "got exit {} verdict `{}` reason {:?}\n  rollback: {}\n  mutations: {:?}\n  unscripted operations: {:?}\n  stderr (last lines):\n{}",
            self.code,
            self.verdict(),
            self.reason(),
            self.result["rollback"],
            aws.mutation_summary(),
            aws.unscripted(),
            tail(&self.stderr, 12),
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `shipit deploy` against `aws` in a directory holding only a
/// Dockerfile, with 1 s polls, a 30 s deadline (20 s for the rollback) and a
/// 2 s unhealthy grace unless `extra` says otherwise.
async fn deploy(aws: &FakeAws, extra: &[&str]) -> Deploy {
    deploy_with_env(aws, extra, &[]).await
}

/// [`deploy`] with extra environment variables for the process.
async fn deploy_with_env(aws: &FakeAws, extra: &[&str], env: &[(&str, &str)]) -> Deploy {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    deploy_in(aws, dir.path(), extra, env).await
}

/// `shipit deploy -C <dir> …` (see [`deploy`]).
async fn deploy_in(
    aws: &FakeAws,
    dir: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Deploy {
    let mut args = vec![
        "deploy",
        "-C",
        dir.to_str().unwrap(),
        "--sha",
        SHA,
        "--repository",
        REPOSITORY,
    ];
    args.extend_from_slice(extra);
    shipit(
        aws,
        &args,
        &["--rollback-timeout", "--unhealthy-grace"],
        env,
    )
    .await
}

/// Runs `shipit <args> --cluster prod --service web --output json` against
/// `aws` as CI would, with 1 s polls, a 30 s deadline and, where `timings`
/// names them, a 20 s rollback deadline and a 2 s unhealthy grace, unless
/// `args` gives its own.
async fn shipit(aws: &FakeAws, args: &[&str], timings: &[&str], env: &[(&str, &str)]) -> Deploy {
    let mut args = args.to_vec();
    // `shipit run … -- <command>`: the flags go before the command.
    let command = args
        .iter()
        .position(|a| *a == "--")
        .map(|i| args.split_off(i))
        .unwrap_or_default();
    args.extend(["--cluster", CLUSTER, "--service", SERVICE]);
    if !args.contains(&"--output") {
        args.extend(["--output", "json"]);
    }
    let mut defaults = vec![("--poll-interval", "1s"), ("--timeout", "30s")];
    defaults.extend(
        [("--rollback-timeout", "20s"), ("--unhealthy-grace", "2s")]
            .into_iter()
            .filter(|(flag, _)| timings.contains(flag)),
    );
    for (flag, value) in defaults {
        if !args.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend(command);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipit"));
    command
        .args(&args)
        .env("CI", "true")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_SHA",
        "CIRCLE_SHA1",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
    ] {
        command.env_remove(var);
    }
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SHIPIT_")) {
        command.env_remove(key);
    }
    command.envs(aws.env());
    command.envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("shipit finished within 90 s")
        .expect("the shipit binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "$ shipit {}\n--- exit {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}--- mutations\n{:#?}",
        args.join(" "),
        out.status.code(),
        aws.mutation_summary()
    );
    let result = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or(Value::Null);
    Deploy {
        code: out.status.code().unwrap_or(-1),
        result,
        stderr,
    }
}

/// `--settle 1s` once shipit has a settle flag (issue 10, case 2), so the
/// tests stay fast whatever the default hold is; nothing before. The flag's
/// name is read from `shipit deploy --help` (`--settle`, `--settle-period`, …).
fn settle() -> Vec<&'static str> {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_shipit"))
        .args(["deploy", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let flag = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .find(|word| word.starts_with("--settle"));
    match flag {
        Some(flag) => vec![Box::leak(flag.to_string().into_boxed_str()), "1s"],
        None => vec![],
    }
}

/// The revisions UpdateService was called with, in order (`web:8`, `web:7`).
fn updates(aws: &FakeAws) -> Vec<String> {
    aws.calls_of("ECS.UpdateService")
        .iter()
        .map(|c| {
            c.field("taskDefinition")
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Whether revision 8 was tagged `shipit:verdict=<verdict>`.
fn tagged(aws: &FakeAws, verdict: &str) -> bool {
    aws.mutation_summary()
        .contains(&format!("TagResource web:8 shipit:verdict={verdict}"))
}

/// DescribeServices calls made between the first UpdateService and the
/// first `shipit:verdict` tag (or the end): the polls the verdict waited for.
fn polls_before_verdict(aws: &FakeAws) -> usize {
    let calls = aws.calls();
    let start = calls
        .iter()
        .position(|c| c.operation == "ECS.UpdateService")
        .unwrap_or(calls.len());
    calls[start..]
        .iter()
        .take_while(|c| c.operation != "ECS.TagResource")
        .filter(|c| c.operation == "ECS.DescribeServices")
        .count()
}

// ---------------------------------------------------------------------------
// Today's behaviour: the harness, proven with the real SDK.

#[tokio::test]
async fn today_healthy_deploy_registers_updates_then_tags_healthy() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "a healthy rollout is deployed; {}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutation_summary(),
        [
            "RegisterTaskDefinition web",
            "UpdateService web:8",
            "TagResource web:8 shipit:verdict=healthy"
        ],
        "one revision registered, one update, one healthy tag; {}",
        run.story(&aws)
    );
    // The revision registered is revision 7 with the new image and shipit's tags.
    let registered = &aws.calls_of("ECS.RegisterTaskDefinition")[0].body;
    assert_eq!(
        registered["containerDefinitions"][0]["image"],
        format!("{}:{SHA}", ecr_uri(REPOSITORY)),
    );
    let tags = registered["tags"].as_array().cloned().unwrap_or_default();
    assert!(
        tags.contains(&json!({"key": "shipit:sha", "value": SHA}))
            && tags.contains(&json!({"key": "shipit:previous", "value": OLD}))
            && tags.contains(&json!({"key": "team", "value": "web"})),
        "tags of the new revision: {tags:?}"
    );
    assert_eq!(
        aws.calls_of("ECS.UpdateService")[0].body["cluster"],
        CLUSTER,
        "UpdateService names the cluster"
    );
    assert!(
        aws.calls_of("ELBv2.DescribeTargetHealth")
            .iter()
            .all(|c| c.field("TargetGroupArn") == TG && c.protocol == Protocol::Query),
        "target health is read over awsQuery for the service's target group"
    );
}

#[tokio::test]
async fn today_circuit_breaker_failure_without_ecs_rollback_is_rolled_back_by_shipit() {
    // The breaker is on but ECS does not roll back (rollback: false): shipit must.
    let base = service_on_old().circuit_breaker(true, false);
    let aws = world(base.clone(), old_task_definition()).await;
    let failed = DeploymentDoc::new(NEW_DEP, "PRIMARY", NEW, "FAILED")
        .counts(1, 0, 3)
        .reason("ECS deployment circuit breaker: tasks failed to start.");
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(rolling(base.clone(), NEW, vec![new_primary("IN_PROGRESS", 0), old_active(1)]))
                .task(old_task())
                .task(new_task(8, NEW_IP).status("PENDING", "RUNNING"))
                .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
            Frame::new(rolling(base.clone(), NEW, vec![failed.clone(), old_active(1)]).event(
                "5e1f0a52-0c1d-4f7e-9b2a-3c4d5e6f7a8b",
                now(),
                "(service web) (deployment ecs-svc/6182051290346153823) deployment failed: tasks failed to start.",
            ))
            .task(old_task())
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
        ],
    );
    let mut inactive = failed;
    inactive.0["status"] = json!("ACTIVE");
    aws.after_update_to(OLD, healthy_return(base, inactive));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "a FAILED deployment is rolled back; {}",
        run.story(&aws)
    );
    assert!(
        run.reason().contains("FAILED") && run.reason().contains("circuit breaker"),
        "the reason names the circuit breaker: {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8", "web:7"], "{}", run.story(&aws));
    assert_eq!(run.result["rollback"]["to"], OLD);
    assert_eq!(run.result["rollback"]["healthy"], true);
    assert!(!tagged(&aws, "healthy"), "{}", run.story(&aws));
}

/// A new task that cannot pull its image: STOPPED, stopCode TaskFailedToStart.
fn cannot_pull(n: u64) -> TaskDoc {
    let reason = format!(
        "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref {}:{SHA}: not found",
        ecr_uri(REPOSITORY)
    );
    new_task(n, NEW_IP)
        .stopped("TaskFailedToStart", &reason)
        .container_exit(None, Some(&reason))
}

#[tokio::test]
async fn today_a_new_task_that_cannot_pull_its_image_is_rolled_back() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let base = service_on_old();
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(rolling(
                base.clone(),
                NEW,
                vec![new_primary("IN_PROGRESS", 0), old_active(1)],
            ))
            .task(old_task())
            .task(new_task(8, NEW_IP).status("PROVISIONING", "RUNNING"))
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
            Frame::new(rolling(
                base.clone(),
                NEW,
                vec![new_primary("IN_PROGRESS", 0), old_active(1)],
            ))
            .task(old_task())
            .task(cannot_pull(8))
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
        ],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 0, 1),
        ),
    );

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "a task that cannot start is the revision's fault; {}",
        run.story(&aws)
    );
    assert!(
        run.reason().contains("CannotPullContainerError"),
        "the reason carries ECS's stoppedReason; {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8", "web:7"], "{}", run.story(&aws));
}

#[tokio::test]
async fn today_an_unknown_container_is_bad_input_and_changes_nothing() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));

    let run = deploy(&aws, &["--container", "nope"]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (2, "error"),
        "{}",
        run.story(&aws)
    );
    assert!(run.reason().contains("nope"), "{}", run.story(&aws));
    assert_eq!(
        aws.mutations().len(),
        0,
        "nothing changed; {}",
        run.story(&aws)
    );
    assert!(
        !aws.calls_of("ECS.DescribeServices").is_empty(),
        "the plan did read the service before refusing"
    );
}

// ---------------------------------------------------------------------------
// Issue 10, as it will behave once the new verdict and orchestration land.

/// Issue 10 case 1: an essential container with a `healthCheck` that ECS
/// reports UNHEALTHY fails the deploy, even while the ALB calls the target healthy.
#[tokio::test]
async fn issue_10_unhealthy_container_health_check_is_rolled_back_even_with_a_healthy_target() {
    let checked = with_health_check(
        old_task_definition(),
        "curl -fs http://localhost:8080/health || exit 1",
    );
    let base = service_on_old();
    let aws = world(base.clone(), checked).await;
    let rollout = |health: &str| {
        Frame::new(rolling(
            base.clone(),
            NEW,
            vec![new_primary("IN_PROGRESS", 1), old_active(1)],
        ))
        .task(old_task().health("HEALTHY"))
        .task(new_task(8, NEW_IP).health(health))
        .targets(
            TG,
            vec![
                target(OLD_IP, PORT, "healthy"),
                target(NEW_IP, PORT, "healthy"),
            ],
        )
    };
    aws.after_update_to(NEW, vec![rollout("UNKNOWN"), rollout("UNHEALTHY")]);
    let mut returned = healthy_return(
        base,
        DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS"),
    );
    for frame in &mut returned {
        for t in &mut frame.tasks {
            t["healthStatus"] = json!("HEALTHY");
            t["containers"][0]["healthStatus"] = json!("HEALTHY");
        }
    }
    aws.after_update_to(OLD, returned);

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "expected exit 1 `rolled_back`: container `app` has a healthCheck and ECS reports it UNHEALTHY past the 2 s grace; a healthy ALB target must not override that; {}",
        run.story(&aws)
    );
    assert!(
        run.reason().to_lowercase().contains("health"),
        "expected the reason to name the failed container health check; {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8", "web:7"], "{}", run.story(&aws));
    assert!(!tagged(&aws, "healthy"), "{}", run.story(&aws));
}

/// Issue 10 case 2: a task that passes the ALB check and crashes two
/// seconds later is not deployed (the default settle period catches it).
#[tokio::test]
async fn issue_10_a_task_that_passes_one_check_then_crashes_is_not_deployed() {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    let up = rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 1), old_active(1)],
    );
    let healthy = Frame::new(up.clone())
        .task(old_task())
        .task(new_task(8, NEW_IP))
        .targets(
            TG,
            vec![
                target(OLD_IP, PORT, "healthy"),
                target(NEW_IP, PORT, "healthy"),
            ],
        );
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(up.clone())
                .task(old_task())
                .task(new_task(8, NEW_IP))
                .targets(
                    TG,
                    vec![
                        target(OLD_IP, PORT, "healthy"),
                        target(NEW_IP, PORT, "initial"),
                    ],
                ),
            healthy.clone(),
            healthy,
            Frame::new(rolling(
                base.clone(),
                NEW,
                vec![new_primary("IN_PROGRESS", 0), old_active(1)],
            ))
            .task(old_task())
            .task(
                new_task(8, NEW_IP)
                    .stopped(
                        "EssentialContainerExited",
                        "Essential container in task exited",
                    )
                    .container_exit(Some(139), None),
            )
            .targets(
                TG,
                vec![
                    target(OLD_IP, PORT, "healthy"),
                    target(NEW_IP, PORT, "draining"),
                ],
            ),
        ],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS"),
        ),
    );

    // No --settle: the default must catch a crash two seconds after the first healthy check.
    let run = deploy(&aws, &[]).await;

    assert_ne!(
        run.verdict(),
        "deployed",
        "expected no `deployed`: the new task was healthy for two polls, then its essential container exited (code 139); {}",
        run.story(&aws)
    );
    assert!(
        !tagged(&aws, "healthy"),
        "never tagged healthy; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "expected exit 1 `rolled_back` (an essential-container exit is the revision's fault); {}",
        run.story(&aws)
    );
}

/// Issue 10 case 3: with deployment alarms enabled, `deployed` only once ECS
/// says the deployment COMPLETED (it keeps judging after the tasks are healthy).
#[tokio::test]
async fn issue_10_with_deployment_alarms_deployed_waits_for_ecs_completed() {
    let base = service_on_old().alarms(&["web-5xx"], true, true);
    let aws = world(base.clone(), old_task_definition()).await;
    aws.alarm(
        "web-5xx",
        "OK",
        "Threshold Crossed: no datapoints were received for 1 period",
    );
    let healthy = |rollout: &str| {
        Frame::new(rolling(base.clone(), NEW, vec![new_primary(rollout, 1)]))
            .task(new_task(8, NEW_IP))
            .targets(TG, vec![target(NEW_IP, PORT, "healthy")])
    };
    let mut frames = healthy_rollout(base.clone());
    frames.pop();
    frames.extend([
        healthy("IN_PROGRESS"),
        healthy("IN_PROGRESS"),
        healthy("IN_PROGRESS"),
        healthy("COMPLETED"),
    ]);
    let completed_at = frames.len(); // the COMPLETED frame is the Nth DescribeServices after the update
    aws.after_update_to(NEW, frames);

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed` once rolloutState is COMPLETED; {}",
        run.story(&aws)
    );
    assert!(
        polls_before_verdict(&aws) >= completed_at,
        "expected the verdict only after ECS said COMPLETED (DescribeServices #{completed_at} after the update), but shipit decided after {} poll(s): the alarms were still being judged; {}",
        polls_before_verdict(&aws),
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8"], "{}", run.story(&aws));
}

/// Issue 10 case 3: an alarm of the service already in ALARM is refused
/// before any change (ECS would ignore it), naming it.
#[tokio::test]
async fn issue_10_a_deployment_alarm_already_in_alarm_is_refused_before_any_change() {
    let base = service_on_old().alarms(&["web-5xx"], true, true);
    let aws = world(base.clone(), old_task_definition()).await;
    aws.alarm(
        "web-5xx",
        "ALARM",
        "Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0).",
    );
    aws.after_update_to(NEW, healthy_rollout(base));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        run.code,
        2,
        "expected exit 2: deployment alarm web-5xx is already in ALARM, so ECS would ignore it; {}",
        run.story(&aws)
    );
    assert!(
        format!("{}{}", run.reason(), run.stderr).contains("web-5xx"),
        "expected the refusal to name alarm web-5xx; {}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutations().len(),
        0,
        "expected zero mutations; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 3: without `cloudwatch:DescribeAlarms` the plan cannot tell
/// whether an alarm is already firing; that is a one-line warning, never an
/// error (CloudWatch answers in RPC v2 CBOR, the error code as CloudWatch's
/// awsQuery one, `AccessDenied`).
#[tokio::test]
async fn issue_10_a_missing_describe_alarms_permission_is_only_a_warning() {
    let base = service_on_old().alarms(&["web-5xx"], true, true);
    let aws = world(base.clone(), old_task_definition()).await;
    aws.on("CloudWatch.DescribeAlarms").reply(Reply::error(
        403,
        "AccessDenied",
        "User: arn:aws:sts::123456789012:assumed-role/deploy/ci is not authorized to perform: cloudwatch:DescribeAlarms",
    ));
    aws.after_update_to(NEW, healthy_rollout(base));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        aws.calls_of("CloudWatch.DescribeAlarms").len(),
        1,
        "expected one DescribeAlarms in the plan; {}",
        run.story(&aws)
    );
    let warned = run.stderr.lines().any(|l| {
        l.contains("\"warning\"")
            && l.contains("web-5xx")
            && l.contains("cloudwatch:DescribeAlarms")
    });
    assert!(
        warned,
        "expected a warning that the alarms could not be read; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "a missing DescribeAlarms permission is no refusal; {}",
        run.story(&aws)
    );
}

/// Issue 10 cases 3 and 8: ECS rolls back on a deployment alarm; shipit
/// watches ECS's rollback instead of starting its own, and names the alarm.
#[tokio::test]
async fn issue_10_an_alarm_rollback_by_ecs_is_watched_not_repeated() {
    let base = service_on_old().alarms(&["web-5xx"], true, true);
    let aws = world(base.clone(), old_task_definition()).await;
    aws.alarm(
        "web-5xx",
        "OK",
        "Threshold Crossed: no datapoints were received for 1 period",
    );
    let reason = "ECS deployment ecs-svc/6182051290346153823 failed: CloudWatch alarm(s) web-5xx in ALARM state; rolling back to ecs-svc/7301922376511830480.";
    let failed = DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "FAILED")
        .counts(1, 1, 0)
        .reason(reason);
    let mut frames = healthy_rollout(base.clone());
    frames.truncate(3);
    let mut returning = healthy_return(
        base.clone().event(
            "0b6f4c1e-7a2d-4e8f-9c3b-5d6e7f8a9b0c",
            now() + 3.0,
            "(service web) rolling back deployment ecs-svc/6182051290346153823: alarm web-5xx triggered.",
        ),
        failed,
    );
    // ECS's service-deployment view (ListServiceDeployments/DescribeServiceDeployments)
    // answers in every frame: the earlier deployment SUCCESSFUL, ours monitored
    // by the alarm, then rolled back because of it.
    let previous = service_deployment(CLUSTER, SERVICE, OLD_DEP, OLD, "SUCCESSFUL");
    let ours = |status: &str, alarm: &str| {
        let mut d = service_deployment(CLUSTER, SERVICE, NEW_DEP, NEW, status);
        let triggered: Vec<&str> = if alarm == "TRIGGERED" {
            vec!["web-5xx"]
        } else {
            vec![]
        };
        d["alarms"] =
            json!({"status": alarm, "alarmNames": ["web-5xx"], "triggeredAlarmNames": triggered});
        if alarm == "TRIGGERED" {
            d["rollback"] = json!({
                "reason": "Service deployment rolled back because the CloudWatch alarm web-5xx is in ALARM state.",
                "startedAt": now() + 3.0,
                "serviceRevisionArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service-revision/{CLUSTER}/{SERVICE}/7"),
            });
        }
        d
    };
    aws.before(vec![Frame::new(base.clone())
        .task(old_task())
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")])
        .service_deployment(previous.clone())]);
    for frame in &mut frames {
        *frame = frame
            .clone()
            .service_deployment(ours("IN_PROGRESS", "MONITORING"))
            .service_deployment(previous.clone());
    }
    // CloudWatch says ALARM from the moment ECS starts rolling back.
    let last = returning.len() - 1;
    for (i, frame) in returning.iter_mut().enumerate() {
        *frame = frame.clone().alarm(
            "web-5xx",
            "ALARM",
            "Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0).",
        );
        let status = if i == last {
            "ROLLBACK_SUCCESSFUL"
        } else {
            "ROLLBACK_IN_PROGRESS"
        };
        *frame = frame
            .clone()
            .service_deployment(ours(status, "TRIGGERED"))
            .service_deployment(previous.clone());
    }
    frames.extend(returning);
    aws.after_update_to(NEW, frames);

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        updates(&aws),
        ["web:8"],
        "expected no UpdateService from shipit after ECS started its own alarm rollback to web:7; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "expected exit 1 `rolled_back` (ECS's rollback became healthy); {}",
        run.story(&aws)
    );
    assert!(
        run.reason().contains("web-5xx"),
        "expected the reason to name the alarm that fired (web-5xx); {}",
        run.story(&aws)
    );
}

/// Issue 10 case 8: ECS's circuit breaker rolls back by itself; shipit does
/// not start a second deployment, it watches ECS's and reports both.
#[tokio::test]
async fn issue_10_a_circuit_breaker_rollback_by_ecs_is_watched_not_repeated() {
    let base = service_on_old().circuit_breaker(true, true);
    let aws = world(base.clone(), old_task_definition()).await;
    let failed = DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "FAILED")
        .counts(1, 0, 3)
        .reason("ECS deployment circuit breaker: tasks failed to start.");
    let mut frames = vec![Frame::new(rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 0), old_active(1)],
    ))
    .task(old_task())
    .task(new_task(8, NEW_IP).status("PROVISIONING", "RUNNING"))
    .targets(TG, vec![target(OLD_IP, PORT, "healthy")])];
    let mut returning = healthy_return(
        base.event(
            "7c2a9e4b-1f3d-4a5b-8c6d-9e0f1a2b3c4d",
            now() + 1.0,
            "(service web) (deployment ecs-svc/6182051290346153823) deployment failed: tasks failed to start.",
        ),
        failed,
    );
    for frame in &mut returning {
        frame.tasks.push(cannot_pull(8).0);
        frame.tasks.push(cannot_pull(9).0);
        frame.tasks.push(cannot_pull(10).0);
    }
    frames.extend(returning);
    aws.after_update_to(NEW, frames);

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        updates(&aws),
        ["web:8"],
        "expected no UpdateService from shipit: ECS's circuit breaker is already rolling back to web:7; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "expected exit 1 `rolled_back` (ECS's own rollback became healthy); {}",
        run.story(&aws)
    );
}

/// Issue 10 case 7: another deployment (neither ours nor a rollback to
/// revision 7) becomes PRIMARY: `superseded`, exit 4, nothing undone.
#[tokio::test]
async fn issue_10_a_newer_deployment_taking_over_is_superseded_not_rolled_back() {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    let base_for_return = base.clone();
    let mut frames = healthy_rollout(base.clone());
    frames.truncate(2);
    let other = DeploymentDoc::new(OTHER_DEP, "PRIMARY", OTHER, "IN_PROGRESS").counts(1, 0, 0);
    frames.push(
        Frame::new(rolling(
            base,
            OTHER,
            vec![
                other,
                DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 1, 0),
                old_active(1),
            ],
        ))
        .task(old_task())
        .task(new_task(8, NEW_IP))
        .task(
            TaskDoc::running(&task(9), OTHER, OTHER_DEP, CONTAINER, OTHER_IP)
                .status("PENDING", "RUNNING"),
        )
        .targets(
            TG,
            vec![
                target(OLD_IP, PORT, "healthy"),
                target(NEW_IP, PORT, "initial"),
            ],
        ),
    );
    aws.after_update_to(NEW, frames);
    // What today's code would do (roll back over the newer release) must find a world too.
    aws.after_update_to(
        OLD,
        healthy_return(
            base_for_return.clone(),
            DeploymentDoc::new(OTHER_DEP, "ACTIVE", OTHER, "IN_PROGRESS"),
        ),
    );

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        updates(&aws),
        ["web:8"],
        "expected no rollback: deployment {OTHER_DEP} (web:9) took over, and undoing it would undo someone else's release; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (4, "superseded"),
        "expected exit 4 `superseded`; {}",
        run.story(&aws)
    );
    assert!(
        !tagged(&aws, "failed") && !tagged(&aws, "healthy"),
        "{}",
        run.story(&aws)
    );
}

/// Issue 10 case 9: a new task stopped by a Spot interruption is not the
/// revision's fault; ECS's healthy replacement makes it `deployed`.
#[tokio::test]
async fn issue_10_a_spot_interruption_followed_by_a_healthy_replacement_is_deployed() {
    let base = service_on_old().set(
        "/capacityProviderStrategy",
        json!([{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]),
    );
    let aws = world(base.clone(), old_task_definition()).await;
    let spot_task = |n: u64, ip: &str| new_task(n, ip).capacity_provider("FARGATE_SPOT");
    aws.after_update_to(
        OLD,
        healthy_return(
            base.clone(),
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS"),
        ),
    );
    let up = rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 1), old_active(1)],
    );
    let interrupted =
        spot_task(8, NEW_IP).stopped("SpotInterruption", "Your Spot Task was interrupted.");
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(up.clone())
                .task(old_task())
                .task(spot_task(8, NEW_IP))
                .targets(
                    TG,
                    vec![
                        target(OLD_IP, PORT, "healthy"),
                        target(NEW_IP, PORT, "initial"),
                    ],
                ),
            Frame::new(rolling(
                base.clone(),
                NEW,
                vec![new_primary("IN_PROGRESS", 0), old_active(1)],
            ))
            .task(old_task())
            .task(interrupted.clone())
            .task(spot_task(18, NEW_IP_2).status("PENDING", "RUNNING"))
            .targets(
                TG,
                vec![
                    target(OLD_IP, PORT, "healthy"),
                    target(NEW_IP, PORT, "draining"),
                ],
            ),
            Frame::new(up.clone())
                .task(old_task())
                .task(interrupted.clone())
                .task(spot_task(18, NEW_IP_2))
                .targets(
                    TG,
                    vec![
                        target(OLD_IP, PORT, "healthy"),
                        target(NEW_IP_2, PORT, "initial"),
                    ],
                ),
            Frame::new(rolling(base, NEW, vec![new_primary("COMPLETED", 1)]))
                .task(interrupted)
                .task(spot_task(18, NEW_IP_2))
                .targets(TG, vec![target(NEW_IP_2, PORT, "healthy")]),
        ],
    );

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed`: the stop was a SpotInterruption (not the revision's fault) and ECS's replacement became healthy; {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8"], "{}", run.story(&aws));
    assert!(tagged(&aws, "healthy"), "{}", run.story(&aws));
}

/// Issue 10 case 10: when DescribeTasks starts answering AccessDenied
/// mid-watch, shipit cannot see: `blind`, exit 3, no rollback, and it says
/// how to check and how to roll back.
#[tokio::test]
async fn issue_10_access_denied_mid_watch_is_blind_and_rolls_nothing_back() {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    let mut frames = healthy_rollout(base);
    frames.truncate(2); // the new target stays `initial`: no verdict before the denial
    aws.after_update_to(NEW, frames);
    aws.on("ECS.DescribeTasks")
        .after_update_to(NEW)
        .replies(vec![
            Reply::Frame,
            Reply::Frame,
            Reply::access_denied("ecs:DescribeTasks"),
        ]);

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        updates(&aws),
        ["web:8"],
        "expected no rollback UpdateService: shipit could not see the tasks, which says nothing about the revision; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (3, "blind"),
        "expected exit 3 `blind`; {}",
        run.story(&aws)
    );
    assert!(
        run.reason().contains("DescribeTasks") || run.reason().contains("AccessDenied"),
        "expected the reason to say what could not be seen (DescribeTasks, access denied); {}",
        run.story(&aws)
    );
    assert!(
        format!("{}{}", run.result, run.stderr).contains("shipit rollback"),
        "expected the exact rollback command in the output; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 5: `desiredCount` 0: nothing can be verified; exit 0
/// `unverified`, and the revision is never tagged healthy.
#[tokio::test]
async fn issue_10_desired_count_zero_is_unverified_and_not_tagged_healthy() {
    let base = ServiceDoc::new(CLUSTER, SERVICE, OLD, 0)
        .target_group(TG, CONTAINER, PORT)
        .deployment(DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "COMPLETED").counts(0, 0, 0));
    let aws = world(base.clone(), old_task_definition()).await;
    // Replace the "before" frame: no task runs, no target is registered.
    aws.before(vec![Frame::new(base.clone()).targets(TG, vec![])]);
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(rolling(
                base.clone(),
                NEW,
                vec![DeploymentDoc::new(NEW_DEP, "PRIMARY", NEW, "IN_PROGRESS").counts(0, 0, 0)],
            ))
            .targets(TG, vec![]),
            Frame::new(rolling(
                base,
                NEW,
                vec![DeploymentDoc::new(NEW_DEP, "PRIMARY", NEW, "COMPLETED").counts(0, 0, 0)],
            ))
            .targets(TG, vec![]),
        ],
    );

    let run = deploy(&aws, &settle()).await;

    assert!(
        !tagged(&aws, "healthy"),
        "expected no shipit:verdict=healthy tag: with desiredCount 0 nothing ran, so the revision must never become a rollback target; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (0, "unverified"),
        "expected exit 0 `unverified`; {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8"], "{}", run.story(&aws));
}

/// A rollout whose tasks are known to the `ip` target group (IpAddressType
/// ipv6) by their IPv6 addresses; `old`/`new` build the tasks.
async fn ipv6_world(
    old: impl Fn() -> TaskDoc,
    new: impl Fn() -> TaskDoc,
    old_v6: &str,
    new_v6: &str,
) -> FakeAws {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    let mut group = target_group(TG, "ip");
    group["IpAddressType"] = json!("ipv6");
    aws.on("ELBv2.DescribeTargetGroups")
        .reply(Reply::Doc(json!({ "TargetGroups": [group] })));
    aws.before(vec![Frame::new(base.clone())
        .task(old())
        .targets(TG, vec![target(old_v6, PORT, "healthy")])]);
    let both = rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 1), old_active(1)],
    );
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(both.clone()).task(old()).task(new()).targets(
                TG,
                vec![
                    target(old_v6, PORT, "healthy"),
                    target(new_v6, PORT, "initial"),
                ],
            ),
            Frame::new(both).task(old()).task(new()).targets(
                TG,
                vec![
                    target(old_v6, PORT, "draining"),
                    target(new_v6, PORT, "healthy"),
                ],
            ),
            Frame::new(rolling(
                base.clone(),
                NEW,
                vec![new_primary("COMPLETED", 1)],
            ))
            .task(new())
            .targets(TG, vec![target(new_v6, PORT, "healthy")]),
        ],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS"),
        ),
    );
    aws
}

const OLD_V6: &str = "2600:1f18:4a1:9f00:8c1d:2e3f:4a5b:6c7d";
const NEW_V6: &str = "2600:1f18:4a1:9f01:1c2d:3e4f:5a6b:7c8d";

/// Issue 10 case 14: an IPv6-only task is matched to its IPv6 target.
#[tokio::test]
async fn issue_10_an_ipv6_only_task_is_matched_to_its_ipv6_target() {
    let aws = ipv6_world(
        || old_task().ipv6_only(OLD_V6),
        || new_task(8, NEW_IP).ipv6_only(NEW_V6),
        OLD_V6,
        NEW_V6,
    )
    .await;

    let run = deploy(&aws, &[&settle()[..], &["--timeout", "10s"]].concat()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed`: task {NEW_V6} (ENI detail ipv6Address, no IPv4) is target {NEW_V6}:{PORT}, healthy; {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8"], "{}", run.story(&aws));
}

/// Issue 10 case 14: a dual-stack task (IPv4 and IPv6 on its ENI) is matched
/// to the IPv6 target an IPv6 target group registered for it.
#[tokio::test]
async fn issue_10_a_dual_stack_task_is_matched_to_its_ipv6_target() {
    let aws = ipv6_world(
        || old_task().ipv6(OLD_V6),
        || new_task(8, NEW_IP).ipv6(NEW_V6),
        OLD_V6,
        NEW_V6,
    )
    .await;

    let run = deploy(&aws, &[&settle()[..], &["--timeout", "10s"]].concat()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed`: task {NEW_IP} / {NEW_V6} is target {NEW_V6}:{PORT} in an IPv6 target group, healthy; {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8"], "{}", run.story(&aws));
}

/// Issue 10 case 16: an ECS-native blue/green service is refused in the plan.
#[tokio::test]
async fn issue_10_a_blue_green_service_is_refused_with_zero_mutations() {
    let base = ServiceDoc::new(CLUSTER, SERVICE, OLD, 1)
        .blue_green_target_groups(TG, TG_GREEN, CONTAINER, PORT)
        .strategy("BLUE_GREEN")
        .set("/deploymentConfiguration/bakeTimeInMinutes", json!(5))
        .deployment(DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "COMPLETED").counts(1, 1, 0));
    let aws = world(base.clone(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(base));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        run.code, 2,
        "expected exit 2: deploymentConfiguration.strategy BLUE_GREEN is not a rollout shipit watches; {}",
        run.story(&aws)
    );
    assert!(
        run.reason().contains("BLUE_GREEN"),
        "expected the refusal to name the strategy; {}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutations().len(),
        0,
        "expected zero mutations; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 16: a service behind a Classic Load Balancer is refused in the plan.
#[tokio::test]
async fn issue_10_a_classic_load_balancer_service_is_refused_with_zero_mutations() {
    let base = ServiceDoc::new(CLUSTER, SERVICE, OLD, 1)
        .classic_load_balancer("web-classic", CONTAINER, PORT)
        .deployment(DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "COMPLETED").counts(1, 1, 0));
    let aws = world(base.clone(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(base));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        run.code, 2,
        "expected exit 2: a Classic Load Balancer (loadBalancerName web-classic) cannot be watched per target; {}",
        run.story(&aws)
    );
    assert!(
        run.reason().to_lowercase().contains("classic"),
        "expected the refusal to say Classic Load Balancer; {}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutations().len(),
        0,
        "expected zero mutations; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 6: a task on its way out (desiredStatus STOPPED) never
/// counts as running, and a task listed twice counts once: with desiredCount
/// 2, `deployed` only once two distinct new tasks run healthy.
#[tokio::test]
async fn issue_10_tasks_on_their_way_out_or_listed_twice_count_once() {
    let base = ServiceDoc::new(CLUSTER, SERVICE, OLD, 2)
        .target_group(TG, CONTAINER, PORT)
        .deployment(DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "COMPLETED").counts(2, 2, 0));
    let aws = world(base.clone(), old_task_definition()).await;
    let old_b = || TaskDoc::running(&task(17), OLD, OLD_DEP, CONTAINER, "10.0.1.18");
    aws.before(vec![Frame::new(base.clone())
        .task(old_task())
        .task(old_b())
        .targets(
            TG,
            vec![
                target(OLD_IP, PORT, "healthy"),
                target("10.0.1.18", PORT, "healthy"),
            ],
        )]);
    let up = rolling(
        base.clone(),
        NEW,
        vec![
            DeploymentDoc::new(NEW_DEP, "PRIMARY", NEW, "IN_PROGRESS").counts(2, 1, 0),
            old_active(2),
        ],
    );
    // Task 9 still RUNNING but already told to stop; task 8 healthy.
    let leaving = new_task(9, NEW_IP_2).status("RUNNING", "STOPPED");
    let racing = Frame::new(up)
        .task(old_task())
        .task(old_b())
        .task(new_task(8, NEW_IP))
        .task(leaving.clone())
        .targets(
            TG,
            vec![
                target(OLD_IP, PORT, "healthy"),
                target(NEW_IP, PORT, "healthy"),
                target(NEW_IP_2, PORT, "healthy"),
            ],
        );
    let done = Frame::new(rolling(
        base,
        NEW,
        vec![DeploymentDoc::new(NEW_DEP, "PRIMARY", NEW, "COMPLETED").counts(2, 2, 0)],
    ))
    .task(new_task(8, NEW_IP))
    .task(leaving.stopped(
        "ServiceSchedulerInitiated",
        "Scaling activity initiated by (deployment ecs-svc/6182051290346153823)",
    ))
    .task(new_task(10, "10.0.2.51"))
    .targets(
        TG,
        vec![
            target(NEW_IP, PORT, "healthy"),
            target("10.0.2.51", PORT, "healthy"),
        ],
    );
    aws.after_update_to(NEW, vec![racing.clone(), racing.clone(), racing, done]);
    // While racing, ListTasks(STOPPED) also returns task 8 (it moved between the two calls).
    let both = Reply::Doc(json!({"taskArns": [task(8), task(9)]}));
    aws.on("ECS.ListTasks")
        .when("desiredStatus", "STOPPED")
        .after_update_to(NEW)
        .replies(vec![both.clone(), both.clone(), both, Reply::Frame]);
    aws.after_update_to(
        OLD,
        healthy_return(
            ServiceDoc::new(CLUSTER, SERVICE, OLD, 1).target_group(TG, CONTAINER, PORT),
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS"),
        ),
    );

    let run = deploy(&aws, &settle()).await;

    assert!(
        polls_before_verdict(&aws) >= 4,
        "expected no verdict before the 4th poll: until then only task 8 runs for desiredCount 2 (task 9 has desiredStatus STOPPED, task 8 was listed twice); shipit decided after {} poll(s); {}",
        polls_before_verdict(&aws),
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed` once tasks 8 and 10 run healthy; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 10: a read permission the watch needs (DescribeTargetHealth)
/// is exercised in the plan: missing, it is exit 2 with nothing changed.
#[tokio::test]
async fn issue_10_a_missing_describe_target_health_permission_is_refused_in_the_plan() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    aws.on("ELBv2.DescribeTargetHealth").reply(Reply::error(
        400,
        "AccessDenied",
        "User: arn:aws:sts::123456789012:assumed-role/deploy/ci is not authorized to perform: elasticloadbalancing:DescribeTargetHealth because no identity-based policy allows the elasticloadbalancing:DescribeTargetHealth action",
    ));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        aws.mutations().len(),
        0,
        "expected zero mutations: the watch could never see the targets, so nothing may change; {}",
        run.story(&aws)
    );
    assert_eq!(run.code, 2, "expected exit 2; {}", run.story(&aws));
    assert!(
        run.reason().contains("DescribeTargetHealth") || run.reason().contains("target health"),
        "expected the refusal to name the missing permission; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 10: throttling beyond the SDK's retries while watching is
/// `blind` too, never a rollback.
#[tokio::test]
async fn issue_10_throttling_beyond_retries_mid_watch_is_blind() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let mut frames = healthy_rollout(service_on_old());
    frames.truncate(2);
    aws.after_update_to(NEW, frames);
    aws.on("ECS.DescribeServices")
        .after_update_to(NEW)
        .replies(vec![Reply::Frame, Reply::Frame, Reply::throttled()]);

    // One attempt per call: "beyond retries" without waiting for the SDK's backoff.
    let run = deploy_with_env(&aws, &settle(), &[("AWS_MAX_ATTEMPTS", "1")]).await;

    assert_eq!(
        updates(&aws),
        ["web:8"],
        "expected no rollback UpdateService while DescribeServices is throttled; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (3, "blind"),
        "expected exit 3 `blind`; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 12: a service whose PRIMARY deployment FAILED has no sound
/// rollback target: refused before any change.
#[tokio::test]
async fn issue_10_a_failed_primary_deployment_is_refused_as_rollback_target() {
    let base = ServiceDoc::new(CLUSTER, SERVICE, OLD, 1)
        .target_group(TG, CONTAINER, PORT)
        .circuit_breaker(true, false)
        .deployment(
            DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "FAILED")
                .counts(1, 1, 3)
                .reason("ECS deployment circuit breaker: tasks failed to start."),
        );
    let aws = world(base.clone(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(base));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        aws.mutations().len(),
        0,
        "expected zero mutations: web:7's deployment FAILED, so it is no rollback target; {}",
        run.story(&aws)
    );
    assert_eq!(run.code, 2, "expected exit 2; {}", run.story(&aws));
    assert!(
        run.reason().contains("FAILED"),
        "expected the refusal to say the PRIMARY deployment FAILED; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 13: the previous rollout, already judged healthy by shipit
/// (revision 7 is tagged shipit:verdict=healthy) and only draining revision
/// 6's task, does not block the next deploy.
#[tokio::test]
async fn issue_10_a_healthy_rollout_still_draining_does_not_block_the_next_deploy() {
    const PREV: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:6";
    const PREV_DEP: &str = "ecs-svc/3308551201938174462";
    let base = service_on_old();
    let draining = rolling(
        base.clone(),
        OLD,
        vec![
            DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "IN_PROGRESS")
                .counts(1, 1, 0)
                .created_at(now() - 60.0),
            DeploymentDoc::new(PREV_DEP, "ACTIVE", PREV, "COMPLETED")
                .counts(1, 1, 0)
                .created_at(now() - 86_000.0),
        ],
    );
    let aws = world(base.clone(), old_task_definition()).await;
    aws.before(vec![Frame::new(draining)
        .task(old_task().started_at(now() - 50.0))
        .task(TaskDoc::running(
            &task(6),
            PREV,
            PREV_DEP,
            CONTAINER,
            "10.0.1.9",
        ))
        .targets(
            TG,
            vec![
                target(OLD_IP, PORT, "healthy"),
                target("10.0.1.9", PORT, "draining"),
            ],
        )]);
    aws.after_update_to(NEW, healthy_rollout(base));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed`: web:7 was judged healthy and only web:6's target is draining, which must not be refused as a rollout in progress; {}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8"], "{}", run.story(&aws));
}

/// Issue 10 case 15: in bridge mode two tasks share an instance; the unhealthy
/// clock is kept per instance *and port*, so task 9's target (unhealthy for
/// 2 s) does not inherit task 8's earlier unhealthy time on the same instance.
#[tokio::test]
async fn issue_10_bridge_mode_keeps_the_unhealthy_clock_per_instance_and_port() {
    const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
    const CI: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/5b7c2f1e9d8a4c3b";
    let base = ServiceDoc::new(CLUSTER, SERVICE, OLD, 2)
        .set("/launchType", json!("EC2"))
        .set("/networkConfiguration", json!(null))
        .target_group(TG, CONTAINER, PORT)
        .deployment(DeploymentDoc::new(OLD_DEP, "PRIMARY", OLD, "COMPLETED").counts(2, 2, 0));
    let mut td = old_task_definition();
    td["networkMode"] = json!("bridge");
    td["containerDefinitions"][0]["portMappings"][0]["hostPort"] = json!(0);
    td["requiresCompatibilities"] = json!(["EC2"]);
    let aws = world(base.clone(), td).await;
    aws.on("ECS.DescribeContainerInstances")
        .reply(Reply::Doc(container_instances(&[(CI, INSTANCE)])));
    let old = |n: u64, port: i32| {
        TaskDoc::running(&task(n), OLD, OLD_DEP, CONTAINER, "unused")
            .bridge(CI, PORT, port)
            .started_at(now() - 3_600.0)
    };
    aws.before(vec![Frame::new(base.clone())
        .task(old(7, 32700))
        .task(old(17, 32701))
        .targets(
            TG,
            vec![
                target(INSTANCE, 32700, "healthy"),
                target(INSTANCE, 32701, "healthy"),
            ],
        )]);
    let new = |n: u64, port: i32| new_task(n, "unused").bridge(CI, PORT, port);
    let up = rolling(
        base.clone(),
        NEW,
        vec![
            DeploymentDoc::new(NEW_DEP, "PRIMARY", NEW, "IN_PROGRESS").counts(2, 2, 0),
            old_active(0),
        ],
    );
    let frame = |a: &str, b: &str| {
        Frame::new(up.clone())
            .task(new(8, 32768))
            .task(new(9, 32769))
            .targets(
                TG,
                vec![target(INSTANCE, 32768, a), target(INSTANCE, 32769, b)],
            )
    };
    aws.after_update_to(
        NEW,
        vec![
            frame("unhealthy", "initial"),
            frame("unhealthy", "initial"),
            frame("healthy", "unhealthy"),
            frame("healthy", "unhealthy"),
            frame("healthy", "unhealthy"),
            frame("healthy", "healthy"),
        ],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            ServiceDoc::new(CLUSTER, SERVICE, OLD, 1).target_group(TG, CONTAINER, PORT),
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS"),
        ),
    );

    let run = deploy(
        &aws,
        &[&settle()[..], &["--unhealthy-grace", "3s"]].concat(),
    )
    .await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed`: {INSTANCE}:32768 was unhealthy for 2 s, then {INSTANCE}:32769 for 3 polls, each under the 3 s grace on its own; {}",
        run.story(&aws)
    );
}

/// Issue 10, "Also": an image already in ECR needs neither a Dockerfile nor a
/// Docker engine (build in one CI job, deploy in another).
#[tokio::test]
async fn issue_10_an_image_already_in_ecr_needs_no_dockerfile() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    let empty = tempfile::tempdir().unwrap();

    let run = deploy_in(&aws, empty.path(), &settle(), &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed` from a directory without a Dockerfile: {SHA} is already in ECR, nothing is built; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 12: before the update, the rollback target's image is
/// looked up in ECR; when a lifecycle policy expired it, shipit warns loudly.
#[tokio::test]
async fn issue_10_an_expired_rollback_image_is_warned_about_before_the_update() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.on("ECR.DescribeImages")
        .when("imageIds", OLD_SHA)
        .reply(ecr_image_not_found(REPOSITORY, OLD_SHA));
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));

    let run = deploy(&aws, &settle()).await;

    let calls = aws.calls();
    let looked_up = calls
        .iter()
        .position(|c| c.operation == "ECR.DescribeImages" && c.body.to_string().contains(OLD_SHA));
    let updated = calls
        .iter()
        .position(|c| c.operation == "ECS.UpdateService");
    assert!(
        matches!((looked_up, updated), (Some(l), Some(u)) if l < u),
        "expected DescribeImages for the rollback target's tag {OLD_SHA} before UpdateService; {}",
        run.story(&aws)
    );
    let warned = run
        .stderr
        .lines()
        .any(|l| l.contains("\"warning\"") && l.contains(OLD_SHA));
    assert!(
        warned,
        "expected a warning naming the expired rollback image web:{OLD_SHA}; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "a warning, not a refusal; {}",
        run.story(&aws)
    );
}

/// Issue 10 case 12, for a rollback target pinned by digest
/// (`repo@sha256:…`): the digest is looked up (DescribeImages
/// `imageIds[].imageDigest`); gone, it is warned about; there, it is not.
#[tokio::test]
async fn issue_10_a_rollback_image_pinned_by_digest_is_looked_up_by_its_digest() {
    let pinned = format!("{}@{OLD_DIGEST}", ecr_uri(REPOSITORY));
    let old_td = || task_definition(OLD, CONTAINER, &pinned, PORT);

    // Expired: DescribeImages answers ImageNotFoundException for the digest.
    let aws = world(service_on_old(), old_td()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    let run = deploy(&aws, &settle()).await;
    let lookups: Vec<Value> = aws
        .calls()
        .iter()
        .filter(|c| c.operation == "ECR.DescribeImages")
        .map(|c| c.body["imageIds"][0].clone())
        .collect();
    assert!(
        lookups.contains(&json!({"imageDigest": OLD_DIGEST})),
        "expected DescribeImages by imageDigest {OLD_DIGEST}: {lookups:?}; {}",
        run.story(&aws)
    );
    assert!(
        run.stderr.lines().any(|l| l.contains("\"warning\"")
            && l.contains(&pinned)
            && l.contains("no longer exists in ECR")),
        "expected a warning naming {pinned}; {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "{}",
        run.story(&aws)
    );

    // There: no warning.
    let aws = world(service_on_old(), old_td()).await;
    aws.on("ECR.DescribeImages")
        .when("imageIds", OLD_DIGEST)
        .reply(Reply::Doc(ecr_images(REPOSITORY, OLD_SHA, OLD_DIGEST)));
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    let run = deploy(&aws, &settle()).await;
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.contains("\"warning\"") && l.contains(&pinned)),
        "the image is there: {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "{}",
        run.story(&aws)
    );
}

/// Issue 10 case 12: a rollback also restores the desired count this run changed.
#[tokio::test]
async fn issue_10_a_rollback_restores_the_desired_count_this_run_changed() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let base = service_on_old().set("/desiredCount", json!(2));
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(rolling(
                base.clone(),
                NEW,
                vec![new_primary("IN_PROGRESS", 0), old_active(1)],
            ))
            .task(old_task())
            .task(new_task(8, NEW_IP).status("PROVISIONING", "RUNNING"))
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
            Frame::new(rolling(
                base,
                NEW,
                vec![new_primary("IN_PROGRESS", 0), old_active(1)],
            ))
            .task(old_task())
            .task(cannot_pull(8))
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
        ],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            service_on_old(),
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS"),
        ),
    );

    let run = deploy(&aws, &[&settle()[..], &["--desired-count", "2"]].concat()).await;

    let desired: Vec<Value> = aws
        .calls_of("ECS.UpdateService")
        .iter()
        .map(|c| c.body.get("desiredCount").cloned().unwrap_or(Value::Null))
        .collect();
    assert_eq!(
        desired,
        [json!(2), json!(1)],
        "expected the rollback UpdateService to set desiredCount back to 1 (this run set it to 2); {}",
        run.story(&aws)
    );
    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
}

/// Issue 10, "Also": `shipit watch` attaches to a rollout already in progress
/// (a lost watch, a cancelled CI job), gives the same verdict and changes nothing.
#[tokio::test]
async fn issue_10_watch_attaches_to_a_rollout_in_progress_and_changes_nothing() {
    let aws = world(service_on_old(), old_task_definition()).await;
    // The world is already mid-rollout when shipit looks.
    aws.before(healthy_rollout(service_on_old()));

    let mut args = vec!["watch"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "expected exit 0 `deployed`: deployment {NEW_DEP} (web:8) becomes healthy; {}",
        run.story(&aws)
    );
    let changes: Vec<String> = aws
        .mutation_summary()
        .into_iter()
        .filter(|m| !m.starts_with("TagResource"))
        .collect();
    assert!(
        changes.is_empty(),
        "expected no change to the service: {changes:?}; {}",
        run.story(&aws)
    );
}

/// `shipit watch` of a rollout that fails: a new task of web:8 cannot pull its image.
fn failing_rollout(base: ServiceDoc) -> Vec<Frame> {
    let in_progress = rolling(
        base,
        NEW,
        vec![new_primary("IN_PROGRESS", 0), old_active(1)],
    );
    vec![
        Frame::new(in_progress.clone())
            .task(old_task())
            .task(new_task(8, NEW_IP).status("PROVISIONING", "RUNNING"))
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
        Frame::new(in_progress)
            .task(old_task())
            .task(cannot_pull(8))
            .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
    ]
}

/// `shipit watch` of a rollout that turns healthy: `deployed`, and the only
/// call that changes anything is the healthy tag on the revision shipit registered.
#[tokio::test]
async fn issue_10_watch_of_a_healthy_rollout_only_tags_it_healthy() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.before(healthy_rollout(service_on_old()));

    let mut args = vec!["watch"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutation_summary(),
        ["TagResource web:8 shipit:verdict=healthy"],
        "{}",
        run.story(&aws)
    );
    assert_eq!(run.result["command"], "watch");
    assert_eq!(run.result["new_task_definition"], NEW);
    assert_eq!(run.result["previous_task_definition"], OLD);
}

/// Nothing in progress (one COMPLETED deployment, its task healthy): still
/// judged, healthy after the settle period.
#[tokio::test]
async fn issue_10_watch_with_nothing_in_progress_judges_the_service_as_it_is() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let done = rolling(service_on_old(), NEW, vec![new_primary("COMPLETED", 1)]);
    aws.before(vec![Frame::new(done)
        .task(new_task(8, NEW_IP).started_at(now() - 600.0))
        .targets(TG, vec![target(NEW_IP, PORT, "healthy")])]);

    let mut args = vec!["watch"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "{}",
        run.story(&aws)
    );
    // One deployment: the revision it started from is web:8's shipit:previous tag.
    assert_eq!(
        run.result["previous_task_definition"],
        OLD,
        "{}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutation_summary(),
        ["TagResource web:8 shipit:verdict=healthy"],
        "{}",
        run.story(&aws)
    );
}

/// A failing rollout without `--rollback`: `failed`, exit 3, nothing changed,
/// and the exact command that rolls back printed.
#[tokio::test]
async fn issue_10_watch_of_a_failing_rollout_changes_nothing_and_prints_the_rollback_command() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.before(failing_rollout(service_on_old()));

    let mut args = vec!["watch"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (3, "failed"),
        "{}",
        run.story(&aws)
    );
    assert!(aws.mutations().is_empty(), "{}", run.story(&aws));
    assert!(
        run.reason().contains("CannotPullContainerError"),
        "{}",
        run.story(&aws)
    );
    let command = format!("shipit rollback --cluster {CLUSTER} --service {SERVICE} --to {OLD}");
    assert!(
        run.stderr.contains(&command),
        "expected `{command}` on stderr; {}",
        run.story(&aws)
    );
}

/// The same with `--rollback`: one UpdateService back to web:7 (the ACTIVE
/// deployment the rollout started from), `rolled_back`, exit 1.
#[tokio::test]
async fn issue_10_watch_with_rollback_returns_a_failing_rollout_to_the_revision_it_started_from() {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    aws.before(failing_rollout(base.clone()));
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 0, 1),
        ),
    );

    let mut args = vec!["watch", "--rollback"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:7"], "{}", run.story(&aws));
    assert_eq!(
        aws.mutation_summary(),
        [
            "TagResource web:8 shipit:verdict=failed",
            "UpdateService web:7"
        ],
        "{}",
        run.story(&aws)
    );
    assert_eq!(run.result["rollback"]["to"], OLD);
    assert_eq!(run.result["rollback"]["healthy"], true);
}

/// Attached after ECS's circuit breaker already moved the service back from
/// the failed web:8: its return is watched, `rolled_back`, nothing changed.
#[tokio::test]
async fn issue_10_watch_of_ecs_returning_from_a_failed_deployment_is_rolled_back() {
    let base = service_on_old().circuit_breaker(true, true);
    let aws = world(base.clone(), old_task_definition()).await;
    let failed = DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "FAILED")
        .counts(1, 0, 3)
        .created_at(now() - 120.0);
    aws.before(healthy_return(base, failed));

    let mut args = vec!["watch", "--rollback"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    assert!(aws.mutations().is_empty(), "{}", run.story(&aws));
    assert_eq!(run.result["new_task_definition"], OLD);
}

/// ECS's circuit breaker starts rolling back while `shipit watch --rollback`
/// watches: shipit starts no deployment of its own, it watches ECS's return.
#[tokio::test]
async fn issue_10_watch_follows_a_circuit_breaker_rollback_by_ecs_and_changes_nothing() {
    let base = service_on_old().circuit_breaker(true, true);
    let aws = world(base.clone(), old_task_definition()).await;
    let failed = DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "FAILED")
        .counts(1, 0, 3)
        .reason("ECS deployment circuit breaker: tasks failed to start.");
    let mut frames = vec![Frame::new(rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 0), old_active(1)],
    ))
    .task(old_task())
    .task(new_task(8, NEW_IP).status("PROVISIONING", "RUNNING"))
    .targets(TG, vec![target(OLD_IP, PORT, "healthy")])];
    let mut returning = healthy_return(base, failed);
    for frame in &mut returning {
        frame.tasks.push(cannot_pull(8).0);
    }
    frames.extend(returning);
    aws.before(frames);

    let mut args = vec!["watch", "--rollback"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    assert!(aws.mutations().is_empty(), "{}", run.story(&aws));
    assert_eq!(run.result["rollback"]["to"], OLD, "{}", run.story(&aws));
}

/// DescribeTasks denied mid-watch, even with `--rollback`: `blind`, exit 3,
/// nothing changed, and the commands to check and to roll back printed.
#[tokio::test]
async fn issue_10_watch_that_cannot_see_is_blind_and_rolls_nothing_back() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let mut frames = healthy_rollout(service_on_old());
    frames.truncate(2);
    aws.before(frames);
    aws.on("ECS.DescribeTasks").replies(vec![
        Reply::Frame,
        Reply::access_denied("ecs:DescribeTasks"),
    ]);

    let mut args = vec!["watch", "--rollback"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (3, "blind"),
        "{}",
        run.story(&aws)
    );
    assert!(aws.mutations().is_empty(), "{}", run.story(&aws));
    for command in [
        format!("shipit status --cluster {CLUSTER} --service {SERVICE}"),
        format!("shipit rollback --cluster {CLUSTER} --service {SERVICE} --to {OLD}"),
    ] {
        assert!(
            run.stderr.contains(&command),
            "expected `{command}`; {}",
            run.story(&aws)
        );
    }
}

/// SIGTERM while watching: stop, change nothing, exit 143 `interrupted`.
#[tokio::test]
async fn issue_10_watch_stopped_by_sigterm_changes_nothing() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let pending = rolling(
        service_on_old(),
        NEW,
        vec![new_primary("IN_PROGRESS", 0), old_active(1)],
    );
    aws.before(vec![Frame::new(pending)
        .task(old_task())
        .task(new_task(8, NEW_IP).status("PENDING", "RUNNING"))
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")])]);

    let child = spawn_shipit(
        &aws,
        &[
            "watch",
            "--rollback",
            "--cluster",
            CLUSTER,
            "--service",
            SERVICE,
            "--output",
            "json",
            "--poll-interval",
            "1s",
        ],
    );
    wait_until("shipit never polled", || {
        aws.calls_of("ECS.DescribeServices").len() >= 3
    })
    .await;
    let (code, result, stderr) = terminate(child).await;
    assert_eq!(
        (code, result["verdict"].as_str()),
        (Some(143), Some("interrupted")),
        "stderr: {stderr}"
    );
    assert!(aws.mutations().is_empty(), "{:?}", aws.mutation_summary());
}

/// shipit started with `args` against `aws`, its output piped, for a test
/// that signals it mid-run ([`terminate`]).
fn spawn_shipit(aws: &FakeAws, args: &[&str]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipit"));
    command
        .args(args)
        .env("CI", "true")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SHIPIT_")) {
        command.env_remove(key);
    }
    command.envs(aws.env());
    command.spawn().expect("the shipit binary runs")
}

/// Waits (30 s at most) until `ready()`, else fails saying `what` never happened.
async fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM to `child`, then its end (30 s at most): exit code, result
/// object (the last JSON line of stdout), stderr.
async fn terminate(child: tokio::process::Child) -> (Option<i32>, Value, String) {
    let pid = child.id().expect("a pid").to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("shipit stopped within 30 s")
        .unwrap();
    let result: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (
        out.status.code(),
        result,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------
// The harness itself: its documents parse as the SDK's typed shapes.

async fn sdk(aws: &FakeAws) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(aws.url())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIAFAKEAWS000000000",
            "fake-aws-secret",
            None,
            None,
            "fake-aws",
        ))
        .load()
        .await
}

/// Every field the builders write reaches the SDK's types (no misspelt
/// member is silently dropped, no enum value lands in `Unknown`).
#[tokio::test]
async fn harness_documents_parse_as_the_sdk_types() {
    use aws_sdk_ecs::types::{
        DeploymentRolloutState, DeploymentStrategy, DesiredStatus, HealthStatus,
        ServiceDeploymentRollbackMonitorsStatus, ServiceDeploymentStatus, TaskStopCode,
    };
    use aws_sdk_elasticloadbalancingv2::types::{TargetHealthReasonEnum, TargetHealthStateEnum};

    let aws = FakeAws::start().await;
    let service = service_on_old()
        .circuit_breaker(true, true)
        .alarms(&["web-5xx"], true, false)
        .strategy("BLUE_GREEN")
        .blue_green_target_groups(TG_GREEN, TG, CONTAINER, PORT)
        .grace(30)
        .deployment(
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "FAILED")
                .counts(1, 0, 3)
                .reason("ECS deployment circuit breaker: tasks failed to start."),
        )
        .event("e1", now(), "(service web) has reached a steady state.");
    let spot = new_task(8, NEW_IP)
        .capacity_provider("FARGATE_SPOT")
        .ipv6("2600:1f18:4a1:9f01::28")
        .health("UNHEALTHY")
        .stopped("SpotInterruption", "Your Spot Task was interrupted.")
        .container_exit(Some(143), Some("interrupted"));
    let mut sd = service_deployment(CLUSTER, SERVICE, NEW_DEP, NEW, "ROLLBACK_SUCCESSFUL");
    sd["alarms"] = json!({"status": "TRIGGERED", "alarmNames": ["web-5xx"], "triggeredAlarmNames": ["web-5xx"]});
    aws.before(vec![Frame::new(service)
        .task(old_task().health("HEALTHY"))
        .task(spot)
        .targets(
            TG,
            vec![
                target(OLD_IP, PORT, "healthy"),
                target(NEW_IP, PORT, "unhealthy"),
            ],
        )
        .service_deployment(sd)]);
    aws.on("ECR.DescribeRepositories")
        .reply(Reply::Doc(ecr_repositories(REPOSITORY)));
    aws.on("ECR.DescribeImages")
        .reply(ecr_image_not_found(REPOSITORY, "nope"));
    aws.on("ECR.DescribeImages")
        .when("imageIds", SHA)
        .reply(Reply::Doc(ecr_images(REPOSITORY, SHA, DIGEST)));
    aws.on("ELBv2.DescribeLoadBalancers").reply(Reply::error(
        400,
        "AccessDenied",
        "User is not authorized to perform: elasticloadbalancing:DescribeLoadBalancers",
    ));
    let config = sdk(&aws).await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let ecr = aws_sdk_ecr::Client::new(&config);

    let out = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await
        .unwrap();
    let svc = &out.services()[0];
    let config = svc.deployment_configuration().unwrap();
    assert_eq!(
        config
            .deployment_circuit_breaker()
            .map(|c| (c.enable(), c.rollback())),
        Some((true, true))
    );
    assert_eq!(
        config.alarms().map(|a| a.alarm_names().to_vec()),
        Some(vec!["web-5xx".to_string()])
    );
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::BlueGreen));
    assert_eq!(
        (config.maximum_percent(), config.minimum_healthy_percent()),
        (Some(200), Some(100))
    );
    assert_eq!(svc.health_check_grace_period_seconds(), Some(30));
    assert_eq!(
        svc.deployment_controller().map(|c| c.r#type().as_str()),
        Some("ECS")
    );
    let alternate = svc
        .load_balancers()
        .iter()
        .find_map(|lb| lb.advanced_configuration());
    assert_eq!(
        alternate.and_then(|a| a.alternate_target_group_arn()),
        Some(TG)
    );
    let subnets = svc
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .map(|a| a.subnets().len());
    assert_eq!(subnets, Some(1));
    let failed = svc
        .deployments()
        .iter()
        .find(|d| d.id() == Some(NEW_DEP))
        .unwrap();
    assert_eq!(
        failed.rollout_state(),
        Some(&DeploymentRolloutState::Failed)
    );
    assert_eq!(failed.failed_tasks(), 3);
    assert!(failed.created_at().is_some() && svc.events()[0].created_at().is_some());

    let stopped = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.task_arns(), [task(8)]);
    let tasks = ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(task(7))
        .tasks(task(8))
        .send()
        .await
        .unwrap();
    let (old, spot) = (&tasks.tasks()[0], &tasks.tasks()[1]);
    assert_eq!(old.health_status(), Some(&HealthStatus::Healthy));
    assert_eq!(spot.stop_code(), Some(&TaskStopCode::SpotInterruption));
    assert_eq!(spot.health_status(), Some(&HealthStatus::Unhealthy));
    assert_eq!(spot.capacity_provider_name(), Some("FARGATE_SPOT"));
    assert_eq!(
        spot.containers()[0].health_status(),
        Some(&HealthStatus::Unhealthy)
    );
    assert_eq!(spot.containers()[0].exit_code(), Some(143));
    let detail = |name: &str| {
        spot.attachments()[0]
            .details()
            .iter()
            .find(|d| d.name() == Some(name))
            .and_then(|d| d.value())
            .map(str::to_string)
    };
    assert_eq!(detail("privateIPv4Address").as_deref(), Some(NEW_IP));
    assert_eq!(
        detail("ipv6Address").as_deref(),
        Some("2600:1f18:4a1:9f01::28")
    );
    assert!(spot.stopped_at().is_some() && spot.started_at().is_some());

    let listed = ecs
        .list_service_deployments()
        .cluster(CLUSTER)
        .service(SERVICE)
        .send()
        .await
        .unwrap();
    let brief = &listed.service_deployments()[0];
    assert_eq!(
        brief.status(),
        Some(&ServiceDeploymentStatus::RollbackSuccessful)
    );
    let described = ecs
        .describe_service_deployments()
        .service_deployment_arns(brief.service_deployment_arn().unwrap())
        .send()
        .await
        .unwrap();
    let alarms = described.service_deployments()[0].alarms().unwrap();
    assert_eq!(
        alarms.status(),
        Some(&ServiceDeploymentRollbackMonitorsStatus::Triggered)
    );
    assert_eq!(alarms.triggered_alarm_names(), ["web-5xx"]);

    let health = elb
        .describe_target_health()
        .target_group_arn(TG)
        .send()
        .await
        .unwrap();
    let states: Vec<_> = health
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let h = d.target_health().unwrap();
            (
                d.target().unwrap().id().unwrap().to_string(),
                d.target().unwrap().port(),
                h.state().cloned(),
                h.reason().cloned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (
                OLD_IP.to_string(),
                Some(PORT),
                Some(TargetHealthStateEnum::Healthy),
                None
            ),
            (
                NEW_IP.to_string(),
                Some(PORT),
                Some(TargetHealthStateEnum::Unhealthy),
                Some(TargetHealthReasonEnum::ResponseCodeMismatch)
            ),
        ]
    );
    let groups = elb
        .describe_target_groups()
        .target_group_arns(TG)
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups.target_groups()[0].health_check_interval_seconds(),
        Some(5)
    );
    let denied = elb.describe_load_balancers().send().await.unwrap_err();
    use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata as _;
    assert_eq!(
        denied.code(),
        Some("AccessDenied"),
        "ELB XML ErrorResponse parsed: {denied:?}"
    );

    let repos = ecr
        .describe_repositories()
        .repository_names(REPOSITORY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        repos.repositories()[0].repository_uri(),
        Some(ecr_uri(REPOSITORY).as_str())
    );
    use aws_sdk_ecr::types::ImageIdentifier;
    let image = ecr
        .describe_images()
        .repository_name(REPOSITORY)
        .image_ids(ImageIdentifier::builder().image_tag(SHA).build())
        .send()
        .await
        .unwrap();
    assert_eq!(image.image_details()[0].image_digest(), Some(DIGEST));
    let missing = ecr
        .describe_images()
        .repository_name(REPOSITORY)
        .image_ids(ImageIdentifier::builder().image_tag("nope").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("ImageNotFoundException"));

    aws.on("ECS.DescribeTasks")
        .reply(Reply::access_denied("ecs:DescribeTasks"));
    let denied = ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(task(7))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(&denied),
        Some("AccessDeniedException")
    );
    assert!(aws.unscripted().is_empty(), "{:?}", aws.unscripted());
}

#[test]
fn harness_cbor_round_trips() {
    let doc = json!({"MetricAlarms": [{"AlarmName": "web-5xx", "Period": 60, "Threshold": 10.5,
        "ActionsEnabled": true, "StateUpdatedTimestamp": epoch(1_700_000_000.5), "Neg": -3,
        "Long": "x".repeat(300), "Many": (0..30).collect::<Vec<i32>>()}]});
    assert_eq!(cbor::decode(&cbor::encode(&doc)).unwrap(), doc);
    // Indefinite-length map and array, as some encoders write them.
    let indefinite = [0xbf, 0x61, b'a', 0x9f, 0x01, 0x02, 0xff, 0xff];
    assert_eq!(cbor::decode(&indefinite).unwrap(), json!({"a": [1, 2]}));
}

/// CloudWatch's three wire forms reach the same scripted alarms: Smithy RPC
/// v2 CBOR as aws-sdk-cloudwatch 1.140 sends it (checked once against the
/// real SDK; shipit does not depend on it yet), awsJson1_0 as the AWS CLI
/// sends it, and the awsQuery form with its XML answer.
#[tokio::test]
async fn harness_answers_cloudwatch_in_cbor_json_and_query() {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;

    let aws = FakeAws::start().await;
    aws.alarm("web-5xx", "ALARM", "Threshold Crossed");
    aws.alarm("web-latency", "OK", "fine");
    let send = |path: &'static str, headers: Vec<(&'static str, &'static str)>, body: Vec<u8>| {
        let addr = aws.addr;
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(
                hyper_util::rt::TokioIo::new(stream),
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            let mut req =
                hyper::Request::post(path).header("host", "monitoring.us-east-1.amazonaws.com");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp = sender
                .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
                .await
                .unwrap();
            let (parts, body) = resp.into_parts();
            (parts, body.collect().await.unwrap().to_bytes())
        }
    };

    let (parts, body) = send(
        "/service/GraniteServiceVersion20100801/operation/DescribeAlarms",
        vec![
            ("content-type", "application/cbor"),
            ("accept", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("x-amzn-query-mode", "true"),
        ],
        cbor::encode(&json!({"AlarmNames": ["web-5xx"]})),
    )
    .await;
    assert_eq!(parts.headers["smithy-protocol"], "rpc-v2-cbor");
    assert_eq!(parts.headers["content-type"], "application/cbor");
    let doc = cbor::decode(&body).expect("a CBOR answer");
    assert_eq!(doc["MetricAlarms"][0]["AlarmName"], "web-5xx");
    assert_eq!(doc["MetricAlarms"][0]["StateValue"], "ALARM");
    assert!(doc["MetricAlarms"][0]["StateUpdatedTimestamp"]["$epoch"].is_number());
    assert_eq!(doc["MetricAlarms"].as_array().unwrap().len(), 1);

    let (_, body) = send(
        "/",
        vec![
            ("content-type", "application/x-amz-json-1.0"),
            (
                "x-amz-target",
                "GraniteServiceVersion20100801.DescribeAlarms",
            ),
        ],
        br#"{"AlarmNames":["web-latency"]}"#.to_vec(),
    )
    .await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["MetricAlarms"][0]["StateValue"], "OK");
    assert!(doc["MetricAlarms"][0]["StateUpdatedTimestamp"].is_number());

    let (_, body) = send(
        "/",
        vec![("content-type", "application/x-www-form-urlencoded")],
        b"Action=DescribeAlarms&Version=2010-08-01&AlarmNames.member.1=web-5xx".to_vec(),
    )
    .await;
    let xml = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        xml.starts_with(&format!("<DescribeAlarmsResponse xmlns=\"{CLOUDWATCH_NS}\"><DescribeAlarmsResult><MetricAlarms><member><AlarmName>web-5xx</AlarmName>")),
        "{xml}"
    );
    assert!(
        xml.contains("<StateValue>ALARM</StateValue>") && !xml.contains("web-latency"),
        "{xml}"
    );

    let ops: Vec<(String, Protocol)> = aws
        .calls()
        .into_iter()
        .map(|c| (c.operation, c.protocol))
        .collect();
    assert_eq!(
        ops,
        [
            ("CloudWatch.DescribeAlarms".to_string(), Protocol::Cbor),
            ("CloudWatch.DescribeAlarms".to_string(), Protocol::Json10),
            ("CloudWatch.DescribeAlarms".to_string(), Protocol::Query),
        ]
    );
}

// ---------------------------------------------------------------------------
// Issue 11: the failure report, in ECS's, ELB's and the application's words.

#[tokio::test]
async fn issue_11_an_image_that_cannot_be_pulled_is_classified_with_the_tag_named() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let base = service_on_old();
    aws.after_update_to(
        NEW,
        vec![Frame::new(rolling(
            base.clone(),
            NEW,
            vec![new_primary("IN_PROGRESS", 0), old_active(1)],
        ))
        .task(old_task())
        .task(cannot_pull(8))
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")])],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 0, 1),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];

    let run = deploy_with_env(&aws, &settle(), &env).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    let failure = &run.result["failure"];
    assert_eq!(failure["cause"], "image_not_found", "{}", run.story(&aws));
    let summary_line = failure["summary"].as_str().unwrap_or_default();
    assert!(
        summary_line.contains(&format!("{}:{SHA}", ecr_uri(REPOSITORY))),
        "the report names the image and its tag: {summary_line}"
    );
    assert!(failure["hint"]
        .as_str()
        .unwrap_or_default()
        .contains("push that tag"));
    assert_eq!(failure["stops"][0]["stop_code"], "TaskFailedToStart");
    assert_eq!(failure["stops"][0]["count"], 1);
    // The rollback still ran, after the report: nothing waited for it.
    assert_eq!(updates(&aws), ["web:8", "web:7"], "{}", run.story(&aws));
    let md = std::fs::read_to_string(&summary).unwrap_or_default();
    assert!(md.contains("**Why:** image not found"), "{md}");
    assert!(
        md.contains("<details><summary>failure report</summary>"),
        "{md}"
    );
    assert!(
        run.stderr.contains("::error title=shipit deploy failed::")
            && run.stderr.contains("image not found")
            && run.stderr.contains("hint: push that tag"),
        "the annotation carries cause and hint: {}",
        run.stderr
    );
}

#[tokio::test]
async fn issue_11_a_404_health_check_names_the_path_and_the_matcher() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let base = service_on_old();
    let not_found = target_with(
        NEW_IP,
        PORT,
        "unhealthy",
        Some("Target.ResponseCodeMismatch"),
        Some("Health checks failed with these codes: [404]"),
    );
    let frame = Frame::new(rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 1), old_active(1)],
    ))
    .task(old_task())
    .task(new_task(8, NEW_IP))
    .targets(TG, vec![target(OLD_IP, PORT, "healthy"), not_found]);
    aws.after_update_to(NEW, vec![frame]);
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 1, 0),
        ),
    );

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    let failure = &run.result["failure"];
    assert_eq!(failure["cause"], "health_check_path", "{}", run.story(&aws));
    assert_eq!(
        failure["summary"],
        "the health check path `/health` returned 404, expected 200",
        "{}",
        run.story(&aws)
    );
    assert_eq!(
        failure["targets"][0]["reason"],
        "Target.ResponseCodeMismatch"
    );
    assert!(
        failure["targets"][0]["health_check"]
            .as_str()
            .unwrap_or_default()
            .starts_with("HTTP /health on traffic-port, expects 200, every 5s"),
        "{failure}"
    );
    assert_eq!(updates(&aws), ["web:8", "web:7"], "{}", run.story(&aws));
}

#[tokio::test]
async fn issue_11_the_line_output_prints_the_report_after_the_verdict_even_with_quiet() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let base = service_on_old();
    let crashed = new_task(8, NEW_IP)
        .stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
        )
        .container_exit(Some(3), None);
    aws.after_update_to(
        NEW,
        vec![Frame::new(rolling(
            base.clone(),
            NEW,
            vec![new_primary("IN_PROGRESS", 0), old_active(1)],
        ))
        .task(old_task())
        .task(crashed)
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")])],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 0, 1),
        ),
    );
    let mut args = settle();
    args.extend(["--output", "lines", "-q"]);

    let run = deploy(&aws, &args).await;

    assert_eq!(run.code, 1, "{}", run.story(&aws));
    let verdict = run.stderr.find("verdict: FAILED").expect("a verdict line");
    let why = run.stderr[verdict..]
        .find("why: container exited — container `app` exited with code 3")
        .map(|at| at + verdict);
    assert!(
        why.is_some(),
        "the report follows the verdict: {}",
        run.stderr
    );
    assert!(run.stderr.contains("  fix: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("    container app: exit 3"),
        "{}",
        run.stderr
    );
}

/// A new task whose app printed an error and exited 3 at start.
fn crashed_with_exit_3() -> TaskDoc {
    new_task(8, NEW_IP)
        .stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
        )
        .container_exit(Some(3), None)
}

/// The world where revision 8's task crashes at start, and the rollback goes well.
async fn crash_world() -> FakeAws {
    let aws = world(service_on_old(), old_task_definition()).await;
    let base = service_on_old();
    aws.after_update_to(
        NEW,
        vec![Frame::new(rolling(
            base.clone(),
            NEW,
            vec![new_primary("IN_PROGRESS", 0), old_active(1)],
        ))
        .task(old_task())
        .task(crashed_with_exit_3())
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")])],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 0, 1),
        ),
    );
    aws
}

#[tokio::test]
async fn issue_11_an_app_that_prints_an_error_and_exits_3_shows_the_exit_and_that_line() {
    let aws = crash_world().await;
    let ms = (now() * 1000.0) as i64;
    aws.on("Logs.GetLogEvents").reply(Reply::Doc(json!({
        "events": [
            {"timestamp": ms - 2000, "message": "starting web on :8080", "ingestionTime": ms},
            {"timestamp": ms - 1000, "message": "FATAL: DATABASE_URL is not set\n", "ingestionTime": ms},
        ],
        "nextForwardToken": "f/1",
        "nextBackwardToken": "b/1",
    })));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    let failure = &run.result["failure"];
    assert_eq!(failure["cause"], "container_exited", "{}", run.story(&aws));
    assert_eq!(failure["stops"][0]["containers"][0]["exit_code"], 3);
    let logs = &failure["logs"][0];
    assert_eq!(logs["container"], CONTAINER, "{failure}");
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(lines.len(), 2, "{failure}");
    assert!(
        lines[1].ends_with("Z FATAL: DATABASE_URL is not set"),
        "{lines:?}"
    );
    let call = &aws.calls_of("Logs.GetLogEvents")[0];
    assert_eq!(call.field("logGroupName"), "/ecs/web");
    assert_eq!(
        call.field("logStreamName"),
        format!("ecs/{CONTAINER}/{}", task(8).rsplit('/').next().unwrap())
    );
    assert_eq!(call.field("limit"), "20");
    assert_eq!(updates(&aws), ["web:8", "web:7"], "{}", run.story(&aws));
    // The rollback starts before the logs are read: never delayed by them.
    let at = |kind: &str| {
        run.stderr
            .lines()
            .position(|l| l.contains(&format!("\"type\":\"{kind}\"")))
    };
    let (started, logs) = (at("rollback_started"), at("failure_logs"));
    assert!(
        started.is_some() && logs.is_some() && started < logs,
        "rollback_started at {started:?}, failure_logs at {logs:?}: {}",
        run.story(&aws)
    );
}

#[tokio::test]
async fn issue_11_logs_that_cannot_be_read_still_give_the_verdict_and_say_why() {
    let aws = crash_world().await;
    aws.on("Logs.GetLogEvents").reply(Reply::error(
        400,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    ));

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    let note = run.result["failure"]["logs"][0]["note"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        note.contains("The specified log group does not exist")
            && note.contains("the group /ecs/web or the task's stream does not exist"),
        "{note}"
    );
    assert_eq!(run.result["failure"]["cause"], "container_exited");
}

#[tokio::test]
async fn issue_11_log_lines_0_reads_no_logs() {
    let aws = crash_world().await;
    let mut args = settle();
    args.extend(["--log-lines", "0"]);

    let run = deploy(&aws, &args).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    assert!(aws.calls_of("Logs.GetLogEvents").is_empty());
    assert!(
        run.result["failure"].get("logs").is_none(),
        "{}",
        run.result
    );
}

/// `shipit watch` of a rollout that fails says why, as a deploy does: the
/// pull failure classified with the tag named, in the result and after the
/// verdict line; still nothing changed.
#[tokio::test]
async fn issue_11_watch_of_a_failing_rollout_reports_why_and_changes_nothing() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.before(failing_rollout(service_on_old()));

    let mut args = vec!["watch"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (3, "failed"),
        "{}",
        run.story(&aws)
    );
    let failure = &run.result["failure"];
    assert_eq!(failure["cause"], "image_not_found", "{}", run.story(&aws));
    assert!(
        failure["summary"]
            .as_str()
            .unwrap_or_default()
            .contains(SHA),
        "the tag is named: {failure}"
    );
    assert!(aws.mutations().is_empty(), "{}", run.story(&aws));
}

/// The automatic rollback fails too (revision 7's new task exits 1): the
/// deploy's report is revision 8's, and the rollback carries its own, for
/// revision 7, with that exit code; a human is needed (exit 3).
#[tokio::test]
async fn issue_11_a_rollback_that_fails_too_gets_a_report_of_its_own() {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    aws.after_update_to(
        NEW,
        vec![Frame::new(rolling(
            base.clone(),
            NEW,
            vec![new_primary("IN_PROGRESS", 0), old_active(1)],
        ))
        .task(old_task())
        .task(crashed_with_exit_3())
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")])],
    );
    let failed = DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 0, 1);
    aws.after_update_to(
        OLD,
        vec![Frame::new(rolling(
            base,
            OLD,
            vec![
                DeploymentDoc::new(BACK_DEP, "PRIMARY", OLD, "IN_PROGRESS").counts(1, 0, 0),
                failed,
            ],
        ))
        .task(
            back_task()
                .stopped(
                    "EssentialContainerExited",
                    "Essential container in task exited",
                )
                .container_exit(Some(1), None),
        )
        .targets(TG, vec![])],
    );

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (3, "needs_human"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8", "web:7"], "{}", run.story(&aws));
    assert_eq!(
        run.result["failure"]["stops"][0]["containers"][0]["exit_code"],
        3
    );
    let back = &run.result["rollback"]["failure"];
    assert_eq!(back["cause"], "container_exited", "{}", run.story(&aws));
    assert_eq!(back["stops"][0]["containers"][0]["exit_code"], 1, "{back}");
    assert_eq!(
        back["stops"][0]["tasks"][0],
        task(70).rsplit('/').next().unwrap(),
        "{back}"
    );
}

/// Real ECS writes service events (the emulator does not): the report keeps
/// those since the update, newest first, and leaves out older ones.
#[tokio::test]
async fn issue_11_the_report_shows_the_service_events_since_the_update() {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    let events = json!([
        {"id": "e2", "createdAt": now() + 1.0,
         "message": "(service web) has started 1 tasks: (task 8ff34785799e5cbd687835955579c9a1)."},
        {"id": "e1", "createdAt": now() - 7_200.0,
         "message": "(service web) has reached a steady state."}
    ]);
    aws.after_update_to(
        NEW,
        vec![Frame::new(
            rolling(
                base.clone(),
                NEW,
                vec![new_primary("IN_PROGRESS", 0), old_active(1)],
            )
            .set("/events", events),
        )
        .task(old_task())
        .task(crashed_with_exit_3())
        .targets(TG, vec![target(OLD_IP, PORT, "healthy")])],
    );
    aws.after_update_to(
        OLD,
        healthy_return(
            base,
            DeploymentDoc::new(NEW_DEP, "ACTIVE", NEW, "IN_PROGRESS").counts(1, 0, 1),
        ),
    );

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "rolled_back"),
        "{}",
        run.story(&aws)
    );
    let shown: Vec<&str> = run.result["failure"]["events"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].contains("has started 1 tasks"), "{shown:?}");
}

/// ListTasks keeps stopped tasks for about an hour: a crash of revision 8
/// from before `shipit watch` attached is history, not this rollout's
/// failure. The service (COMPLETED, its task healthy) is `deployed`.
#[tokio::test]
async fn issue_10_watch_ignores_a_crash_from_before_it_attached() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let done = rolling(service_on_old(), NEW, vec![new_primary("COMPLETED", 1)]);
    let earlier = now() - 1_800.0;
    let old_crash = TaskDoc::running(&task(81), NEW, NEW_DEP, CONTAINER, "10.0.2.81")
        .started_at(earlier - 60.0)
        .stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
        )
        .container_exit(Some(3), None)
        .set("/stoppingAt", json!(earlier - 2.0))
        .set("/executionStoppedAt", json!(earlier - 1.0))
        .set("/stoppedAt", json!(earlier));
    aws.before(vec![Frame::new(done)
        .task(new_task(8, NEW_IP).started_at(now() - 600.0))
        .task(old_crash)
        .targets(TG, vec![target(NEW_IP, PORT, "healthy")])]);

    let mut args = vec!["watch"];
    args.extend(settle());
    let run = shipit(&aws, &args, &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "{}",
        run.story(&aws)
    );
}

/// ECS replaces a task it stops for Fargate maintenance
/// (`ServiceSchedulerInitiated`): during a rollout that is not the revision's
/// fault; the replacement turns healthy and the deploy is `deployed`.
#[tokio::test]
async fn issue_10_a_fargate_maintenance_stop_during_the_rollout_is_not_a_failure() {
    let base = service_on_old();
    let aws = world(base.clone(), old_task_definition()).await;
    let starting = rolling(
        base.clone(),
        NEW,
        vec![new_primary("IN_PROGRESS", 0), old_active(1)],
    );
    let done = rolling(base, NEW, vec![new_primary("COMPLETED", 1)]);
    let maintained = new_task(8, NEW_IP).stopped(
        "ServiceSchedulerInitiated",
        "Task stopped because ECS is performing maintenance on the underlying infrastructure hosting the task",
    );
    aws.after_update_to(
        NEW,
        vec![
            Frame::new(starting.clone())
                .task(old_task())
                .task(maintained.clone())
                .targets(TG, vec![target(OLD_IP, PORT, "healthy")]),
            Frame::new(done)
                .task(maintained)
                .task(new_task(9, "10.0.2.9"))
                .targets(TG, vec![target("10.0.2.9", PORT, "healthy")]),
        ],
    );

    let run = deploy(&aws, &settle()).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(updates(&aws), ["web:8"], "{}", run.story(&aws));
}

// ---------------------------------------------------------------------------
// Issue 12: one-off tasks (`deploy --before`, `shipit run`), RunTask,
// DescribeTasks, StopTask and GetLogEvents shaped as the API references say.

/// The one-off task RunTask starts.
const ONEOFF: &str =
    "arn:aws:ecs:us-east-1:123456789012:task/prod/3f0e5a6b7c8d4e9fa0b1c2d3e4f50617";
const ONEOFF_IP: &str = "10.0.2.90";

fn oneoff(task_definition: &str, started_by: &str) -> TaskDoc {
    TaskDoc::running(ONEOFF, task_definition, started_by, CONTAINER, ONEOFF_IP)
        .set("/group", json!("family:web"))
}

/// RunTask answers the task PROVISIONING; DescribeTasks of it answers
/// `states` in turn (the last repeats); its stream holds `lines`.
fn script_oneoff(
    aws: &FakeAws,
    task_definition: &str,
    started_by: &str,
    states: Vec<TaskDoc>,
    lines: &[&str],
) {
    aws.on("ECS.RunTask").reply(Reply::Doc(json!({
        "tasks": [oneoff(task_definition, started_by).status("PROVISIONING", "RUNNING").0],
        "failures": [],
    })));
    aws.on("ECS.DescribeTasks").when("tasks", ONEOFF).replies(
        states
            .into_iter()
            .map(|t| Reply::Doc(json!({"tasks": [t.0], "failures": []})))
            .collect(),
    );
    aws.on("ECS.StopTask").reply(Reply::Doc(json!({
        "task": oneoff(task_definition, started_by).status("RUNNING", "STOPPED").0,
    })));
    let ms = (now() * 1000.0) as i64;
    let events: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| json!({"timestamp": ms + i as i64, "message": format!("{l}\n"), "ingestionTime": ms}))
        .collect();
    let stream = format!("ecs/{CONTAINER}/{}", ONEOFF.rsplit('/').next().unwrap());
    aws.on("Logs.GetLogEvents")
        .when("logStreamName", &stream)
        .reply(Reply::Doc(json!({
            "events": events, "nextForwardToken": "f/2", "nextBackwardToken": "b/0",
        })));
    // The end of the stream: GetLogEvents gives back the token it was passed.
    aws.on("Logs.GetLogEvents")
        .when("nextToken", "f/2")
        .reply(Reply::Doc(json!({
            "events": [], "nextForwardToken": "f/2", "nextBackwardToken": "b/0",
        })));
}

fn exited(task_definition: &str, started_by: &str, code: i32) -> TaskDoc {
    oneoff(task_definition, started_by)
        .stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
        )
        .container_exit(Some(code), None)
}

#[tokio::test]
async fn issue_12_a_migration_that_exits_0_runs_before_the_update_on_the_services_network() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    script_oneoff(
        &aws,
        NEW,
        "shipit/before",
        vec![
            oneoff(NEW, "shipit/before"),
            exited(NEW, "shipit/before", 0),
        ],
        &["migrating 3 tables", "migrations done"],
    );

    let mut args = vec!["--before", "bin/migrate --all"];
    args.extend(settle());
    let run = deploy(&aws, &args).await;

    assert_eq!(
        (run.code, run.verdict()),
        (0, "deployed"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutation_summary(),
        [
            "RegisterTaskDefinition web",
            "RunTask",
            "UpdateService web:8",
            "TagResource web:8 shipit:verdict=healthy"
        ],
        "the task runs after the register and before the update; {}",
        run.story(&aws)
    );
    let body = &aws.calls_of("ECS.RunTask")[0].body;
    assert_eq!(body["taskDefinition"], NEW, "the NEW revision runs: {body}");
    assert_eq!(body["cluster"], CLUSTER);
    assert_eq!(body["startedBy"], "shipit/before");
    assert_eq!(body["launchType"], "FARGATE");
    assert_eq!(body["platformVersion"], "LATEST");
    assert_eq!(
        body["networkConfiguration"]["awsvpcConfiguration"],
        json!({"subnets": ["subnet-0a1b2c3d4e5f60718"], "securityGroups": ["sg-0123456789abcdef0"], "assignPublicIp": "DISABLED"}),
        "the service's own network configuration: {body}"
    );
    assert_eq!(
        body["overrides"]["containerOverrides"],
        json!([{"name": CONTAINER, "command": ["bin/migrate", "--all"]}]),
        "{body}"
    );
    assert!(
        run.stderr.contains("migrating 3 tables"),
        "its log lines are streamed: {}",
        run.story(&aws)
    );
    let task = &run.result["tasks"][0];
    assert_eq!(task["task_arn"], ONEOFF, "{}", run.result);
    assert_eq!(task["exit_code"], 0);
    assert_eq!(task["success"], true);
    let phases: Vec<&str> = run.result["timings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["phase"].as_str())
        .collect();
    assert!(
        phases
            .windows(3)
            .any(|w| w == ["register", "before", "update"]),
        "the before phase is timed between register and update: {phases:?}"
    );
}

#[tokio::test]
async fn issue_12_a_migration_that_exits_3_stops_the_deploy_before_any_update() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    script_oneoff(
        &aws,
        NEW,
        "shipit/before",
        vec![
            oneoff(NEW, "shipit/before"),
            exited(NEW, "shipit/before", 3),
        ],
        &[
            "migrating 3 tables",
            "ERROR: relation \"users\" already exists",
        ],
    );

    let run = deploy(&aws, &["--before", "bin/migrate"]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "before_failed"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(
        aws.mutation_summary(),
        [
            "RegisterTaskDefinition web",
            "RunTask",
            "TagResource web:8 shipit:verdict=failed"
        ],
        "no UpdateService: the service stays on web:7; {}",
        run.story(&aws)
    );
    assert!(
        run.reason().contains("exited with code 3") && run.reason().contains("was not changed"),
        "{}",
        run.story(&aws)
    );
    let task = &run.result["tasks"][0];
    assert_eq!(task["exit_code"], 3, "{}", run.result);
    let last: Vec<&str> = task["last_lines"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        last.last()
            .is_some_and(|l| l.ends_with("ERROR: relation \"users\" already exists")),
        "the last log lines come with the failure: {last:?}"
    );
    assert!(run.stderr.contains("already exists"), "{}", run.story(&aws));
}

#[tokio::test]
async fn issue_12_a_migration_ecs_cannot_place_fails_the_deploy_before_any_update() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    // RunTask's answer when no capacity can take the task: a failure, no task.
    aws.on("ECS.RunTask").reply(Reply::Doc(json!({
        "tasks": [],
        "failures": [{
            "arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/8d1f0b2c3e4a5b6c7d8e9f0a1b2c3d4e",
            "reason": "RESOURCE:MEMORY",
        }],
    })));

    let run = deploy(&aws, &["--before", "bin/migrate"]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "before_failed"),
        "{}",
        run.story(&aws)
    );
    assert!(
        run.reason().contains("RESOURCE:MEMORY"),
        "{}",
        run.story(&aws)
    );
    assert!(updates(&aws).is_empty(), "{}", run.story(&aws));
    assert!(aws.calls_of("ECS.StopTask").is_empty(), "nothing to stop");
    assert_eq!(
        run.result["tasks"][0]["task_arn"],
        Value::Null,
        "{}",
        run.result
    );
}

#[tokio::test]
async fn issue_12_a_migration_placed_but_never_started_times_out_stops_and_changes_nothing() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    // Placed, then PENDING for good (an image pull that hangs, an ENI that
    // is never attached): DescribeTasks answers PENDING every time.
    script_oneoff(
        &aws,
        NEW,
        "shipit/before",
        vec![oneoff(NEW, "shipit/before").status("PENDING", "RUNNING")],
        &[],
    );

    let run = deploy(&aws, &["--before", "bin/migrate", "--before-timeout", "3s"]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "before_failed"),
        "{}",
        run.story(&aws)
    );
    let short = ONEOFF.rsplit('/').next().unwrap();
    assert_eq!(
        aws.mutation_summary(),
        [
            "RegisterTaskDefinition web".to_string(),
            "RunTask".into(),
            format!("StopTask {short}"),
            "TagResource web:8 shipit:verdict=failed".into(),
        ],
        "the task is stopped, the revision tagged failed, and no UpdateService: {}",
        run.story(&aws)
    );
    assert!(
        aws.calls_of("ECS.StopTask")[0]
            .field("reason")
            .contains("did not finish within 3s"),
        "ECS records why: {:?}",
        aws.calls_of("ECS.StopTask")[0].body
    );
    assert!(
        run.reason().contains("did not finish within 3s")
            && run.reason().contains("was not changed"),
        "{}",
        run.story(&aws)
    );
    let task = &run.result["tasks"][0];
    assert_eq!(task["task_arn"], ONEOFF, "{}", run.result);
    assert_eq!(
        task["exit_code"],
        Value::Null,
        "it never ran to an exit: {}",
        run.result
    );
    assert_eq!(task["success"], false);
}

#[tokio::test]
async fn issue_12_sigterm_during_a_migration_stops_the_task_and_changes_nothing_else() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    script_oneoff(
        &aws,
        NEW,
        "shipit/before",
        vec![oneoff(NEW, "shipit/before")],
        &["migrating"],
    );

    let dir = tempfile::tempdir().unwrap();
    let child = spawn_shipit(
        &aws,
        &[
            "deploy",
            "-C",
            dir.path().to_str().unwrap(),
            "--sha",
            SHA,
            "--repository",
            REPOSITORY,
            "--cluster",
            CLUSTER,
            "--service",
            SERVICE,
            "--output",
            "json",
            "--poll-interval",
            "1s",
            "--before",
            "bin/migrate",
        ],
    );
    wait_until("shipit never followed the task", || {
        aws.calls_of("ECS.DescribeTasks")
            .iter()
            .filter(|c| c.field("tasks").contains(ONEOFF))
            .count()
            >= 2
    })
    .await;
    let (code, result, stderr) = terminate(child).await;
    assert_eq!(
        (code, result["verdict"].as_str()),
        (Some(143), Some("interrupted")),
        "stderr: {stderr}"
    );
    let short = ONEOFF.rsplit('/').next().unwrap();
    assert_eq!(
        aws.mutation_summary(),
        [
            "RegisterTaskDefinition web".to_string(),
            "RunTask".into(),
            format!("StopTask {short}")
        ],
        "the task is stopped; no update, no tag; stderr: {stderr}"
    );
    assert!(
        aws.calls_of("ECS.StopTask")[0]
            .field("reason")
            .contains("SIGTERM"),
        "ECS records why: {:?}",
        aws.calls_of("ECS.StopTask")[0].body
    );
}

#[tokio::test]
async fn issue_12_shipit_run_exits_with_the_containers_exit_code() {
    let aws = world(service_on_old(), old_task_definition()).await;
    script_oneoff(
        &aws,
        OLD,
        "shipit/run",
        vec![oneoff(OLD, "shipit/run"), exited(OLD, "shipit/run", 3)],
        &["reindexing", "reindex failed"],
    );

    let run = shipit(
        &aws,
        &["run", "--env", "BATCH=500", "--", "bin/reindex", "--all"],
        &[],
        &[],
    )
    .await;

    assert_eq!(
        (run.code, run.verdict()),
        (3, "exited"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(aws.mutation_summary(), ["RunTask"], "{}", run.story(&aws));
    let body = &aws.calls_of("ECS.RunTask")[0].body;
    assert_eq!(body["taskDefinition"], OLD, "--revision current: {body}");
    assert_eq!(body["startedBy"], "shipit/run");
    assert_eq!(
        body["overrides"]["containerOverrides"],
        json!([{"name": CONTAINER, "command": ["bin/reindex", "--all"], "environment": [{"name": "BATCH", "value": "500"}]}]),
        "{body}"
    );
    assert!(
        run.stderr.contains(r#""type":"one_off_log","label":"run""#)
            && run.stderr.contains(r#""line":"reindexing""#),
        "{}",
        run.story(&aws)
    );
    assert_eq!(run.result["tasks"][0]["exit_code"], 3);
}

#[tokio::test]
async fn issue_12_shipit_run_detach_returns_once_ecs_placed_the_task_and_never_waits() {
    let aws = world(service_on_old(), old_task_definition()).await;
    // Were shipit to follow the task, it would see it exit 3.
    script_oneoff(
        &aws,
        OLD,
        "shipit/run",
        vec![exited(OLD, "shipit/run", 3)],
        &["reindexing"],
    );

    let run = shipit(&aws, &["run", "--detach", "--", "bin/reindex"], &[], &[]).await;

    assert_eq!(
        run.code,
        0,
        "placed is all --detach waits for: {}",
        run.story(&aws)
    );
    assert_eq!(aws.mutation_summary(), ["RunTask"], "{}", run.story(&aws));
    assert!(
        !aws.calls_of("ECS.DescribeTasks")
            .iter()
            .any(|c| c.field("tasks").contains(ONEOFF)),
        "the task is not followed: {}",
        run.story(&aws)
    );
    assert!(
        aws.calls_of("Logs.GetLogEvents").is_empty(),
        "nor its log read"
    );
    let task = &run.result["tasks"][0];
    assert_eq!(
        task["task_arn"], ONEOFF,
        "the ARN to follow it by: {}",
        run.result
    );
    assert_eq!(task["exit_code"], Value::Null, "{}", run.result);
}

#[tokio::test]
async fn issue_12_shipit_run_of_a_task_that_cannot_pull_its_image_fails_without_an_exit_code() {
    let aws = world(service_on_old(), old_task_definition()).await;
    let reason =
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found";
    script_oneoff(
        &aws,
        OLD,
        "shipit/run",
        vec![oneoff(OLD, "shipit/run")
            .stopped("TaskFailedToStart", reason)
            .container_exit(None, Some(reason))],
        &[],
    );

    let run = shipit(&aws, &["run", "--", "true"], &[], &[]).await;

    assert_eq!(
        (run.code, run.verdict()),
        (1, "error"),
        "{}",
        run.story(&aws)
    );
    assert!(
        run.reason()
            .contains("never started: CannotPullContainerError"),
        "{}",
        run.story(&aws)
    );
    assert_eq!(run.result["tasks"][0]["exit_code"], Value::Null);
}

#[tokio::test]
async fn issue_12_bad_input_for_a_one_off_task_starts_and_registers_nothing() {
    let aws = world(service_on_old(), old_task_definition()).await;
    aws.after_update_to(NEW, healthy_rollout(service_on_old()));
    let no_network = world(
        service_on_old().set("/networkConfiguration", Value::Null),
        old_task_definition(),
    )
    .await;

    let cases: Vec<(&FakeAws, Vec<&str>, &str)> = vec![
        (
            &aws,
            vec!["run", "--container", "nope", "--", "true"],
            "nope",
        ),
        (
            &aws,
            vec![
                "deploy",
                "--sha",
                SHA,
                "--repository",
                REPOSITORY,
                "--before",
                "true",
                "--before-container",
                "nope",
            ],
            "nope",
        ),
        (
            &aws,
            vec![
                "deploy",
                "--sha",
                SHA,
                "--repository",
                REPOSITORY,
                "--before",
                "sh -c 'unclosed",
            ],
            "single quote",
        ),
        (
            &no_network,
            vec!["run", "--", "true"],
            "network configuration",
        ),
        (
            &no_network,
            vec![
                "deploy",
                "--sha",
                SHA,
                "--repository",
                REPOSITORY,
                "--before",
                "true",
            ],
            "network configuration",
        ),
    ];
    for (world, args, says) in cases {
        let run = shipit(world, &args, &[], &[]).await;
        assert_eq!(
            (run.code, run.verdict()),
            (2, "error"),
            "{args:?}: {}",
            run.story(world)
        );
        assert!(
            run.reason().contains(says),
            "{args:?}: {}",
            run.story(world)
        );
        assert!(
            run.stderr.contains("\"hint\":\""),
            "{args:?}: {}",
            run.story(world)
        );
        assert!(
            world.mutations().is_empty(),
            "{args:?}: {:?}",
            world.mutation_summary()
        );
    }
}

// ---------------------------------------------------------------------------
// Issue 13: several services from one build, watched with batched polls.

mod issue_13 {
    use serde_json::Value;

    use super::support::aws::{describe_task_definition, ecr_uri, task_definition, Call, Reply};
    use super::support::fleet::{count, watch_calls, Cluster, CLUSTER, REPOSITORY, SHA};

    /// Runs the deploy of every service of `cluster` against `aws`.
    async fn deploy_all(cluster: &Cluster, aws: &super::FakeAws) -> (i32, Value) {
        let (code, result, _) = run_with(cluster, aws, |args| args).await;
        (code, result)
    }

    /// [`deploy_all`] with the arguments changed by `edit`; also stdout.
    async fn run_with(
        cluster: &Cluster,
        aws: &super::FakeAws,
        edit: impl FnOnce(Vec<String>) -> Vec<String>,
    ) -> (i32, Value, String) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let args = edit(cluster.deploy_args(dir.path().to_str().unwrap()));
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipit"));
        command
            .args(&args)
            .env("CI", "true")
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        for var in ["GITHUB_ACTIONS", "GITHUB_SHA", "CIRCLE_SHA1", "AWS_PROFILE"] {
            command.env_remove(var);
        }
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SHIPIT_")) {
            command.env_remove(key);
        }
        command.envs(aws.env());
        let out = tokio::time::timeout(std::time::Duration::from_secs(90), command.output())
            .await
            .expect("shipit finished within 90 s")
            .expect("the shipit binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!(
            "$ shipit {}\n--- exit {:?}\n--- stdout\n{stdout}--- stderr\n{}--- mutations\n{:#?}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
            aws.mutation_summary()
        );
        let result = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), result, stdout)
    }

    #[tokio::test]
    async fn issue_13_bad_input_in_one_service_fails_the_whole_deploy_with_nothing_changed() {
        let cluster = Cluster::new(&["web", "worker"], &[true, false], false);
        let aws = cluster.world().await;
        // worker names a container its task definition does not have.
        let (code, result, _) = run_with(&cluster, &aws, |mut args| {
            let at = args.iter().rposition(|a| a == "worker").unwrap();
            args[at] = "worker:nope".into();
            args
        })
        .await;
        assert_eq!(
            (code, result["verdict"].as_str()),
            (2, Some("error")),
            "{result}"
        );
        assert!(
            result["reason"]
                .as_str()
                .unwrap()
                .contains("service `worker`"),
            "the service is named: {result}"
        );
        assert_eq!(
            aws.mutation_summary(),
            Vec::<String>::new(),
            "nothing changed anywhere"
        );
    }

    #[tokio::test]
    async fn issue_13_plan_shows_every_service_with_its_diff_and_rollback_target() {
        let cluster = Cluster::new(&["web", "worker"], &[true, false], false);
        let aws = cluster.world().await;
        // In lines mode stdout is the plan (in json mode, only the result object).
        let (code, _, stdout) = run_with(&cluster, &aws, |mut args| {
            args[0] = "plan".into();
            let at = args.iter().position(|a| a == "--output").unwrap();
            args[at + 1] = "lines".into();
            args
        })
        .await;
        assert_eq!(code, 0, "{stdout}");
        for name in ["web", "worker"] {
            let section = stdout
                .split(&format!("=== service {name} ===\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("a section for {name}: {stdout}"));
            assert!(
                section.contains(&format!(
                    "rollback to:   {}",
                    super::support::fleet::revision(name, 7)
                )),
                "{section}"
            );
            assert!(section.contains("task definition diff:"), "{section}");
        }
        assert_eq!(
            aws.mutation_summary(),
            Vec::<String>::new(),
            "plan changes nothing"
        );
    }

    #[tokio::test]
    async fn issue_13_plan_of_a_release_with_before_shows_the_step_once_and_checks_it() {
        let cluster = Cluster::new(&["web", "worker"], &[true, false], false);
        let aws = cluster.world().await;
        let plan_with = |extra: &'static [&'static str]| {
            move |mut args: Vec<String>| {
                args[0] = "plan".into();
                let at = args.iter().position(|a| a == "--output").unwrap();
                args[at + 1] = "lines".into();
                args.extend(extra.iter().map(|a| a.to_string()));
                args
            }
        };
        let (code, _, stdout) = run_with(
            &cluster,
            &aws,
            plan_with(&["--before", "bin/migrate --fast"]),
        )
        .await;
        assert_eq!(code, 0, "{stdout}");
        let before = stdout
            .split("=== before any update, once, on service web's new revision ===")
            .nth(1)
            .unwrap_or_else(|| panic!("a before section: {stdout}"));
        assert!(before.contains("bin/migrate --fast"), "{before}");
        assert_eq!(stdout.matches("bin/migrate --fast").count(), 1, "{stdout}");

        let (code, _, stdout) = run_with(
            &cluster,
            &aws,
            plan_with(&["--before", "bin/migrate", "--before-container", "nope"]),
        )
        .await;
        assert_eq!(code, 2, "bad input, as for the deploy: {stdout}");
        assert!(!stdout.contains("=== before"), "no plan printed: {stdout}");
        assert_eq!(aws.mutation_summary(), Vec::<String>::new());
    }

    /// web (behind a target group) and worker (none), on the scripted
    /// endpoint, with worker:8 described (the revision its rollout is on in
    /// [`Cluster::failing_frames`]).
    async fn web_and_rolling_worker() -> (Cluster, super::FakeAws) {
        let cluster = Cluster::new(&["web", "worker"], &[true, false], false);
        let aws = cluster.world().await;
        let new = super::support::fleet::revision("worker", 8);
        aws.on("ECS.DescribeTaskDefinition")
            .when("taskDefinition", &new)
            .reply(Reply::Doc(describe_task_definition(
                task_definition(&new, "app", &format!("{}:{SHA}", ecr_uri(REPOSITORY)), 8080),
                &[("shipit:sha", SHA)],
            )));
        (cluster, aws)
    }

    /// `shipit status` of several services: one snapshot each, in the order
    /// asked, the worker's with its last failure; nothing changes.
    #[tokio::test]
    async fn issue_13_status_of_two_services_gives_a_snapshot_of_each_and_changes_nothing() {
        let (cluster, aws) = web_and_rolling_worker().await;
        aws.before(cluster.failing_frames(1));

        let (code, result, stdout) = run_with(&cluster, &aws, |_| {
            [
                "status",
                "--cluster",
                CLUSTER,
                "--service",
                "web",
                "--service",
                "worker",
            ]
            .iter()
            .map(|a| a.to_string())
            .chain(["--output".to_string(), "json".to_string()])
            .collect()
        })
        .await;

        assert_eq!(code, 0, "{result}");
        assert_eq!(result["command"], "status", "{result}");
        let seen = result["snapshots"]
            .as_array()
            .expect("one snapshot per service");
        let names: Vec<&str> = seen.iter().filter_map(|s| s["service"].as_str()).collect();
        assert_eq!(names, ["web", "worker"], "{result}");
        assert_eq!(
            seen[0]["last_failure"],
            Value::Null,
            "web is fine: {result}"
        );
        let worker = &seen[1]["last_failure"];
        assert!(
            worker["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("exited with code 3"),
            "the worker's failure: {result}"
        );
        assert_eq!(
            worker["task_definition"],
            super::support::fleet::revision("worker", 8),
            "the revision that failed: {result}"
        );
        assert!(
            !stdout.contains("=== service"),
            "the screens stay off stdout in JSON: {stdout}"
        );
        assert!(
            aws.mutation_summary().is_empty(),
            "{:?}",
            aws.mutation_summary()
        );
    }

    /// `shipit watch` of several services: web at rest and healthy, worker
    /// in a rollout whose new task exits 3. Each is judged by its own rules;
    /// the exit code is the worst; without `--rollback` nothing changes but
    /// the healthy tag on web's revision.
    #[tokio::test]
    async fn issue_13_watch_of_two_services_judges_each_and_exits_with_the_worst() {
        let (cluster, aws) = web_and_rolling_worker().await;
        aws.before(cluster.failing_frames(1));

        let (code, result, _) = run_with(&cluster, &aws, |args| {
            let mut watch: Vec<String> = ["watch", "--cluster", CLUSTER]
                .iter()
                .map(|a| a.to_string())
                .collect();
            // The deploy's watch flags and services, without the deploy's own.
            let mut rest = args.iter().skip(1);
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "-C" | "--sha" | "--repository" | "--cluster" => {
                        rest.next();
                    }
                    _ => watch.push(arg.clone()),
                }
            }
            watch
        })
        .await;

        assert_eq!(code, 3, "failed is exit 3: {result}");
        assert_eq!(result["command"], "watch", "{result}");
        let verdicts: Vec<(&str, &str)> = result["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["service"].as_str().unwrap(),
                    s["verdict"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [("web", "deployed"), ("worker", "failed")],
            "{result}"
        );
        let worker = &result["services"][1];
        assert!(
            worker["failure"]["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("exited with code 3"),
            "the worker's own report: {worker}"
        );
        assert_eq!(
            aws.mutation_summary(),
            ["TagResource web:7 shipit:verdict=healthy"],
            "no rollback without --rollback, and the failure of one is not the other's"
        );
        // Attached one by one, then watched with the deploy's batched polls
        // (a poll asks for the services still without a verdict).
        let described: Vec<usize> = aws
            .calls()
            .iter()
            .filter(|c| c.operation == "ECS.DescribeServices")
            .map(|c| asked(c, "services"))
            .collect();
        assert!(
            described.len() > 2 && described[..3] == [1, 1, 2],
            "one DescribeServices per service to attach, then one for both per poll: {described:?}"
        );
    }

    /// SIGTERM during `shipit watch` of two services (web holding for the
    /// settle period, worker's new task provisioning): both watches stop,
    /// both are `interrupted`, exit 143, and nothing is changed.
    #[tokio::test]
    async fn issue_13_watch_of_two_services_stopped_by_sigterm_changes_nothing() {
        let (cluster, aws) = web_and_rolling_worker().await;
        // Only the first moment: the worker's new task never gets further.
        aws.before(cluster.failing_frames(1).into_iter().take(1).collect());

        let child = super::spawn_shipit(
            &aws,
            &[
                "watch",
                "--rollback",
                "--cluster",
                CLUSTER,
                "--service",
                "web",
                "--service",
                "worker",
                "--output",
                "json",
                "--poll-interval",
                "1s",
            ],
        );
        // Two to attach, then polls of both.
        super::wait_until("shipit never polled", || {
            aws.calls_of("ECS.DescribeServices").len() >= 4
        })
        .await;
        let (code, result, stderr) = super::terminate(child).await;
        let verdicts: Vec<&str> = result["services"]
            .as_array()
            .map(|s| s.iter().filter_map(|v| v["verdict"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            (code, verdicts),
            (Some(143), vec!["interrupted", "interrupted"]),
            "{result}\nstderr: {stderr}"
        );
        assert!(aws.mutations().is_empty(), "{:?}", aws.mutation_summary());
    }

    fn asked(call: &Call, field: &str) -> usize {
        call.body[field].as_array().map_or(0, Vec::len)
    }

    #[tokio::test]
    async fn issue_13_a_poll_of_three_services_batches_describe_calls_and_shares_the_target_group()
    {
        // web and api behind one shared target group, worker behind none.
        let cluster = Cluster::new(&["web", "api", "worker"], &[true, true, false], true);
        let aws = cluster.world().await;

        let (code, result) = deploy_all(&cluster, &aws).await;

        assert_eq!(
            (code, result["verdict"].as_str()),
            (0, Some("deployed")),
            "{result}"
        );
        let verdicts: Vec<&str> = result["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["verdict"].as_str().unwrap())
            .collect();
        assert_eq!(verdicts, ["deployed"; 3]);
        let watch = watch_calls(&aws);
        let polls = count(&watch, "ECS.DescribeServices");
        assert!(polls >= 2, "the settle hold needs two polls: {polls}");
        for call in watch
            .iter()
            .filter(|c| c.operation == "ECS.DescribeServices")
        {
            assert_eq!(
                asked(call, "services"),
                3,
                "one DescribeServices for the three: {:?}",
                call.body
            );
        }
        assert_eq!(
            count(&watch, "ECS.DescribeTasks"),
            polls,
            "one DescribeTasks per poll"
        );
        for call in watch.iter().filter(|c| c.operation == "ECS.DescribeTasks") {
            assert_eq!(
                asked(call, "tasks"),
                3,
                "the tasks of all three in one call"
            );
        }
        assert_eq!(
            count(&watch, "ECS.ListTasks"),
            2 * 3 * polls,
            "ListTasks takes one service"
        );
        assert_eq!(
            count(&watch, "ELBv2.DescribeTargetHealth"),
            polls,
            "the shared target group once per poll, not once per service"
        );
        assert_eq!(
            aws.mutation_summary()
                .iter()
                .filter(|m| m.starts_with("UpdateService"))
                .count(),
            3
        );
    }

    #[tokio::test]
    async fn issue_13_twelve_services_are_described_ten_at_a_time() {
        let names: Vec<String> = (0..12).map(|i| format!("svc-{i:02}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let lb: Vec<bool> = (0..12).map(|i| i % 3 == 0).collect();
        let cluster = Cluster::new(&names, &lb, false);
        let aws = cluster.world().await;

        let (code, result) = deploy_all(&cluster, &aws).await;

        assert_eq!(
            (code, result["verdict"].as_str()),
            (0, Some("deployed")),
            "{result}"
        );
        let watch = watch_calls(&aws);
        let sizes: Vec<usize> = watch
            .iter()
            .filter(|c| c.operation == "ECS.DescribeServices")
            .map(|c| asked(c, "services"))
            .collect();
        assert!(sizes.len() >= 4, "{sizes:?}");
        assert!(
            sizes.chunks(2).all(|pair| pair == [10, 2]),
            "DescribeServices takes up to 10 services: {sizes:?}"
        );
        let polls = sizes.len() / 2;
        assert_eq!(
            count(&watch, "ECS.DescribeTasks"),
            polls,
            "12 tasks fit one DescribeTasks"
        );
        assert_eq!(
            count(&watch, "ELBv2.DescribeTargetHealth"),
            4 * polls,
            "one per target group (4 services behind one each)"
        );
    }
}
