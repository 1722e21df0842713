//! The ECS seam in domain terms, and the task definition renderer.

pub mod aws;
pub mod taskdef;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Result;

pub use aws::AwsEcs;

/// An ECS/ELB enum as the API spells it, with a fallback for values this
/// code does not know yet (the API adds values; an unknown one is kept, never
/// guessed). `Default` is the empty `Other("")`, i.e. "not reported".
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of shipit does not know (or none: `""`).
            Other(String),
        }

        impl $name {
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(other) => other,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::from_wire(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// `Service.status`.
    ServiceStatus {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Inactive = "INACTIVE",
    }
);

wire_enum!(
    /// `Deployment.status` in DescribeServices.
    DeploymentStatus {
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
);

wire_enum!(
    /// `Deployment.rolloutState` (rolling update services only).
    RolloutState {
        InProgress = "IN_PROGRESS",
        Completed = "COMPLETED",
        Failed = "FAILED",
    }
);

wire_enum!(
    /// `Task.lastStatus`: the task lifecycle.
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
    TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
        Deleted = "DELETED",
    }
);

wire_enum!(
    /// `Task.desiredStatus`.
    DesiredStatus {
        Running = "RUNNING",
        Pending = "PENDING",
        Stopped = "STOPPED",
    }
);

wire_enum!(
    /// `Task.healthStatus` and `Container.healthStatus` (container health checks).
    HealthStatus {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        Unknown = "UNKNOWN",
    }
);

wire_enum!(
    /// `Task.stopCode`.
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
    StopCode {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
        InfrastructureHealth = "InfrastructureHealth",
    }
);

wire_enum!(
    /// `ServiceDeployment.status` (ListServiceDeployments/DescribeServiceDeployments).
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html
    ServiceDeploymentStatus {
        Pending = "PENDING",
        InProgress = "IN_PROGRESS",
        Successful = "SUCCESSFUL",
        StopRequested = "STOP_REQUESTED",
        Stopped = "STOPPED",
        RollbackRequested = "ROLLBACK_REQUESTED",
        RollbackInProgress = "ROLLBACK_IN_PROGRESS",
        RollbackSuccessful = "ROLLBACK_SUCCESSFUL",
        RollbackFailed = "ROLLBACK_FAILED",
    }
);

impl ServiceDeploymentStatus {
    /// ECS is rolling (or rolled) this service deployment back.
    pub fn is_rollback(&self) -> bool {
        matches!(
            self,
            Self::RollbackRequested
                | Self::RollbackInProgress
                | Self::RollbackSuccessful
                | Self::RollbackFailed
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub arn: String,
    pub name: String,
    pub cluster: String,
    pub status: ServiceStatus,
    pub desired_count: i32,
    pub task_definition: String,
    pub deployments: Vec<Deployment>,
    pub load_balancers: Vec<LoadBalancerRef>,
    /// Newest first, as ECS returns them.
    pub events: Vec<ServiceEvent>,
    pub health_check_grace_seconds: i32,
    /// `ECS` (rolling; also when ECS does not say), `CODE_DEPLOY` or `EXTERNAL`.
    pub deployment_controller: Option<String>,
    pub deployment_configuration: DeploymentConfiguration,
    /// awsvpc networking; `None` for bridge/host.
    pub network_configuration: Option<NetworkConfiguration>,
    /// `FARGATE`, `EC2`, `EXTERNAL`; `None` when a capacity provider strategy is used.
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    pub platform_version: Option<String>,
}

/// `Service.deploymentConfiguration`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentConfiguration {
    pub maximum_percent: Option<i32>,
    pub minimum_healthy_percent: Option<i32>,
    pub circuit_breaker: Option<CircuitBreaker>,
    pub alarms: Option<DeploymentAlarms>,
    /// `ROLLING`, `BLUE_GREEN`, `LINEAR`, `CANARY` (absent: rolling).
    pub strategy: Option<String>,
    pub bake_time_minutes: Option<i32>,
}

impl DeploymentConfiguration {
    /// The circuit breaker or the deployment alarms would make ECS roll back a failed deployment.
    pub fn ecs_rolls_back(&self) -> bool {
        self.circuit_breaker
            .as_ref()
            .is_some_and(|c| c.enable && c.rollback)
            || self.alarms.as_ref().is_some_and(|a| a.enable && a.rollback)
    }

    pub fn alarms_enabled(&self) -> bool {
        self.alarms.as_ref().is_some_and(|a| a.enable)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentAlarms {
    pub names: Vec<String>,
    pub enable: bool,
    pub rollback: bool,
}

/// `networkConfiguration.awsvpcConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfiguration {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapacityProviderItem {
    pub capacity_provider: String,
    pub weight: i32,
    pub base: i32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    /// Absent on services that do not report it (Classic Load Balancer, old APIs).
    pub rollout_state: Option<RolloutState>,
    pub rollout_state_reason: Option<String>,
    pub desired_count: i32,
    pub running_count: i32,
    pub failed_tasks: i32,
    /// Seconds since the epoch.
    pub created_at: Option<f64>,
    pub updated_at: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancerRef {
    /// Empty for a Classic Load Balancer (see `load_balancer_name`).
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: i32,
    /// Classic Load Balancer name (no target group).
    pub load_balancer_name: Option<String>,
    /// `advancedConfiguration.alternateTargetGroupArn` (ECS-native blue/green).
    pub alternate_target_group_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEvent {
    pub id: String,
    /// Seconds since the epoch.
    pub created_at: f64,
    pub message: String,
}

/// What ListServiceDeployments/DescribeServiceDeployments say about one
/// service deployment (created by every UpdateService that starts a deployment).
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceDeployment {
    pub arn: String,
    pub status: ServiceDeploymentStatus,
    pub status_reason: Option<String>,
    /// Seconds since the epoch.
    pub created_at: Option<f64>,
    pub finished_at: Option<f64>,
    /// The service revision being deployed.
    pub target_revision: Option<String>,
    pub rollback: Option<ServiceDeploymentRollback>,
    /// `(failureCount, threshold)` of the circuit breaker.
    pub circuit_breaker: Option<(i32, i32)>,
    pub alarm_names: Vec<String>,
    pub triggered_alarms: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceDeploymentRollback {
    pub reason: Option<String>,
    pub started_at: Option<f64>,
    pub service_revision_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    pub arn: String,
    pub task_definition: String,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub started_by: Option<String>,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<StopCode>,
    /// Task health from its essential containers' health checks.
    pub health_status: Option<HealthStatus>,
    pub containers: Vec<ContainerState>,
    pub private_ip: Option<String>,
    /// awsvpc attachment detail `ipv6Address` (IPv6-only and dual-stack tasks).
    pub ipv6: Option<String>,
    /// Seconds since the epoch.
    pub created_at: Option<f64>,
    pub started_at: Option<f64>,
    /// When the task stopped (ListTasks keeps stopped tasks listed for at
    /// least an hour: a stop before the watch began is history).
    pub stopped_at: Option<f64>,
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

    /// Stopped for a reason that is not its revision's: by the
    /// infrastructure ([`Self::stopped_by_infrastructure`]) or by a person's
    /// (or a rollback's) StopTask (`UserInitiated`). What the failure report
    /// and `status` leave out of "why the revision failed".
    pub fn stopped_from_outside(&self) -> bool {
        self.stopped_by_infrastructure() || self.stop_code == Some(StopCode::UserInitiated)
    }

    /// A stop that is not the revision's fault (the verdict's rule 9). Spot interruptions,
    /// termination notices and infrastructure health stops, and the
    /// scheduler's own scaling ("Scaling activity initiated by …": scale-in, or
    /// a deployment trimming the tasks it overshot). A task that fails is
    /// stopped with its failure as the reason ("Essential container in task
    /// exited", "Task failed ELB health checks", …), never with this one.
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
    pub fn stopped_by_infrastructure(&self) -> bool {
        match &self.stop_code {
            Some(
                StopCode::SpotInterruption
                | StopCode::TerminationNotice
                | StopCode::InfrastructureHealth,
            ) => true,
            Some(StopCode::ServiceSchedulerInitiated) => {
                self.stopped_reason.as_deref().is_some_and(|r| {
                    r.starts_with("Scaling activity initiated by")
                        // An instance drained (scale-in, instance refresh, Spot draining):
                        // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html
                        || r.contains("container instance is in DRAINING state")
                        // Fargate task maintenance:
                        // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-maintenance.html
                        || r.contains("performing maintenance on the underlying infrastructure")
                })
            }
            _ => false,
        }
    }

    /// How the load balancer names this task's target for `container:port`:
    /// `(ip, port)` in awsvpc mode, else `(instance id, host port)`.
    pub fn target_for(&self, container: &str, port: i32) -> Option<(String, i32)> {
        self.target_ids(container, port).into_iter().next()
    }

    /// Every id the load balancer may register this task under: its IPv4 and
    /// IPv6 addresses (an `ip` target group of type ipv6 registers the IPv6
    /// one), else the instance and host port (bridge/host).
    pub fn target_ids(&self, container: &str, port: i32) -> Vec<(String, i32)> {
        let ips: Vec<(String, i32)> = [&self.private_ip, &self.ipv6]
            .into_iter()
            .flatten()
            .map(|ip| (ip.clone(), port))
            .collect();
        if !ips.is_empty() {
            return ips;
        }
        let Some(instance) = self.instance_id.clone() else {
            return vec![];
        };
        self.bindings
            .iter()
            .filter(|b| b.container == container && b.container_port == port)
            .map(|b| (instance.clone(), b.host_port))
            .take(1)
            .collect()
    }

    /// Never counts as running: on its way out (desired STOPPED, or
    /// DEACTIVATING/STOPPING/DEPROVISIONING/STOPPED).
    pub fn is_leaving(&self) -> bool {
        self.desired_status == DesiredStatus::Stopped
            || matches!(
                self.last_status,
                TaskStatus::Deactivating
                    | TaskStatus::Stopping
                    | TaskStatus::Deprovisioning
                    | TaskStatus::Stopped
                    | TaskStatus::Deleted
            )
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerState {
    pub name: String,
    pub last_status: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// The container's health check status (UNKNOWN without a `healthCheck`).
    pub health_status: Option<HealthStatus>,
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

/// One RunTask of a revision (a one-off task: `--before`, `shipit run`),
/// placed as the service places its tasks.
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRun {
    pub cluster: String,
    pub task_definition: String,
    /// The container whose command is overridden.
    pub container: String,
    /// Exec form: `containerOverrides[].command`.
    pub command: Vec<String>,
    /// `containerOverrides[].environment` (ContainerOverride has no `secrets`:
    /// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html).
    pub environment: Vec<(String, String)>,
    /// The service's awsvpc configuration (required for awsvpc revisions).
    pub network: Option<NetworkConfiguration>,
    /// The service's launch type, or else its capacity provider strategy
    /// (RunTask takes one or the other; neither: the cluster's default strategy).
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    pub platform_version: Option<String>,
    /// `startedBy` (up to 128 characters): how the task says it is shipit's.
    pub started_by: String,
}

/// RunTask's `failures[]`: a task that was never placed ("RESOURCE:MEMORY",
/// "AGENT", capacity). https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Failure.html
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFailure {
    pub arn: Option<String>,
    pub reason: String,
    pub detail: Option<String>,
}

/// What RunTask answered: the tasks placed, and those that were not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStarted {
    pub tasks: Vec<Task>,
    pub failures: Vec<RunFailure>,
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
    /// Several services of one cluster, in the order asked: `None` for one
    /// that does not exist. A watch of N services reads them with this, so
    /// the adapter can batch (DescribeServices takes up to 10 names). The
    /// default asks one by one.
    async fn services(&self, cluster: &str, names: &[String]) -> Result<Vec<Option<Service>>> {
        let mut found = Vec::with_capacity(names.len());
        for name in names {
            found.push(self.service(cluster, name).await?);
        }
        Ok(found)
    }
    /// The running and recently stopped tasks of several services of one
    /// cluster, in the order asked. The adapter lists each service's tasks
    /// (ListTasks filters by one service) and describes them all together
    /// (DescribeTasks takes up to 100 tasks of one cluster). The default asks
    /// one service at a time.
    async fn tasks_of(&self, cluster: &str, services: &[String]) -> Result<Vec<Vec<Task>>> {
        let mut found = Vec::with_capacity(services.len());
        for service in services {
            found.push(self.tasks(cluster, service).await?);
        }
        Ok(found)
    }
    /// The service deployments created since `created_after` (seconds since
    /// the epoch), newest first; `Ok(None)` where the API does not answer
    /// (older regions, emulators). Two calls: ListServiceDeployments and one
    /// DescribeServiceDeployments.
    async fn service_deployments(
        &self,
        _cluster: &str,
        _service: &str,
        _created_after: f64,
    ) -> Result<Option<Vec<ServiceDeployment>>> {
        Ok(None)
    }
    /// RunTask of one task (one-off tasks). Seams that cannot run tasks say so.
    async fn run_task(&self, _run: &TaskRun) -> Result<RunStarted> {
        Err(crate::error::Error::failed(
            "this ECS seam cannot run tasks (RunTask)",
        ))
    }
    /// DescribeTasks of one task; `Ok(None)` when ECS does not know it (MISSING).
    async fn describe_task(&self, _cluster: &str, _task: &str) -> Result<Option<Task>> {
        Err(crate::error::Error::failed(
            "this ECS seam cannot describe tasks",
        ))
    }
    /// StopTask with a reason ECS records as the task's `stoppedReason`.
    async fn stop_task(&self, _cluster: &str, _task: &str, _reason: &str) -> Result<()> {
        Err(crate::error::Error::failed(
            "this ECS seam cannot stop tasks",
        ))
    }
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
