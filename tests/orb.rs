//! The CircleCI orb (`orb/src`, the source form `circleci orb pack` reads) and
//! the GitHub composite action (`action.yml`), checked for what CircleCI and
//! GitHub would reject or get wrong (issue 14): every parameter or input a file
//! uses is declared, every include exists, the deploy job takes and passes on
//! every parameter of the deploy command, its parameters cover the
//! aws-ecs/deploy_service_update ones the README's migration table maps, and
//! the orb's deploy script turns them into the right `shipit deploy` command
//! line (run for real, with a stand-in `shipit` that records its arguments).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::{Mapping, Value};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn orb_src() -> PathBuf {
    repo_root().join("orb/src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn map<'a>(value: &'a Value, key: &str) -> &'a Mapping {
    value
        .get(key)
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("no mapping `{key}` in {value:?}"))
}

fn keys(mapping: &Mapping) -> BTreeSet<String> {
    mapping
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// Every `<< parameters.NAME >>` in a text (spaces optional, as CircleCI allows).
fn parameter_refs(text: &str) -> BTreeSet<String> {
    regex::Regex::new(r"<<\s*parameters\.([A-Za-z0-9_-]+)\s*>>")
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

fn includes(text: &str) -> Vec<String> {
    regex::Regex::new(r"<<include\(([^)]+)\)>>")
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

fn orb_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(orb_src())
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_orb_has_its_commands_jobs_and_executor_and_each_is_well_formed() {
    let orb = yaml(&orb_src().join("@orb.yml"));
    assert_eq!(orb["version"].as_f64(), Some(2.1));
    assert!(orb["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(map(&orb, "display").contains_key("source_url"));

    let names = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(orb_src().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names("commands"),
        BTreeSet::from(["install", "deploy", "rollback"].map(String::from))
    );
    assert_eq!(names("jobs"), BTreeSet::from(["deploy".to_string()]));
    assert_eq!(names("executors"), BTreeSet::from(["default".to_string()]));

    for file in orb_files() {
        if file.ends_with("@orb.yml") {
            continue;
        }
        let doc = yaml(&file);
        let text = read(&file);
        assert!(
            doc["description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty()),
            "{} has no description",
            file.display()
        );
        let declared = doc
            .get("parameters")
            .and_then(Value::as_mapping)
            .map(keys)
            .unwrap_or_default();
        // CircleCI refuses a config that uses an undeclared parameter.
        let used = parameter_refs(&text);
        let undeclared: Vec<_> = used.difference(&declared).collect();
        assert!(
            undeclared.is_empty(),
            "{}: undeclared {undeclared:?}",
            file.display()
        );
        if let Some(params) = doc.get("parameters").and_then(Value::as_mapping) {
            for (name, param) in params {
                let name = name.as_str().unwrap();
                let kind = param["type"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no type"));
                assert!(
                    [
                        "string",
                        "boolean",
                        "integer",
                        "enum",
                        "executor",
                        "steps",
                        "env_var_name"
                    ]
                    .contains(&kind),
                    "{}: {name} has type {kind}",
                    file.display()
                );
                assert!(
                    param["description"].as_str().is_some(),
                    "{name}: no description"
                );
                if kind == "enum" {
                    let values: Vec<&str> = param["enum"]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect();
                    if let Some(default) = param.get("default") {
                        assert!(values.contains(&default.as_str().unwrap()), "{name}");
                    }
                }
                match (kind, param.get("default")) {
                    ("boolean", Some(d)) => assert!(d.is_bool(), "{name}: {d:?}"),
                    ("integer", Some(d)) => assert!(d.is_i64(), "{name}: {d:?}"),
                    ("string", Some(d)) => assert!(d.is_string(), "{name}: {d:?}"),
                    _ => {}
                }
                // A parameter nothing uses is a parameter that silently does nothing.
                assert!(
                    used.contains(name),
                    "{}: parameter {name} is never used",
                    file.display()
                );
            }
        }
        if !file.parent().unwrap().ends_with("executors") {
            let steps = doc["steps"].as_sequence();
            assert!(
                steps.is_some_and(|s| !s.is_empty()),
                "{}: no steps",
                file.display()
            );
        }
        for include in includes(&text) {
            let included = orb_src().join(&include);
            let body = read(&included);
            // `circleci orb pack` reads `<<` in an included file as parameter syntax.
            assert!(!body.contains("<<"), "{include} contains <<");
            assert!(
                std::fs::metadata(&included).unwrap().permissions().mode() & 0o111 != 0,
                "{include} is not executable"
            );
        }
    }
}

#[test]
fn the_orb_installs_with_the_same_script_as_the_action() {
    let install = yaml(&orb_src().join("commands/install.yml"));
    let text = serde_norway::to_string(&install["steps"]).unwrap();
    assert!(includes(&text).contains(&"scripts/install.sh".to_string()));
    assert_eq!(
        read(&orb_src().join("scripts/install.sh")),
        read(&repo_root().join("scripts/install.sh")),
        "orb/src/scripts/install.sh must be scripts/install.sh (a symlink)"
    );
    // The version, the repository, a mirror and the install directory reach the
    // script through its environment variables.
    let run = install["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|s| s.get("run"))
        .unwrap();
    let env = keys(map(run, "environment"));
    for var in [
        "SHIPIT_INSTALL_VERSION",
        "SHIPIT_INSTALL_REPO",
        "SHIPIT_INSTALL_BASE_URL",
        "SHIPIT_INSTALL_DIR",
    ] {
        assert!(env.contains(var), "{var}");
        assert!(read(&repo_root().join("scripts/install.sh")).contains(&format!("${{{var}:-")));
    }
    // Cached only for a pinned version.
    assert!(text.contains("restore_cache") && text.contains("save_cache"));
    assert!(text.contains("equal:") && text.contains("latest"));
}

fn parameters_of(path: &str) -> BTreeMap<String, Value> {
    map(&yaml(&orb_src().join(path)), "parameters")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

#[test]
fn the_deploy_job_takes_every_parameter_of_the_deploy_command_and_passes_it_on() {
    let command = parameters_of("commands/deploy.yml");
    let job = parameters_of("jobs/deploy.yml");
    for (name, param) in &command {
        assert_eq!(
            job.get(name),
            Some(param),
            "job parameter {name} differs from the command's"
        );
    }
    let doc = yaml(&orb_src().join("jobs/deploy.yml"));
    let steps = doc["steps"].as_sequence().unwrap();
    let step = |name: &str| {
        steps
            .iter()
            .find_map(|s| s.get(name))
            .unwrap_or_else(|| panic!("the job has no `{name}` step"))
    };
    let deploy = step("deploy").as_mapping().unwrap();
    for name in command.keys() {
        let value = deploy
            .get(name.as_str())
            .unwrap_or_else(|| panic!("the job does not pass {name} to the deploy command"));
        assert_eq!(
            value.as_str(),
            Some(format!("<< parameters.{name} >>").as_str()),
            "{name}"
        );
    }
    assert_eq!(
        deploy.len(),
        command.len(),
        "the deploy step passes only the command's parameters"
    );
    assert_eq!(
        step("install")["version"].as_str(),
        Some("<< parameters.version >>")
    );
    let first = steps.first().and_then(Value::as_str);
    assert_eq!(first, Some("checkout"));
    assert_eq!(doc["executor"].as_str(), Some("<< parameters.executor >>"));
}

/// The rows of the README's migration table for `aws-ecs/deploy_service_update`:
/// (orb parameters named in the row, the shipit column).
fn readme_ecs_rows() -> Vec<(Vec<String>, String)> {
    let readme = read(&repo_root().join("README.md"));
    let section = readme
        .split("### CircleCI `aws-ecs` orb (`deploy_service_update`)")
        .nth(1)
        .expect("the README's aws-ecs migration table");
    let code = regex::Regex::new(r"`([a-z_]+)`").unwrap();
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let params = code
                .captures_iter(cells[1])
                .map(|c| c[1].to_string())
                .collect();
            (params, cells[2].to_string())
        })
        .collect()
}

#[test]
fn the_deploy_job_takes_the_aws_ecs_parameters_the_readme_maps_to_shipit() {
    let job = parameters_of("jobs/deploy.yml");
    let rows = readme_ecs_rows();
    assert!(rows.len() >= 10, "{rows:?}");
    let mut mapped = 0;
    for (params, shipit) in &rows {
        // A row whose shipit column is a flag is a parameter the job must take
        // under the orb's name; the others ("not needed", "always", "not
        // supported", "configure it on the service") need none.
        if !shipit.starts_with("`--") {
            continue;
        }
        for param in params {
            assert!(
                job.contains_key(param),
                "the deploy job lacks `{param}` ({shipit})"
            );
            mapped += 1;
        }
    }
    assert!(mapped >= 8, "{mapped}");
    // And the build half (aws-ecr/build_and_push_image) that the job also does.
    for param in [
        "repo",
        "region",
        "dockerfile",
        "path",
        "create_repo",
        "extra_build_args",
    ] {
        assert!(job.contains_key(param), "{param}");
    }
}

/// Runs the orb's deploy script with PARAM_* set as CircleCI sets them from the
/// parameters, and a stand-in shipit that writes its arguments one per line.
fn run_deploy_script(script: &str, params: &[(&str, &str)]) -> (i32, Vec<String>, String) {
    let mut command = Command::new("bash");
    command
        .arg(orb_src().join(script))
        .env_clear()
        .env("CIRCLE_SHA1", "3f5c2a1e9b0d4c7f8a6b5e4d3c2b1a0f9e8d7c6b")
        .env("LOG_LEVEL_FROM_CONTEXT", "debug");
    for (name, value) in params {
        command.env(name, value);
    }
    run_with_recording_shipit(command)
}

/// Runs `command` (its environment already cleared and set) with a `shipit`
/// first on PATH that records its arguments, one per line: the exit code,
/// those arguments, stderr.
fn run_with_recording_shipit(mut command: Command) -> (i32, Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("args");
    let shim = dir.path().join("shipit");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    command.env(
        "PATH",
        format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        ),
    );
    let out = command.output().unwrap();
    let args = std::fs::read_to_string(&record)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        args,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_deploy_command_turns_the_aws_ecs_parameters_into_shipit_flags() {
    let (code, args, stderr) = run_deploy_script(
        "scripts/deploy.sh",
        &[
            ("PARAM_REGION", "us-east-1"),
            ("PARAM_REPO", "web"),
            ("PARAM_PATH", "app"),
            ("PARAM_CREATE_REPO", "true"),
            ("PARAM_IMAGE_TAG_MUTABILITY", "IMMUTABLE"),
            ("PARAM_EXTRA_BUILD_ARGS", "--build-arg VERSION=1.2 --build-arg=CHANNEL=stable"),
            ("PARAM_CLUSTER", "prod"),
            ("PARAM_SERVICE_NAME", "web"),
            (
                "PARAM_BEFORE",
                "bin/rails db:migrate\n\nsh -c 'echo $HOME && bin/seed'\n",
            ),
            (
                "PARAM_CONTAINER_IMAGE_NAME_UPDATES",
                "container=app,tag=${CIRCLE_SHA1} container=worker,tag=${CIRCLE_SHA1}",
            ),
            (
                "PARAM_CONTAINER_ENV_VAR_UPDATES",
                "container=app,name=LOG_LEVEL,value=${LOG_LEVEL_FROM_CONTEXT},name=REV,value=$CIRCLE_SHA1,container=worker,name=QUEUE,value=jobs",
            ),
            (
                "PARAM_CONTAINER_SECRET_UPDATES",
                "container=app,name=DB_PASSWORD,valueFrom=arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
            ),
            ("PARAM_CONTAINER_DOCKER_LABEL_UPDATES", "container=app,team=payments,tier=web"),
            ("PARAM_FORCE_NEW_DEPLOYMENT", "true"),
            ("PARAM_VERIFY_REVISION_IS_DEPLOYED", "true"),
            ("PARAM_MAX_POLL_ATTEMPTS", "50"),
            ("PARAM_POLL_INTERVAL", "20"),
            ("PARAM_OUTPUT", "json"),
            ("PARAM_EXTRA_ARGS", "--settle 20s"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let expected = [
        "deploy",
        "--region",
        "us-east-1",
        "--repository",
        "web",
        "--context",
        "app",
        "--create-repository",
        "--immutable-tags",
        "--cluster",
        "prod",
        "--service",
        "web",
        "--before",
        "bin/rails db:migrate",
        "--before",
        "sh -c 'echo $HOME && bin/seed'",
        "--build-arg",
        "VERSION=1.2",
        "--build-arg",
        "CHANNEL=stable",
        "--container",
        "app",
        "--container",
        "worker",
        "--env",
        "app:LOG_LEVEL=debug",
        "--env",
        "app:REV=3f5c2a1e9b0d4c7f8a6b5e4d3c2b1a0f9e8d7c6b",
        "--env",
        "worker:QUEUE=jobs",
        "--secret",
        "app:DB_PASSWORD=arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
        "--docker-label",
        "app:team=payments",
        "--docker-label",
        "app:tier=web",
        "--force-new-deployment",
        "--poll-interval",
        "20s",
        "--timeout",
        "1000s",
        "--output",
        "json",
        "--settle",
        "20s",
    ];
    assert_eq!(args, expected);
    // The orb's tag= is not silently taken for something shipit does.
    assert!(
        stderr.contains("`tag=3f5c2a1e9b0d4c7f8a6b5e4d3c2b1a0f9e8d7c6b` for app is not used"),
        "{stderr}"
    );
}

#[test]
fn the_deploy_command_with_defaults_leaves_everything_to_shipit() {
    let (code, args, stderr) = run_deploy_script(
        "scripts/deploy.sh",
        &[
            ("PARAM_CLUSTER", "prod"),
            ("PARAM_CREATE_REPO", "false"),
            ("PARAM_FORCE_NEW_DEPLOYMENT", "false"),
            ("PARAM_VERIFY_REVISION_IS_DEPLOYED", "true"),
            ("PARAM_MAX_POLL_ATTEMPTS", "0"),
            ("PARAM_POLL_INTERVAL", "0"),
            ("PARAM_EXTRA_BUILD_ARGS", ""),
            ("PARAM_EXTRA_ARGS", ""),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(args, ["deploy", "--cluster", "prod"]);

    // verify_revision_is_deployed: false is "return once the service is updated".
    let (code, args, stderr) = run_deploy_script(
        "scripts/deploy.sh",
        &[
            ("PARAM_CLUSTER", "prod"),
            ("PARAM_VERIFY_REVISION_IS_DEPLOYED", "false"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(args, ["deploy", "--cluster", "prod", "--until", "updated"]);
}

#[test]
fn a_deploy_parameter_shipit_cannot_honour_is_bad_input_and_nothing_runs() {
    for (name, value, message) in [
        (
            "PARAM_EXTRA_BUILD_ARGS",
            "--platform linux/arm64",
            "extra_build_args: `--platform` is not supported",
        ),
        (
            "PARAM_CONTAINER_ENV_VAR_UPDATES",
            "name=A,value=1",
            "container_env_var_updates: `value=1` has no container= and name= before it",
        ),
        (
            "PARAM_CONTAINER_SECRET_UPDATES",
            "container=app,name=DB",
            "container_secret_updates: name=DB has no valueFrom=",
        ),
        (
            "PARAM_CONTAINER_IMAGE_NAME_UPDATES",
            "container=app,digest=sha256:abc",
            "container_image_name_updates: unknown field `digest=sha256:abc`",
        ),
        (
            "PARAM_POLL_INTERVAL",
            "20s",
            "poll_interval and max_poll_attempts must be whole numbers",
        ),
    ] {
        let (code, args, stderr) = run_deploy_script(
            "scripts/deploy.sh",
            &[("PARAM_CLUSTER", "prod"), (name, value)],
        );
        assert_eq!(code, 2, "{name}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {message}")),
            "{name}={value}: {stderr}"
        );
        assert!(stderr.contains("hint: "), "{stderr}");
        assert!(args.is_empty(), "shipit ran: {args:?}");
    }
}

#[test]
fn the_rollback_command_runs_shipit_rollback() {
    let (code, args, stderr) = run_deploy_script(
        "scripts/rollback.sh",
        &[
            ("PARAM_CLUSTER", "prod"),
            ("PARAM_SERVICE_NAME", "web"),
            ("PARAM_TO", "41"),
            ("PARAM_OUTPUT", "lines"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        args,
        [
            "rollback",
            "--cluster",
            "prod",
            "--service",
            "web",
            "--to",
            "41",
            "--output",
            "lines"
        ]
    );
}

/// examples/circleci-deploy.yml calls the orb's job with parameters it declares.
#[test]
fn the_circleci_example_uses_the_orb_job_with_declared_parameters() {
    let example = yaml(&repo_root().join("examples/circleci-deploy.yml"));
    assert_eq!(example["version"].as_f64(), Some(2.1));
    let orb = map(&example, "orbs")["shipit"].as_str().unwrap();
    assert!(
        orb.ends_with("/shipit@0.2.0") || orb.contains("/shipit@"),
        "{orb}"
    );
    let job = parameters_of("jobs/deploy.yml");
    let jobs = example["workflows"]["deploy"]["jobs"]
        .as_sequence()
        .unwrap();
    let call = jobs
        .iter()
        .find_map(|j| j.get("shipit/deploy"))
        .expect("a shipit/deploy job in the workflow");
    // Keys every workflow job takes, besides its parameters.
    let workflow_keys = ["context", "requires", "filters", "name", "matrix", "type"];
    for key in keys(call.as_mapping().unwrap()) {
        assert!(
            job.contains_key(&key) || workflow_keys.contains(&key.as_str()),
            "the example passes `{key}`, which the job does not declare"
        );
    }
    for (name, param) in &job {
        if param.get("default").is_none() {
            assert!(
                call.get(name.as_str()).is_some(),
                "required parameter {name} missing"
            );
        }
    }
    assert!(
        call["version"].as_str().unwrap().starts_with('v'),
        "the example pins a release"
    );
}

/// action.yml: GitHub runs inputs and step outputs by name; a typo is an empty string.
#[test]
fn the_action_installs_the_release_binary_with_the_script_and_falls_back_to_cargo_install_only_without_a_tag(
) {
    let text = read(&repo_root().join("action.yml"));
    let action: Value = serde_norway::from_str(&text).unwrap();
    let inputs = keys(map(&action, "inputs"));
    let used: BTreeSet<String> = regex::Regex::new(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")
        .unwrap()
        .captures_iter(&text)
        .map(|c| c[1].to_string())
        .collect();
    assert_eq!(used, inputs, "inputs declared and inputs used");

    let steps = action["runs"]["steps"].as_sequence().unwrap();
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let ids: BTreeSet<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    let step_refs: BTreeSet<String> = regex::Regex::new(r"steps\.([A-Za-z0-9_-]+)\.outputs")
        .unwrap()
        .captures_iter(&text)
        .map(|c| c[1].to_string())
        .collect();
    for id in &step_refs {
        assert!(ids.contains(id.as_str()), "steps.{id} is not a step id");
    }
    let find = |needle: &str| {
        steps
            .iter()
            .find(|s| s["run"].as_str().is_some_and(|r| r.contains(needle)))
            .unwrap_or_else(|| panic!("no step runs {needle}"))
    };
    let release = find(r#"scripts/install.sh" --to"#);
    let release_if = release["if"].as_str().unwrap();
    assert!(
        release_if.contains("steps.version.outputs.version != ''"),
        "{release_if}"
    );
    assert!(release_if.contains("cache-hit != 'true'"), "{release_if}");
    let source = find("cargo install");
    let source_if = source["if"].as_str().unwrap();
    assert!(
        source_if.contains("steps.version.outputs.version == ''"),
        "{source_if}"
    );
    // The version comes from the script's own --tag-from-ref (tested in tests/install.rs).
    assert!(find("--tag-from-ref")["env"]["ACTION_REF"]
        .as_str()
        .is_some());
    let cache = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache@"))
        })
        .expect("a cache step");
    assert_eq!(
        cache["with"]["key"].as_str(),
        Some("${{ steps.version.outputs.key }}")
    );
    // Then shipit itself.
    assert!(steps.last().unwrap()["run"]
        .as_str()
        .unwrap()
        .contains(r#"shipit "${args[@]}""#));
}

/// Runs the action's `shipit deploy` step (its `run` script, with its `env`
/// set from `inputs` as GitHub would) against a `shipit` that records its
/// arguments, one per line.
fn run_action_deploy_step(inputs: &[(&str, &str)]) -> (i32, Vec<String>, String) {
    let action: Value = serde_norway::from_str(&read(&repo_root().join("action.yml"))).unwrap();
    let step = action["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str() == Some("shipit"))
        .expect("the shipit step");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(step["run"].as_str().unwrap())
        .env_clear();
    // `env: IN_X: ${{ inputs.x }}`: an input not given is the empty string.
    let input_ref = regex::Regex::new(r"^\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}$").unwrap();
    for (name, value) in map(step, "env") {
        let (name, value) = (name.as_str().unwrap(), value.as_str().unwrap());
        let input = &input_ref.captures(value).expect("env from an input")[1];
        let given = inputs
            .iter()
            .find(|(i, _)| *i == input)
            .map_or("", |(_, v)| *v);
        command.env(name, given);
    }
    run_with_recording_shipit(command)
}

#[test]
fn the_action_passes_several_services_and_each_before_line_as_flags_of_their_own() {
    let (code, args, stderr) = run_action_deploy_step(&[
        ("repository", "web"),
        ("cluster", "prod"),
        ("service", "web, worker\nscheduler"),
        (
            "before",
            "bin/rails db:migrate\n\n  \nsh -c 'bin/upload-assets && bin/warm-cache'\n",
        ),
        ("no-rollback", "false"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        args,
        [
            "deploy",
            "--repository",
            "web",
            "--cluster",
            "prod",
            "--service",
            "web",
            "--service",
            "worker",
            "--service",
            "scheduler",
            "--before",
            "bin/rails db:migrate",
            "--before",
            "sh -c 'bin/upload-assets && bin/warm-cache'",
        ]
    );

    // Nothing given: nothing but `deploy` (shipit.toml and SHIPIT_* decide).
    let (code, args, stderr) = run_action_deploy_step(&[("no-rollback", "false")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(args, ["deploy"]);
}
