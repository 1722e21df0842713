//! Reliability and security, proven with real faults: the real shipit binary
//! against the real local stack, with a fault-injecting proxy between shipit
//! and the AWS emulator (throttling, 5xx, dropped connections, latency, an
//! outage), a forwarder that kills the Docker engine's connection mid-build or
//! mid-push, and real SIGINT/SIGTERM. Each test asserts on the stack's state
//! (the service's task definition, revisions), on the AWS calls the proxy saw
//! (no mutation on bad input), and on what shipit said.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::engine_faults::{EngineFault, EngineProxy};
use support::faults::{Fault, FaultProxy};
use support::{app_dir, random_sha, shipit, Run, Scenario, GOOD_SHA};

/// Extra environment for one run (an empty value removes the variable).
type Env = Vec<(&'static str, String)>;

/// Credentials no output may ever contain.
const SECRET_KEY: &str = "canary-secret-access-key-9f3b1c";
const ACCESS_KEY: &str = "AKIACANARY0000000001";

/// The environment that sends shipit's AWS calls through the proxy.
fn through(proxy: &FaultProxy) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", proxy.url()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
    ]
}

/// Runs shipit as CI would; an empty value removes the variable.
fn run_with(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    shipit(args, &env)
}

fn assert_no_secrets(run: &Run) {
    let all = run.all();
    assert!(
        !all.contains(SECRET_KEY),
        "the secret key leaked into output"
    );
}

/// The same arguments with `--output json` instead of `lines`.
fn json(mut args: Vec<&str>) -> Vec<&str> {
    let at = args.iter().position(|a| *a == "--output").unwrap();
    args[at + 1] = "json";
    args
}

/// A first healthy deploy (no faults) so that the service runs a good revision.
async fn deployed(s: &Scenario, app: &std::path::Path) -> String {
    let good = s.deploy(app, GOOD_SHA, &["--desired-count", "1"]);
    assert_eq!(good.code, 0, "the first deploy is healthy: {}", good.stderr);
    s.service_task_definition().await
}

// ------------------------------------------------------------ the watch under faults

#[tokio::test(flavor = "multi_thread")]
async fn throttling_5xx_resets_and_latency_during_the_watch_do_not_change_a_healthy_verdict() {
    let s = Scenario::new("flt-healthy", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let proxy = FaultProxy::start().await;
    // Before the update: single faults the SDK's retries absorb.
    proxy
        .inject("ECS.DescribeServices", Fault::Unavailable, 1)
        .inject("ECS.RegisterTaskDefinition", Fault::Throttle, 1);
    // During the watch: bursts longer than the SDK's 3 attempts, so whole
    // polls fail and the watch must carry on, and shorter ones the SDK absorbs,
    // on every call a poll makes. Poll 1 fails on DescribeServices, poll 2 on
    // DescribeTargetHealth (after absorbing the rest), poll 3 succeeds slowly:
    // never the 5 failed polls in a row after which the watch gives up.
    let update = "ECS.UpdateService";
    proxy
        .inject_after(update, "ECS.DescribeServices", Fault::Throttle, 3)
        .inject_after(update, "ECS.DescribeServices", Fault::InternalError, 2)
        .inject_after(update, "ECS.ListTasks", Fault::Reset, 2)
        .inject_after(update, "ECS.DescribeTasks", Fault::Unavailable, 2)
        .inject_after(update, "ELBv2.DescribeTargetHealth", Fault::Throttle, 3)
        .inject_after(
            update,
            "ELBv2.DescribeTargetHealth",
            Fault::DelayMs(1500),
            1,
        );
    let dir = app.path().to_str().unwrap();
    let summary = app.path().join("summary.md");
    let outputs = app.path().join("outputs.txt");
    let mut env = through(&proxy);
    env.push(("GITHUB_ACTIONS", "true".into()));
    env.push(("GITHUB_STEP_SUMMARY", summary.display().to_string()));
    env.push(("GITHUB_OUTPUT", outputs.display().to_string()));
    let run = run_with(
        &json(s.deploy_args(dir, GOOD_SHA, &["--env", "RELEASE=2"])),
        &env,
    );

    assert_eq!(run.code, 0, "still deployed: {}", run.stderr);
    assert!(
        proxy.unspent().is_empty(),
        "every fault was injected: {:?}",
        proxy.unspent()
    );
    assert!(
        run.stderr.contains("poll failed"),
        "whole polls failed and were retried: {}",
        run.stderr
    );
    let now = s.service_task_definition().await;
    assert_ne!(now, before, "the service runs the new revision");
    let result: serde_json::Value =
        serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["verdict"], "deployed");
    assert_eq!(result["new_task_definition"], now.as_str());
    // Throttled attempts count: the proxy saw every one, and so did shipit.
    let counted = result["aws_api_calls"]["total"].as_u64().unwrap() as usize;
    assert_eq!(counted, proxy.seen().len(), "shipit counts every attempt");
    assert_no_secrets(&run);
    for file in [&summary, &outputs] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.contains(SECRET_KEY),
            "{} leaks the secret key",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_during_a_failing_deploy_still_rolls_back() {
    let s = Scenario::new("flt-failing", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let proxy = FaultProxy::start().await;
    let update = "ECS.UpdateService";
    proxy
        .inject_after(update, "ECS.DescribeServices", Fault::Throttle, 5)
        .inject_after(update, "ELBv2.DescribeTargetHealth", Fault::Throttle, 5)
        .inject_after(update, "ECS.DescribeTasks", Fault::Reset, 2);
    let dir = app.path().to_str().unwrap();
    let run = run_with(
        &s.deploy_args(
            dir,
            GOOD_SHA,
            &[
                "--env",
                "APP_MODE=broken-health",
                "--unhealthy-grace",
                "10s",
            ],
        ),
        &through(&proxy),
    );

    assert_eq!(run.code, 1, "failed and rolled back: {}", run.stderr);
    assert!(
        run.stderr.contains("Target.FailedHealthChecks"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("rollback healthy"), "{}", run.stderr);
    assert!(proxy.unspent().is_empty(), "{:?}", proxy.unspent());
    assert_eq!(s.service_task_definition().await, before);
    let updates: Vec<String> = proxy
        .mutations()
        .into_iter()
        .filter(|m| m == update)
        .collect();
    assert_eq!(updates.len(), 2, "one update, one rollback");
    assert_no_secrets(&run);
}

// ------------------------------------------------------------ failures before the update

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_to_register_leaves_the_service_untouched_and_says_so() {
    let s = Scenario::new("flt-register", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let revisions = s.revisions().await;
    let proxy = FaultProxy::start().await;
    proxy.inject("ECS.RegisterTaskDefinition", Fault::InternalError, 20);
    let dir = app.path().to_str().unwrap();
    let run = run_with(
        &s.deploy_args(dir, GOOD_SHA, &["--env", "RELEASE=3"]),
        &through(&proxy),
    );

    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("the service `{}` was not changed", s.service)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(
        proxy
            .mutations()
            .iter()
            .all(|m| m == "ECS.RegisterTaskDefinition"),
        "nothing but the failed registrations: {:?}",
        proxy.mutations()
    );
    assert_eq!(s.service_task_definition().await, before);
    assert_eq!(s.revisions().await, revisions);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_update_reports_the_unused_revision_and_deregisters_it_when_asked() {
    let s = Scenario::new("flt-update", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let dir = app.path().to_str().unwrap();

    let proxy = FaultProxy::start().await;
    proxy.inject("ECS.UpdateService", Fault::InternalError, 3);
    let kept = run_with(
        &s.deploy_args(dir, GOOD_SHA, &["--env", "RELEASE=4"]),
        &through(&proxy),
    );
    assert_eq!(kept.code, 1, "{}", kept.stderr);
    assert!(kept.stderr.contains("was not changed"), "{}", kept.stderr);
    assert!(
        kept.stderr.contains("no service uses it"),
        "{}",
        kept.stderr
    );
    assert_eq!(s.service_task_definition().await, before);

    let proxy = FaultProxy::start().await;
    proxy.inject("ECS.UpdateService", Fault::InternalError, 3);
    let cleaned = run_with(
        &s.deploy_args(
            dir,
            GOOD_SHA,
            &["--env", "RELEASE=5", "--deregister-on-failure"],
        ),
        &through(&proxy),
    );
    assert_eq!(cleaned.code, 1, "{}", cleaned.stderr);
    assert!(
        cleaned.stderr.contains("then deregistered"),
        "{}",
        cleaned.stderr
    );
    assert_eq!(proxy.count("ECS.DeregisterTaskDefinition"), 1);
    let orphan = cleaned
        .stderr
        .lines()
        .find_map(|l| l.split("registered ").nth(1))
        .map(|arn| arn.trim().to_string())
        .expect("the registered revision is named");
    let td = s.task_definition(&orphan).await;
    assert_eq!(td.status().map(|s| s.as_str()), Some("INACTIVE"));
    assert_eq!(s.service_task_definition().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_docker_engine_is_bad_input_and_changes_nothing() {
    let s = Scenario::new("flt-nodocker", vec![]).await;
    let app = app_dir();
    let proxy = FaultProxy::start().await;
    let sha = random_sha();
    let dir = app.path().to_str().unwrap();
    let mut env = through(&proxy);
    env.push(("DOCKER_HOST", "unix:///nonexistent/docker.sock".into()));
    let run = run_with(&s.deploy_args(dir, &sha, &["--desired-count", "1"]), &env);

    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("Docker engine"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert_eq!(proxy.mutations(), Vec::<String>::new());
    assert_eq!(s.service_task_definition().await, s.bootstrap);
}

/// A build context big enough that the upload is cut part-way.
fn big_app() -> tempfile::TempDir {
    let app = app_dir();
    let mut blob = vec![0u8; 4 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in blob.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(app.path().join("www/blob.bin"), blob).unwrap();
    app
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_dying_mid_build_fails_cleanly_with_no_aws_change() {
    let s = Scenario::new("flt-midbuild", vec![]).await;
    let app = big_app();
    let proxy = FaultProxy::start().await;
    let engine = EngineProxy::start(EngineFault::UploadCut(512 << 10));
    let sha = random_sha();
    let dir = app.path().to_str().unwrap();
    let mut env = through(&proxy);
    env.push(("DOCKER_HOST", engine.docker_host()));
    let run = run_with(&s.deploy_args(dir, &sha, &["--desired-count", "1"]), &env);

    assert!(engine.fired(), "the build upload was cut");
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The proxy cut that one connection: the engine answers the ping after it.
    assert_the_engine_connection_broke(&run, "image build failed", &engine, ANSWERS);
    assert!(run.stderr.contains("was not changed"), "{}", run.stderr);
    assert_eq!(proxy.mutations(), Vec::<String>::new());
    assert_eq!(s.service_task_definition().await, s.bootstrap);
}

const ANSWERS: &str = "the engine answers again";

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_dying_while_the_build_runs_names_the_engine_not_the_dockerfile() {
    let s = Scenario::new("flt-buildrun", vec![]).await;
    let app = app_dir();
    let proxy = FaultProxy::start().await;
    let engine = EngineProxy::start(EngineFault::DiesMidBuild);
    let sha = random_sha();
    let dir = app.path().to_str().unwrap();
    let mut env = through(&proxy);
    env.push(("DOCKER_HOST", engine.docker_host()));
    let run = run_with(&s.deploy_args(dir, &sha, &["--desired-count", "1"]), &env);

    assert!(engine.fired(), "the build's answer was cut");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error reading a body from connection"),
        "the engine went away mid-answer: {}",
        run.stderr
    );
    let gone = "the engine no longer answers";
    assert_the_engine_connection_broke(&run, "image build failed", &engine, gone);
    assert!(run.stderr.contains("was not changed"), "{}", run.stderr);
    assert_eq!(proxy.mutations(), Vec::<String>::new());
    assert_eq!(s.service_task_definition().await, s.bootstrap);
}

/// The error of a run whose connection to the engine broke: it names the
/// engine, says whether it answers now, and does not send the user to a
/// Dockerfile or a repository to fix.
fn assert_the_engine_connection_broke(run: &Run, what: &str, engine: &EngineProxy, now: &str) {
    let broke = format!(
        "the connection to the Docker engine at {} broke",
        engine.docker_host()
    );
    let said = run.stderr.lines().find(|line| line.contains(&broke));
    assert!(
        said.is_some_and(|line| line.contains(what)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(now), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: check the engine"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Dockerfile step"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("ECR repository exists"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_dying_mid_push_fails_cleanly_with_no_ecs_change() {
    let s = Scenario::new("flt-midpush", vec![]).await;
    let app = app_dir();
    let proxy = FaultProxy::start().await;
    let engine = EngineProxy::start(EngineFault::PushCut);
    let sha = random_sha();
    let dir = app.path().to_str().unwrap();
    let mut env = through(&proxy);
    env.push(("DOCKER_HOST", engine.docker_host()));
    let run = run_with(&s.deploy_args(dir, &sha, &["--desired-count", "1"]), &env);

    assert!(engine.fired(), "the push was cut");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_the_engine_connection_broke(&run, "pushing ", &engine, ANSWERS);
    assert!(run.stderr.contains("was not changed"), "{}", run.stderr);
    assert_eq!(proxy.mutations(), Vec::<String>::new());
    assert_eq!(s.service_task_definition().await, s.bootstrap);
    assert_no_secrets(&run);
}

// ------------------------------------------------------------ credentials that expire mid-deploy

#[tokio::test(flavor = "multi_thread")]
async fn a_long_watch_keeps_working_while_credentials_expire_and_refresh() {
    let s = Scenario::new("flt-refresh", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    // A profile whose credential_process hands out keys valid for 20 s, each
    // one new (the SDK refreshes them 10–15 s before they expire).
    let creds = tempfile::tempdir().unwrap();
    let script = creds.path().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
n=$(( $(cat "{dir}/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "{dir}/count"
printf '{{"Version":1,"AccessKeyId":"AKIAROTATING%08d","SecretAccessKey":"rotating-{SECRET_KEY}-%d","Expiration":"%s"}}' "$n" "$n" "$(date -u -d '+20 seconds' +%Y-%m-%dT%H:%M:%SZ)"
"#,
            dir = creds.path().display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let config = creds.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile rotating]\ncredential_process = {}\nregion = us-east-1\n",
            script.display()
        ),
    )
    .unwrap();
    let proxy = FaultProxy::start().await;
    let env = vec![
        ("AWS_ENDPOINT_URL", proxy.url()),
        ("AWS_ACCESS_KEY_ID", String::new()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
        ("AWS_SESSION_TOKEN", String::new()),
        ("AWS_CONFIG_FILE", config.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials".into(),
        ),
        ("AWS_PROFILE", "rotating".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ];
    let dir = app.path().to_str().unwrap();
    let run = run_with(
        &s.deploy_args(
            dir,
            GOOD_SHA,
            &[
                "--env",
                "APP_MODE=slow",
                "--env",
                "APP_START_DELAY=25",
                "--unhealthy-grace",
                "90s",
            ],
        ),
        &env,
    );

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_ne!(s.service_task_definition().await, before);
    let keys = proxy.access_keys();
    assert!(
        keys.len() >= 3,
        "requests were signed with refreshed keys: {keys:?}"
    );
    assert!(
        keys.iter().all(|k| k.starts_with("AKIAROTATING")),
        "{keys:?}"
    );
    assert!(
        !run.all().contains("rotating-canary"),
        "no secret key in the output"
    );
}

// ------------------------------------------------------------ an outage of the AWS endpoint

#[tokio::test(flavor = "multi_thread")]
async fn an_aws_outage_during_the_watch_is_blind_rolls_nothing_back_and_names_the_command_that_recovers(
) {
    let s = Scenario::new("flt-outage", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let proxy = FaultProxy::start().await;
    let dir = app.path().to_str().unwrap().to_string();
    let args: Vec<String> = s
        .deploy_args(&dir, GOOD_SHA, &["--env", "RELEASE=6"])
        .into_iter()
        .map(String::from)
        .collect();
    let child = Spawned::start(&args, &through(&proxy));
    // The emulator "dies" right after the update.
    wait_until(Duration::from_secs(60), || {
        proxy.count("ECS.UpdateService") == 1
    });
    proxy.set_down(true);
    let (code, stderr) = child.finish(Duration::from_secs(180));
    proxy.set_down(false);

    // Issue 10, rule 10: blind is not failed. A human is needed, but shipit
    // does not roll back what it cannot see.
    assert_eq!(code, 3, "a human is needed: {stderr}");
    assert!(stderr.contains("could not watch the rollout"), "{stderr}");
    assert!(!stderr.contains("rolling back to"), "{stderr}");
    assert_eq!(
        proxy.count("ECS.UpdateService"),
        1,
        "no rollback UpdateService while blind: {stderr}"
    );
    assert!(stderr.contains("check: shipit status"), "{stderr}");
    let recover = stderr
        .lines()
        .find_map(|l| l.split("to roll back: ").nth(1))
        .unwrap_or_else(|| panic!("the recovery command is printed: {stderr}"))
        .trim()
        .to_string();
    assert!(recover.starts_with("shipit rollback"), "{recover}");
    assert!(recover.contains(&before), "{recover}");

    // Running exactly that command, once AWS answers again, recovers.
    let mut words: Vec<&str> = recover.split_whitespace().skip(1).collect();
    words.extend(["--poll-interval", "2s", "--timeout", "3m"]);
    let rolled = run_with(&words, &through(&proxy));
    assert_eq!(rolled.code, 0, "{}", rolled.stderr);
    assert_eq!(s.service_task_definition().await, before);
}

// ------------------------------------------------------------ signals

/// shipit running in the background, its stderr collected line by line.
struct Spawned {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Spawned {
    fn start(args: &[String], env: &[(&'static str, String)]) -> Spawned {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shipit"))
            .args(args)
            .env("CI", "true")
            .env_remove("GITHUB_ACTIONS")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Spawned {
            child,
            lines,
            reader,
        }
    }

    fn wait_for(&self, text: &str, timeout: Duration) {
        let found = wait_until(timeout, || {
            self.lines.lock().unwrap().iter().any(|l| l.contains(text))
        });
        assert!(
            found,
            "`{text}` never appeared: {}",
            self.lines.lock().unwrap().join("\n")
        );
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the exit: (exit code, stderr).
    fn finish(mut self, timeout: Duration) -> (i32, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "shipit did not exit: {}",
                    self.lines.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.reader.join().unwrap();
        let stderr = self.lines.lock().unwrap().join("\n");
        eprintln!("--- exit {:?}\n--- stderr\n{stderr}", status.code());
        (status.code().unwrap_or(-1), stderr)
    }
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// A deploy of a slow starter (the watch is still waiting when the signal
/// comes), signalled with `signal` as soon as its watch starts.
fn interrupted_deploy(
    s: &Scenario,
    app: &std::path::Path,
    extra: &[&str],
    signal: &str,
) -> Spawned {
    let mut args = vec!["--env", "APP_MODE=slow", "--env", "APP_START_DELAY=40"];
    args.extend_from_slice(extra);
    let child = spawn_deploy(s, app, &args);
    child.wait_for("==> watch rollout", Duration::from_secs(60));
    child.signal(signal);
    child
}

fn spawn_deploy(s: &Scenario, app: &std::path::Path, extra: &[&str]) -> Spawned {
    let dir = app.to_str().unwrap();
    let args: Vec<String> = s
        .deploy_args(dir, GOOD_SHA, extra)
        .into_iter()
        .map(String::from)
        .collect();
    Spawned::start(&args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_during_the_watch_rolls_back_and_exits_130() {
    let s = Scenario::new("flt-sigint", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let child = interrupted_deploy(&s, app.path(), &[], "INT");
    let (code, stderr) = child.finish(Duration::from_secs(240));

    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(stderr.contains("rollback healthy"), "{stderr}");
    assert_eq!(s.service_task_definition().await, before);
}

/// Issue 10, rule 7, with a signal: another pipeline took the service over
/// since shipit's last poll; the SIGINT must not revert that release.
#[tokio::test(flavor = "multi_thread")]
async fn a_signal_after_another_deployment_took_over_rolls_nothing_back() {
    let s = Scenario::new("flt-sigother", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let child = spawn_deploy(
        &s,
        app.path(),
        &["--env", "APP_MODE=slow", "--env", "APP_START_DELAY=40"],
    );
    child.wait_for("==> watch rollout", Duration::from_secs(60));
    // Someone else deploys the revision that was healthy before (a console redeploy).
    s.aws
        .ecs
        .update_service()
        .cluster(&s.cluster)
        .service(&s.service)
        .task_definition(&before)
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    child.signal("INT");
    let (code, stderr) = child.finish(Duration::from_secs(60));

    assert_eq!(code, 4, "superseded: {stderr}");
    assert!(
        stderr.contains("another deployment took over before the rollback"),
        "{stderr}"
    );
    assert!(!stderr.contains("rolling back to"), "{stderr}");
    assert_eq!(s.service_task_definition().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_the_watch_rolls_back_and_exits_143() {
    let s = Scenario::new("flt-sigterm", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let child = interrupted_deploy(&s, app.path(), &[], "TERM");
    let (code, stderr) = child.finish(Duration::from_secs(240));

    assert_eq!(code, 143, "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(s.service_task_definition().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_stops_the_rollback_wait_at_once_and_prints_the_command_that_finishes_it() {
    let s = Scenario::new("flt-twice", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let child = interrupted_deploy(&s, app.path(), &[], "INT");
    child.wait_for("rolling back to", Duration::from_secs(30));
    let second = Instant::now();
    child.signal("INT");
    let (code, stderr) = child.finish(Duration::from_secs(30));

    assert!(
        second.elapsed() < Duration::from_secs(10),
        "the second signal ends the wait at once"
    );
    assert_eq!(code, 3, "{stderr}");
    let finish = format!(
        "to finish: shipit rollback --cluster {} --service {} --to {before}",
        s.cluster, s.service
    );
    assert!(stderr.contains(&finish), "{stderr}");
    // The rollback update itself was made: ECS goes on with it.
    assert_eq!(s.service_task_definition().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_on_interrupt_leave_a_signal_stops_watching_and_leaves_the_new_revision() {
    let s = Scenario::new("flt-leave", vec![]).await;
    let app = app_dir();
    let before = deployed(&s, app.path()).await;
    let child = interrupted_deploy(&s, app.path(), &["--on-interrupt", "leave"], "INT");
    let (code, stderr) = child.finish(Duration::from_secs(60));

    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("stopped watching"), "{stderr}");
    assert!(!stderr.contains("rolling back"), "{stderr}");
    let now = s.service_task_definition().await;
    assert_ne!(now, before, "left on the new revision");
    assert!(stderr.contains(&format!("--to {before}")), "{stderr}");
}

// ------------------------------------------------------------ the bad input matrix

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_with_an_error_and_a_hint_and_makes_no_mutating_call() {
    let s = Scenario::new("flt-matrix", vec![]).await;
    let app = app_dir();
    let root = app.path();
    let dir = root.to_str().unwrap().to_string();
    let sha = random_sha();
    std::fs::write(root.join("not-json.json"), "{ nope").unwrap();
    std::fs::write(
        root.join("unset-var.json"),
        r#"{"family": "x", "containerDefinitions": [{"name": "app", "image": "${SHIPIT_TEST_UNSET_VAR}"}]}"#,
    )
    .unwrap();
    let configs = root.join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    for (name, text) in [
        ("unknown-key.toml", "[image]\nrepositry = \"web\"\n"),
        ("wrong-type.toml", "[watch]\nhealthy_polls = \"two\"\n"),
        ("malformed.toml", "[image\nrepository = \"web\"\n"),
        ("unknown-section.toml", "[deploy]\ncluster = \"x\"\n"),
        ("bad-interrupt.toml", "[watch]\non_interrupt = \"ignore\"\n"),
    ] {
        std::fs::write(configs.join(name), text).unwrap();
    }
    let no_dockerfile = tempfile::tempdir().unwrap();
    std::fs::write(no_dockerfile.path().join("index.html"), "hi").unwrap();

    let (cluster, service, repo) = (s.cluster.clone(), s.service.clone(), s.repository.clone());
    let base = |sha: &str| -> Vec<String> {
        [
            "deploy",
            "-C",
            &dir,
            "--sha",
            sha,
            "--repository",
            &repo,
            "--cluster",
            &cluster,
            "--service",
            &service,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let replace = |mut args: Vec<String>, flag: &str, value: &str| {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = value.to_string();
        args
    };
    let words = |text: &str| {
        text.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let good = || base(GOOD_SHA);
    let config = |name: &str| with(good(), &["--config", &format!("configs/{name}")]);
    let none: Vec<(&'static str, String)> = vec![];
    let no_region = vec![
        ("AWS_REGION", String::new()),
        ("AWS_DEFAULT_REGION", String::new()),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config".into()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials".into(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ];
    let no_credentials = vec![
        ("AWS_ACCESS_KEY_ID", String::new()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
        ("AWS_PROFILE", String::new()),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config".into()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials".into(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", String::new()),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", String::new()),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", String::new()),
    ];
    let rollback = |extra: &str| {
        let mut args = words(&format!("rollback --cluster {cluster} --service {service}"));
        args.extend(words(extra));
        args
    };
    let mut cases: Vec<(&str, Vec<String>, Env)> = vec![
        (
            "unknown container",
            with(good(), &["--container", "nope"]),
            none.clone(),
        ),
        ("invalid SHA", base("not-a-sha"), none.clone()),
        ("SHA too short", base("abc12"), none.clone()),
        (
            "bad duration",
            with(good(), &["--unhealthy-grace", "soon"]),
            none.clone(),
        ),
        (
            "poll interval too short",
            with(good(), &["--poll-interval", "100ms"]),
            none.clone(),
        ),
        (
            "zero healthy polls",
            with(good(), &["--healthy-polls", "0"]),
            none.clone(),
        ),
        (
            "negative desired count",
            with(good(), &["--desired-count=-1"]),
            none.clone(),
        ),
        (
            "unknown service",
            replace(good(), "--service", "no-such-service"),
            none.clone(),
        ),
        (
            "unknown cluster",
            replace(good(), "--cluster", "no-such-cluster"),
            none.clone(),
        ),
        (
            "missing repository",
            replace(good(), "--repository", "no-such-repo"),
            none.clone(),
        ),
        (
            "invalid repository name",
            replace(good(), "--repository", "Bad_Repo!"),
            none.clone(),
        ),
        (
            "missing task definition file",
            with(good(), &["--task-definition", "nope.json"]),
            none.clone(),
        ),
        (
            "task definition file not JSON",
            with(good(), &["--task-definition", "not-json.json"]),
            none.clone(),
        ),
        (
            "task definition file with an unset variable",
            with(good(), &["--task-definition", "unset-var.json"]),
            none.clone(),
        ),
        (
            "config: unknown key",
            config("unknown-key.toml"),
            none.clone(),
        ),
        (
            "config: wrong type",
            config("wrong-type.toml"),
            none.clone(),
        ),
        (
            "config: malformed TOML",
            config("malformed.toml"),
            none.clone(),
        ),
        (
            "config: unknown section",
            config("unknown-section.toml"),
            none.clone(),
        ),
        (
            "config: unknown on_interrupt",
            config("bad-interrupt.toml"),
            none.clone(),
        ),
        (
            "config file missing",
            with(good(), &["--config", "nope.toml"]),
            none.clone(),
        ),
        (
            "malformed --env",
            with(good(), &["--env", "NOEQUALS"]),
            none.clone(),
        ),
        (
            "malformed --build-arg",
            with(base(&sha), &["--build-arg", "=x"]),
            none.clone(),
        ),
        (
            "missing Dockerfile",
            with(base(&sha), &["--dockerfile", "nope/Dockerfile"]),
            none.clone(),
        ),
        (
            "missing context",
            with(base(&sha), &["--context", "no-such-dir"]),
            none.clone(),
        ),
        (
            "no Dockerfile in the directory",
            replace(base(&sha), "-C", no_dockerfile.path().to_str().unwrap()),
            none.clone(),
        ),
        (
            "missing directory",
            replace(good(), "-C", "/nonexistent/dir"),
            none.clone(),
        ),
        (
            "conflicting flags: --quiet --verbose",
            with(good(), &["--quiet", "--verbose"]),
            none.clone(),
        ),
        (
            "unknown flag",
            with(good(), &["--no-such-flag"]),
            none.clone(),
        ),
        (
            "unknown output mode",
            with(good(), &["--output", "xml"]),
            none.clone(),
        ),
        (
            "--scan-on-push without --create-repository",
            with(good(), &["--scan-on-push"]),
            none.clone(),
        ),
        ("no region", good(), no_region),
        ("no credentials", good(), no_credentials),
        (
            "rollback to a revision that does not exist",
            rollback("--to 9999"),
            none.clone(),
        ),
        (
            "rollback to a SHA never deployed",
            rollback("--to deadbee"),
            none.clone(),
        ),
        (
            "rollback with nothing healthy to go back to",
            rollback(""),
            none.clone(),
        ),
        (
            "rollback of an unknown service",
            replace(rollback(""), "--service", "no-such-service"),
            none.clone(),
        ),
        (
            "status of an unknown service",
            words(&format!(
                "status --cluster {cluster} --service no-such-service"
            )),
            none.clone(),
        ),
        (
            "plan with an unknown container",
            {
                let mut args = with(good(), &["--container", "nope"]);
                args[0] = "plan".into();
                args
            },
            none.clone(),
        ),
    ];
    // The same service, deleted: INACTIVE.
    let gone = Scenario::new("flt-inactive", vec![]).await;
    gone.aws
        .ecs
        .delete_service()
        .cluster(&gone.cluster)
        .service(&gone.service)
        .force(true)
        .send()
        .await
        .unwrap();
    cases.push((
        "inactive service",
        replace(good(), "--service", &gone.service),
        vec![],
    ));

    let revisions = s.revisions().await;
    let mut table = Vec::new();
    for (name, args, env) in &cases {
        let proxy = FaultProxy::start().await;
        let mut env_all = through(&proxy);
        env_all.extend(env.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_with(&args, &env_all);
        let first_error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("");
        table.push(format!("{name}: exit {} — {first_error}", run.code));
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("error: ") && run.stderr.contains("hint: "),
            "{name}: {}",
            run.stderr
        );
        assert_eq!(
            proxy.mutations(),
            Vec::<String>::new(),
            "{name}: no mutating AWS call"
        );
        assert_no_secrets(&run);
        assert!(
            !run.stdout.contains("error:"),
            "{name}: errors go to stderr"
        );
    }
    eprintln!(
        "bad input matrix ({} cases):\n{}",
        cases.len(),
        table.join("\n")
    );
    assert!(cases.len() >= 20);
    assert_eq!(
        s.service_task_definition().await,
        s.bootstrap,
        "the service is untouched"
    );
    assert_eq!(s.revisions().await, revisions, "no revision was registered");
}
