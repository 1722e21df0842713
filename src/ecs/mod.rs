//! The ECS seam in domain terms, and the task definition renderer.

pub mod aws;
pub mod taskdef;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Result;

pub use aws::AwsEcs;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub arn: String,
    pub name: String,
    pub cluster: String,
    pub status: String,
    pub desired_count: i32,
    pub task_definition: String,
    pub deployments: Vec<Deployment>,
    pub load_balancers: Vec<LoadBalancerRef>,
    /// Newest first, as ECS returns them.
    pub events: Vec<ServiceEvent>,
    pub health_check_grace_seconds: i32,
    /// `ECS` (rolling; also when ECS does not say), `CODE_DEPLOY` or `EXTERNAL`.
    pub deployment_controller: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployment {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub task_definition: String,
    /// IN_PROGRESS, COMPLETED or FAILED (absent on old APIs).
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub desired_count: i32,
    pub running_count: i32,
    pub failed_tasks: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerRef {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEvent {
    pub id: String,
    /// Seconds since the epoch.
    pub created_at: f64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    pub arn: String,
    pub task_definition: String,
    pub last_status: String,
    pub desired_status: String,
    pub started_by: Option<String>,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    pub containers: Vec<ContainerState>,
    pub private_ip: Option<String>,
    /// Seconds since the epoch.
    pub created_at: Option<f64>,
    pub started_at: Option<f64>,
    /// EC2 launch type: the instance the task runs on (bridge/host networking
    /// registers `instance` targets, matched by instance id and host port).
    pub container_instance_arn: Option<String>,
    pub instance_id: Option<String>,
    /// Published ports (bridge/host networking).
    pub bindings: Vec<PortBinding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub container: String,
    pub container_port: i32,
    pub host_port: i32,
}

impl Task {
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// How the load balancer names this task's target for `container:port`:
    /// `(ip, port)` in awsvpc mode, else `(instance id, host port)`.
    pub fn target_for(&self, container: &str, port: i32) -> Option<(String, i32)> {
        if let Some(ip) = &self.private_ip {
            return Some((ip.clone(), port));
        }
        let instance = self.instance_id.clone()?;
        let binding = self
            .bindings
            .iter()
            .find(|b| b.container == container && b.container_port == port)?;
        Some((instance, binding.host_port))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerState {
    pub name: String,
    pub last_status: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// A task definition as ECS returns it: the `taskDefinition` object, untouched,
/// so that re-registering changes only what shipit means to change.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinitionDoc {
    pub arn: String,
    pub json: Value,
    pub tags: Vec<(String, String)>,
}

impl TaskDefinitionDoc {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceUpdate {
    pub cluster: String,
    pub service: String,
    pub task_definition: String,
    pub desired_count: Option<i32>,
    pub force_new_deployment: bool,
}

#[async_trait]
pub trait Ecs: Send + Sync {
    /// `Ok(None)` when the cluster exists but the service does not.
    async fn service(&self, cluster: &str, service: &str) -> Result<Option<Service>>;
    async fn task_definition(&self, arn: &str) -> Result<TaskDefinitionDoc>;
    /// Registers a `RegisterTaskDefinition` request body; returns the new revision's ARN.
    async fn register_task_definition(&self, body: &Value) -> Result<String>;
    async fn update_service(&self, update: &ServiceUpdate) -> Result<Service>;
    /// The service's running and recently stopped tasks.
    async fn tasks(&self, cluster: &str, service: &str) -> Result<Vec<Task>>;
    async fn tag_task_definition(&self, arn: &str, tags: &[(String, String)]) -> Result<()>;
    /// Marks a revision INACTIVE (used for a revision registered but never deployed).
    async fn deregister_task_definition(&self, arn: &str) -> Result<()>;
    /// ARNs of the family's ACTIVE revisions, newest first.
    async fn task_definition_arns(&self, family: &str) -> Result<Vec<String>>;
}

/// Tag keys shipit writes on the revisions it registers.
pub mod tags {
    /// The commit the revision ships.
    pub const SHA: &str = "shipit:sha";
    /// The revision the service ran before (what a rollback returns to).
    pub const PREVIOUS: &str = "shipit:previous";
    /// `healthy` once shipit saw it healthy, `failed` when it was rolled back.
    pub const VERDICT: &str = "shipit:verdict";
}
