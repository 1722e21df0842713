//! The target health seam (ELBv2): the load balancer's view of the new tasks.

use async_trait::async_trait;

use crate::ecr::sdk_error;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// IP address (target type `ip`) or instance id.
    pub id: String,
    pub port: Option<i32>,
    /// initial, healthy, unhealthy, unused, draining, unavailable, …
    pub state: String,
    /// e.g. `Target.FailedHealthChecks`, `Target.ResponseCodeMismatch`.
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[async_trait]
pub trait LoadBalancing: Send + Sync {
    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>>;
}

pub struct Elbv2 {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl Elbv2 {
    pub fn new(config: &aws_config::SdkConfig, calls: &crate::api_calls::ApiCalls) -> Self {
        let config = aws_sdk_elasticloadbalancingv2::config::Builder::from(config)
            .interceptor(calls.clone())
            .build();
        Self {
            client: aws_sdk_elasticloadbalancingv2::Client::from_conf(config),
        }
    }
}

#[async_trait]
impl LoadBalancing for Elbv2 {
    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|err| {
                sdk_error(
                    &format!("describing target health of {target_group_arn}"),
                    err,
                )
            })?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let health = d.target_health();
                TargetHealth {
                    id: d
                        .target()
                        .and_then(|t| t.id())
                        .unwrap_or_default()
                        .to_string(),
                    port: d.target().and_then(|t| t.port()),
                    state: health
                        .and_then(|h| h.state())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                    description: health.and_then(|h| h.description()).map(str::to_string),
                }
            })
            .collect())
    }
}
