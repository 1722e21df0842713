//! Counts the AWS API calls a run makes, per operation, so the result object
//! can say what a deploy cost (and benchmarks and fault tests can check it).
//!
//! An SDK interceptor sees every attempt, retries included: that is what AWS
//! sees and what counts against its rate limits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

/// A shared tally; clone it into every client's configuration.
#[derive(Debug, Clone, Default)]
pub struct ApiCalls {
    by_operation: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// What [`ApiCalls`] counted, as the result object carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApiCallCount {
    pub total: u64,
    /// `Service.Operation` (e.g. `ECS.DescribeServices`) → attempts.
    pub by_operation: BTreeMap<String, u64>,
}

impl ApiCalls {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&self, operation: &str) {
        let mut map = self.by_operation.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(operation.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> ApiCallCount {
        let map = self
            .by_operation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        ApiCallCount {
            total: map.values().sum(),
            by_operation: map,
        }
    }
}

impl Intercept for ApiCalls {
    fn name(&self) -> &'static str {
        "shipit::ApiCalls"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = match cfg.load::<Metadata>() {
            Some(meta) => format!("{}.{}", service_label(meta.service()), meta.name()),
            None => "unknown".to_string(),
        };
        self.record(&name);
        Ok(())
    }
}

/// Short service labels: `ecs`/`ECS` → `ECS`, `elasticloadbalancingv2` → `ELBv2`.
fn service_label(service: &str) -> &str {
    match service.to_ascii_lowercase().as_str() {
        "ecs" => "ECS",
        "ecr" => "ECR",
        "elasticloadbalancingv2" | "elastic load balancing v2" => "ELBv2",
        _ => service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_totals_the_operations() {
        let calls = ApiCalls::new();
        let shared = calls.clone();
        shared.record("ECS.DescribeServices");
        calls.record("ECS.DescribeServices");
        calls.record("ELBv2.DescribeTargetHealth");
        let count = calls.snapshot();
        assert_eq!(count.total, 3);
        assert_eq!(count.by_operation["ECS.DescribeServices"], 2);
        assert_eq!(count.by_operation["ELBv2.DescribeTargetHealth"], 1);
    }

    #[test]
    fn service_labels_are_short() {
        assert_eq!(service_label("ecs"), "ECS");
        assert_eq!(service_label("ECR"), "ECR");
        assert_eq!(service_label("elasticloadbalancingv2"), "ELBv2");
        assert_eq!(service_label("sts"), "sts");
    }
}
