//! The orchestrator against scripted fakes of its seams: what real ECS does
//! and the local emulator cannot (circuit breaker, ECS's own rollback, a
//! concurrent rollout), and what must never happen (a change on bad input).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};
use shipit::deploy;
use shipit::ecr::{Registry, RegistryAuth, Repository, RepositoryOptions};
use shipit::ecs::{
    Deployment, Ecs, LoadBalancerRef, Service, ServiceUpdate, Task, TaskDefinitionDoc,
};
use shipit::elb::{LoadBalancing, TargetHealth};
use shipit::error::Result;
use shipit::git::{Commit, CommitSha, ShaSource};
use shipit::report::{Recorder, Report};
use shipit::settings::{DeploySettings, ImageSettings, ServiceSettings, TagFormat, WatchSettings};
use shipit::world::Deps;

const URI: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web";
const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7";
const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1";
const SHA: &str = "abcdef0123456789abcdef0123456789abcdef01";

/// One scripted poll: what DescribeServices, the tasks and the targets say.
#[derive(Clone)]
struct Poll {
    deployments: Vec<Deployment>,
    tasks: Vec<Task>,
    targets: Vec<TargetHealth>,
}

#[derive(Default)]
struct World {
    /// Polls after an UpdateService to NEW, then after one back to OLD.
    deploy_polls: VecDeque<Poll>,
    rollback_polls: VecDeque<Poll>,
    current: Option<Poll>,
    service_task_definition: String,
    before: Vec<Deployment>,
    /// What DescribeServices says before the update, one entry per call (the last one stays).
    before_queue: VecDeque<Vec<Deployment>>,
    /// UpdateService to the new revision fails (as after exhausted retries).
    fail_update: bool,
    /// The service's deployment controller, when not the default.
    controller: Option<String>,
    /// Every mutating call, in order.
    mutations: Vec<String>,
    /// The exit code of the `app` container of a one-off task (RunTask).
    oneoff_exit: Option<i32>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<World>>);

fn deployment(id: &str, status: &str, td: &str, rollout: &str, running: i32) -> Deployment {
    Deployment {
        id: id.into(),
        status: status.into(),
        task_definition: td.into(),
        rollout_state: Some(rollout.into()),
        running_count: running,
        ..Default::default()
    }
}

fn task(id: &str, td: &str, status: &str) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:1:task/c/{id}"),
        task_definition: td.into(),
        last_status: status.into(),
        desired_status: "RUNNING".into(),
        private_ip: Some(format!("10.0.0.{}", id.len())),
        created_at: Some(shipit::watch::now_epoch() + 1.0),
        started_at: Some(shipit::watch::now_epoch() + 1.0),
        ..Default::default()
    }
}

fn target(task: &Task, state: &str) -> TargetHealth {
    TargetHealth {
        id: task.private_ip.clone().unwrap(),
        port: Some(8080),
        state: state.into(),
        reason: None,
        description: None,
    }
}

impl Fake {
    fn new(before: Vec<Deployment>) -> Self {
        let fake = Fake::default();
        {
            let mut w = fake.0.lock().unwrap();
            w.service_task_definition = OLD.into();
            w.before = before;
        }
        fake
    }

    fn script(self, deploy: Vec<Poll>, rollback: Vec<Poll>) -> Self {
        {
            let mut w = self.0.lock().unwrap();
            w.deploy_polls = deploy.into();
            w.rollback_polls = rollback.into();
        }
        self
    }

    fn mutations(&self) -> Vec<String> {
        self.0.lock().unwrap().mutations.clone()
    }

    fn next_poll(&self) -> Poll {
        let mut w = self.0.lock().unwrap();
        let queue = if w.service_task_definition == NEW {
            &mut w.deploy_polls
        } else {
            &mut w.rollback_polls
        };
        if let Some(poll) = queue.pop_front() {
            w.current = Some(poll);
        }
        w.current.clone().unwrap_or(Poll {
            deployments: w.before.clone(),
            tasks: vec![],
            targets: vec![],
        })
    }
}

#[async_trait]
impl Registry for Fake {
    async fn repository(&self, name: &str) -> Result<Option<Repository>> {
        Ok(Some(Repository {
            name: name.into(),
            uri: URI.into(),
        }))
    }
    async fn create_repository(&self, _: &str, _: &RepositoryOptions) -> Result<Repository> {
        unreachable!("the repository exists")
    }
    async fn image_digest(&self, _: &str, tag: &str) -> Result<Option<String>> {
        Ok((tag == SHA).then(|| "sha256:feed".to_string()))
    }
    async fn authorization(&self) -> Result<RegistryAuth> {
        unreachable!("the image is already in ECR")
    }
}

#[async_trait]
impl Ecs for Fake {
    async fn service(&self, _: &str, name: &str) -> Result<Option<Service>> {
        let td = self.0.lock().unwrap().service_task_definition.clone();
        let poll = if self
            .0
            .lock()
            .unwrap()
            .mutations
            .iter()
            .any(|m| m.starts_with("UpdateService"))
        {
            self.next_poll()
        } else {
            let mut w = self.0.lock().unwrap();
            if let Some(next) = w.before_queue.pop_front() {
                w.before = next;
            }
            Poll {
                deployments: w.before.clone(),
                tasks: vec![],
                targets: vec![],
            }
        };
        Ok(Some(Service {
            arn: format!("arn:aws:ecs:us-east-1:1:service/c/{name}"),
            name: name.into(),
            status: "ACTIVE".into(),
            desired_count: 1,
            task_definition: td,
            deployments: poll.deployments,
            load_balancers: vec![LoadBalancerRef {
                target_group_arn: TG.into(),
                container_name: "app".into(),
                container_port: 8080,
                ..Default::default()
            }],
            deployment_controller: self.0.lock().unwrap().controller.clone(),
            ..Default::default()
        }))
    }
    async fn task_definition(&self, arn: &str) -> Result<TaskDefinitionDoc> {
        let json = json!({"taskDefinitionArn": arn, "family": "web", "revision": 7, "status": "ACTIVE",
            "containerDefinitions": [{"name": "app", "image": format!("{URI}:old")}, {"name": "proxy", "image": "envoy:1"}]});
        Ok(TaskDefinitionDoc {
            arn: arn.into(),
            json,
            tags: vec![],
        })
    }
    async fn register_task_definition(&self, body: &Value) -> Result<String> {
        assert_eq!(
            body["containerDefinitions"][0]["image"],
            format!("{URI}:{SHA}")
        );
        assert_eq!(body["containerDefinitions"][1]["image"], "envoy:1");
        self.0
            .lock()
            .unwrap()
            .mutations
            .push("RegisterTaskDefinition".into());
        Ok(NEW.into())
    }
    async fn update_service(&self, update: &ServiceUpdate) -> Result<Service> {
        if self.0.lock().unwrap().fail_update {
            self.0
                .lock()
                .unwrap()
                .mutations
                .push("UpdateService (failed)".into());
            return Err(shipit::error::Error::failed(
                "updating service `web` failed: ServerException: internal error",
            ));
        }
        {
            let mut w = self.0.lock().unwrap();
            w.mutations
                .push(format!("UpdateService {}", update.task_definition));
            w.service_task_definition = update.task_definition.clone();
            w.current = None;
        }
        let id = if update.task_definition == NEW {
            "ecs-svc/new"
        } else {
            "ecs-svc/rb"
        };
        Ok(Service {
            deployments: vec![deployment(
                id,
                "PRIMARY",
                &update.task_definition,
                "IN_PROGRESS",
                0,
            )],
            ..Default::default()
        })
    }
    async fn tasks(&self, _: &str, _: &str) -> Result<Vec<Task>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .current
            .clone()
            .map(|p| p.tasks)
            .unwrap_or_default())
    }
    async fn tag_task_definition(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
        self.0.lock().unwrap().mutations.push(format!(
            "TagResource {} {}={}",
            shipit::report::short_arn(arn),
            tags[0].0,
            tags[0].1
        ));
        Ok(())
    }
    async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
        self.0.lock().unwrap().mutations.push(format!(
            "DeregisterTaskDefinition {}",
            shipit::report::short_arn(arn)
        ));
        Ok(())
    }
    async fn task_definition_arns(&self, _: &str) -> Result<Vec<String>> {
        Ok(vec![NEW.into(), OLD.into()])
    }
    async fn run_task(&self, run: &shipit::ecs::TaskRun) -> Result<shipit::ecs::RunStarted> {
        Ok(one_off_placed(run, &mut self.0.lock().unwrap().mutations))
    }
    async fn describe_task(&self, _: &str, arn: &str) -> Result<Option<Task>> {
        let exit = self.0.lock().unwrap().oneoff_exit;
        let mut t = task("oneoff", NEW, "STOPPED");
        t.arn = arn.into();
        t.stop_code = Some(shipit::ecs::StopCode::EssentialContainerExited);
        t.containers = [("app", exit), ("proxy", Some(0))]
            .into_iter()
            .map(|(name, exit_code)| shipit::ecs::ContainerState {
                name: name.into(),
                exit_code,
                ..Default::default()
            })
            .collect();
        Ok(Some(t))
    }
}

/// RunTask of a fake: recorded as `RunTask web:8 app: <command>`, the task
/// placed (PROVISIONING).
fn one_off_placed(
    run: &shipit::ecs::TaskRun,
    mutations: &mut Vec<String>,
) -> shipit::ecs::RunStarted {
    mutations.push(format!(
        "RunTask {} {}: {}",
        shipit::report::short_arn(&run.task_definition),
        run.container,
        run.command.join(" ")
    ));
    shipit::ecs::RunStarted {
        tasks: vec![task("oneoff", &run.task_definition, "PROVISIONING")],
        failures: vec![],
    }
}

#[async_trait]
impl LoadBalancing for Fake {
    async fn target_health(&self, _: &str) -> Result<Vec<TargetHealth>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .current
            .clone()
            .map(|p| p.targets)
            .unwrap_or_default())
    }
}

fn settings() -> DeploySettings {
    DeploySettings {
        image: ImageSettings {
            repo_dir: ".".into(),
            repository: Some("web".into()),
            dockerfile: "Dockerfile".into(),
            context: ".".into(),
            target: None,
            build_args: vec![],
            tag_format: TagFormat::Full,
            extra_tags: vec![],
            create_repository: false,
            scan_on_push: false,
            immutable_tags: false,
            force: false,
            builder: Default::default(),
            builder_asked: String::new(),
            docker_buildkit: None,
            cache_from: true,
        },
        service: ServiceSettings {
            cluster: "c".into(),
            service: "web".into(),
        },
        watch: WatchSettings {
            poll_interval: std::time::Duration::from_millis(1),
            ..Default::default()
        },
        containers: vec![],
        task_definition_file: None,
        changes: Default::default(),
        desired_count: None,
        force_new_deployment: false,
        dry_run: false,
        wait_for_rollout: false,
        deregister_on_failure: false,
        before: vec![],
    }
}

fn commit() -> Commit {
    Commit {
        sha: CommitSha::parse(SHA).unwrap(),
        source: ShaSource::Flag,
        dirty: false,
    }
}

async fn run(fake: &Fake) -> (Result<shipit::report::Outcome>, Vec<shipit::report::Event>) {
    run_with(fake, settings()).await
}

async fn run_with(
    fake: &Fake,
    settings: DeploySettings,
) -> (Result<shipit::report::Outcome>, Vec<shipit::report::Event>) {
    let recorder = Arc::new(Recorder::default());
    let report: Report = recorder.clone();
    let deps = Deps {
        registry: fake,
        ecs: fake,
        elb: fake,
        engine: None,
        calls: &shipit::api_calls::ApiCalls::new(),
        alarms: None,
        logs: None,
    };
    let result = deploy::run(&settings, &commit(), &deps, &report, None).await;
    (result, recorder.events())
}

fn healthy_on(td: &str, id: &str) -> Poll {
    let t = task("n1", td, "RUNNING");
    Poll {
        deployments: vec![deployment(id, "PRIMARY", td, "IN_PROGRESS", 1)],
        targets: vec![target(&t, "healthy")],
        tasks: vec![t],
    }
}

#[tokio::test]
async fn a_healthy_rollout_is_deployed_and_tagged_healthy() {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )])
    .script(vec![healthy_on(NEW, "ecs-svc/new")], vec![]);
    let (outcome, _) = run(&fake).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        (outcome.conclusion.name(), outcome.exit_code().code()),
        ("deployed", 0)
    );
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition",
            &format!("UpdateService {NEW}"),
            "TagResource web:8 shipit:verdict=healthy"
        ]
    );
}

#[tokio::test]
async fn until_updated_returns_right_after_the_update_without_watching_or_tagging() {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )])
    .script(vec![healthy_on(NEW, "ecs-svc/new")], vec![]);
    let mut s = settings();
    s.watch.until = shipit::settings::Until::Updated;
    let (outcome, events) = run_with(&fake, s).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        (outcome.conclusion.name(), outcome.exit_code().code()),
        ("updated", 0)
    );
    assert_eq!(
        fake.mutations(),
        ["RegisterTaskDefinition", &format!("UpdateService {NEW}")],
        "no verdict, so no shipit:verdict tag"
    );
    assert!(outcome.watch.is_none(), "nothing was watched");
    assert!(!events
        .iter()
        .any(|e| matches!(e, shipit::report::Event::Verdict { .. })));
}

#[tokio::test]
async fn the_circuit_breaker_rolling_back_is_a_failure_and_shipit_watches_ecs_rollback_without_a_second_deployment(
) {
    // What real ECS shows after its circuit breaker acted: our deployment FAILED,
    // the old one PRIMARY and healthy again. "Stable", but not deployed.
    let after_breaker = {
        let t = task("o2", OLD, "RUNNING");
        Poll {
            deployments: vec![
                deployment("ecs-svc/old2", "PRIMARY", OLD, "COMPLETED", 1),
                deployment("ecs-svc/new", "ACTIVE", NEW, "FAILED", 0),
            ],
            targets: vec![target(&t, "healthy")],
            tasks: vec![t],
        }
    };
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )])
    .script(vec![after_breaker], vec![healthy_on(OLD, "ecs-svc/rb")]);
    let (outcome, events) = run(&fake).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        (outcome.conclusion.name(), outcome.exit_code().code()),
        ("rolled_back", 1)
    );
    assert!(outcome.reason.unwrap().contains("FAILED (circuit breaker)"));
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition".to_string(),
            format!("UpdateService {NEW}"),
            "TagResource web:8 shipit:verdict=failed".to_string(),
        ],
        "ECS is already rolling back to web:7: shipit must not start a second deployment"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        shipit::report::Event::RollbackFinished { healthy: true, .. }
    )));
    let rollback = outcome.rollback.expect("ECS's rollback is reported");
    assert_eq!(
        (rollback.to.as_str(), rollback.by, rollback.healthy),
        (OLD, shipit::outcome::RolledBackBy::Ecs, true)
    );
}

#[tokio::test]
async fn a_rollback_that_stays_unhealthy_needs_a_human() {
    let crashing = |td: &str| {
        let mut t = task("n1", td, "STOPPED");
        t.stopped_reason = Some("Essential container in task exited".into());
        // The deployment UpdateService started (the fake names them so): with
        // any other id the rollout would be someone else's, i.e. superseded.
        let id = if td == NEW {
            "ecs-svc/new"
        } else {
            "ecs-svc/rb"
        };
        Poll {
            deployments: vec![deployment(id, "PRIMARY", td, "IN_PROGRESS", 0)],
            tasks: vec![t],
            targets: vec![],
        }
    };
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )])
    .script(vec![crashing(NEW)], vec![crashing(OLD)]);
    let (outcome, _) = run(&fake).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        (outcome.conclusion.name(), outcome.exit_code().code()),
        ("needs_human", 3)
    );
    let rollback = outcome.rollback.unwrap();
    assert!(!rollback.healthy);
    assert!(
        rollback
            .reason
            .contains("Essential container in task exited"),
        "the rollback failed because its own task crashed: {}",
        rollback.reason
    );
}

#[tokio::test]
async fn another_rollout_in_progress_is_refused_before_any_change() {
    let fake = Fake::new(vec![
        deployment("ecs-svc/theirs", "PRIMARY", NEW, "IN_PROGRESS", 1),
        deployment("ecs-svc/old", "ACTIVE", OLD, "COMPLETED", 2),
    ]);
    let (outcome, _) = run(&fake).await;
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), shipit::error::ExitCode::Usage);
    assert!(
        err.message().contains("another rollout is in progress"),
        "{}",
        err.message()
    );
    assert!(
        fake.mutations().is_empty(),
        "nothing changed: {:?}",
        fake.mutations()
    );
}

#[tokio::test]
async fn an_unknown_container_changes_nothing() {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )]);
    let recorder = Arc::new(Recorder::default());
    let report: Report = recorder.clone();
    let mut s = settings();
    s.containers = vec!["nope".into()];
    let deps = Deps {
        registry: &fake,
        ecs: &fake,
        elb: &fake,
        engine: None,
        calls: &shipit::api_calls::ApiCalls::new(),
        alarms: None,
        logs: None,
    };
    let err = deploy::run(&s, &commit(), &deps, &report, None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), shipit::error::ExitCode::Usage);
    assert!(err.causes()[0].contains("app (") && err.causes()[0].contains("proxy ("));
    assert!(fake.mutations().is_empty());
}

#[tokio::test]
async fn with_wait_for_rollout_the_deploy_waits_for_the_other_rollout_then_goes_ahead() {
    let busy = vec![
        deployment("ecs-svc/other", "PRIMARY", OLD, "IN_PROGRESS", 1),
        deployment("ecs-svc/older", "ACTIVE", OLD, "COMPLETED", 1),
    ];
    let settled = vec![deployment("ecs-svc/other", "PRIMARY", OLD, "COMPLETED", 2)];
    let fake = Fake::new(busy.clone()).script(vec![healthy_on(NEW, "ecs-svc/new")], vec![]);
    fake.0.lock().unwrap().before_queue = vec![busy.clone(), busy, settled].into();
    let mut s = settings();
    s.wait_for_rollout = true;
    let (outcome, _) = run_with(&fake, s).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.conclusion.name(), "deployed");
    assert_eq!(
        fake.0.lock().unwrap().before_queue.len(),
        0,
        "it polled until the other rollout was over"
    );
    assert_eq!(fake.mutations()[0], "RegisterTaskDefinition");
}

/// A settled service whose UpdateService fails.
fn failing_update() -> Fake {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )]);
    fake.0.lock().unwrap().fail_update = true;
    fake
}

#[tokio::test]
async fn a_failed_update_names_the_unused_revision_and_changes_nothing_else() {
    let fake = failing_update();
    let (outcome, _) = run(&fake).await;
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), shipit::error::ExitCode::Failed);
    assert!(
        err.message()
            .contains("was not changed (it still runs web:7)"),
        "{}",
        err.message()
    );
    assert!(
        err.causes()
            .iter()
            .any(|c| c.contains(NEW) && c.contains("no service uses it")),
        "{:?}",
        err.causes()
    );
    assert_eq!(
        fake.mutations(),
        ["RegisterTaskDefinition", "UpdateService (failed)"]
    );
}

#[tokio::test]
async fn with_deregister_on_failure_the_unused_revision_is_deregistered() {
    let fake = failing_update();
    let mut s = settings();
    s.deregister_on_failure = true;
    let (outcome, events) = run_with(&fake, s).await;
    let err = outcome.unwrap_err();
    assert!(
        err.causes().iter().any(|c| c.contains("then deregistered")),
        "{:?}",
        err.causes()
    );
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition",
            "UpdateService (failed)",
            "DeregisterTaskDefinition web:8"
        ]
    );
    assert!(events.iter().any(|e| matches!(e,
        shipit::report::Event::Info { message } if message.contains("deregistered revision web:8 (no service used it)"))));
}

#[tokio::test]
async fn a_code_deploy_service_is_refused_before_anything_is_registered() {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )]);
    fake.0.lock().unwrap().controller = Some("CODE_DEPLOY".into());
    let (outcome, _) = run(&fake).await;
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), shipit::error::ExitCode::Usage);
    assert!(err.message().contains("CODE_DEPLOY"), "{}", err.message());
    assert!(err.hint_text().is_some());
    assert!(fake.mutations().is_empty(), "{:?}", fake.mutations());
}

/// The outside world of a whole `shipit` run, made of the scripted fake.
struct FakeWorld(Fake);

#[async_trait]
impl shipit::world::Connect for FakeWorld {
    async fn aws(
        &self,
        _region: Option<&str>,
        _calls: &shipit::api_calls::ApiCalls,
    ) -> Result<shipit::world::Clients> {
        Ok(shipit::world::Clients {
            registry: Box::new(self.0.clone()),
            ecs: Box::new(self.0.clone()),
            elb: Box::new(self.0.clone()),
            alarms: None,
            logs: None,
        })
    }
    async fn engine(&self) -> Result<Box<dyn shipit::image::ContainerEngine>> {
        unreachable!("the image is already in ECR: no engine is needed")
    }
}

#[tokio::test]
async fn the_whole_program_runs_in_process_from_the_command_line_to_the_exit_code() {
    use clap::Parser;
    use shipit::report::Event;
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )])
    .script(vec![healthy_on(NEW, "ecs-svc/new")], vec![]);
    let cli = shipit::cli::Cli::try_parse_from([
        "shipit",
        "-C",
        repo.path().to_str().unwrap(),
        "deploy",
        "--repository",
        "web",
        "--cluster",
        "c",
        "--service",
        "web",
        "--sha",
        SHA,
        "--poll-interval",
        "1s",
    ])
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    let report: Report = recorder.clone();
    let code = shipit::run_in(cli, &report, &FakeWorld(fake.clone())).await;

    assert_eq!(code, shipit::error::ExitCode::Success);
    let events = recorder.events();
    let stdout: String = events
        .iter()
        .filter_map(|e| match e {
            Event::Output { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(stdout, format!("deployed {NEW}\n"));
    let Some(Event::Result(outcome)) = events.last() else {
        panic!("the last event is the result: {events:?}")
    };
    let json = serde_json::to_value(outcome.as_ref()).unwrap();
    assert_eq!(json["verdict"], "deployed");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["new_task_definition"], NEW);
    assert_eq!(json["previous_task_definition"], OLD);
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition",
            &format!("UpdateService {NEW}"),
            "TagResource web:8 shipit:verdict=healthy"
        ]
    );
}

fn with_migration() -> DeploySettings {
    let mut settings = settings();
    settings.before = vec![shipit::settings::BeforeSettings {
        command: vec!["bin/migrate".into()],
        container: None,
        timeout: std::time::Duration::from_secs(60),
    }];
    settings
}

#[tokio::test]
async fn a_migration_that_exits_0_runs_on_the_new_revision_then_the_update() {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )])
    .script(vec![healthy_on(NEW, "ecs-svc/new")], vec![]);
    fake.0.lock().unwrap().oneoff_exit = Some(0);
    let (outcome, _) = run_with(&fake, with_migration()).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.conclusion.name(),
        "deployed",
        "{:?}",
        outcome.reason
    );
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition",
            "RunTask web:8 app: bin/migrate",
            &format!("UpdateService {NEW}"),
            "TagResource web:8 shipit:verdict=healthy"
        ]
    );
    assert_eq!(outcome.tasks[0].exit_code, Some(0));
}

#[tokio::test]
async fn a_migration_that_exits_3_means_no_update_and_the_revision_tagged_failed() {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )])
    .script(vec![healthy_on(NEW, "ecs-svc/new")], vec![]);
    fake.0.lock().unwrap().oneoff_exit = Some(3);
    let (outcome, events) = run_with(&fake, with_migration()).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        (outcome.conclusion.name(), outcome.exit_code().code()),
        ("before_failed", 1)
    );
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition",
            "RunTask web:8 app: bin/migrate",
            "TagResource web:8 shipit:verdict=failed"
        ],
        "no UpdateService"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        shipit::report::Event::OneOffFinished {
            success: false,
            exit_code: Some(3),
            ..
        }
    )));
}

#[tokio::test]
async fn an_update_that_fails_after_the_migration_ran_says_it_ran() {
    let fake = failing_update();
    fake.0.lock().unwrap().oneoff_exit = Some(0);
    let (outcome, _) = run_with(&fake, with_migration()).await;
    let err = outcome.unwrap_err();
    assert!(
        err.causes().iter().any(|c| c
            == "the --before step(s) already ran: before (oneoff); re-running the deploy runs them again"),
        "{:?}",
        err.causes()
    );
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition",
            "RunTask web:8 app: bin/migrate",
            "UpdateService (failed)"
        ]
    );
}

#[tokio::test]
async fn with_deregister_on_failure_a_failed_migration_deregisters_the_revision_it_ran_on() {
    let fake = Fake::new(vec![deployment(
        "ecs-svc/old",
        "PRIMARY",
        OLD,
        "COMPLETED",
        1,
    )]);
    fake.0.lock().unwrap().oneoff_exit = Some(3);
    let mut settings = with_migration();
    settings.deregister_on_failure = true;
    let (outcome, _) = run_with(&fake, settings).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.conclusion.name(), "before_failed");
    assert_eq!(
        fake.mutations(),
        [
            "RegisterTaskDefinition",
            "RunTask web:8 app: bin/migrate",
            "TagResource web:8 shipit:verdict=failed",
            "DeregisterTaskDefinition web:8"
        ],
        "tagged failed for the record, then deregistered: the service never used it"
    );
    let reason = outcome.reason.unwrap();
    assert!(
        reason.contains("then deregistered (no service used it)"),
        "{reason}"
    );
}

// ---------------------------------------------------------------------------
// Several services from one build (issue 13): one verdict, a joint rollback.

mod release {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use serde_json::{json, Value};
    use shipit::ecr::{Registry, RegistryAuth, Repository, RepositoryOptions};
    use shipit::ecs::{Ecs, LoadBalancerRef, Service, ServiceUpdate, Task, TaskDefinitionDoc};
    use shipit::elb::{LoadBalancing, TargetHealth};
    use shipit::error::Result;
    use shipit::report::{Event, Recorder, Report};
    use shipit::settings::{ReleaseSettings, ServiceSettings, ServiceTarget};
    use shipit::world::Deps;

    use super::{commit, deployment, settings, target, task, Poll, SHA, URI};

    fn arn(family: &str, revision: u32) -> String {
        format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{revision}")
    }

    /// One service of the scripted cluster: `<name>:7` before, `<name>:8` new.
    struct Svc {
        task_definition: String,
        target_group: Option<String>,
        /// Polls after the update to `:8`, then after one back to `:7`.
        deploy_polls: VecDeque<Poll>,
        rollback_polls: VecDeque<Poll>,
        current: Option<Poll>,
        updated: bool,
    }

    #[derive(Default)]
    struct World {
        services: BTreeMap<String, Svc>,
        mutations: Vec<String>,
        /// The exit code of the one-off task's `app` container.
        oneoff_exit: Option<i32>,
    }

    #[derive(Clone, Default)]
    struct Cluster(Arc<Mutex<World>>);

    impl Cluster {
        fn with(
            self,
            name: &str,
            load_balanced: bool,
            deploy: Vec<Poll>,
            rollback: Vec<Poll>,
        ) -> Self {
            self.0.lock().unwrap().services.insert(
                name.into(),
                Svc {
                    task_definition: arn(name, 7),
                    target_group: load_balanced.then(|| {
                        format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/1")
                    }),
                    deploy_polls: deploy.into(),
                    rollback_polls: rollback.into(),
                    current: None,
                    updated: false,
                },
            );
            self
        }

        /// web behind the load balancer, healthy on `web:8`, and on `web:7`
        /// when rolled back.
        fn healthy_web(self) -> Self {
            self.with(
                "web",
                true,
                vec![healthy("web", &arn("web", 8), true)],
                vec![healthy("web", &arn("web", 7), true)],
            )
        }

        /// worker behind none, crashing on `worker:8`; `back`: what it does
        /// once rolled back to `worker:7`.
        fn crashing_worker(self, back: Poll) -> Self {
            self.with("worker", false, vec![crashing("worker")], vec![back])
        }

        fn mutations(&self) -> Vec<String> {
            self.0.lock().unwrap().mutations.clone()
        }

        /// The mutations of one service (`UpdateService worker:8`, …), in order.
        fn mutations_of(&self, name: &str) -> Vec<String> {
            self.mutations()
                .into_iter()
                .filter(|m| m.contains(&format!(" {name}:")) || m.ends_with(&format!(" {name}")))
                .collect()
        }
    }

    /// The deployment UpdateService to `td` starts on `service`.
    fn started(service: &str, td: &str) -> String {
        if td.ends_with(":8") {
            format!("ecs-svc/{service}-new")
        } else {
            format!("ecs-svc/{service}-back")
        }
    }

    #[async_trait]
    impl Registry for Cluster {
        async fn repository(&self, name: &str) -> Result<Option<Repository>> {
            Ok(Some(Repository {
                name: name.into(),
                uri: URI.into(),
            }))
        }
        async fn create_repository(&self, _: &str, _: &RepositoryOptions) -> Result<Repository> {
            unreachable!("the repository exists")
        }
        async fn image_digest(&self, _: &str, tag: &str) -> Result<Option<String>> {
            Ok((tag == SHA).then(|| "sha256:feed".to_string()))
        }
        async fn authorization(&self) -> Result<RegistryAuth> {
            unreachable!("the image is already in ECR")
        }
    }

    #[async_trait]
    impl Ecs for Cluster {
        async fn service(&self, _: &str, name: &str) -> Result<Option<Service>> {
            let mut w = self.0.lock().unwrap();
            let Some(svc) = w.services.get_mut(name) else {
                return Ok(None);
            };
            let deployments = if svc.updated {
                let queue = if svc.task_definition.ends_with(":8") {
                    &mut svc.deploy_polls
                } else {
                    &mut svc.rollback_polls
                };
                if let Some(poll) = queue.pop_front() {
                    svc.current = Some(poll);
                }
                svc.current
                    .clone()
                    .map(|p| p.deployments)
                    .unwrap_or_default()
            } else {
                vec![deployment(
                    &format!("ecs-svc/{name}-old"),
                    "PRIMARY",
                    &arn(name, 7),
                    "COMPLETED",
                    1,
                )]
            };
            Ok(Some(Service {
                arn: format!("arn:aws:ecs:us-east-1:1:service/c/{name}"),
                name: name.into(),
                status: "ACTIVE".into(),
                desired_count: 1,
                task_definition: svc.task_definition.clone(),
                deployments,
                load_balancers: svc
                    .target_group
                    .iter()
                    .map(|tg| LoadBalancerRef {
                        target_group_arn: tg.clone(),
                        container_name: "app".into(),
                        container_port: 8080,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }))
        }
        async fn task_definition(&self, arn: &str) -> Result<TaskDefinitionDoc> {
            let family = arn.rsplit('/').next().unwrap().split(':').next().unwrap();
            let json = json!({"taskDefinitionArn": arn, "family": family, "revision": 7, "status": "ACTIVE",
                "containerDefinitions": [{"name": "app", "image": format!("{URI}:old")}]});
            Ok(TaskDefinitionDoc {
                arn: arn.into(),
                json,
                tags: vec![],
            })
        }
        async fn register_task_definition(&self, body: &Value) -> Result<String> {
            assert_eq!(
                body["containerDefinitions"][0]["image"],
                format!("{URI}:{SHA}")
            );
            let family = body["family"].as_str().unwrap().to_string();
            self.0
                .lock()
                .unwrap()
                .mutations
                .push(format!("RegisterTaskDefinition {family}"));
            Ok(arn(&family, 8))
        }
        async fn update_service(&self, update: &ServiceUpdate) -> Result<Service> {
            let td = update.task_definition.clone();
            {
                let mut w = self.0.lock().unwrap();
                w.mutations
                    .push(format!("UpdateService {}", shipit::report::short_arn(&td)));
                let svc = w.services.get_mut(&update.service).unwrap();
                svc.task_definition = td.clone();
                svc.current = None;
                svc.updated = true;
            }
            Ok(Service {
                deployments: vec![deployment(
                    &started(&update.service, &td),
                    "PRIMARY",
                    &td,
                    "IN_PROGRESS",
                    0,
                )],
                ..Default::default()
            })
        }
        async fn tasks(&self, _: &str, name: &str) -> Result<Vec<Task>> {
            let w = self.0.lock().unwrap();
            Ok(w.services[name]
                .current
                .clone()
                .map(|p| p.tasks)
                .unwrap_or_default())
        }
        async fn tag_task_definition(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
            self.0.lock().unwrap().mutations.push(format!(
                "TagResource {} {}={}",
                shipit::report::short_arn(arn),
                tags[0].0,
                tags[0].1
            ));
            Ok(())
        }
        async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
            self.0.lock().unwrap().mutations.push(format!(
                "DeregisterTaskDefinition {}",
                shipit::report::short_arn(arn)
            ));
            Ok(())
        }
        async fn task_definition_arns(&self, family: &str) -> Result<Vec<String>> {
            Ok(vec![arn(family, 8), arn(family, 7)])
        }
        async fn run_task(&self, run: &shipit::ecs::TaskRun) -> Result<shipit::ecs::RunStarted> {
            Ok(super::one_off_placed(
                run,
                &mut self.0.lock().unwrap().mutations,
            ))
        }
        async fn describe_task(&self, _: &str, task_arn: &str) -> Result<Option<Task>> {
            let exit = self.0.lock().unwrap().oneoff_exit;
            let mut t = task("oneoff", &arn("web", 8), "STOPPED");
            t.arn = task_arn.into();
            t.stop_code = Some(shipit::ecs::StopCode::EssentialContainerExited);
            t.containers = vec![shipit::ecs::ContainerState {
                name: "app".into(),
                exit_code: exit,
                ..Default::default()
            }];
            Ok(Some(t))
        }
    }

    #[async_trait]
    impl LoadBalancing for Cluster {
        async fn target_health(&self, tg: &str) -> Result<Vec<TargetHealth>> {
            let w = self.0.lock().unwrap();
            Ok(w.services
                .values()
                .find(|s| s.target_group.as_deref() == Some(tg))
                .and_then(|s| s.current.clone())
                .map(|p| p.targets)
                .unwrap_or_default())
        }
    }

    /// `service` healthy on `td` (its target healthy when it has a load balancer).
    fn healthy(service: &str, td: &str, load_balanced: bool) -> Poll {
        let t = task(&format!("{service}-{}", td.len()), td, "RUNNING");
        Poll {
            deployments: vec![deployment(
                &started(service, td),
                "PRIMARY",
                td,
                "IN_PROGRESS",
                1,
            )],
            targets: if load_balanced {
                vec![target(&t, "healthy")]
            } else {
                vec![]
            },
            tasks: vec![t],
        }
    }

    /// `service`'s new task exits at start.
    fn crashing(service: &str) -> Poll {
        crashing_on(service, &arn(service, 8))
    }

    /// `service`'s task of `td` exits at start (task id `<service>-crash`,
    /// `-<revision>` appended for a revision other than the new one).
    fn crashing_on(service: &str, td: &str) -> Poll {
        let td = td.to_string();
        let id = match td.ends_with(":8") {
            true => format!("{service}-crash"),
            false => format!("{service}-crash-{}", td.rsplit(':').next().unwrap()),
        };
        let mut t = task(&id, &td, "STOPPED");
        t.desired_status = "STOPPED".into();
        t.stopped_reason = Some("Essential container in task exited".into());
        Poll {
            deployments: vec![deployment(
                &started(service, &td),
                "PRIMARY",
                &td,
                "IN_PROGRESS",
                0,
            )],
            tasks: vec![t],
            targets: vec![],
        }
    }

    /// Web (behind the load balancer) and worker (none), in `groups`.
    fn release(groups: [u32; 2]) -> ReleaseSettings {
        let mut shared = settings();
        shared.watch.settle = std::time::Duration::ZERO;
        let services = ["web", "worker"]
            .into_iter()
            .zip(groups)
            .map(|(name, group)| {
                let mut deploy = shared.clone();
                deploy.service = ServiceSettings {
                    cluster: "c".into(),
                    service: name.into(),
                };
                ServiceTarget { deploy, group }
            })
            .collect::<Vec<_>>();
        ReleaseSettings {
            shared: services[0].deploy.clone(),
            services,
        }
    }

    async fn run(
        cluster: &Cluster,
        settings: &ReleaseSettings,
    ) -> (shipit::report::Outcome, Vec<Event>) {
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        let deps = Deps {
            registry: cluster,
            ecs: cluster,
            elb: cluster,
            engine: None,
            calls: &shipit::api_calls::ApiCalls::new(),
            alarms: None,
            logs: None,
        };
        let outcome = shipit::release::run(settings, &commit(), &deps, &report, None)
            .await
            .expect("the release got as far as a verdict");
        (outcome, recorder.events())
    }

    fn verdicts(outcome: &shipit::report::Outcome) -> Vec<(String, &'static str)> {
        outcome
            .services
            .iter()
            .map(|s| (s.service.clone(), s.conclusion.name()))
            .collect()
    }

    #[tokio::test]
    async fn two_healthy_services_are_deployed_from_one_image_and_both_tagged_healthy() {
        let cluster = Cluster::default()
            .with(
                "web",
                true,
                vec![healthy("web", &arn("web", 8), true)],
                vec![],
            )
            .with(
                "worker",
                false,
                vec![healthy("worker", &arn("worker", 8), false)],
                vec![],
            );
        let (outcome, _) = run(&cluster, &release([0, 0])).await;
        assert_eq!(
            (outcome.conclusion.name(), outcome.exit_code().code()),
            ("deployed", 0)
        );
        assert_eq!(
            verdicts(&outcome),
            [("web".into(), "deployed"), ("worker".into(), "deployed")]
        );
        assert_eq!(
            cluster.mutations(),
            [
                "RegisterTaskDefinition web",
                "RegisterTaskDefinition worker",
                "UpdateService web:8",
                "UpdateService worker:8",
                "TagResource web:8 shipit:verdict=healthy",
                "TagResource worker:8 shipit:verdict=healthy",
            ]
        );
    }

    #[tokio::test]
    async fn web_healthy_and_worker_failing_rolls_both_back_and_says_so_per_service() {
        let cluster = Cluster::default().healthy_web().crashing_worker(healthy(
            "worker",
            &arn("worker", 7),
            false,
        ));
        let (outcome, events) = run(&cluster, &release([0, 0])).await;
        assert_eq!(
            (outcome.conclusion.name(), outcome.exit_code().code()),
            ("rolled_back", 1)
        );
        assert_eq!(
            verdicts(&outcome),
            [
                ("web".into(), "rolled_back"),
                ("worker".into(), "rolled_back")
            ]
        );
        assert_eq!(
            cluster.mutations_of("web"),
            [
                "RegisterTaskDefinition web",
                "UpdateService web:8",
                "UpdateService web:7"
            ],
            "web was healthy, and goes back with the release; it is not tagged healthy"
        );
        assert_eq!(
            cluster.mutations_of("worker"),
            [
                "RegisterTaskDefinition worker",
                "UpdateService worker:8",
                "TagResource worker:8 shipit:verdict=failed",
                "UpdateService worker:7"
            ]
        );
        let web = &outcome.services[0];
        assert!(
            web.reason
                .as_deref()
                .unwrap()
                .contains("rolled back with the release")
                && web.reason.as_deref().unwrap().contains("worker"),
            "{:?}",
            web.reason
        );
        assert!(web.rollback.as_ref().unwrap().healthy);
        let worker = &outcome.services[1];
        assert!(
            worker
                .reason
                .as_deref()
                .unwrap()
                .contains("Essential container in task exited"),
            "{:?}",
            worker.reason
        );
        assert_eq!(worker.rollback.as_ref().unwrap().to, arn("worker", 7));
        // The verdict is said per service.
        assert!(events.iter().any(|e| matches!(e,
            Event::ForService { service, event } if service == "worker"
                && matches!(event.as_ref(), Event::Verdict { healthy: false, .. }))));
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["services"][1]["verdict"], "rolled_back");
        assert_eq!(json["services"][1]["exit_code"], 1);
    }

    #[tokio::test]
    async fn ordered_groups_stop_after_the_first_failing_group() {
        // Group 0 (worker) fails: web, in group 1, is never updated.
        let cluster = Cluster::default().healthy_web().crashing_worker(healthy(
            "worker",
            &arn("worker", 7),
            false,
        ));
        let (outcome, _) = run(&cluster, &release([1, 0])).await;
        assert_eq!(outcome.exit_code().code(), 1);
        assert_eq!(
            verdicts(&outcome),
            [("web".into(), "planned"), ("worker".into(), "rolled_back")]
        );
        assert_eq!(
            cluster.mutations_of("web"),
            ["RegisterTaskDefinition web"],
            "web's group never started: its service was not changed"
        );
        assert!(outcome.services[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not started"));
        assert_eq!(
            cluster.mutations_of("worker"),
            [
                "RegisterTaskDefinition worker",
                "UpdateService worker:8",
                "TagResource worker:8 shipit:verdict=failed",
                "UpdateService worker:7"
            ]
        );
    }

    #[tokio::test]
    async fn a_later_group_failing_rolls_back_the_earlier_healthy_group_too() {
        let cluster = Cluster::default()
            .with(
                "web",
                true,
                vec![crashing("web")],
                vec![healthy("web", &arn("web", 7), true)],
            )
            .with(
                "worker",
                false,
                vec![healthy("worker", &arn("worker", 8), false)],
                vec![healthy("worker", &arn("worker", 7), false)],
            );
        let (outcome, _) = run(&cluster, &release([1, 0])).await;
        assert_eq!(
            verdicts(&outcome),
            [
                ("web".into(), "rolled_back"),
                ("worker".into(), "rolled_back")
            ]
        );
        let updates: Vec<String> = cluster
            .mutations()
            .into_iter()
            .filter(|m| m.starts_with("UpdateService"))
            .collect();
        assert_eq!(
            updates,
            [
                "UpdateService worker:8",
                "UpdateService web:8",
                "UpdateService web:7",
                "UpdateService worker:7"
            ],
            "worker first (group 0), then web (group 1), then both back"
        );
    }

    #[tokio::test]
    async fn a_superseded_service_is_not_rolled_back_while_the_failing_one_is() {
        // By the first poll, someone else's deployment of web:9 is PRIMARY on web.
        let theirs = {
            let td = arn("web", 9);
            let t = task("theirs", &td, "RUNNING");
            Poll {
                deployments: vec![deployment(
                    "ecs-svc/theirs",
                    "PRIMARY",
                    &td,
                    "IN_PROGRESS",
                    1,
                )],
                targets: vec![target(&t, "healthy")],
                tasks: vec![t],
            }
        };
        let cluster = Cluster::default()
            .with("web", true, vec![theirs], vec![])
            .crashing_worker(healthy("worker", &arn("worker", 7), false));
        let (outcome, _) = run(&cluster, &release([0, 0])).await;
        assert_eq!(
            verdicts(&outcome),
            [
                ("web".into(), "superseded"),
                ("worker".into(), "rolled_back")
            ]
        );
        assert_eq!(
            (outcome.conclusion.name(), outcome.exit_code().code()),
            ("superseded", 4),
            "the worst outcome: another run owns web now"
        );
        assert_eq!(
            cluster.mutations_of("web"),
            ["RegisterTaskDefinition web", "UpdateService web:8"],
            "two runs never undo each other: web is left to the run that took it over"
        );
        assert!(cluster
            .mutations_of("worker")
            .contains(&"UpdateService worker:7".to_string()));
    }

    /// Web and worker with a migration (`--before bin/migrate`), exiting `exit`.
    fn with_migration(exit: i32) -> (Cluster, ReleaseSettings) {
        let cluster = Cluster::default()
            .with(
                "web",
                true,
                vec![healthy("web", &arn("web", 8), true)],
                vec![],
            )
            .with(
                "worker",
                false,
                vec![healthy("worker", &arn("worker", 8), false)],
                vec![],
            );
        cluster.0.lock().unwrap().oneoff_exit = Some(exit);
        let mut settings = release([0, 0]);
        let step = shipit::settings::BeforeSettings {
            command: vec!["bin/migrate".into()],
            container: None,
            timeout: std::time::Duration::from_secs(60),
        };
        for target in &mut settings.services {
            target.deploy.before = vec![step.clone()];
        }
        settings.shared.before = vec![step];
        (cluster, settings)
    }

    #[tokio::test]
    async fn a_rollback_that_fails_too_gets_a_failure_report_of_the_revision_rolled_back_to() {
        let cluster = Cluster::default()
            .healthy_web()
            .crashing_worker(crashing_on("worker", &arn("worker", 7)));
        let (outcome, events) = run(&cluster, &release([0, 0])).await;
        assert_eq!(
            (outcome.conclusion.name(), outcome.exit_code().code()),
            ("needs_human", 3)
        );
        assert_eq!(
            verdicts(&outcome),
            [
                ("web".into(), "rolled_back"),
                ("worker".into(), "needs_human")
            ]
        );
        let rollback = outcome.services[1].rollback.as_ref().unwrap();
        assert!(!rollback.healthy);
        let report = rollback
            .failure
            .as_ref()
            .expect("the failed rollback has its own report");
        assert_eq!(report.stops.len(), 1, "{report:?}");
        assert!(
            report.stops[0]
                .tasks
                .iter()
                .any(|t| t.contains("worker-crash-7")),
            "the task of the revision rolled back to: {report:?}"
        );
        assert!(
            outcome.services[0]
                .rollback
                .as_ref()
                .unwrap()
                .failure
                .is_none(),
            "a healthy rollback has no report"
        );
        let finished: Vec<bool> = events
            .iter()
            .filter_map(|e| match e {
                Event::ForService { event, .. } => match event.as_ref() {
                    Event::RollbackFinished { failure, .. } => Some(failure.is_some()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(finished.iter().filter(|f| **f).count(), 1, "{finished:?}");
        assert_eq!(finished.len(), 2, "one finish per service: {finished:?}");
    }

    #[tokio::test]
    async fn with_deregister_on_failure_a_group_that_never_started_leaves_no_revision_behind() {
        // Group 0 (worker) fails: web's revision, registered for group 1, is unused.
        let cluster = Cluster::default().healthy_web().crashing_worker(healthy(
            "worker",
            &arn("worker", 7),
            false,
        ));
        let mut settings = release([1, 0]);
        settings.shared.deregister_on_failure = true;
        let (outcome, _) = run(&cluster, &settings).await;
        assert_eq!(
            verdicts(&outcome),
            [("web".into(), "planned"), ("worker".into(), "rolled_back")]
        );
        assert_eq!(
            cluster.mutations_of("web"),
            [
                "RegisterTaskDefinition web",
                "DeregisterTaskDefinition web:8"
            ],
            "never used, so removed; the service was not changed"
        );
        let web = outcome.services[0].reason.as_deref().unwrap();
        assert!(
            web.contains("not started") && web.contains("then deregistered (no service used it)"),
            "{web}"
        );
        assert!(
            !cluster
                .mutations_of("worker")
                .iter()
                .any(|m| m.starts_with("Deregister")),
            "the worker's revision ran: it stays, tagged failed"
        );
    }

    #[tokio::test]
    async fn a_migration_runs_once_on_the_first_services_new_revision_before_any_update() {
        let (cluster, settings) = with_migration(0);
        let (outcome, _) = run(&cluster, &settings).await;
        assert_eq!(
            (outcome.conclusion.name(), outcome.exit_code().code()),
            ("deployed", 0)
        );
        assert_eq!(
            cluster.mutations(),
            [
                "RegisterTaskDefinition web",
                "RegisterTaskDefinition worker",
                "RunTask web:8 app: bin/migrate",
                "UpdateService web:8",
                "UpdateService worker:8",
                "TagResource web:8 shipit:verdict=healthy",
                "TagResource worker:8 shipit:verdict=healthy",
            ]
        );
        assert_eq!(outcome.tasks.len(), 1);
        assert_eq!(outcome.tasks[0].exit_code, Some(0));
    }

    #[tokio::test]
    async fn a_failing_migration_changes_no_service_and_tags_every_new_revision_failed() {
        let (cluster, settings) = with_migration(3);
        let (outcome, events) = run(&cluster, &settings).await;
        assert_eq!(
            (outcome.conclusion.name(), outcome.exit_code().code()),
            ("before_failed", 1)
        );
        assert_eq!(
            verdicts(&outcome),
            [
                ("web".into(), "before_failed"),
                ("worker".into(), "before_failed")
            ]
        );
        assert_eq!(
            cluster.mutations(),
            [
                "RegisterTaskDefinition web",
                "RegisterTaskDefinition worker",
                "RunTask web:8 app: bin/migrate",
                "TagResource web:8 shipit:verdict=failed",
                "TagResource worker:8 shipit:verdict=failed",
            ],
            "no UpdateService"
        );
        let worker = outcome.services[1].reason.as_deref().unwrap();
        assert!(
            worker.contains("exited with code 3")
                && worker.contains("the service `worker` was not changed (it still runs worker:7)")
                && worker.contains("aws ecs deregister-task-definition"),
            "{worker}"
        );
        assert_eq!(outcome.tasks[0].exit_code, Some(3));
        assert!(events.iter().any(|e| matches!(e,
            Event::Warning { message } if message.starts_with("release stopped before any update"))));
    }

    #[tokio::test]
    async fn with_deregister_on_failure_a_failing_migration_deregisters_every_new_revision() {
        let (cluster, mut settings) = with_migration(3);
        settings.shared.deregister_on_failure = true;
        let (outcome, _) = run(&cluster, &settings).await;
        assert_eq!(outcome.conclusion.name(), "before_failed");
        assert_eq!(
            cluster.mutations()[3..],
            [
                "TagResource web:8 shipit:verdict=failed",
                "TagResource worker:8 shipit:verdict=failed",
                "DeregisterTaskDefinition web:8",
                "DeregisterTaskDefinition worker:8",
            ]
        );
    }
}
