//! Test support: run the real binary, prepare app directories, provision services.

#![allow(dead_code)]

pub mod aws;
pub mod engine_faults;
pub mod faults;
pub mod fleet;
pub mod provision;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub use provision::{Aws, Container};

/// The local stack must be up (scripts/test brings it up and exports its env).
pub fn require_stack() {
    for var in ["AWS_ENDPOINT_URL", "DOCKER_HOST", "SHIPIT_BUSYBOX"] {
        assert!(
            std::env::var(var).is_ok(),
            "{var} is not set: run the tests with scripts/test, which starts the local stack and exports its environment"
        );
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs the shipit binary as CI would (no TTY, CI=true). An empty value in
/// `env` removes that variable.
pub fn shipit(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shipit"));
    command
        .args(args)
        .env("CI", "true")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_SHA")
        .env_remove("CIRCLE_SHA1")
        // A runner's own choice of builder is not the test's.
        .env_remove("DOCKER_BUILDKIT");
    for (key, value) in env {
        if value.is_empty() {
            command.env_remove(key);
        } else {
            command.env(key, value);
        }
    }
    let out = command.output().expect("the shipit binary runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "$ shipit {}\n--- exit {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        run.code,
        run.stdout,
        run.stderr
    );
    run
}

/// A copy of examples/app with the static busybox in it.
pub fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/app");
    copy_dir(&src, dir.path());
    std::fs::copy(
        std::env::var("SHIPIT_BUSYBOX").unwrap(),
        dir.path().join("busybox"),
    )
    .unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "busybox" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `prefix` and 8 hex digits that differ between calls of one process and,
/// almost surely, between processes and runs: names on the stack outlive a run,
/// and provisioning reuses what already exists under a name, so a name must
/// not come back.
pub fn unique(prefix: &str) -> String {
    use std::hash::{Hash, Hasher};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    CALLS.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    format!("{prefix}-{:08x}", hasher.finish() as u32)
}

pub fn random_sha() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:040x}", nanos ^ (u128::from(std::process::id()) << 64))[..40].to_string()
}

/// The second octet of a scenario's VPC (`10.<octet>.0.0/16`): a new one
/// each time on this machine, in 30..=229. The emulator matches a target to
/// a task by its IP alone, so two live tasks of two VPCs with the same CIDR
/// answer each other's health checks: once a faults scenario's target was
/// judged by the health checks of the e2e binary's task at the same address,
/// which was being stopped (the octet was `30 + counter + (pid % 50) * 4`, so
/// one binary's scenarios met the next one's). The sequence is kept in a file
/// next to the machine's other temporary files; cargo runs test binaries one
/// after another, and within one the mutex orders the scenarios.
fn next_octet() -> u8 {
    static NEXT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::env::temp_dir().join("shipit-e2e-vpc-octet");
    let last: u32 = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let next = (last + 1) % 200;
    std::fs::write(&file, next.to_string()).expect("the VPC octet sequence is writable");
    30 + next as u8
}

/// The resources every scenario shares — the ECR repository (its URI) and the
/// cluster — made once per test binary: the binary's tests start side by side
/// and would otherwise all race to create them. Other binaries (another
/// checkout's tests on the same stack) may still race with this one; the
/// provisioning's tolerant creates make them converge.
pub async fn shared_resources(aws: &Aws) -> String {
    static SHARED: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_try_init(|| async {
            let uri = provision::repository(aws, REPOSITORY).await?;
            provision::cluster(aws, CLUSTER).await?;
            Ok::<_, provision::BoxError>(uri)
        })
        .await
        .expect("the shared ECR repository and ECS cluster")
        .clone()
}

/// A service of its own on the shared cluster, behind its own ALB.
pub struct Scenario {
    pub aws: Aws,
    pub cluster: String,
    pub service: String,
    pub repository: String,
    pub repository_uri: String,
    pub target_group: String,
    pub bootstrap: String,
    /// The scenario's VPC, subnets and security group (for more services in it).
    pub net: provision::Network,
}

pub const CLUSTER: &str = "shipit-e2e";
/// The image every deploy scenario ships (built once, then found in ECR).
pub const REPOSITORY: &str = "shipit-e2e-app";

impl Scenario {
    pub async fn new(name: &str, extra: Vec<Container>) -> Scenario {
        require_stack();
        let aws = Aws::from_env().await;
        let service = unique(name);
        let net = provision::network(&aws, &service, next_octet())
            .await
            .unwrap();
        let alb = provision::alb(&aws, &service, &net, "/health")
            .await
            .unwrap();
        let repository_uri = shared_resources(&aws).await;
        let mut containers = vec![Container {
            name: "app",
            image: format!("{repository_uri}:bootstrap"),
            port: 8080,
            environment: vec![],
        }];
        containers.extend(extra);
        let bootstrap = provision::service(&aws, CLUSTER, &service, &containers, &net, &alb)
            .await
            .unwrap();
        Scenario {
            aws,
            cluster: CLUSTER.into(),
            service,
            repository: REPOSITORY.into(),
            repository_uri,
            target_group: alb.target_group,
            bootstrap,
            net,
        }
    }

    /// `deploy` with this scenario's service, fast timings for tests.
    pub fn deploy(&self, app: &Path, sha: &str, extra: &[&str]) -> Run {
        shipit(&self.deploy_args(app.to_str().unwrap(), sha, extra), &[])
    }

    /// The arguments [`deploy`](Self::deploy) runs shipit with: plain lines,
    /// a 2 s poll, 4 m deadlines.
    pub fn deploy_args<'a>(
        &'a self,
        dir: &'a str,
        sha: &'a str,
        extra: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec![
            "deploy",
            "-C",
            dir,
            "--sha",
            sha,
            "--repository",
            &self.repository,
            "--cluster",
            &self.cluster,
            "--service",
            &self.service,
            "--poll-interval",
            "2s",
            "--timeout",
            "4m",
            "--rollback-timeout",
            "4m",
            "--output",
            "lines",
        ];
        args.extend_from_slice(extra);
        args
    }

    pub async fn service_task_definition(&self) -> String {
        self.task_definition_of(&self.service).await
    }

    /// The service `name` of the scenario's cluster, as DescribeServices has it.
    pub async fn service_named(&self, name: &str) -> aws_sdk_ecs::types::Service {
        let out = self
            .aws
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(name)
            .send()
            .await
            .unwrap();
        out.services()[0].clone()
    }

    /// The task definition the service `name` runs now.
    /// The values of the `shipit:verdict` tags on the revision `arn`.
    pub async fn verdict_tags(&self, arn: &str) -> Vec<String> {
        let out = self
            .aws
            .ecs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        out.tags()
            .iter()
            .filter(|t| t.key() == Some("shipit:verdict"))
            .map(|t| t.value().unwrap_or_default().to_string())
            .collect()
    }

    pub async fn task_definition_of(&self, name: &str) -> String {
        let service = self.service_named(name).await;
        service.task_definition().unwrap().to_string()
    }

    /// A worker next to the scenario's web: a service named `prefix-…` in
    /// the same cluster and network, from the same bootstrap image, behind
    /// no load balancer. Its name.
    pub async fn worker(&self, prefix: &str) -> String {
        let worker = unique(prefix);
        provision::service_with(
            &self.aws,
            &self.cluster,
            &worker,
            &[Container {
                name: "app",
                image: format!("{}:bootstrap", self.repository_uri),
                port: 8080,
                environment: vec![],
            }],
            &self.net,
            None,
        )
        .await
        .unwrap();
        worker
    }

    /// Scales the service `name` to zero (a worker a test made, at its end).
    pub async fn scale_to_zero(&self, name: &str) {
        let _ = self
            .aws
            .ecs
            .update_service()
            .cluster(&self.cluster)
            .service(name)
            .desired_count(0)
            .send()
            .await;
    }

    pub async fn task_definition(&self, arn: &str) -> aws_sdk_ecs::types::TaskDefinition {
        let out = self
            .aws
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .unwrap();
        out.task_definition().unwrap().clone()
    }

    /// States of the target group's targets right now.
    pub async fn target_states(&self) -> Vec<String> {
        let out = self
            .aws
            .elb
            .describe_target_health()
            .target_group_arn(&self.target_group)
            .send()
            .await
            .unwrap();
        out.target_health_descriptions()
            .iter()
            .map(|d| {
                d.target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Target states once the targets of replaced tasks are gone: one healthy
    /// target for the service's one task, or whatever is there after 30 s.
    pub async fn settled_target_states(&self) -> Vec<String> {
        let mut states = self.target_states().await;
        for _ in 0..30 {
            if states == ["healthy"] {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            states = self.target_states().await;
        }
        states
    }

    pub async fn revisions(&self) -> usize {
        let out = self
            .aws
            .ecs
            .list_task_definitions()
            .family_prefix(&self.service)
            .send()
            .await
            .unwrap();
        out.task_definition_arns()
            .iter()
            .filter(|a| a.contains(&format!("/{}:", self.service)))
            .count()
    }
}

/// A scenario's service is scaled to zero when the test ends (pass or fail):
/// every task left running makes the emulator inspect its container in a
/// loop, and dozens of them slow the whole stack for the tests that follow.
impl Drop for Scenario {
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (ecs, cluster, service) = (
            self.aws.ecs.clone(),
            self.cluster.clone(),
            self.service.clone(),
        );
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let _ = ecs
                    .update_service()
                    .cluster(&cluster)
                    .service(&service)
                    .desired_count(0)
                    .send()
                    .await;
            })
        });
    }
}

/// The SHA of the good image shared by deploy scenarios.
pub const GOOD_SHA: &str = "5a1f0000000000000000000000000000000000e2";
