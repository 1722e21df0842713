//! The target health seam (ELBv2): the load balancer's view of the new tasks,
//! and (once per watch) the target group settings that set a rollout's pace.

use async_trait::async_trait;

use crate::aws_error::sdk_error;
use crate::error::Result;

crate::ecs::wire_enum!(
    /// `TargetHealth.state`.
    /// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
    TargetState {
        Initial = "initial",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        Unused = "unused",
        Draining = "draining",
        Unavailable = "unavailable",
        UnhealthyDraining = "unhealthy.draining",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetHealth {
    /// IP address (target type `ip`, IPv4 or IPv6) or instance id.
    pub id: String,
    pub port: Option<i32>,
    pub state: TargetState,
    /// e.g. `Target.FailedHealthChecks`, `Target.ResponseCodeMismatch`.
    pub reason: Option<String>,
    /// e.g. `Health checks failed with these codes: [404]`.
    pub description: Option<String>,
}

/// A target group's settings that decide how fast a target turns healthy
/// and how long an old one drains (DescribeTargetGroups + DescribeTargetGroupAttributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupInfo {
    pub arn: String,
    /// `ip`, `instance`, `lambda`, `alb`.
    pub target_type: Option<String>,
    /// `ipv4` or `ipv6`.
    pub ip_address_type: Option<String>,
    pub health_check_protocol: Option<String>,
    pub health_check_port: Option<String>,
    pub health_check_path: Option<String>,
    /// `Matcher.HttpCode` (or `GrpcCode`), e.g. `200-399`.
    pub matcher: Option<String>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// `deregistration_delay.timeout_seconds`.
    pub deregistration_delay_seconds: u32,
}

impl Default for TargetGroupInfo {
    /// ELBv2's defaults for an HTTP target group.
    /// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
    fn default() -> Self {
        Self {
            arn: String::new(),
            target_type: None,
            ip_address_type: None,
            health_check_protocol: None,
            health_check_port: None,
            health_check_path: None,
            matcher: None,
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            deregistration_delay_seconds: 300,
        }
    }
}

#[async_trait]
pub trait LoadBalancing: Send + Sync {
    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>>;

    /// The target group's health check and deregistration settings;
    /// `Ok(None)` where they cannot be read (the watch uses ELB's defaults).
    async fn target_group(&self, _target_group_arn: &str) -> Result<Option<TargetGroupInfo>> {
        Ok(None)
    }
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

fn seconds(value: Option<i32>, default: u32) -> u32 {
    value.and_then(|v| u32::try_from(v).ok()).unwrap_or(default)
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
                        .map(|s| TargetState::from_wire(s.as_str()))
                        .unwrap_or_default(),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                    description: health.and_then(|h| h.description()).map(str::to_string),
                }
            })
            .collect())
    }

    async fn target_group(&self, arn: &str) -> Result<Option<TargetGroupInfo>> {
        let out = self
            .client
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .await
            .map_err(|err| sdk_error(&format!("describing target group {arn}"), err))?;
        let Some(tg) = out.target_groups().first() else {
            return Ok(None);
        };
        let defaults = TargetGroupInfo::default();
        let attributes = self
            .client
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|err| {
                sdk_error(&format!("describing attributes of target group {arn}"), err)
            })?;
        let delay = attributes
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value())
            .and_then(|v| v.parse().ok())
            .unwrap_or(defaults.deregistration_delay_seconds);
        Ok(Some(TargetGroupInfo {
            arn: arn.to_string(),
            target_type: tg.target_type().map(|t| t.as_str().to_string()),
            ip_address_type: tg.ip_address_type().map(|t| t.as_str().to_string()),
            health_check_protocol: tg.health_check_protocol().map(|p| p.as_str().to_string()),
            health_check_port: tg.health_check_port().map(str::to_string),
            health_check_path: tg.health_check_path().map(str::to_string),
            matcher: tg
                .matcher()
                .and_then(|m| m.http_code().or(m.grpc_code()))
                .map(str::to_string),
            interval_seconds: seconds(tg.health_check_interval_seconds(), 30),
            timeout_seconds: seconds(tg.health_check_timeout_seconds(), 5),
            healthy_threshold: seconds(tg.healthy_threshold_count(), 5),
            unhealthy_threshold: seconds(tg.unhealthy_threshold_count(), 2),
            deregistration_delay_seconds: delay,
        }))
    }
}
