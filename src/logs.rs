//! The container-log seam (CloudWatch Logs): the last lines a failed task's
//! container wrote through the `awslogs` driver, for the failure report.
//! Which stream to read is worked out purely ([`source`]); the read is one
//! GetLogEvents call per container.

use async_trait::async_trait;
use serde_json::Value;

use crate::aws_error::sdk_error;
use crate::error::Result;

/// One log event: seconds since the epoch and the line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub timestamp: f64,
    pub message: String,
}

/// Where a container's log lines are: group, region (when the task
/// definition names one) and stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub group: String,
    pub region: Option<String>,
    pub stream: String,
}

/// One forward read of a stream: its events oldest first, and the token the
/// next read goes on from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    pub next_token: Option<String>,
}

#[async_trait]
pub trait ContainerLogs: Send + Sync {
    /// The last `limit` events of the stream, oldest first.
    async fn last_lines(&self, source: &LogSource, limit: usize) -> Result<Vec<LogLine>>;

    /// The events after `token` (from the head without one), oldest first.
    /// A stream that does not exist yet reads as empty, with the token kept.
    async fn read_forward(&self, _source: &LogSource, _token: Option<&str>) -> Result<LogPage> {
        Err(crate::error::Error::failed(
            "this log reader cannot follow a stream",
        ))
    }
}

/// Follows one stream as it grows (a one-off task's output): each
/// [`read_new`](Self::read_new) returns the lines not returned before.
#[derive(Debug, Clone)]
pub struct LogFollower {
    pub source: LogSource,
    token: Option<String>,
}

impl LogFollower {
    pub fn new(source: LogSource) -> Self {
        Self {
            source,
            token: None,
        }
    }

    /// The lines written since the last read. Pages on until GetLogEvents
    /// gives back the token it was passed ("If you have reached the end of the
    /// stream, it returns the same token you passed in":
    /// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html).
    pub async fn read_new(&mut self, logs: &dyn ContainerLogs) -> Result<Vec<LogLine>> {
        let mut lines = Vec::new();
        // 10 pages of up to 10,000 events: a later poll reads on from there.
        for _ in 0..10 {
            let page = logs
                .read_forward(&self.source, self.token.as_deref())
                .await?;
            let end = page.lines.is_empty() || page.next_token == self.token;
            lines.extend(page.lines);
            if page.next_token.is_some() {
                self.token = page.next_token;
            }
            if end {
                break;
            }
        }
        Ok(lines)
    }
}

/// The `awslogs` stream of `container` in task `task_id`: `prefix/container/task-id`
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html).
/// `Err` says in words why there is none (another driver, no prefix).
pub fn source(
    task_definition: &Value,
    container: &str,
    task_id: &str,
) -> std::result::Result<LogSource, String> {
    let def = task_definition
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .and_then(|defs| {
            defs.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        })
        .ok_or_else(|| format!("container `{container}` is not in the task definition"))?;
    let config = def
        .get("logConfiguration")
        .ok_or_else(|| format!("container `{container}` has no logConfiguration: no log lines"))?;
    let driver = config
        .get("logDriver")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if driver != "awslogs" {
        return Err(format!(
            "container `{container}` logs with the `{driver}` driver, not awslogs: no log lines here"
        ));
    }
    let option = |key: &str| {
        config
            .get("options")
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let group = option("awslogs-group")
        .ok_or_else(|| format!("container `{container}` has no awslogs-group"))?;
    let prefix = option("awslogs-stream-prefix").ok_or_else(|| {
        format!(
            "container `{container}` has no awslogs-stream-prefix: its stream name cannot be known"
        )
    })?;
    Ok(LogSource {
        group,
        region: option("awslogs-region"),
        stream: format!("{prefix}/{container}/{task_id}"),
    })
}

/// The most events one GetLogEvents call returns
/// (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html).
pub const MAX_LIMIT: usize = 10_000;

/// Why a stream's lines cannot be shown, in words, from the error's code:
/// a missing permission names the one needed; a missing group or stream is
/// not a permission problem (the container wrote nothing there, or the
/// group is gone).
pub fn unreadable(code: Option<&str>, message: &str, group: &str) -> String {
    let denied = code.is_some_and(|c| c.starts_with("AccessDenied"))
        || message.contains("not authorized to perform");
    match code {
        _ if denied => {
            format!("cannot be read ({message}); shipit needs logs:GetLogEvents on {group}")
        }
        Some("ResourceNotFoundException") => format!(
            "not in CloudWatch Logs ({message}): the group {group} or the task's stream does not exist (the container wrote no line, or the group was deleted)"
        ),
        _ => format!("cannot be read ({message})"),
    }
}

/// CloudWatch Logs through the SDK (awsJson 1.1).
pub struct CloudWatchLogs {
    config: aws_config::SdkConfig,
    calls: crate::api_calls::ApiCalls,
}

impl CloudWatchLogs {
    pub fn new(config: &aws_config::SdkConfig, calls: &crate::api_calls::ApiCalls) -> Self {
        Self {
            config: config.clone(),
            calls: calls.clone(),
        }
    }

    fn client(&self, region: Option<&str>) -> aws_sdk_cloudwatchlogs::Client {
        let mut builder = aws_sdk_cloudwatchlogs::config::Builder::from(&self.config)
            .interceptor(self.calls.clone());
        if let Some(region) = region {
            builder = builder.region(aws_config::Region::new(region.to_string()));
        }
        aws_sdk_cloudwatchlogs::Client::from_conf(builder.build())
    }
}

#[async_trait]
impl ContainerLogs for CloudWatchLogs {
    async fn last_lines(&self, source: &LogSource, limit: usize) -> Result<Vec<LogLine>> {
        let out = self
            .client(source.region.as_deref())
            .get_log_events()
            .log_group_name(&source.group)
            .log_stream_name(&source.stream)
            .start_from_head(false)
            // GetLogEvents takes at most 10,000 events a call.
            .limit(i32::try_from(limit.min(MAX_LIMIT)).unwrap_or(10_000))
            .send()
            .await
            .map_err(|err| {
                sdk_error(
                    &format!("reading log stream {} in {}", source.stream, source.group),
                    err,
                )
            })?;
        let mut lines: Vec<LogLine> = out
            .events()
            .iter()
            .map(|e| LogLine {
                timestamp: e.timestamp().unwrap_or_default() as f64 / 1000.0,
                message: e.message().unwrap_or_default().trim_end().to_string(),
            })
            .collect();
        let skip = lines.len().saturating_sub(limit);
        lines.drain(..skip);
        Ok(lines)
    }

    async fn read_forward(&self, source: &LogSource, token: Option<&str>) -> Result<LogPage> {
        use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
        // With a nextToken, startFromHead must be true (API_GetLogEvents).
        let out = self
            .client(source.region.as_deref())
            .get_log_events()
            .log_group_name(&source.group)
            .log_stream_name(&source.stream)
            .start_from_head(true)
            .set_next_token(token.map(str::to_string))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // The awslogs driver creates the stream when the container starts.
            Err(err) if err.code() == Some("ResourceNotFoundException") => {
                return Ok(LogPage {
                    lines: Vec::new(),
                    next_token: token.map(str::to_string),
                })
            }
            Err(err) => {
                return Err(sdk_error(
                    &format!("reading log stream {} in {}", source.stream, source.group),
                    err,
                ))
            }
        };
        Ok(LogPage {
            lines: out
                .events()
                .iter()
                .map(|e| LogLine {
                    timestamp: e.timestamp().unwrap_or_default() as f64 / 1000.0,
                    message: e.message().unwrap_or_default().trim_end().to_string(),
                })
                .collect(),
            next_token: out.next_forward_token().map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn td(log: Value) -> Value {
        json!({"containerDefinitions": [{"name": "app", "logConfiguration": log}]})
    }

    #[test]
    fn the_stream_is_prefix_container_task_id() {
        let td = td(json!({"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/web", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs"}}));
        assert_eq!(
            source(&td, "app", "8ff34785799e5cbd687835955579c9a1"),
            Ok(LogSource {
                group: "/ecs/web".into(),
                region: Some("eu-west-1".into()),
                stream: "ecs/app/8ff34785799e5cbd687835955579c9a1".into(),
            })
        );
    }

    #[test]
    fn an_unreadable_stream_says_whether_a_permission_or_the_stream_is_missing() {
        let denied = unreadable(
            Some("AccessDeniedException"),
            "User: arn:aws:sts::123456789012:assumed-role/ci/1 is not authorized to perform: logs:GetLogEvents",
            "/ecs/web",
        );
        assert!(
            denied.ends_with("shipit needs logs:GetLogEvents on /ecs/web"),
            "{denied}"
        );
        let missing = unreadable(
            Some("ResourceNotFoundException"),
            "The specified log group does not exist.",
            "/ecs/web",
        );
        assert!(
            missing.contains("The specified log group does not exist."),
            "{missing}"
        );
        assert!(
            missing.contains("/ecs/web or the task's stream does not exist"),
            "{missing}"
        );
        assert!(!missing.contains("needs logs:GetLogEvents"), "{missing}");
        let other = unreadable(Some("ThrottlingException"), "Rate exceeded", "/ecs/web");
        assert_eq!(other, "cannot be read (Rate exceeded)");
    }

    #[test]
    fn another_driver_or_no_prefix_says_why_there_are_no_lines() {
        let splunk = td(json!({"logDriver": "splunk", "options": {}}));
        assert!(source(&splunk, "app", "t")
            .unwrap_err()
            .contains("`splunk` driver"));
        let no_prefix =
            td(json!({"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}}));
        assert!(source(&no_prefix, "app", "t")
            .unwrap_err()
            .contains("awslogs-stream-prefix"));
        let none = json!({"containerDefinitions": [{"name": "app"}]});
        assert!(source(&none, "app", "t")
            .unwrap_err()
            .contains("no logConfiguration"));
    }
}
