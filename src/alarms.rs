//! The deployment-alarm seam (CloudWatch): the states of the alarms a
//! service's `deploymentConfiguration.alarms` names, read once in the plan,
//! before any change.
//!
//! ECS fails a deployment when one of its alarms *moves to* ALARM
//! (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentAlarms.html,
//! https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html):
//! an alarm already firing when the deployment starts never moves, so it
//! would judge nothing. The plan refuses that case (see `plan::firing_alarms`).

use async_trait::async_trait;

use crate::aws_error::sdk_error;
use crate::error::Result;

crate::ecs::wire_enum!(
    /// `MetricAlarm.StateValue` / `CompositeAlarm.StateValue`.
    /// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricAlarm.html
    AlarmStateValue {
        Ok = "OK",
        Alarm = "ALARM",
        InsufficientData = "INSUFFICIENT_DATA",
    }
);

/// One alarm as DescribeAlarms reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmState {
    pub name: String,
    pub state: AlarmStateValue,
    /// `StateReason`, e.g. `Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0).`
    pub reason: Option<String>,
}

#[async_trait]
pub trait Alarms: Send + Sync {
    /// The states of the named alarms, metric and composite; a name that
    /// CloudWatch does not know is left out of the answer.
    async fn states(&self, names: &[String]) -> Result<Vec<AlarmState>>;
}

/// CloudWatch through the SDK (it speaks Smithy RPC v2 CBOR).
pub struct CloudWatch {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatch {
    pub fn new(config: &aws_config::SdkConfig, calls: &crate::api_calls::ApiCalls) -> Self {
        let config = aws_sdk_cloudwatch::config::Builder::from(config)
            .interceptor(calls.clone())
            .build();
        Self {
            client: aws_sdk_cloudwatch::Client::from_conf(config),
        }
    }
}

/// DescribeAlarms takes at most 100 names per call.
/// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
const NAMES_PER_CALL: usize = 100;

#[async_trait]
impl Alarms for CloudWatch {
    async fn states(&self, names: &[String]) -> Result<Vec<AlarmState>> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let mut states = Vec::new();
        for batch in names.chunks(NAMES_PER_CALL) {
            let mut token: Option<String> = None;
            loop {
                // Without AlarmTypes, DescribeAlarms returns metric alarms only,
                // even when a name is a composite alarm (API_DescribeAlarms.html).
                let out = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(batch.to_vec()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|err| sdk_error("describing the deployment alarms", err))?;
                let state = |name: Option<&str>,
                             value: Option<&aws_sdk_cloudwatch::types::StateValue>,
                             reason: Option<&str>| AlarmState {
                    name: name.unwrap_or_default().to_string(),
                    state: value
                        .map(|v| AlarmStateValue::from_wire(v.as_str()))
                        .unwrap_or_default(),
                    reason: reason.map(str::to_string),
                };
                states.extend(
                    out.metric_alarms()
                        .iter()
                        .map(|a| state(a.alarm_name(), a.state_value(), a.state_reason())),
                );
                states.extend(
                    out.composite_alarms()
                        .iter()
                        .map(|a| state(a.alarm_name(), a.state_value(), a.state_reason())),
                );
                match out.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_string()),
                    _ => break,
                }
            }
        }
        Ok(states)
    }
}
