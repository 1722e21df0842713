//! The outside systems a command talks to, and how to reach them.
//!
//! [`Deps`] is what the orchestration borrows: the registry, ECS, the load
//! balancer and (only when a build is needed) the container engine, all as
//! small traits. [`Connect`] makes them: [`RealWorld`] from the AWS SDK's
//! configuration chain and the Docker engine; tests hand `shipit::run_in`
//! scripted fakes instead, so the whole program runs in-process.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;

use crate::alarms::{self, Alarms};
use crate::api_calls::ApiCalls;
use crate::ecr::{self, Registry};
use crate::ecs::{self, Ecs};
use crate::elb::{self, LoadBalancing};
use crate::error::{Error, Result};
use crate::image::{ContainerEngine, DockerEngine};
use crate::logs::{self, ContainerLogs};

/// The seams the orchestration talks to, borrowed for one command.
pub struct Deps<'a> {
    pub registry: &'a dyn Registry,
    pub ecs: &'a dyn Ecs,
    pub elb: &'a dyn LoadBalancing,
    /// Connected only when a build is needed.
    pub engine: Option<&'a dyn ContainerEngine>,
    /// Every AWS call the clients make is counted here.
    pub calls: &'a ApiCalls,
    /// CloudWatch, for the deployment alarms' states in the plan; `None`
    /// skips that check (fakes that script no alarms).
    pub alarms: Option<&'a dyn Alarms>,
    /// CloudWatch Logs, for the failure report's last log lines; `None`
    /// leaves them out.
    pub logs: Option<&'a dyn ContainerLogs>,
}

/// The AWS clients of one run.
pub struct Clients {
    pub registry: Box<dyn Registry>,
    pub ecs: Box<dyn Ecs>,
    pub elb: Box<dyn LoadBalancing>,
    /// CloudWatch (deployment alarms); `None` skips the plan's alarm check.
    pub alarms: Option<Box<dyn Alarms>>,
    /// CloudWatch Logs (the failure report's log lines); `None` leaves them out.
    pub logs: Option<Box<dyn ContainerLogs>>,
}

impl Clients {
    pub fn deps<'a>(
        &'a self,
        engine: Option<&'a dyn ContainerEngine>,
        calls: &'a ApiCalls,
    ) -> Deps<'a> {
        Deps {
            registry: self.registry.as_ref(),
            ecs: self.ecs.as_ref(),
            elb: self.elb.as_ref(),
            engine,
            calls,
            alarms: self.alarms.as_deref(),
            logs: self.logs.as_deref(),
        }
    }
}

/// How a run reaches AWS and the container engine.
#[async_trait]
pub trait Connect: Send + Sync {
    /// AWS clients for `region` (else the SDK's chain), counting calls in `calls`.
    async fn aws(&self, region: Option<&str>, calls: &ApiCalls) -> Result<Clients>;
    /// The container engine; called only when an image must be built.
    async fn engine(&self) -> Result<Box<dyn ContainerEngine>>;
}

/// The real AWS (SDK configuration chain) and the Docker engine (`DOCKER_HOST`).
pub struct RealWorld;

#[async_trait]
impl Connect for RealWorld {
    async fn aws(&self, region: Option<&str>, calls: &ApiCalls) -> Result<Clients> {
        let config = aws_config(region).await?;
        Ok(Clients {
            registry: Box::new(ecr::Ecr::new(&config, calls)),
            ecs: Box::new(ecs::AwsEcs::new(&config, calls)),
            elb: Box::new(elb::Elbv2::new(&config, calls)),
            alarms: Some(Box::new(alarms::CloudWatch::new(&config, calls))),
            logs: Some(Box::new(logs::CloudWatchLogs::new(&config, calls))),
        })
    }

    async fn engine(&self) -> Result<Box<dyn ContainerEngine>> {
        Ok(Box::new(DockerEngine::connect().await?))
    }
}

/// Loads AWS configuration and checks region and credentials before anything else.
async fn aws_config(region: Option<&str>) -> Result<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(Error::bad_input("no AWS region configured")
            .hint("set AWS_REGION (or AWS_DEFAULT_REGION, a profile's region, or --region)"));
    }
    let provider = config.credentials_provider().ok_or_else(|| {
        Error::bad_input("no AWS credentials provider")
            .hint("configure AWS credentials (env, profile, or OIDC in CI)")
    })?;
    provider.provide_credentials().await.map_err(|err| {
        Error::bad_input("no AWS credentials found")
            .caused_by(&err)
            .hint("set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use OIDC (aws-actions/configure-aws-credentials) in CI")
    })?;
    Ok(config)
}
