//! End to end: the real shipit binary against the real local stack (Docker
//! Engine + the AWS emulator). Each test asserts on what happened there — the
//! image in ECR, the service's task definition, the target health — not only
//! on what shipit printed.

mod support;

// BuildKit builds on an emptied engine (issue 14) are in tests/buildkit.rs:
// they prune the engine's build cache, which no other build may overlap.

use support::{app_dir, random_sha, shipit, unique, Container, Run, Scenario, GOOD_SHA};

fn uuid_like(text: &str) -> bool {
    regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        .unwrap()
        .is_match(text)
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// Two pipelines shipping a new service at once both create its repository:
/// the one that loses the race uses the repository the other created.
#[tokio::test(flavor = "multi_thread")]
async fn two_pushes_creating_the_same_new_repository_at_once_both_succeed() {
    support::require_stack();
    let app = app_dir();
    let repository = unique("shipit-e2e-race");
    let sha = random_sha();
    let dir = app.path().to_str().unwrap().to_string();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (dir, repository, sha) = (dir.clone(), repository.clone(), sha.clone());
            std::thread::spawn(move || {
                shipit(
                    &[
                        "push",
                        "-C",
                        &dir,
                        "--sha",
                        &sha,
                        "--repository",
                        &repository,
                        "--create-repository",
                        "--output",
                        "json",
                    ],
                    &[],
                )
            })
        })
        .collect();
    for run in runs {
        let run = run.join().unwrap();
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let aws = support::Aws::from_env().await;
    let repos = aws
        .ecr
        .describe_repositories()
        .repository_names(&repository)
        .send()
        .await
        .unwrap();
    assert_eq!(repos.repositories().len(), 1);
    let images = aws
        .ecr
        .describe_images()
        .repository_name(&repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(&sha)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(images.image_details().len(), 1, "the SHA tag is in ECR");
}

#[tokio::test(flavor = "multi_thread")]
async fn push_builds_and_pushes_once_honours_dockerignore_and_leaks_no_credentials() {
    support::require_stack();
    let app = app_dir();
    // 24 MiB the .dockerignore excludes (`big/`): it must not travel to the engine.
    std::fs::create_dir_all(app.path().join("big")).unwrap();
    std::fs::write(app.path().join("big/blob"), vec![7u8; 24 << 20]).unwrap();
    let home = tempfile::tempdir().unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let repository = unique("shipit-e2e-push");
    let sha = random_sha();
    let dir = app.path().to_str().unwrap();
    let env = [
        ("HOME", home.path().to_str().unwrap()),
        ("DOCKER_CONFIG", docker_config.path().to_str().unwrap()),
    ];
    let args = [
        "push",
        "-C",
        dir,
        "--sha",
        &sha,
        "--repository",
        &repository,
        "--create-repository",
        "--output",
        "json",
        "-v",
    ];

    let first = shipit(&args, &env);
    assert_eq!(first.code, 0, "{}", first.stderr);

    // stdout is the result object; its digest is the one ECR has for the SHA tag.
    let result: serde_json::Value =
        serde_json::from_str(first.stdout.lines().last().unwrap()).unwrap();
    let aws = support::Aws::from_env().await;
    let images = aws
        .ecr
        .describe_images()
        .repository_name(&repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(&sha)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let in_ecr = images.image_details()[0].image_digest().unwrap();
    assert_eq!(result["digest"], in_ecr);

    // The OCI labels are on the image (set in one LABEL step of the build).
    let image = result["image"].as_str().unwrap();
    let inspect = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{json .Config.Labels}}", image])
        .output()
        .unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&inspect.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&inspect.stderr)));
    assert_eq!(labels["org.opencontainers.image.revision"], sha.as_str());
    assert!(
        labels["org.opencontainers.image.created"].is_string(),
        "{labels}"
    );
    // The classic builder gets them as one LABEL step; BuildKit through the
    // API, with no step at all.
    let label_steps: Vec<&str> = first
        .stderr
        .lines()
        .filter(|l| l.contains("\"build_log\"") && l.contains("LABEL"))
        .collect();
    let buildkit = first
        .stderr
        .lines()
        .any(|l| l.contains("\"builder_chosen\"") && l.contains("\"buildkit\""));
    assert_eq!(
        label_steps.len(),
        usize::from(!buildkit),
        "LABEL steps: {label_steps:?}"
    );
    assert_eq!(result["verdict"], "pushed");

    // The ignored blob stayed home: the whole context sent is far smaller than it.
    let sent: u64 = first
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "context_progress")
        .filter_map(|e| e["bytes"].as_u64())
        .max()
        .unwrap();
    assert!(sent > 0 && sent < 8 << 20, "context sent: {sent} bytes");

    let second = shipit(&args, &env);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("already in ECR"),
        "{}",
        second.stderr
    );
    let result: serde_json::Value =
        serde_json::from_str(second.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["verdict"], "already_pushed");
    assert_eq!(result["digest"], in_ecr);

    // Credentials: nothing written under HOME or DOCKER_CONFIG, no token in any output.
    assert_eq!(files_under(home.path()), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        files_under(docker_config.path()),
        Vec::<std::path::PathBuf>::new()
    );
    for run in [&first, &second] {
        assert!(
            !uuid_like(&run.all()),
            "output contains something shaped like the registry token"
        );
        assert!(
            !run.all().contains("QVdTOi"),
            "output contains a base64 `AWS:` token"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_deploy_then_a_404_health_check_is_rolled_back_to_the_healthy_revision() {
    let s = Scenario::new("e2e-404", vec![]).await;
    let app = app_dir();

    let good = s.deploy(
        app.path(),
        GOOD_SHA,
        &["--desired-count", "1", "--unhealthy-grace", "10s"],
    );
    assert_eq!(good.code, 0, "{}", good.stderr);
    let deployed = s.service_task_definition().await;
    assert_ne!(deployed, s.bootstrap);
    let td = s.task_definition(&deployed).await;
    assert_eq!(
        td.container_definitions()[0].image(),
        Some(format!("{}:{GOOD_SHA}", s.repository_uri).as_str())
    );
    assert_eq!(s.target_states().await, ["healthy"]);

    let bad = s.deploy(
        app.path(),
        GOOD_SHA,
        &[
            "--env",
            "APP_MODE=broken-health",
            "--unhealthy-grace",
            "10s",
        ],
    );
    assert_eq!(bad.code, 1, "failed and rolled back: {}", bad.stderr);
    assert!(
        bad.stderr.contains("Target.FailedHealthChecks"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("rollback healthy"), "{}", bad.stderr);
    assert_eq!(
        s.service_task_definition().await,
        deployed,
        "the service is back on the healthy revision"
    );
    // Targets of stopping tasks leave once their containers have stopped (up to 10 s here).
    assert_eq!(s.settled_target_states().await, ["healthy"]);
    assert!(bad.stdout.starts_with("rolled_back"), "{}", bad.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_exits_fails_with_its_exit_code_and_is_rolled_back() {
    let s = Scenario::new("e2e-crash", vec![]).await;
    let app = app_dir();
    assert_eq!(
        s.deploy(app.path(), GOOD_SHA, &["--desired-count", "1"])
            .code,
        0
    );
    let deployed = s.service_task_definition().await;

    let bad = s.deploy(app.path(), GOOD_SHA, &["--env", "APP_MODE=crash"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("Exit code 3"),
        "the exit code is in the reason: {}",
        bad.stderr
    );
    assert_eq!(s.service_task_definition().await, deployed);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_pulled_fails_with_the_pull_error_named_in_the_report_and_is_rolled_back(
) {
    let s = Scenario::new("e2e-pull", vec![]).await;
    let app = app_dir();
    assert_eq!(
        s.deploy(app.path(), GOOD_SHA, &["--desired-count", "1"])
            .code,
        0
    );
    let deployed = s.service_task_definition().await;

    // A task definition file whose sidecar image tag is not in the registry.
    let file = app.path().join("taskdef.json");
    let body = serde_json::json!({
        "family": s.service,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "app", "image": "${APP_IMAGE}", "essential": true, "portMappings": [{"containerPort": 8080}]},
            {"name": "proxy", "image": "${MISSING_IMAGE}", "essential": true}
        ]
    });
    std::fs::write(&file, body.to_string()).unwrap();
    let missing = format!("{}:no-such-tag", s.repository_uri);
    let bad = deploy_json(&s, app.path(), &[], &[("MISSING_IMAGE", &missing)]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("image pull failed"), "{}", bad.stderr);
    assert!(bad.stderr.contains("no-such-tag"), "{}", bad.stderr);
    // The failure report classifies it and names the image it is about.
    let failure = result_json(&bad)["failure"].clone();
    assert_eq!(failure["cause"], "image_not_found", "{failure:#}");
    assert_eq!(
        failure["summary"],
        format!("the image `{missing}` is not in the registry"),
        "{failure:#}"
    );
    assert_eq!(s.service_task_definition().await, deployed);
}

// ------------------------------------------------------------ the failure report (issue 11)

/// A task definition file (`taskdef.json` in `app`) whose `app` container
/// logs through the awslogs driver to `group`, stream prefix `ecs`.
fn awslogs_task_definition(s: &Scenario, app: &std::path::Path, group: &str) {
    let body = serde_json::json!({
        "family": s.service,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{
            "name": "app", "image": "${APP_IMAGE}", "essential": true,
            "portMappings": [{"containerPort": 8080}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-stream-prefix": "ecs"}}
        }]
    });
    std::fs::write(app.join("taskdef.json"), body.to_string()).unwrap();
}

/// `deploy` with the scenario's service and `taskdef.json` (container `app`),
/// the JSON result on stdout.
fn deploy_json(s: &Scenario, app: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let file = ["--task-definition", "taskdef.json", "--container", "app"];
    let mut args = json_output(s.deploy_args(app.to_str().unwrap(), GOOD_SHA, &file));
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("APP_IMAGE", "placeholder"));
    shipit(&args, &env)
}

/// `--output` may be given once: the JSON result instead of lines.
fn json_output(mut args: Vec<&str>) -> Vec<&str> {
    let at = args.iter().position(|a| *a == "lines").unwrap();
    args[at] = "json";
    args
}

fn result_json(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|err| panic!("stdout is the JSON result ({err}): {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_failure_report_of_an_app_that_exits_at_start_shows_exit_code_3_and_its_last_log_line()
{
    let s = Scenario::new("e2e-report-crash", vec![]).await;
    let group = format!("/shipit-e2e/{}", s.service);
    s.aws
        .logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let app = app_dir();
    awslogs_task_definition(&s, app.path(), &group);
    let good = deploy_json(&s, app.path(), &["--desired-count", "1"], &[]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    let deployed = s.service_task_definition().await;

    let files = tempfile::tempdir().unwrap();
    let summary = files.path().join("summary.md");
    let bad = deploy_json(
        &s,
        app.path(),
        &["--env", "APP_MODE=crash"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", files.path().join("out").to_str().unwrap()),
        ],
    );
    assert_eq!(bad.code, 1, "failed and rolled back: {}", bad.stderr);
    let result = result_json(&bad);
    let failure = &result["failure"];
    assert_eq!(failure["cause"], "container_exited", "{failure:#}");
    let exits: Vec<&serde_json::Value> = failure["stops"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|stop| stop["containers"].as_array().unwrap())
        .filter(|c| c["name"] == "app")
        .map(|c| &c["exit_code"])
        .collect();
    assert!(exits.iter().all(|code| **code == 3), "{failure:#}");
    assert!(!exits.is_empty(), "{failure:#}");
    // The application's own last words, read from CloudWatch Logs.
    let logs = failure["logs"].as_array().expect("log blocks");
    let log = logs
        .iter()
        .find(|l| l["container"] == "app")
        .expect("the app's log");
    assert!(
        log["lines"].as_array().unwrap().iter().any(|line| line
            .as_str()
            .unwrap()
            .ends_with("start.sh: crashing on purpose")),
        "{log:#}"
    );
    // The stream shipit named is the one the stack holds, with that line in it.
    let task = log["task"].as_str().unwrap();
    let events = s
        .aws
        .logs
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(format!("ecs/app/{task}"))
        .send()
        .await
        .unwrap();
    assert!(
        events
            .events()
            .iter()
            // The emulator prefixes `[container] `; AWS writes the line as is.
            .any(|e| e
                .message()
                .is_some_and(|m| m.ends_with("start.sh: crashing on purpose"))),
        "{:?}",
        events.events()
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("<details>"), "{summary}");
    assert!(summary.contains("crashing on purpose"), "{summary}");
    assert!(summary.contains("exited with code 3"), "{summary}");
    assert_eq!(s.service_task_definition().await, deployed);

    // `shipit status` shows the same failure, in the app's words, to machines
    // (the result's `snapshots`) and to people (the screen).
    let dir = app.path().to_str().unwrap();
    let look = [
        "status",
        "-C",
        dir,
        "--cluster",
        &s.cluster,
        "--service",
        &s.service,
    ];
    let status = shipit(&[&look[..], &["--output", "json"]].concat(), &[]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let seen = &result_json(&status)["snapshots"][0];
    assert_eq!(seen["service"], s.service.as_str(), "{seen:#}");
    assert_eq!(
        seen["task_definition"],
        deployed.as_str(),
        "back on the good revision"
    );
    let last = &seen["last_failure"];
    assert_eq!(last["cause"], "container_exited", "{last:#}");
    assert_ne!(
        last["task_definition"],
        deployed.as_str(),
        "the failed revision"
    );
    assert_eq!(
        last["task_definition"], result["new_task_definition"],
        "{last:#}"
    );
    let said = |logs: &serde_json::Value| {
        logs.as_array().is_some_and(|logs| {
            logs.iter().any(|l| {
                l["container"] == "app"
                    && l["lines"].as_array().is_some_and(|lines| {
                        lines.iter().any(|line| {
                            line.as_str()
                                .is_some_and(|t| t.ends_with("start.sh: crashing on purpose"))
                        })
                    })
            })
        })
    };
    assert!(said(&last["logs"]), "{last:#}");
    let screen = shipit(&look, &[]);
    assert_eq!(screen.code, 0, "{}", screen.stderr);
    assert!(
        screen.stdout.contains("last failure ("),
        "{}",
        screen.stdout
    );
    assert!(
        screen.stdout.contains("crashing on purpose"),
        "{}",
        screen.stdout
    );
    // --log-lines 0 leaves the lines out and nothing else.
    let quiet = shipit(
        &[&look[..], &["--output", "json", "--log-lines", "0"]].concat(),
        &[],
    );
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    let quiet = result_json(&quiet)["snapshots"][0]["last_failure"].clone();
    assert_eq!(quiet["cause"], "container_exited", "{quiet:#}");
    assert_eq!(
        quiet["logs"],
        serde_json::Value::Null,
        "no log block at all: {quiet:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_failure_report_of_a_404_health_check_names_the_path_and_the_matcher() {
    let s = Scenario::new("e2e-report-404", vec![]).await;
    let app = app_dir();
    let good = s.deploy(app.path(), GOOD_SHA, &["--desired-count", "1"]);
    assert_eq!(good.code, 0, "{}", good.stderr);

    let args = json_output(s.deploy_args(
        app.path().to_str().unwrap(),
        GOOD_SHA,
        &[
            "--env",
            "APP_MODE=broken-health",
            "--unhealthy-grace",
            "10s",
        ],
    ));
    let bad = shipit(&args, &[]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let failure = result_json(&bad)["failure"].clone();
    let target = &failure["targets"][0];
    // The emulator says FailedHealthChecks where AWS says ResponseCodeMismatch
    // (the scripted-AWS tests cover that wording); the check itself is named.
    assert_eq!(target["state"], "unhealthy", "{failure:#}");
    let check = target["health_check"].as_str().expect("the health check");
    assert!(check.contains("/health"), "{check}");
    assert!(check.contains("expects 200"), "{check}");
    assert!(
        failure["summary"].as_str().unwrap().contains("`/health`"),
        "{failure:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_log_group_does_not_exist_the_verdict_stands_and_the_report_says_why() {
    let s = Scenario::new("e2e-report-nolog", vec![]).await;
    let app = app_dir();
    awslogs_task_definition(&s, app.path(), &format!("/shipit-e2e/{}", s.service));
    let good = deploy_json(&s, app.path(), &["--desired-count", "1"], &[]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    let deployed = s.service_task_definition().await;

    // The failing revision logs to a group that never stays: the emulator
    // creates a group on a container's first line (AWS's awslogs driver does
    // not, unless `awslogs-create-group`), so it is deleted as soon as it appears.
    let gone = format!("/shipit-e2e/gone/{}", s.service);
    awslogs_task_definition(&s, app.path(), &gone);
    let logs = s.aws.logs.clone();
    let deleting = tokio::spawn({
        let gone = gone.clone();
        async move {
            loop {
                let _ = logs.delete_log_group().log_group_name(&gone).send().await;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    });
    let bad = deploy_json(&s, app.path(), &["--env", "APP_MODE=crash"], &[]);
    deleting.abort();
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let result = result_json(&bad);
    assert_eq!(result["verdict"], "rolled_back", "{result:#}");
    let failure = &result["failure"];
    assert_eq!(failure["cause"], "container_exited", "{failure:#}");
    let log = &failure["logs"][0];
    assert!(log["lines"].as_array().unwrap().is_empty(), "{log:#}");
    let note = log["note"].as_str().unwrap();
    assert!(
        note.contains(&format!(
            "the group {gone} or the task's stream does not exist"
        )),
        "{log:#}"
    );
    assert_eq!(s.service_task_definition().await, deployed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_starting_app_that_turns_healthy_is_not_rolled_back() {
    let s = Scenario::new("e2e-slow", vec![]).await;
    let app = app_dir();
    let run = s.deploy(
        app.path(),
        GOOD_SHA,
        &[
            "--desired-count",
            "1",
            "--env",
            "APP_MODE=slow",
            "--env",
            "APP_START_DELAY=12",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // It really was slow: its target was seen not healthy (initial, or failing
    // its checks while the app slept) before the healthy verdict, and shipit waited.
    let not_yet = run
        .stderr
        .find(": initial")
        .into_iter()
        .chain(run.stderr.find(": unhealthy"))
        .min()
        .expect("the target was seen before it was healthy");
    let verdict = run
        .stderr
        .find("verdict: healthy")
        .expect("a healthy verdict");
    assert!(not_yet < verdict, "{}", run.stderr);
    assert!(!run.stderr.contains("rolling back"), "{}", run.stderr);
    let deployed = s.service_task_definition().await;
    assert_ne!(deployed, s.bootstrap);
    assert_eq!(s.target_states().await, ["healthy"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_sidecar_only_the_named_container_changes() {
    support::require_stack();
    // The shared repository first: shipit's own `--create-repository` would
    // race the other scenarios' creates of it on an empty stack.
    support::shared_resources(&support::Aws::from_env().await).await;
    let app = app_dir();
    // The sidecar runs the same (already pushed) image on another port.
    let push = shipit(
        &[
            "push",
            "-C",
            app.path().to_str().unwrap(),
            "--sha",
            GOOD_SHA,
            "--repository",
            support::REPOSITORY,
            "--create-repository",
        ],
        &[],
    );
    assert_eq!(push.code, 0, "{}", push.stderr);
    let uri = push.stdout.trim().split('@').next().unwrap().to_string();
    let sidecar = Container {
        name: "proxy",
        image: uri.clone(),
        port: 9090,
        environment: vec![("PORT", "9090".into())],
    };
    let s = Scenario::new("e2e-sidecar", vec![sidecar]).await;

    // Both containers use the repository: without --container that is ambiguous.
    let ambiguous = s.deploy(app.path(), GOOD_SHA, &["--desired-count", "1"]);
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.stderr);
    assert!(
        ambiguous.stderr.contains("several containers") && ambiguous.stderr.contains("--container"),
        "{}",
        ambiguous.stderr
    );

    let run = s.deploy(
        app.path(),
        GOOD_SHA,
        &[
            "--desired-count",
            "1",
            "--container",
            "app",
            "--env",
            "app:GREETING=hi",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = s.task_definition(&s.bootstrap).await;
    let after = s.task_definition(&s.service_task_definition().await).await;
    let (old_proxy, new_proxy) = (
        &before.container_definitions()[1],
        &after.container_definitions()[1],
    );
    assert_eq!(old_proxy, new_proxy, "the sidecar is unchanged");
    assert_eq!(
        after.container_definitions()[0].image(),
        Some(uri.as_str()),
        "the app runs the SHA tag"
    );
    let app_env: Vec<_> = after.container_definitions()[0]
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap(), kv.value().unwrap()))
        .collect();
    assert!(app_env.contains(&("GREETING", "hi")), "{app_env:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_rollback_returns_to_the_previous_healthy_revision() {
    let s = Scenario::new("e2e-rollback", vec![]).await;
    let app = app_dir();
    assert_eq!(
        s.deploy(app.path(), GOOD_SHA, &["--desired-count", "1"])
            .code,
        0
    );
    let first = s.service_task_definition().await;
    assert_eq!(
        s.deploy(app.path(), GOOD_SHA, &["--env", "RELEASE=two"])
            .code,
        0
    );
    let second = s.service_task_definition().await;
    assert_ne!(first, second);

    let run = shipit(
        &[
            "rollback",
            "--cluster",
            &s.cluster,
            "--service",
            &s.service,
            "--poll-interval",
            "2s",
            "--output",
            "lines",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.service_task_definition().await, first);
    // Targets of stopping tasks leave once their containers have stopped (up to 10 s here).
    assert_eq!(s.settled_target_states().await, ["healthy"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_with_a_hint_and_changes_nothing() {
    let s = Scenario::new("e2e-badinput", vec![]).await;
    let app = app_dir();
    let revisions = s.revisions().await;
    let dir = app.path().to_str().unwrap();
    let base = |sha: &'static str, cluster: &str, service: &str| -> Vec<String> {
        [
            "deploy",
            "-C",
            dir,
            "--sha",
            sha,
            "--repository",
            &s.repository,
            "--cluster",
            cluster,
            "--service",
            service,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "unknown container",
            with(
                base(GOOD_SHA, &s.cluster, &s.service),
                &["--container", "nope"],
            ),
        ),
        ("invalid SHA", base("not-a-sha", &s.cluster, &s.service)),
        (
            "bad duration",
            with(
                base(GOOD_SHA, &s.cluster, &s.service),
                &["--unhealthy-grace", "soon"],
            ),
        ),
        (
            "unknown service",
            base(GOOD_SHA, &s.cluster, "no-such-service"),
        ),
        (
            "unknown cluster",
            base(GOOD_SHA, "no-such-cluster", &s.service),
        ),
        ("missing repository", {
            let mut args = base(GOOD_SHA, &s.cluster, &s.service);
            let at = args.iter().position(|a| a == "--repository").unwrap();
            args[at + 1] = "no-such-repo".into();
            args
        }),
        (
            "missing task definition file",
            with(
                base(GOOD_SHA, &s.cluster, &s.service),
                &["--task-definition", "nope.json"],
            ),
        ),
    ];
    for (name, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = shipit(&args, &[]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("error: ") && run.stderr.contains("hint: "),
            "{name}: {}",
            run.stderr
        );
    }
    assert_eq!(
        s.service_task_definition().await,
        s.bootstrap,
        "the service is untouched"
    );
    assert_eq!(s.revisions().await, revisions, "no revision was registered");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_github_actions_a_failed_deploy_writes_outputs_summary_and_an_error_and_ci_logs_stay_clean(
) {
    let s = Scenario::new("e2e-gha", vec![]).await;
    let app = app_dir();
    assert_eq!(
        s.deploy(app.path(), GOOD_SHA, &["--desired-count", "1"])
            .code,
        0
    );
    let previous = s.service_task_definition().await;

    let files = tempfile::tempdir().unwrap();
    let (summary, outputs) = (
        files.path().join("summary.md"),
        files.path().join("outputs"),
    );
    let dir = app.path().to_str().unwrap();
    let run = shipit(
        &[
            "deploy",
            "-C",
            dir,
            "--repository",
            &s.repository,
            "--cluster",
            &s.cluster,
            "--service",
            &s.service,
            "--env",
            "APP_MODE=crash",
            "--poll-interval",
            "2s",
        ],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", GOOD_SHA),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);

    let outputs = std::fs::read_to_string(outputs).unwrap();
    let new = outputs
        .lines()
        .find_map(|l| l.strip_prefix("task-definition-arn="))
        .unwrap();
    assert!(
        outputs.contains(&format!("image={}:{GOOD_SHA}\n", s.repository_uri)),
        "{outputs}"
    );
    assert!(
        outputs.contains(&format!("previous-task-definition-arn={previous}\n")),
        "{outputs}"
    );
    assert!(outputs.contains("verdict=rolled_back\n"), "{outputs}");
    assert!(
        outputs.lines().any(|l| l.starts_with("digest=sha256:")),
        "{outputs}"
    );
    assert_ne!(new, previous);

    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.starts_with("### ❌ shipit deploy: rolled_back"),
        "{summary}"
    );
    assert!(summary.contains("Exit code 3"), "{summary}");
    assert!(
        run.stderr.contains("::group::shipit: watch rollout")
            && run.stderr.contains("::error title=shipit deploy failed::"),
        "{}",
        run.stderr
    );

    // Not a terminal: no ANSI escapes, and no line repeats the one before it.
    assert!(!run.stderr.contains('\x1b'), "ANSI escape in CI output");
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    for pair in lines.windows(2) {
        assert_ne!(pair[0], pair[1], "a repeated line in CI output");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_the_task_definition_diff_and_changes_nothing() {
    let s = Scenario::new("e2e-plan", vec![]).await;
    let app = app_dir();
    assert_eq!(
        s.deploy(app.path(), GOOD_SHA, &["--desired-count", "1"])
            .code,
        0
    );
    let deployed = s.service_task_definition().await;
    let revisions = s.revisions().await;

    let dir = app.path().to_str().unwrap();
    let plan = shipit(
        &[
            "plan",
            "-C",
            dir,
            "--sha",
            GOOD_SHA,
            "--repository",
            &s.repository,
            "--cluster",
            &s.cluster,
            "--service",
            &s.service,
            "--env",
            "FEATURE_X=on",
        ],
        &[],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("already in ECR"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&format!("rollback to:   {deployed}")),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("+          \"name\": \"FEATURE_X\""),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("target group:  {}", s.target_group)),
        "{}",
        plan.stdout
    );
    assert_eq!(
        s.service_task_definition().await,
        deployed,
        "plan changed the service"
    );
    assert_eq!(s.revisions().await, revisions, "plan registered a revision");

    // `deploy --dry-run` is the same plan.
    let dry = s.deploy(
        app.path(),
        GOOD_SHA,
        &["--env", "FEATURE_X=on", "--dry-run"],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("task definition diff:"),
        "{}",
        dry.stdout
    );
    assert_eq!(s.revisions().await, revisions);
}

/// A task definition file for `s` whose `app` container carries a Docker
/// health check asking the app for `path` (every 5 s, unhealthy after 2 misses).
fn health_checked_task_definition(s: &Scenario, path: &str) -> serde_json::Value {
    serde_json::json!({
        "family": s.service,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{
            "name": "app", "image": "${APP_IMAGE}", "essential": true,
            "portMappings": [{"containerPort": 8080}],
            "healthCheck": {
                "command": ["CMD-SHELL", format!("/bin/busybox wget -q -O /dev/null http://127.0.0.1:8080{path}")],
                "interval": 5, "timeout": 3, "retries": 2, "startPeriod": 0
            }
        }]
    })
}

/// The `app` container's `healthStatus` in the service's running task, once it
/// is no longer UNKNOWN (or UNKNOWN after 30 s).
async fn app_health(s: &Scenario) -> String {
    let mut health = String::from("UNKNOWN");
    for _ in 0..30 {
        let tasks = s
            .aws
            .ecs
            .list_tasks()
            .cluster(&s.cluster)
            .service_name(&s.service)
            .send()
            .await
            .unwrap();
        if !tasks.task_arns().is_empty() {
            let out = s
                .aws
                .ecs
                .describe_tasks()
                .cluster(&s.cluster)
                .set_tasks(Some(tasks.task_arns().to_vec()))
                .send()
                .await
                .unwrap();
            health = out
                .tasks()
                .iter()
                .flat_map(|t| t.containers())
                .filter(|c| c.name() == Some("app"))
                .filter_map(|c| c.health_status())
                .map(|h| h.as_str().to_string())
                .find(|h| h != "UNKNOWN")
                .unwrap_or(health);
            if health != "UNKNOWN" {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    health
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_whose_health_check_fails_is_not_reported_deployed() {
    let s = Scenario::new("e2e-hc", vec![]).await;
    let app = app_dir();
    // Docker runs a health command through /bin/sh; the scratch image has
    // only busybox, which is a shell when called `sh`. (Its own SHA below:
    // this image is not the shared good one.)
    let dockerfile = app.path().join("Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str("COPY busybox /bin/sh\n");
    std::fs::write(&dockerfile, text).unwrap();
    let sha = random_sha();
    let dir = app.path().to_str().unwrap();
    let with_file =
        |file: &'static str| [&["--task-definition", file, "--container", "app"][..]].concat();

    std::fs::write(
        app.path().join("passing.json"),
        health_checked_task_definition(&s, "/health").to_string(),
    )
    .unwrap();
    let mut extra = with_file("passing.json");
    extra.extend(["--desired-count", "1"]);
    let good = shipit(
        &s.deploy_args(dir, &sha, &extra),
        &[("APP_IMAGE", "placeholder")],
    );
    assert_eq!(
        good.code, 0,
        "a passing health check deploys: {}",
        good.stderr
    );
    let deployed = s.service_task_definition().await;
    assert_ne!(deployed, s.bootstrap);
    // The stack really runs the check: the container turns HEALTHY.
    assert_eq!(app_health(&s).await, "HEALTHY");

    // The target group's check (/health) still passes: only the container's fails.
    std::fs::write(
        app.path().join("failing.json"),
        health_checked_task_definition(&s, "/no-such-path").to_string(),
    )
    .unwrap();
    let bad = shipit(
        &s.deploy_args(dir, &sha, &with_file("failing.json")),
        &[("APP_IMAGE", "placeholder")],
    );
    assert_ne!(bad.code, 0, "reported deployed: {}", bad.stderr);
    assert!(!bad.stdout.starts_with("deployed"), "{}", bad.stdout);
    assert_eq!(bad.code, 1, "failed and rolled back: {}", bad.stderr);
    assert!(bad.stdout.starts_with("rolled_back"), "{}", bad.stdout);
    assert_eq!(
        s.service_task_definition().await,
        deployed,
        "the service is back on the revision whose health check passes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn desired_count_zero_is_unverified_exits_0_and_is_not_tagged_healthy() {
    let s = Scenario::new("e2e-zero", vec![]).await;
    let app = app_dir();
    let run = s.deploy(app.path(), GOOD_SHA, &["--desired-count", "0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("unverified"), "{}", run.stdout);

    let deployed = s.service_task_definition().await;
    assert_ne!(deployed, s.bootstrap, "the new revision is on the service");
    let verdict_tags = s.verdict_tags(&deployed).await;
    assert!(
        !verdict_tags.iter().any(|v| v == "healthy"),
        "an unverified revision is tagged healthy: {verdict_tags:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_the_same_resources_side_by_side_converges() {
    // What concurrent test binaries do on an empty stack, for one name: six
    // creators of one repository, cluster, ALB (load balancer, target group,
    // listener) and service all succeed, on the same resources.
    use support::provision::{self, BoxError};
    support::require_stack();
    let aws = std::sync::Arc::new(support::Aws::from_env().await);
    let name = unique("e2e-race");
    let repository = unique("shipit-e2e-race");
    let net = provision::network(&aws, &name, 29).await.unwrap();
    let creators: Vec<_> = (0..6)
        .map(|_| {
            let (aws, name, repository, net) =
                (aws.clone(), name.clone(), repository.clone(), net.clone());
            tokio::spawn(async move {
                let uri = provision::repository(&aws, &repository).await?;
                provision::cluster(&aws, &name).await?;
                let alb = provision::alb(&aws, &name, &net, "/health").await?;
                let app = Container {
                    name: "app",
                    image: format!("{uri}:bootstrap"),
                    port: 8080,
                    environment: vec![],
                };
                provision::service(&aws, &name, &name, &[app], &net, &alb).await?;
                Ok::<_, BoxError>((uri, alb.load_balancer, alb.target_group))
            })
        })
        .collect();
    let mut results = Vec::new();
    for creator in creators {
        results.push(creator.await.unwrap().expect("a creator failed"));
    }
    assert!(
        results.windows(2).all(|pair| pair[0] == pair[1]),
        "{results:?}"
    );

    let services = aws
        .ecs
        .describe_services()
        .cluster(&name)
        .services(&name)
        .send()
        .await
        .unwrap();
    let active = services
        .services()
        .iter()
        .filter(|s| s.status() == Some("ACTIVE"))
        .count();
    assert_eq!(active, 1, "one service");
}

// ---------------------------------------------------------------------------
// Issue 12: one-off tasks on the emulator, which runs RunTask's tasks as real
// containers, reports their exit codes and forwards awslogs output.

/// A task definition file for `s` whose container logs through awslogs to
/// `group` (the bootstrap revision has no log configuration).
fn task_definition_with_logs(
    s: &Scenario,
    dir: &std::path::Path,
    group: &str,
) -> std::path::PathBuf {
    let td = serde_json::json!({
        "family": s.service,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{
            "name": "app",
            "image": format!("{}:bootstrap", s.repository_uri),
            "essential": true,
            "portMappings": [{"containerPort": 8080}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group,
                "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "ecs",
            }},
        }],
    });
    let path = dir.join("taskdef.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&td).unwrap()).unwrap();
    path
}

async fn create_log_group(group: &str) {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let _ = logs.create_log_group().log_group_name(group).send().await;
}

/// A scenario whose service runs a GOOD_SHA revision with awslogs (desired
/// count 0: no task of the service runs, the one-off tasks are alone).
async fn scenario_with_logs(name: &str) -> (Scenario, tempfile::TempDir, String) {
    let s = Scenario::new(name, vec![]).await;
    let app = app_dir();
    let group = format!("/shipit-e2e/{}", s.service);
    create_log_group(&group).await;
    let td = task_definition_with_logs(&s, app.path(), &group);
    let first = s.deploy(
        app.path(),
        GOOD_SHA,
        &[
            "--task-definition",
            td.to_str().unwrap(),
            "--desired-count",
            "0",
        ],
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let current = s.service_task_definition().await;
    assert_ne!(current, s.bootstrap);
    (s, app, current)
}

#[tokio::test(flavor = "multi_thread")]
async fn shipit_run_passes_the_containers_exit_code_through() {
    let (s, _app, current) = scenario_with_logs("e2e-run").await;
    let run = |code: &str| {
        let script = format!("echo run-marker-{code}; exit {code}");
        shipit(
            &[
                "run",
                "--cluster",
                &s.cluster,
                "--service",
                &s.service,
                "--poll-interval",
                "1s",
                "--timeout",
                "2m",
                "--output",
                "lines",
                "--",
                "/bin/busybox",
                "sh",
                "-c",
                &script,
            ],
            &[],
        )
    };
    let ok = run("0");
    assert_eq!(ok.code, 0, "{}", ok.all());
    assert!(
        ok.stdout.starts_with("exited arn:aws:ecs:"),
        "{}",
        ok.stdout
    );
    let failed = run("3");
    assert_eq!(
        failed.code,
        3,
        "the container's exit code passes through: {}",
        failed.all()
    );
    assert!(
        failed.stderr.contains("exited with code 3"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("run-marker-3"),
        "its log line is printed: {}",
        failed.stderr
    );
    // The task was really run, of the service's revision, and stopped.
    let task = failed.stdout.split_whitespace().nth(1).unwrap().to_string();
    let described = s
        .aws
        .ecs
        .describe_tasks()
        .cluster(&s.cluster)
        .tasks(&task)
        .send()
        .await
        .unwrap();
    let t = &described.tasks()[0];
    assert_eq!(t.task_definition_arn(), Some(current.as_str()));
    assert_eq!(t.last_status(), Some("STOPPED"));
    assert_eq!(t.started_by(), Some("shipit/run"));
    assert_eq!(t.containers()[0].exit_code(), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_whose_before_task_fails_leaves_the_service_on_its_old_revision() {
    let (s, app, current) = scenario_with_logs("e2e-before").await;
    let revisions = s.revisions().await;

    let bad = s.deploy(
        app.path(),
        GOOD_SHA,
        &[
            "--before",
            "/bin/busybox sh -c 'echo before-marker: migration failed; exit 3'",
        ],
    );

    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(bad.stdout.starts_with("before_failed"), "{}", bad.stdout);
    assert!(bad.stderr.contains("exited with code 3"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("before-marker: migration failed"),
        "the task's log line is in the output: {}",
        bad.stderr
    );
    assert_eq!(
        s.service_task_definition().await,
        current,
        "the service was never updated"
    );
    assert_eq!(
        s.revisions().await,
        revisions + 1,
        "one revision registered"
    );
    let new = bad.stdout.split_whitespace().nth(1).unwrap().to_string();
    let verdicts = s.verdict_tags(&new).await;
    assert!(verdicts.iter().any(|v| v == "failed"), "{verdicts:?}");

    let good = s.deploy(
        app.path(),
        GOOD_SHA,
        &[
            "--before",
            "/bin/busybox sh -c 'echo before-marker: migrated'",
        ],
    );
    assert_eq!(good.code, 0, "{}", good.all());
    assert!(
        good.stderr.contains("before-marker: migrated"),
        "{}",
        good.stderr
    );
    assert_ne!(
        s.service_task_definition().await,
        current,
        "updated after the task succeeded"
    );
}

/// Issue 13: a web service behind the ALB and a worker without a load
/// balancer, from the same image. A good deploy updates both from one build
/// and one push; a worker that exits at start rolls both back, and the web's
/// target is healthy on its old revision afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_web_and_a_worker_from_one_build_deploy_together_and_roll_back_together() {
    let s = Scenario::new("e2e-multi", vec![]).await;
    let worker = s.worker("e2e-multi-worker").await;
    let app = app_dir();
    let dir = app.path().to_str().unwrap().to_string();
    // A commit of its own: its image is not in ECR yet, so this run builds and pushes it.
    let sha = random_sha();
    let common = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "deploy",
            "-C",
            &dir,
            "--sha",
            &sha,
            "--repository",
            &s.repository,
            "--cluster",
            &s.cluster,
            "--poll-interval",
            "2s",
            "--timeout",
            "4m",
            "--rollback-timeout",
            "4m",
            "--output",
            "json",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        shipit(&args, &[])
    };
    let result = |run: &support::Run| -> serde_json::Value {
        serde_json::from_str(run.stdout.lines().last().unwrap_or("null")).unwrap()
    };
    let events = |run: &support::Run, kind: &str| -> Vec<serde_json::Value> {
        run.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["type"] == kind)
            .collect()
    };

    // A good deploy of both.
    let good = run(common(&[
        "--service",
        &s.service,
        "--service",
        &worker,
        "--desired-count",
        "1",
    ]));
    assert_eq!(good.code, 0, "{}", good.stderr);
    let outcome = result(&good);
    assert_eq!(outcome["verdict"], "deployed");
    let verdicts: Vec<&str> = outcome["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["deployed", "deployed"], "{outcome}");
    // One build and one push, then one revision and one update per service.
    let phases = events(&good, "phase_started");
    let built = phases.iter().filter(|e| e["phase"] == "build").count();
    let pushes = phases.iter().filter(|e| e["phase"] == "push").count();
    assert_eq!((built, pushes), (1, 1), "one build, one push: {phases:?}");
    assert_eq!(events(&good, "image_pushed").len(), 1);
    let calls = &outcome["aws_api_calls"]["by_operation"];
    assert_eq!(calls["ECR.GetAuthorizationToken"], 1, "one push: {calls}");
    assert_eq!(calls["ECS.RegisterTaskDefinition"], 2, "{calls}");
    assert_eq!(calls["ECS.UpdateService"], 2, "{calls}");
    // In the registry: the commit's tag, once, the image both services now run.
    let images = s
        .aws
        .ecr
        .describe_images()
        .repository_name(&s.repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(&sha)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(images.image_details().len(), 1);
    assert_eq!(
        images.image_details()[0].image_digest(),
        outcome["digest"].as_str()
    );
    let web_deployed = s.task_definition_of(&s.service).await;
    let worker_deployed = s.task_definition_of(&worker).await;
    let image = format!("{}:{sha}", s.repository_uri);
    for td in [&web_deployed, &worker_deployed] {
        assert_eq!(
            s.task_definition(td).await.container_definitions()[0].image(),
            Some(image.as_str()),
            "{td} runs the one image"
        );
    }
    assert_eq!(s.settled_target_states().await, ["healthy"]);

    // `shipit watch` of both, at rest: each judged by its own rules.
    let args: Vec<String> = [
        "watch",
        "--cluster",
        &s.cluster,
        "--service",
        &s.service,
        "--service",
        &worker,
        "--poll-interval",
        "2s",
        "--settle",
        "2s",
        "--output",
        "json",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let watched = run(args);
    assert_eq!(watched.code, 0, "{}", watched.stderr);
    let outcome = result(&watched);
    let judged: Vec<(&str, &str)> = outcome["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["new_task_definition"].as_str().unwrap(),
                v["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        judged,
        [
            (web_deployed.as_str(), "deployed"),
            (worker_deployed.as_str(), "deployed")
        ],
        "{outcome}"
    );

    // The same release, where the worker exits at start: both go back.
    std::fs::write(
        app.path().join("shipit.toml"),
        format!(
            "[[ecs.services]]\nname = \"{}\"\n\n[[ecs.services]]\nname = \"{worker}\"\nenvironment.app = {{ APP_MODE = \"crash\" }}\n",
            s.service
        ),
    )
    .unwrap();
    let bad = run(common(&[]));
    assert_eq!(bad.code, 1, "failed and rolled back: {}", bad.stderr);
    let outcome = result(&bad);
    let services = outcome["services"].as_array().unwrap();
    let verdicts: Vec<&str> = services
        .iter()
        .map(|v| v["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["rolled_back", "rolled_back"], "{outcome}");
    assert!(
        services[1]["reason"]
            .as_str()
            .unwrap()
            .contains("Exit code 3")
            || services[1]["reason"]
                .as_str()
                .unwrap()
                .contains("exit code 3"),
        "the worker's own failure is named: {}",
        services[1]
    );
    assert!(services[0]["reason"]
        .as_str()
        .unwrap()
        .contains("rolled back with the release"));
    assert_eq!(
        events(&bad, "phase_started")
            .iter()
            .filter(|e| e["phase"] == "build")
            .count(),
        0,
        "the image is in ECR: no second build"
    );
    // In the stack: both services on the revisions they ran before.
    assert_eq!(s.task_definition_of(&s.service).await, web_deployed);
    assert_eq!(s.task_definition_of(&worker).await, worker_deployed);
    // The web's target is healthy, and it is the task of its old revision.
    assert_eq!(s.settled_target_states().await, ["healthy"]);
    let running = s
        .aws
        .ecs
        .list_tasks()
        .cluster(&s.cluster)
        .service_name(&s.service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
        .unwrap();
    let tasks = s
        .aws
        .ecs
        .describe_tasks()
        .cluster(&s.cluster)
        .set_tasks(Some(running.task_arns().to_vec()))
        .send()
        .await
        .unwrap();
    let revisions: Vec<&str> = tasks
        .tasks()
        .iter()
        .filter(|t| t.last_status() == Some("RUNNING"))
        .filter_map(|t| t.task_definition_arn())
        .collect();
    assert_eq!(
        revisions,
        [web_deployed.as_str()],
        "the web serves its old revision"
    );
    s.scale_to_zero(&worker).await;
}

/// A release of a web and a worker with a migration (`--before`): a failing
/// migration changes neither service and leaves both new revisions tagged
/// failed; a good one runs once, on the web's new revision, then both
/// services are updated. Checked in the stack: the services' task
/// definitions, the revisions' tags, the one-off task ECS ran.
#[tokio::test(flavor = "multi_thread")]
async fn a_release_runs_its_migration_once_on_the_first_services_revision_before_any_update() {
    let s = Scenario::new("e2e-relmig", vec![]).await;
    let worker = s.worker("e2e-relmig-worker").await;
    let app = app_dir();
    let dir = app.path().to_str().unwrap().to_string();
    let release = |before: &str| {
        shipit(
            &[
                "deploy",
                "-C",
                &dir,
                "--sha",
                GOOD_SHA,
                "--repository",
                &s.repository,
                "--cluster",
                &s.cluster,
                "--service",
                &s.service,
                "--service",
                &worker,
                "--desired-count",
                "1",
                "--poll-interval",
                "2s",
                "--timeout",
                "4m",
                "--rollback-timeout",
                "4m",
                "--output",
                "json",
                "--before",
                before,
            ],
            &[],
        )
    };
    let result = |run: &support::Run| -> serde_json::Value {
        serde_json::from_str(run.stdout.lines().last().unwrap_or("null")).unwrap()
    };
    let web_before = s.task_definition_of(&s.service).await;
    let worker_before = s.task_definition_of(&worker).await;

    // The migration fails: no service changes.
    let bad = release("/bin/busybox sh -c 'exit 3'");
    assert_eq!(bad.code, 1, "{}", bad.all());
    let outcome = result(&bad);
    assert_eq!(outcome["verdict"], "before_failed", "{outcome}");
    let services = outcome["services"].as_array().unwrap();
    let verdicts: Vec<&str> = services
        .iter()
        .map(|v| v["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["before_failed", "before_failed"], "{outcome}");
    assert_eq!(outcome["tasks"].as_array().unwrap().len(), 1, "{outcome}");
    assert_eq!(outcome["tasks"][0]["exit_code"], 3, "{outcome}");
    assert_eq!(s.task_definition_of(&s.service).await, web_before);
    assert_eq!(s.task_definition_of(&worker).await, worker_before);
    for service in services {
        let new = service["new_task_definition"].as_str().unwrap();
        let verdicts = s.verdict_tags(new).await;
        assert!(
            verdicts.iter().any(|v| v == "failed"),
            "{new}: {verdicts:?}"
        );
    }

    // The migration succeeds: it ran once, on the web's new revision, and
    // both services run their new revisions.
    let good = release("/bin/busybox sh -c 'echo migrated'");
    assert_eq!(good.code, 0, "{}", good.all());
    let outcome = result(&good);
    assert_eq!(outcome["verdict"], "deployed", "{outcome}");
    let services = outcome["services"].as_array().unwrap();
    let web_new = services[0]["new_task_definition"].as_str().unwrap();
    let worker_new = services[1]["new_task_definition"].as_str().unwrap();
    assert_eq!(s.task_definition_of(&s.service).await, web_new);
    assert_eq!(s.task_definition_of(&worker).await, worker_new);
    let tasks = outcome["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{outcome}");
    let task_arn = tasks[0]["task_arn"].as_str().unwrap();
    let described = s
        .aws
        .ecs
        .describe_tasks()
        .cluster(&s.cluster)
        .tasks(task_arn)
        .send()
        .await
        .unwrap();
    let task = &described.tasks()[0];
    assert_eq!(
        task.task_definition_arn(),
        Some(web_new),
        "on the web's revision"
    );
    assert_eq!(task.started_by(), Some("shipit/before"));
    assert_eq!(task.last_status(), Some("STOPPED"));
    // Before any update: the task had stopped when each service's new
    // deployment was created.
    let stopped = task.stopped_at().expect("a stopped task has stoppedAt");
    for (name, td) in [(s.service.clone(), web_new), (worker.clone(), worker_new)] {
        let service = s.service_named(&name).await;
        let created = service
            .deployments()
            .iter()
            .find(|d| d.task_definition() == Some(td))
            .and_then(|d| d.created_at())
            .unwrap_or_else(|| panic!("{name}: a deployment of {td} with createdAt"));
        assert!(
            stopped.as_secs_f64() <= created.as_secs_f64(),
            "{name}: the migration stopped at {stopped:?}, the deployment was created at {created:?}"
        );
    }
    assert_eq!(s.settled_target_states().await, ["healthy"]);
    s.scale_to_zero(&worker).await;
}
