//! BuildKit builds and the layer cache from ECR (issue 14), end to end on
//! the local stack: the engine's own answers, the images it holds, the
//! layers in the registry.
//!
//! These tests empty the engine: they remove images and prune its whole
//! BuildKit cache. A prune while another build is between the Dockerfile
//! frontend's two solves deletes the downloaded build context that build
//! still needs, and it fails with `failed to read downloaded context: …
//! context not found` (seen in CI when these tests lived in `tests/e2e.rs`).
//! So they have a test binary of their own (cargo runs test binaries one
//! after another), and inside it each test holds the engine to itself.

mod support;

use support::{app_dir, random_sha, shipit, unique, Run};

/// Held for the whole of a test: no other test of this binary builds while
/// one empties the engine's cache. (A tokio mutex is not poisoned by a
/// failing test, so one failure stays one.)
static ENGINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The JSON events of a run (`--output json` writes them to stderr).
fn events(run: &Run) -> Vec<serde_json::Value> {
    run.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

fn build_log(run: &Run) -> Vec<String> {
    events(run)
        .into_iter()
        .filter(|e| e["type"] == "build_log")
        .filter_map(|e| e["line"].as_str().map(str::to_string))
        .collect()
}

/// The step number BuildKit gave the step whose name contains `needle`
/// (`#5 [2/4] RUN …` → `#5`).
fn step_number(log: &[String], needle: &str) -> String {
    let line = log
        .iter()
        .find(|l| l.contains(needle) && l.contains(" RUN "))
        .unwrap_or_else(|| panic!("no step with {needle:?} in the build log: {log:#?}"));
    line.split_whitespace().next().unwrap().to_string()
}

fn step_cached(log: &[String], needle: &str) -> bool {
    let n = step_number(log, needle);
    log.iter().any(|l| *l == format!("{n} CACHED"))
}

fn builder_of(run: &Run) -> serde_json::Value {
    events(run)
        .into_iter()
        .find(|e| e["type"] == "builder_chosen")
        .unwrap_or_else(|| panic!("no builder_chosen event: {}", run.stderr))
}

fn push(dir: &std::path::Path, repository: &str, sha: &str, extra: &[&str]) -> Run {
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "push",
        "-C",
        dir,
        "--sha",
        sha,
        "--repository",
        repository,
        "--create-repository",
        "--output",
        "json",
        "-v",
    ];
    args.extend_from_slice(extra);
    shipit(&args, &[])
}

async fn docker() -> bollard::Docker {
    bollard::Docker::connect_with_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// The image's layer ids (`RootFS.Layers`, diff ids), as the engine holds it.
async fn layers(docker: &bollard::Docker, image: &str) -> Vec<String> {
    docker
        .inspect_image(image)
        .await
        .unwrap_or_else(|e| panic!("inspect {image}: {e}"))
        .root_fs
        .and_then(|fs| fs.layers)
        .unwrap_or_default()
}

/// What a fresh CI runner has: not these images, and no BuildKit cache.
/// Removes the images by name, then the engine's unused BuildKit cache (not
/// safe next to another build: see the top of this file).
async fn make_engine_cold(docker: &bollard::Docker, images: &[String]) {
    use bollard::query_parameters::PruneBuildOptionsBuilder;
    remove_images(docker, images).await;
    docker
        .prune_build(Some(PruneBuildOptionsBuilder::default().all(true).build()))
        .await
        .expect("prune the BuildKit cache");
}

/// Removes the images by name (and the untagged parents only they used).
async fn remove_images(docker: &bollard::Docker, images: &[String]) {
    use bollard::query_parameters::RemoveImageOptionsBuilder;
    for image in images {
        let options = RemoveImageOptionsBuilder::default().force(true).build();
        match docker.remove_image(image, Some(options), None).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(err) => panic!("removing {image}: {err}"),
        }
        assert!(
            docker.inspect_image(image).await.is_err(),
            "{image} is gone"
        );
    }
}

/// Issue 14, test 1: BuildKit-only syntax builds on this engine; with the
/// classic builder it is refused up front with the limitation named.
#[tokio::test(flavor = "multi_thread")]
async fn a_dockerfile_using_run_mount_type_cache_builds_with_buildkit_and_the_classic_builder_names_why_not(
) {
    support::require_stack();
    let _engine = ENGINE.lock().await;
    let app = app_dir();
    let token = unique("mount");
    std::fs::write(
        app.path().join("Dockerfile"),
        format!(
            r#"FROM scratch
COPY busybox /bin/busybox
RUN --mount=type=cache,target=/cache ["/bin/busybox", "sh", "-c", "echo {token} >> /cache/seen && /bin/busybox cp /cache/seen /built-with-cache"]
COPY start.sh /start.sh
COPY www /www
CMD ["/bin/busybox", "sh", "/start.sh"]
"#
        ),
    )
    .unwrap();
    let repository = unique("shipit-e2e-mount");
    let sha = random_sha();

    let run = push(app.path(), &repository, &sha, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let builder = builder_of(&run);
    assert_eq!(builder["builder"], "buildkit", "{builder}");
    assert!(
        builder["reason"].as_str().unwrap().contains("API 1."),
        "{builder}"
    );
    // The step ran under BuildKit (numbered steps), and wrote through the cache mount.
    let log = build_log(&run);
    let n = step_number(&log, "--mount=type=cache");
    assert!(
        log.iter().any(|l| l.starts_with(&format!("{n} DONE"))),
        "{log:#?}"
    );
    let result: serde_json::Value =
        serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    let image = result["image"].as_str().unwrap();
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            image,
            "/bin/busybox",
            "cat",
            "/built-with-cache",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&token),
        "the file written from the cache mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it is in ECR, with the labels (set through the API with BuildKit).
    let aws = support::Aws::from_env().await;
    let found = aws
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
    assert_eq!(
        found.image_details()[0].image_digest(),
        result["digest"].as_str()
    );
    let config = docker()
        .await
        .inspect_image(image)
        .await
        .unwrap()
        .config
        .unwrap();
    assert_eq!(
        config.labels.unwrap()["org.opencontainers.image.revision"],
        sha
    );

    // The classic builder cannot: a clear error before anything is created.
    let fresh = unique("shipit-e2e-mount-classic");
    let run = push(app.path(), &fresh, &random_sha(), &["--builder", "classic"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = events(&run)
        .into_iter()
        .find(|e| e["type"] == "error")
        .unwrap_or_else(|| panic!("no error event: {}", run.stderr));
    let text = error.to_string();
    assert!(
        text.contains("`RUN --mount` on line 3") && text.contains("classic builder"),
        "{text}"
    );
    assert!(text.contains("hint"), "{text}");
    assert!(
        !text.contains("--mount option requires BuildKit"),
        "not the engine's parse error: {text}"
    );
    let missing = aws
        .ecr
        .describe_repositories()
        .repository_names(&fresh)
        .send()
        .await;
    assert!(missing.is_err(), "no repository was created");

    // DOCKER_BUILDKIT=0, as CI scripts set it for `docker build`: the
    // classic builder, the same refusal, and the hint names the variable.
    let dir = app.path().to_str().unwrap();
    let sha = random_sha();
    let args = [
        "push",
        "-C",
        dir,
        "--sha",
        &sha,
        "--repository",
        &fresh,
        "--create-repository",
        "--output",
        "json",
        "-v",
    ];
    let run = shipit(&args, &[("DOCKER_BUILDKIT", "0")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let builder = builder_of(&run);
    assert_eq!(builder["builder"], "classic", "{builder}");
    assert_eq!(
        builder["reason"], "asked for with DOCKER_BUILDKIT=0",
        "{builder}"
    );
    let error = events(&run)
        .into_iter()
        .find(|e| e["type"] == "error")
        .unwrap_or_else(|| panic!("no error event: {}", run.stderr));
    assert!(
        error
            .to_string()
            .contains("unset DOCKER_BUILDKIT (or pass --builder auto)"),
        "{error}"
    );
}

/// Issue 14, test 2: on a cold engine (images and build cache gone), the
/// second build of a changed app reuses the unchanged layers from ECR; the
/// same build with --no-cache-from runs the slow step again.
/// What the classic builder always honoured holds with BuildKit too: a
/// build arg reaches the RUN step, and `--target` builds that stage (the
/// last stage, which fails, is never built).
#[tokio::test(flavor = "multi_thread")]
async fn with_buildkit_a_build_arg_reaches_its_step_and_target_picks_the_stage() {
    support::require_stack();
    let _engine = ENGINE.lock().await;
    let app = app_dir();
    let token = unique("arg");
    std::fs::write(
        app.path().join("Dockerfile"),
        r#"FROM scratch AS base
COPY busybox /bin/busybox
ARG GREETING=unset
RUN ["/bin/busybox", "sh", "-c", "echo \"$GREETING\" > /greeting"]

FROM base AS app
COPY start.sh /start.sh
COPY www /www
CMD ["/bin/busybox", "sh", "/start.sh"]

FROM base AS broken
RUN ["/bin/busybox", "false"]
"#,
    )
    .unwrap();
    let repository = unique("shipit-e2e-target");
    let greeting = format!("GREETING={token}");

    let built = push(
        app.path(),
        &repository,
        &random_sha(),
        &["--build-arg", &greeting, "--target", "app"],
    );
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(builder_of(&built)["builder"], "buildkit");
    let result: serde_json::Value =
        serde_json::from_str(built.stdout.lines().last().unwrap()).unwrap();
    let image = result["image"].as_str().unwrap();
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", image, "/bin/busybox", "cat", "/greeting"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        token,
        "the build arg reached the RUN step: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = build_log(&built);
    assert!(
        !log.iter().any(|l| l.contains("/bin/busybox\", \"false")),
        "the stage after the target is not built: {log:#?}"
    );

    // The control: without --target the last stage is built, and fails.
    let whole = push(
        app.path(),
        &repository,
        &random_sha(),
        &["--build-arg", &greeting],
    );
    assert_eq!(whole.code, 1, "{}", whole.stderr);
    assert!(whole.stderr.contains("false"), "{}", whole.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_engine_forgets_the_image_a_changed_app_reuses_its_unchanged_layers_from_ecr() {
    support::require_stack();
    let _engine = ENGINE.lock().await;
    let app = app_dir();
    let token = unique("dep");
    std::fs::write(
        app.path().join("Dockerfile"),
        format!(
            r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2 && echo {token} > /dependency"]
COPY start.sh /start.sh
COPY www /www
CMD ["/bin/busybox", "sh", "/start.sh"]
"#
        ),
    )
    .unwrap();
    let repository = unique("shipit-e2e-cache");
    let docker = docker().await;

    let first_sha = random_sha();
    let first = push(app.path(), &repository, &first_sha, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        !step_cached(&build_log(&first), &token),
        "the first build runs the step"
    );
    let uri = serde_json::from_str::<serde_json::Value>(first.stdout.lines().last().unwrap())
        .unwrap()["image"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .0
        .to_string();
    let first_image = format!("{uri}:{first_sha}");
    let first_layers = layers(&docker, &first_image).await;
    assert_eq!(first_layers.len(), 4, "{first_layers:?}");

    // A fresh runner: the engine has neither the image nor any build cache.
    make_engine_cold(&docker, std::slice::from_ref(&first_image)).await;
    std::fs::write(app.path().join("www/index.html"), "changed\n").unwrap();
    let second_sha = random_sha();
    let second = push(app.path(), &repository, &second_sha, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let cache = events(&second)
        .into_iter()
        .find(|e| e["type"] == "layer_cache")
        .unwrap();
    assert_eq!(cache["image"], first_image.as_str(), "{cache}");
    let log = build_log(&second);
    assert!(
        step_cached(&log, &token),
        "the slow step came from ECR: {log:#?}"
    );
    let second_image = format!("{uri}:{second_sha}");
    let second_layers = layers(&docker, &second_image).await;
    assert_eq!(
        second_layers[..3],
        first_layers[..3],
        "busybox, the dependency step and start.sh are the same layers"
    );
    assert_ne!(second_layers[3], first_layers[3], "the app layer changed");

    // The control: the same cold start with --no-cache-from runs the step again.
    make_engine_cold(&docker, &[first_image.clone(), second_image.clone()]).await;
    std::fs::write(app.path().join("www/index.html"), "changed again\n").unwrap();
    let third = push(app.path(), &repository, &random_sha(), &["--no-cache-from"]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let cache = events(&third)
        .into_iter()
        .find(|e| e["type"] == "layer_cache")
        .unwrap();
    assert_eq!(cache["image"], serde_json::Value::Null, "{cache}");
    assert!(
        cache["reason"]
            .as_str()
            .unwrap()
            .contains("--no-cache-from"),
        "{cache}"
    );
    assert!(
        !step_cached(&build_log(&third), &token),
        "without the cache the step runs again"
    );
}

/// The classic builder's cache: the image in ECR is pulled (credentials in
/// memory), then given as `cachefrom`; the unchanged steps are `Using cache`.
#[tokio::test(flavor = "multi_thread")]
async fn with_the_classic_builder_the_image_in_ecr_is_pulled_and_its_layers_reused() {
    support::require_stack();
    let _engine = ENGINE.lock().await;
    let app = app_dir();
    let token = unique("classic-dep");
    std::fs::write(
        app.path().join("Dockerfile"),
        format!(
            r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2 && echo {token} > /dependency"]
COPY www /www
CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
"#
        ),
    )
    .unwrap();
    let repository = unique("shipit-e2e-classic-cache");
    let docker = docker().await;
    let classic = ["--builder", "classic"];

    let first_sha = random_sha();
    let first = push(app.path(), &repository, &first_sha, &classic);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(builder_of(&first)["builder"], "classic");
    let image = serde_json::from_str::<serde_json::Value>(first.stdout.lines().last().unwrap())
        .unwrap()["image"]
        .as_str()
        .unwrap()
        .to_string();
    let first_layers = layers(&docker, &image).await;

    remove_images(&docker, std::slice::from_ref(&image)).await;
    std::fs::write(app.path().join("www/index.html"), "changed\n").unwrap();
    let second_sha = random_sha();
    let second = push(app.path(), &repository, &second_sha, &classic);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let log = build_log(&second);
    let step = log
        .iter()
        .position(|l| l.starts_with("Step ") && l.contains(&token))
        .unwrap_or_else(|| panic!("no step with {token}: {log:#?}"));
    assert_eq!(
        log[step + 1].trim(),
        "---> Using cache",
        "the slow step came from the pulled image: {log:#?}"
    );
    // The cache image was pulled back into the engine, and the layers are its own.
    assert_eq!(layers(&docker, &image).await, first_layers);
    let second_image = image.replace(&first_sha, &second_sha);
    let second_layers = layers(&docker, &second_image).await;
    assert_eq!(second_layers[..2], first_layers[..2]);
    assert_ne!(second_layers[2], first_layers[2], "the app layer changed");
}

/// `deploy` takes its cache from the image the service runs now (the
/// previous deploy's), even when a newer commit image sits in the repository.
#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_on_a_cold_engine_reuses_the_layers_of_the_image_the_service_runs() {
    let _engine = ENGINE.lock().await;
    let s = support::Scenario::new("e2e-cache", vec![]).await;
    let app = app_dir();
    let token = unique("deploy-dep");
    std::fs::write(
        app.path().join("Dockerfile"),
        format!(
            r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2 && echo {token} > /dependency"]
COPY start.sh /start.sh
COPY www /www
EXPOSE 8080
CMD ["/bin/busybox", "sh", "/start.sh"]
"#
        ),
    )
    .unwrap();
    let docker = docker().await;
    let first_sha = random_sha();
    let first = s.deploy(app.path(), &first_sha, &["--desired-count", "1"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let running = format!("{}:{first_sha}", s.repository_uri);

    // Another pipeline pushes a newer commit of the same repository meanwhile.
    let other = push(app.path(), &s.repository, &random_sha(), &[]);
    assert_eq!(other.code, 0, "{}", other.stderr);

    make_engine_cold(&docker, std::slice::from_ref(&running)).await;
    std::fs::write(app.path().join("www/index.html"), "changed\n").unwrap();
    let second = s.deploy(app.path(), &random_sha(), &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let cache_line = second
        .stderr
        .lines()
        .find(|l| l.contains("layer cache: "))
        .unwrap_or_else(|| panic!("no layer cache line: {}", second.stderr));
    assert!(
        cache_line.contains(&format!(
            "layer cache: {running} (the image the service runs now"
        )),
        "{cache_line}"
    );
    let log: Vec<String> = second
        .stderr
        .lines()
        .filter_map(|l| l.split_once("    | ").map(|(_, line)| line.to_string()))
        .collect();
    assert!(
        step_cached(&log, &token),
        "the slow step came from ECR: {log:#?}"
    );
}
