//! A scripted AWS endpoint: the real `shipit` binary, with its real SDK
//! clients, talks to documents that follow the AWS API reference shapes.
//!
//! One in-process HTTP/1 server on 127.0.0.1:0 speaks every protocol the
//! adapters use:
//!
//! - awsJson1_1 by `X-Amz-Target`: ECS (`AmazonEC2ContainerServiceV20141113.*`),
//!   ECR (`AmazonEC2ContainerRegistry_V20150921.*`), CloudWatch Logs
//!   (`Logs_20140328.*`);
//! - awsQuery form bodies (`Action=…&Version=…`) answered with XML in the
//!   service's namespace: ELBv2 (2015-12-01) and CloudWatch (2010-08-01);
//! - CloudWatch as aws-sdk-cloudwatch 1.140 sends it: Smithy RPC v2 CBOR
//!   (`POST /service/GraniteServiceVersion20100801/operation/<Op>`,
//!   `smithy-protocol: rpc-v2-cbor`), and awsJson1_0 by
//!   `X-Amz-Target: GraniteServiceVersion20100801.*` (the AWS CLI's way).
//!
//! Scripts are written once as JSON values (the awsJson shape, member names
//! as the API reference spells them); the server renders them per protocol
//! (JSON, awsQuery XML with `<member>` lists, or CBOR). A timestamp that must
//! survive every protocol is written `{"$epoch": <seconds>}` ([`epoch`]).
//!
//! How a test scripts a world:
//!
//! - **Timelines** ([`FakeAws::before`], [`FakeAws::after_update_to`]): a list
//!   of [`Frame`]s (the service document, its tasks, its targets per target
//!   group, optionally its service deployments and alarm states). The frame
//!   advances on every DescribeServices call (one per watch poll); ListTasks
//!   (by `desiredStatus`), DescribeTasks (by the `tasks` asked for),
//!   DescribeTargetHealth (by `TargetGroupArn`), DescribeTargetGroups(+Attributes),
//!   List/DescribeServiceDeployments, CloudWatch DescribeAlarms, TagResource
//!   and UpdateService's answer all come from the current frame, so they stay
//!   in step whatever the adapter's call pattern. The last frame repeats. A
//!   timeline starts when UpdateService is called with its `taskDefinition`;
//!   the `before` one answers until then.
//! - **Rules** ([`FakeAws::on`]): per operation a queue of [`Reply`]s (the last
//!   repeats), optionally keyed on a request field and/or armed only after a
//!   mutation (an UpdateService to a given revision, a StopTask of a task, …).
//!   A rule wins over the timeline, so a test can make DescribeTasks answer
//!   `AccessDeniedException` from the third poll on while everything else
//!   follows the frames.
//! - **The log** ([`FakeAws::calls`], [`FakeAws::mutations`]): every request,
//!   in order, with its operation (`ECS.UpdateService`) and parsed body.
//!
//! An operation with neither a rule nor a timeline answer gets the AWS
//! "unknown operation" error (what an older region or the emulator says) and
//! is listed by [`FakeAws::unscripted`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const ELB_NS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
pub const CLOUDWATCH_NS: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/// The operations that change something, as named in the log.
pub const MUTATING: &[&str] = &[
    "ECS.RegisterTaskDefinition",
    "ECS.DeregisterTaskDefinition",
    "ECS.DeleteTaskDefinitions",
    "ECS.UpdateService",
    "ECS.CreateService",
    "ECS.DeleteService",
    "ECS.TagResource",
    "ECS.UntagResource",
    "ECS.RunTask",
    "ECS.StopTask",
    "ECS.StopServiceDeployment",
    "ECR.CreateRepository",
    "ECR.PutImage",
    "ECR.BatchDeleteImage",
    "ECR.InitiateLayerUpload",
    "ECR.CompleteLayerUpload",
    "ELBv2.RegisterTargets",
    "ELBv2.DeregisterTargets",
    "ELBv2.ModifyTargetGroup",
    "CloudWatch.SetAlarmState",
    "CloudWatch.PutMetricAlarm",
];

/// The wire protocol a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json11,
    Json10,
    Query,
    Cbor,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `ECS.UpdateService`, `ELBv2.DescribeTargetHealth`, `CloudWatch.DescribeAlarms`.
    pub operation: String,
    pub protocol: Protocol,
    /// JSON body as sent; for awsQuery, the form's `key → value` pairs
    /// (`TargetGroupArn`, `Targets.member.1.Id`); for CBOR, the decoded map.
    pub body: Value,
    /// HTTP status answered.
    pub status: u16,
    /// Nothing was scripted for it: it got the unknown-operation error.
    pub unscripted: bool,
}

impl Call {
    /// `body[field]` as a string (`""` when absent).
    pub fn field(&self, field: &str) -> String {
        match self.body.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

/// What one request is answered with.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this document (rendered per protocol).
    Doc(Value),
    /// An AWS error: `{"__type": code, "message": …}` (JSON, CBOR) or an
    /// `ErrorResponse` (XML).
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Whatever the current frame of the timeline says.
    Frame,
    /// RegisterTaskDefinition: the request echoed back as the registered
    /// revision `arn` (`taskDefinitionArn`, `revision`, `status` ACTIVE added).
    Registered(String),
}

impl Reply {
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::Error {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn access_denied(action: &str) -> Reply {
        Reply::error(
            400,
            "AccessDeniedException",
            &format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci is not authorized to perform: {action} on resource: * because no identity-based policy allows the {action} action"
            ),
        )
    }

    pub fn throttled() -> Reply {
        Reply::error(400, "ThrottlingException", "Rate exceeded")
    }
}

/// One moment of the world, as the watch sees it in one poll.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// The ECS `Service` document (see [`ServiceDoc`]).
    pub service: Value,
    /// ECS `Task` documents, in ListTasks order (see [`TaskDoc`]).
    pub tasks: Vec<Value>,
    /// Target group ARN → `TargetHealthDescription` documents (see [`target`]).
    pub targets: Vec<(String, Vec<Value>)>,
    /// `ServiceDeployment` documents (DescribeServiceDeployments); `None`:
    /// the ListServiceDeployments/DescribeServiceDeployments operations are
    /// unknown, as in an older region or the emulator.
    pub service_deployments: Option<Vec<Value>>,
    /// CloudWatch alarms as DescribeAlarms sees them in this frame
    /// (name, state, reason); `None`: those given to [`FakeAws::alarm`].
    pub alarms: Option<Vec<(String, String, String)>>,
    /// More services of the cluster in this frame (a deploy of several):
    /// DescribeServices then answers the ones asked for (by name or ARN, the
    /// others as `failures` MISSING), ListTasks the tasks whose `group` is
    /// `service:<serviceName>`, UpdateService the service it names.
    pub also: Vec<Value>,
}

impl Frame {
    pub fn new(service: impl Into<Value>) -> Frame {
        Frame {
            service: service.into(),
            ..Default::default()
        }
    }

    pub fn task(mut self, task: impl Into<Value>) -> Frame {
        self.tasks.push(task.into());
        self
    }

    pub fn targets(mut self, target_group: &str, targets: Vec<Value>) -> Frame {
        self.targets.push((target_group.to_string(), targets));
        self
    }

    /// A CloudWatch alarm's state in this frame (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn alarm(mut self, name: &str, state: &str, reason: &str) -> Frame {
        self.alarms
            .get_or_insert_with(Vec::new)
            .push((name.into(), state.into(), reason.into()));
        self
    }

    /// Another service of the cluster in this frame (see [`Frame::also`]).
    pub fn also(mut self, service: impl Into<Value>) -> Frame {
        self.also.push(service.into());
        self
    }

    pub fn service_deployment(mut self, doc: Value) -> Frame {
        self.service_deployments
            .get_or_insert_with(Vec::new)
            .push(doc);
        self
    }
}

#[derive(Debug)]
struct Timeline {
    /// `None`: the world before any UpdateService.
    trigger: Option<String>,
    /// More revisions that must all have been updated to as well before it starts.
    more_triggers: Vec<String>,
    frames: Vec<Frame>,
    /// DescribeServices calls answered from it.
    reads: usize,
    started: bool,
}

impl Timeline {
    fn current(&self) -> &Frame {
        let at = self.reads.saturating_sub(1).min(self.frames.len() - 1);
        &self.frames[at]
    }
}

#[derive(Debug)]
struct Rule {
    operation: String,
    key: Option<(String, String)>,
    /// Armed by a call of this operation whose field has this value.
    after: Option<(String, String, String)>,
    queue: VecDeque<Reply>,
    last: Reply,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    rules: Vec<Rule>,
    timelines: Vec<Timeline>,
    /// Index into `timelines` of the one answering now.
    active: Option<usize>,
    /// Alarm name → state value, for DescribeAlarms.
    alarms: Vec<(String, String, String)>,
}

/// The scripted endpoint. Clone it freely: clones share the same world.
#[derive(Clone)]
pub struct FakeAws {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// Builds a [`Rule`]; `replies`/`reply` installs it.
pub struct RuleBuilder {
    aws: FakeAws,
    operation: String,
    key: Option<(String, String)>,
    after: Option<(String, String, String)>,
}

impl RuleBuilder {
    /// Only requests whose `field` equals `value` (or, for a list, holds it:
    /// as an item, or as a member of an item).
    pub fn when(mut self, field: &str, value: &str) -> Self {
        self.key = Some((field.into(), value.into()));
        self
    }

    /// Armed once UpdateService has been called with this `taskDefinition`.
    pub fn after_update_to(self, task_definition: &str) -> Self {
        self.after("ECS.UpdateService", "taskDefinition", task_definition)
    }

    /// Armed once `operation` has been called with `field` equal to `value`
    /// (e.g. `ECS.StopTask`, `task`, an ARN).
    pub fn after(mut self, operation: &str, field: &str, value: &str) -> Self {
        self.after = Some((operation.into(), field.into(), value.into()));
        self
    }

    pub fn reply(self, reply: Reply) {
        self.replies(vec![reply]);
    }

    /// Answers these in turn; the last one repeats.
    pub fn replies(self, replies: Vec<Reply>) {
        let mut queue: VecDeque<Reply> = replies.into();
        let last = queue.pop_back().expect("at least one reply");
        self.aws.state.lock().unwrap().rules.push(Rule {
            operation: self.operation,
            key: self.key,
            after: self.after,
            queue,
            last,
        });
    }
}

impl FakeAws {
    pub async fn start() -> FakeAws {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let aws = FakeAws {
            addr: listener.local_addr().unwrap(),
            state: Arc::default(),
        };
        let server = aws.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let aws = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let aws = aws.clone();
                        async move { Ok::<_, std::convert::Infallible>(aws.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        aws
    }

    /// `AWS_ENDPOINT_URL` for the binary.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment a shipit process needs to talk to this endpoint only:
    /// static dummy credentials, no profile files, no instance metadata.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "AKIAFAKEAWS000000000".into()),
            ("AWS_SECRET_ACCESS_KEY", "fake-aws-secret".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/shipit-fake-aws".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/shipit-fake-aws".into(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// A rule for `operation` (`ECS.DescribeTasks`, `ELBv2.DescribeTargetHealth`, …).
    pub fn on(&self, operation: &str) -> RuleBuilder {
        RuleBuilder {
            aws: self.clone(),
            operation: operation.into(),
            key: None,
            after: None,
        }
    }

    /// The world before any UpdateService (what the plan sees).
    pub fn before(&self, frames: Vec<Frame>) {
        self.timeline(None, frames);
    }

    /// What the world does once UpdateService is called with `task_definition`.
    pub fn after_update_to(&self, task_definition: &str, frames: Vec<Frame>) {
        self.timeline(Some(task_definition.to_string()), frames);
    }

    /// What the world does once UpdateService has been called with every
    /// one of `task_definitions` (a deploy of several services).
    pub fn after_updates_to(&self, task_definitions: &[&str], frames: Vec<Frame>) {
        self.timeline(Some(task_definitions[0].to_string()), frames);
        let mut state = self.state.lock().unwrap();
        let timeline = state.timelines.last_mut().unwrap();
        timeline.more_triggers = task_definitions[1..]
            .iter()
            .map(|t| t.to_string())
            .collect();
    }

    fn timeline(&self, trigger: Option<String>, frames: Vec<Frame>) {
        assert!(!frames.is_empty(), "a timeline needs at least one frame");
        let mut state = self.state.lock().unwrap();
        let before = trigger.is_none();
        state.timelines.push(Timeline {
            trigger,
            more_triggers: Vec::new(),
            frames,
            reads: 0,
            started: before,
        });
        if before {
            state.active = Some(state.timelines.len() - 1);
        }
    }

    /// A CloudWatch metric alarm DescribeAlarms knows (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn alarm(&self, name: &str, state: &str, reason: &str) {
        self.state
            .lock()
            .unwrap()
            .alarms
            .push((name.into(), state.into(), reason.into()));
    }

    /// Every request, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls of one operation, in order.
    pub fn calls_of(&self, operation: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .collect()
    }

    /// The mutating calls, in order.
    pub fn mutations(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| MUTATING.contains(&c.operation.as_str()))
            .collect()
    }

    /// The mutating calls in words: `UpdateService web:8`, `TagResource web:8 shipit:verdict=healthy`.
    pub fn mutation_summary(&self) -> Vec<String> {
        self.mutations().iter().map(describe_mutation).collect()
    }

    /// Operations that were called but had nothing scripted.
    pub fn unscripted(&self) -> Vec<String> {
        let mut ops: Vec<String> = Vec::new();
        for call in self.calls().into_iter().filter(|c| c.unscripted) {
            if !ops.contains(&call.operation) {
                ops.push(call.operation);
            }
        }
        ops
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let (protocol, operation, parsed) = parse_request(&parts, &body);
        let (reply, unscripted) = self.decide(&operation, &parsed);
        let response = render(protocol, &operation, &reply);
        self.state.lock().unwrap().calls.push(Call {
            operation,
            protocol,
            body: parsed,
            status: response.status().as_u16(),
            unscripted,
        });
        response
    }

    /// Picks the reply and moves the world on (timelines, rule queues).
    fn decide(&self, operation: &str, body: &Value) -> (Reply, bool) {
        let mut state = self.state.lock().unwrap();
        // An UpdateService starts the timeline scripted for its revision.
        if operation == "ECS.UpdateService" {
            let to = body
                .get("taskDefinition")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let updated: Vec<&str> = state
                .calls
                .iter()
                .filter(|c| c.operation == "ECS.UpdateService")
                .filter_map(|c| c.body.get("taskDefinition").and_then(Value::as_str))
                .chain([to])
                .collect();
            let all_updated = |t: &Timeline| {
                t.trigger
                    .iter()
                    .chain(&t.more_triggers)
                    .all(|want| updated.contains(&want.as_str()))
            };
            if let Some(i) = state.timelines.iter().position(|t| {
                !t.started
                    && (t.trigger.as_deref() == Some(to) || t.more_triggers.iter().any(|m| m == to))
                    && all_updated(t)
            }) {
                state.timelines[i].started = true;
                state.active = Some(i);
            }
        }
        // Rules are armed by earlier calls, or by this very call.
        let mut history: Vec<(&str, &Value)> = state
            .calls
            .iter()
            .map(|c| (c.operation.as_str(), &c.body))
            .collect();
        history.push((operation, body));
        // The rule armed most recently wins; keyed rules before unkeyed ones; later before earlier.
        let armed_at = |rule: &Rule| -> Option<usize> {
            match &rule.after {
                None => Some(0),
                Some((op, field, value)) => history
                    .iter()
                    .position(|(o, b)| {
                        o == op && key_matches(&Some((field.clone(), value.clone())), b)
                    })
                    .map(|i| i + 1),
            }
        };
        let best = state
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.operation == operation && key_matches(&r.key, body))
            .filter_map(|(i, r)| armed_at(r).map(|at| ((at, r.key.is_some(), i), i)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, i)| i);
        let mut reply = match best {
            Some(i) => {
                let rule = &mut state.rules[i];
                rule.queue.pop_front().unwrap_or_else(|| rule.last.clone())
            }
            None => Reply::Frame,
        };
        if let Reply::Registered(arn) = &reply {
            reply = Reply::Doc(registered(body, arn));
        }
        if !matches!(reply, Reply::Frame) {
            if operation == "ECS.DescribeServices" {
                // A rule answering DescribeServices still moves the timeline on.
                if let Some(i) = state.active {
                    state.timelines[i].reads += 1;
                }
            }
            return (reply, false);
        }
        match frame_reply(&mut state, operation, body) {
            Some(reply) => (reply, false),
            None => (
                Reply::error(
                    400,
                    unknown_code(operation),
                    &format!("fake AWS: nothing scripted for {operation}"),
                ),
                true,
            ),
        }
    }
}

fn unknown_code(operation: &str) -> &'static str {
    if operation.starts_with("ELBv2.") {
        "InvalidAction"
    } else {
        "UnknownOperationException"
    }
}

fn key_matches(key: &Option<(String, String)>, body: &Value) -> bool {
    let Some((field, value)) = key else {
        return true;
    };
    match body.get(field) {
        Some(Value::String(s)) => s == value,
        // A list matches when one item is the value, or (a list of
        // structures, e.g. ECR `imageIds`) when one item has it as a member.
        Some(Value::Array(items)) => items.iter().any(|i| match i {
            Value::Object(m) => m.values().any(|v| v.as_str() == Some(value)),
            other => other.as_str() == Some(value),
        }),
        Some(other) => &other.to_string() == value,
        None => false,
    }
}

/// The answer the current frame gives, for the operations a frame knows.
fn frame_reply(state: &mut State, operation: &str, body: &Value) -> Option<Reply> {
    let alarms = state
        .active
        .and_then(|i| state.timelines[i].current().alarms.clone())
        .unwrap_or_else(|| state.alarms.clone());
    if operation == "CloudWatch.DescribeAlarms" {
        return Some(Reply::Doc(describe_alarms(&alarms, body)));
    }
    let i = state.active?;
    let timeline = &mut state.timelines[i];
    if operation == "ECS.DescribeServices" {
        timeline.reads += 1;
    }
    let frame = timeline.current().clone();
    let several = !frame.also.is_empty();
    let every: Vec<Value> = std::iter::once(frame.service.clone())
        .chain(frame.also.iter().cloned())
        .collect();
    let named = |service: &Value, name: &str| {
        service["serviceName"].as_str() == Some(name)
            || service["serviceArn"].as_str() == Some(name)
    };
    let doc = match operation {
        "ECS.DescribeServices" if several => {
            let asked: Vec<&str> = body
                .get("services")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let found: Vec<Value> = asked
                .iter()
                .filter_map(|name| every.iter().find(|s| named(s, name)).cloned())
                .collect();
            let failures: Vec<Value> = asked
                .iter()
                .filter(|name| !every.iter().any(|s| named(s, name)))
                .map(|name| json!({"arn": service_arn("prod", name), "reason": "MISSING"}))
                .collect();
            json!({"services": found, "failures": failures})
        }
        "ECS.UpdateService" if several => {
            let name = body["service"].as_str().unwrap_or_default();
            json!({"service": every.iter().find(|s| named(s, name)).cloned().unwrap_or(frame.service.clone())})
        }
        "ECS.DescribeServices" => json!({"services": [frame.service], "failures": []}),
        "ECS.UpdateService" => json!({"service": frame.service}),
        "ECS.ListTasks" => {
            let wanted = body
                .get("desiredStatus")
                .and_then(Value::as_str)
                .unwrap_or("RUNNING");
            let group = format!(
                "service:{}",
                body["serviceName"].as_str().unwrap_or_default()
            );
            let arns: Vec<Value> = frame
                .tasks
                .iter()
                .filter(|t| !several || t["group"].as_str() == Some(group.as_str()))
                .filter(|t| t["desiredStatus"].as_str() == Some(wanted))
                .map(|t| t["taskArn"].clone())
                .collect();
            json!({"taskArns": arns})
        }
        "ECS.DescribeTasks" => {
            let asked: Vec<&str> = body
                .get("tasks")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut found = Vec::new();
            let mut failures = Vec::new();
            for arn in asked {
                match frame
                    .tasks
                    .iter()
                    .find(|t| t["taskArn"].as_str() == Some(arn))
                {
                    Some(task) => found.push(task.clone()),
                    None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                }
            }
            json!({"tasks": found, "failures": failures})
        }
        "ELBv2.DescribeTargetHealth" => {
            let group = body["TargetGroupArn"].as_str().unwrap_or_default();
            let (_, targets) = frame.targets.iter().find(|(arn, _)| arn == group)?;
            json!({"TargetHealthDescriptions": targets})
        }
        "ELBv2.DescribeTargetGroups" => {
            let groups: Vec<Value> = frame
                .targets
                .iter()
                .map(|(arn, _)| target_group(arn, "ip"))
                .collect();
            json!({"TargetGroups": groups})
        }
        "ELBv2.DescribeTargetGroupAttributes" => json!({"Attributes": [
            {"Key": "deregistration_delay.timeout_seconds", "Value": "5"},
            {"Key": "slow_start.duration_seconds", "Value": "0"},
        ]}),
        "ECS.ListServiceDeployments" => {
            let deployments = frame.service_deployments?;
            let briefs: Vec<Value> = deployments.iter().map(service_deployment_brief).collect();
            json!({"serviceDeployments": briefs})
        }
        "ECS.DescribeServiceDeployments" => {
            let deployments = frame.service_deployments?;
            let asked: Vec<&str> = body
                .get("serviceDeploymentArns")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let found: Vec<Value> = deployments
                .into_iter()
                .filter(|d| {
                    asked.is_empty()
                        || asked.contains(&d["serviceDeploymentArn"].as_str().unwrap_or_default())
                })
                .collect();
            json!({"serviceDeployments": found, "failures": []})
        }
        "ECS.TagResource" | "ECS.UntagResource" => json!({}),
        _ => return None,
    };
    Some(Reply::Doc(doc))
}

fn service_deployment_brief(d: &Value) -> Value {
    let mut brief = Map::new();
    for key in [
        "serviceDeploymentArn",
        "serviceArn",
        "clusterArn",
        "startedAt",
        "createdAt",
        "finishedAt",
        "status",
        "statusReason",
    ] {
        if let Some(v) = d.get(key) {
            brief.insert(key.into(), v.clone());
        }
    }
    if let Some(arn) = d.pointer("/targetServiceRevision/arn") {
        brief.insert("targetServiceRevisionArn".into(), arn.clone());
    }
    Value::Object(brief)
}

fn describe_alarms(alarms: &[(String, String, String)], body: &Value) -> Value {
    let asked: Vec<String> = match body.get("AlarmNames") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => body
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with("AlarmNames.member."))
                    .filter_map(|(_, v)| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let found: Vec<Value> = alarms
        .iter()
        .filter(|(name, _, _)| asked.is_empty() || asked.contains(name))
        .map(|(name, state, reason)| metric_alarm(name, state, reason))
        .collect();
    json!({"MetricAlarms": found, "CompositeAlarms": []})
}

/// RegisterTaskDefinition's answer: the request body as the new revision.
fn registered(body: &Value, arn: &str) -> Value {
    let mut td = body.clone();
    let tags = td
        .as_object_mut()
        .and_then(|m| m.remove("tags"))
        .unwrap_or_else(|| json!([]));
    let revision: i64 = arn
        .rsplit(':')
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    td["taskDefinitionArn"] = json!(arn);
    td["revision"] = json!(revision);
    td["status"] = json!("ACTIVE");
    td["registeredAt"] = json!(now());
    td["registeredBy"] = json!(format!("arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci"));
    json!({"taskDefinition": td, "tags": tags})
}

fn describe_mutation(call: &Call) -> String {
    let op = call
        .operation
        .split_once('.')
        .map(|(_, o)| o)
        .unwrap_or(&call.operation);
    let short = |arn: &str| arn.rsplit('/').next().unwrap_or(arn).to_string();
    match op {
        "UpdateService" => format!("UpdateService {}", short(&call.field("taskDefinition"))),
        "RegisterTaskDefinition" => format!("RegisterTaskDefinition {}", call.field("family")),
        "TagResource" => {
            let tags: Vec<String> = call.body["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|t| {
                            format!(
                                "{}={}",
                                t["key"].as_str().unwrap_or_default(),
                                t["value"].as_str().unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "TagResource {} {}",
                short(&call.field("resourceArn")),
                tags.join(",")
            )
        }
        "DeregisterTaskDefinition" => format!(
            "DeregisterTaskDefinition {}",
            short(&call.field("taskDefinition"))
        ),
        "StopTask" => format!("StopTask {}", short(&call.field("task"))),
        _ => op.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Protocols

fn parse_request(parts: &hyper::http::request::Parts, body: &[u8]) -> (Protocol, String, Value) {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let target = header("x-amz-target");
    if let Some((prefix, op)) = target.split_once('.') {
        let service = match prefix {
            p if p.starts_with("AmazonEC2ContainerServiceV") => "ECS",
            p if p.starts_with("AmazonEC2ContainerRegistry") => "ECR",
            p if p.starts_with("Logs_") => "Logs",
            p if p.starts_with("GraniteServiceVersion") => "CloudWatch",
            other => other,
        };
        let protocol = if header("content-type").contains("1.0") || service == "CloudWatch" {
            Protocol::Json10
        } else {
            Protocol::Json11
        };
        let parsed = serde_json::from_slice(body).unwrap_or(Value::Null);
        return (protocol, format!("{service}.{op}"), parsed);
    }
    let path = parts.uri.path();
    if let Some(rest) = path.strip_prefix("/service/") {
        // Smithy RPC v2 CBOR: /service/<ServiceShape>/operation/<Operation>
        let mut bits = rest.split('/');
        let shape = bits.next().unwrap_or_default();
        let op = bits.nth(1).unwrap_or_default();
        let service = if shape.starts_with("GraniteServiceVersion") {
            "CloudWatch"
        } else {
            shape
        };
        let parsed = if body.is_empty() {
            json!({})
        } else {
            cbor::decode(body).unwrap_or(Value::Null)
        };
        return (Protocol::Cbor, format!("{service}.{op}"), parsed);
    }
    let form = parse_form(&String::from_utf8_lossy(body));
    let action = form["Action"].as_str().unwrap_or("unknown").to_string();
    let service = match form["Version"].as_str() {
        Some("2010-08-01") => "CloudWatch",
        _ => "ELBv2",
    };
    (Protocol::Query, format!("{service}.{action}"), form)
}

fn parse_form(text: &str) -> Value {
    let mut map = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.insert(percent_decode(k), Value::String(percent_decode(v)));
    }
    Value::Object(map)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn namespace(operation: &str) -> &'static str {
    if operation.starts_with("CloudWatch.") {
        CLOUDWATCH_NS
    } else {
        ELB_NS
    }
}

fn render(protocol: Protocol, operation: &str, reply: &Reply) -> Response<Full<Bytes>> {
    let request_id = format!("fake-{:08x}", rand_u32());
    let op = operation
        .split_once('.')
        .map(|(_, o)| o)
        .unwrap_or(operation);
    let (status, content_type, body): (u16, &str, Vec<u8>) = match (protocol, reply) {
        (Protocol::Query, Reply::Doc(doc)) => {
            let mut xml = format!(
                "<{op}Response xmlns=\"{}\"><{op}Result>",
                namespace(operation)
            );
            to_xml(doc, &mut xml);
            xml.push_str(&format!(
                "</{op}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>"
            ));
            (200, "text/xml", xml.into_bytes())
        }
        (
            Protocol::Query,
            Reply::Error {
                status,
                code,
                message,
            },
        ) => {
            let xml = format!(
                "<ErrorResponse xmlns=\"{}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                namespace(operation),
                escape(code),
                escape(message)
            );
            (*status, "text/xml", xml.into_bytes())
        }
        (Protocol::Cbor, Reply::Doc(doc)) => (200, "application/cbor", cbor::encode(doc)),
        (
            Protocol::Cbor,
            Reply::Error {
                status,
                code,
                message,
            },
        ) => (
            *status,
            "application/cbor",
            cbor::encode(
                &json!({"__type": format!("com.amazonaws.cloudwatch#{code}"), "message": message}),
            ),
        ),
        (_, Reply::Doc(doc)) => (
            200,
            json_type(protocol),
            epochs_as_numbers(doc).to_string().into_bytes(),
        ),
        (
            _,
            Reply::Error {
                status,
                code,
                message,
            },
        ) => (
            *status,
            json_type(protocol),
            json!({"__type": code, "message": message})
                .to_string()
                .into_bytes(),
        ),
        (_, Reply::Frame | Reply::Registered(_)) => unreachable!("resolved before rendering"),
    };
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", &request_id);
    if protocol == Protocol::Cbor {
        builder = builder.header("smithy-protocol", "rpc-v2-cbor");
        if let Reply::Error { code, .. } = reply {
            builder = builder.header("x-amzn-query-error", format!("{code};Sender"));
        }
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

fn json_type(protocol: Protocol) -> &'static str {
    if protocol == Protocol::Json10 {
        "application/x-amz-json-1.0"
    } else {
        "application/x-amz-json-1.1"
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// `{"$epoch": s}` → `s` (awsJson timestamps are epoch seconds).
fn epochs_as_numbers(doc: &Value) -> Value {
    match doc {
        Value::Object(m) if m.len() == 1 && m.contains_key("$epoch") => m["$epoch"].clone(),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), epochs_as_numbers(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(epochs_as_numbers).collect()),
        other => other.clone(),
    }
}

/// awsQuery XML: members as elements, lists as `<member>` items, timestamps ISO 8601.
fn to_xml(doc: &Value, out: &mut String) {
    match doc {
        Value::Object(m) if m.len() == 1 && m.contains_key("$epoch") => {
            let secs = m["$epoch"].as_f64().unwrap_or_default();
            let at = chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64).unwrap();
            out.push_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
        Value::Object(m) => {
            for (k, v) in m {
                out.push_str(&format!("<{k}>"));
                to_xml(v, out);
                out.push_str(&format!("</{k}>"));
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str("<member>");
                to_xml(item, out);
                out.push_str("</member>");
            }
        }
        Value::String(s) => out.push_str(&escape(s)),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A timestamp every protocol renders its own way (epoch number, ISO 8601, CBOR tag 1).
pub fn epoch(seconds: f64) -> Value {
    json!({ "$epoch": seconds })
}

/// Seconds since the epoch, now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A minimal CBOR codec (RFC 8949) between bytes and JSON values: enough for
/// Smithy RPC v2 CBOR requests and responses. Byte strings decode to base64
/// text; tag 1 (epoch time) to `{"$epoch": n}` and back.
pub mod cbor {
    use serde_json::{json, Map, Number, Value};

    pub fn encode(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        put(value, &mut out);
        out
    }

    fn head(major: u8, n: u64, out: &mut Vec<u8>) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes());
            }
            _ => {
                out.push(m | 27);
                out.extend(n.to_be_bytes());
            }
        }
    }

    fn put(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Null => out.push(0xf6),
            Value::Bool(false) => out.push(0xf4),
            Value::Bool(true) => out.push(0xf5),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    head(0, u, out);
                } else if let Some(i) = n.as_i64() {
                    head(1, (-1 - i) as u64, out);
                } else {
                    out.push(0xfb);
                    out.extend(n.as_f64().unwrap_or_default().to_be_bytes());
                }
            }
            Value::String(s) => {
                head(3, s.len() as u64, out);
                out.extend(s.as_bytes());
            }
            Value::Array(items) => {
                head(4, items.len() as u64, out);
                items.iter().for_each(|i| put(i, out));
            }
            Value::Object(m) if m.len() == 1 && m.contains_key("$epoch") => {
                out.push(0xc1);
                out.push(0xfb);
                out.extend(m["$epoch"].as_f64().unwrap_or_default().to_be_bytes());
            }
            Value::Object(m) => {
                head(5, m.len() as u64, out);
                for (k, v) in m {
                    put(&Value::String(k.clone()), out);
                    put(v, out);
                }
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Value> {
        let mut at = 0;
        let value = item(bytes, &mut at)?;
        (at == bytes.len()).then_some(value)
    }

    /// `None` at a break (0xff) or on malformed input.
    fn item(b: &[u8], at: &mut usize) -> Option<Value> {
        let first = *b.get(*at)?;
        *at += 1;
        let (major, info) = (first >> 5, first & 0x1f);
        if first == 0xff {
            return None;
        }
        let arg = |at: &mut usize| -> Option<Option<u64>> {
            let take = |n: usize, at: &mut usize| -> Option<u64> {
                let s = b.get(*at..*at + n)?;
                *at += n;
                Some(s.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            };
            Some(match info {
                0..=23 => Some(u64::from(info)),
                24 => Some(take(1, at)?),
                25 => Some(take(2, at)?),
                26 => Some(take(4, at)?),
                27 => Some(take(8, at)?),
                31 => None, // indefinite length
                _ => return None,
            })
        };
        match major {
            0 => Some(json!(arg(at)??)),
            1 => Some(json!(-1 - arg(at)?? as i64)),
            2 | 3 => {
                let mut data = Vec::new();
                match arg(at)? {
                    Some(n) => {
                        data.extend(b.get(*at..*at + n as usize)?);
                        *at += n as usize;
                    }
                    None => {
                        while b.get(*at) != Some(&0xff) {
                            match item(b, at)? {
                                Value::String(s) => data.extend(s.into_bytes()),
                                _ => return None,
                            }
                        }
                        *at += 1;
                    }
                }
                if major == 3 {
                    Some(Value::String(String::from_utf8(data).ok()?))
                } else {
                    use base64::Engine as _;
                    Some(Value::String(
                        base64::engine::general_purpose::STANDARD.encode(data),
                    ))
                }
            }
            4 => {
                let mut items = Vec::new();
                match arg(at)? {
                    Some(n) => {
                        for _ in 0..n {
                            items.push(item(b, at)?);
                        }
                    }
                    None => {
                        while b.get(*at) != Some(&0xff) {
                            items.push(item(b, at)?);
                        }
                        *at += 1;
                    }
                }
                Some(Value::Array(items))
            }
            5 => {
                let mut map = Map::new();
                let mut pair = |at: &mut usize| -> Option<()> {
                    let key = match item(b, at)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    map.insert(key, item(b, at)?);
                    Some(())
                };
                match arg(at)? {
                    Some(n) => {
                        for _ in 0..n {
                            pair(at)?;
                        }
                    }
                    None => {
                        while b.get(*at) != Some(&0xff) {
                            pair(at)?;
                        }
                        *at += 1;
                    }
                }
                Some(Value::Object(map))
            }
            6 => {
                let tag = arg(at)??;
                let inner = item(b, at)?;
                Some(if tag == 1 {
                    json!({ "$epoch": inner })
                } else {
                    inner
                })
            }
            _ => match info {
                20 => Some(Value::Bool(false)),
                21 => Some(Value::Bool(true)),
                22 | 23 => Some(Value::Null),
                25 => {
                    let h = u16::from_be_bytes(b.get(*at..*at + 2)?.try_into().ok()?);
                    *at += 2;
                    Some(json!(f16(h)))
                }
                26 => {
                    let f = f32::from_be_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
                    *at += 4;
                    Number::from_f64(f64::from(f)).map(Value::Number)
                }
                27 => {
                    let f = f64::from_be_bytes(b.get(*at..*at + 8)?.try_into().ok()?);
                    *at += 8;
                    Number::from_f64(f).map(Value::Number)
                }
                _ => None,
            },
        }
    }

    fn f16(h: u16) -> f64 {
        let exp = (h >> 10) & 0x1f;
        let mant = f64::from(h & 0x3ff);
        let value = match exp {
            0 => mant * 2f64.powi(-24),
            31 => f64::INFINITY,
            _ => (mant + 1024.0) * 2f64.powi(i32::from(exp) - 25),
        };
        if h & 0x8000 != 0 {
            -value
        } else {
            value
        }
    }
}

// ---------------------------------------------------------------------------
// Documents, shaped as the API references describe them.

pub fn cluster_arn(cluster: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}")
}

pub fn service_arn(cluster: &str, service: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}")
}

pub fn task_definition_arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}")
}

pub fn target_group_arn(name: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{name}/73e2d6bc24d8a067")
}

/// `ecs-svc/` and 19 digits, as ECS numbers deployments.
pub fn deployment_id(n: u64) -> String {
    format!("ecs-svc/{}", 1_000_000_000_000_000_000u64 + n)
}

/// A task ARN with a 32-hex id derived from `n`.
pub fn task_arn(cluster: &str, n: u64) -> String {
    let id = format!(
        "{:016x}{:016x}",
        (n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        (n + 7).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
    );
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{id}")
}

/// An ECS `Service` (DescribeServices `services[]`, UpdateService `service`).
#[derive(Debug, Clone)]
pub struct ServiceDoc(pub Value);

impl ServiceDoc {
    pub fn new(cluster: &str, name: &str, task_definition: &str, desired: i32) -> Self {
        let at = now() - 86_400.0;
        ServiceDoc(json!({
            "serviceArn": service_arn(cluster, name),
            "serviceName": name,
            "clusterArn": cluster_arn(cluster),
            "loadBalancers": [],
            "serviceRegistries": [],
            "status": "ACTIVE",
            "desiredCount": desired,
            "runningCount": desired,
            "pendingCount": 0,
            "launchType": "FARGATE",
            "platformVersion": "LATEST",
            "platformFamily": "Linux",
            "taskDefinition": task_definition,
            "deploymentConfiguration": {
                "deploymentCircuitBreaker": {"enable": false, "rollback": false},
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                "strategy": "ROLLING",
            },
            "deployments": [],
            "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"),
            "events": [],
            "createdAt": at,
            "placementConstraints": [],
            "placementStrategy": [],
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d4e5f60718"],
                "securityGroups": ["sg-0123456789abcdef0"],
                "assignPublicIp": "DISABLED",
            }},
            "healthCheckGracePeriodSeconds": 0,
            "schedulingStrategy": "REPLICA",
            "deploymentController": {"type": "ECS"},
            "createdBy": format!("arn:aws:iam::{ACCOUNT}:role/deploy"),
            "enableECSManagedTags": true,
            "propagateTags": "NONE",
            "enableExecuteCommand": false,
            "availabilityZoneRebalancing": "ENABLED",
        }))
    }

    pub fn set(mut self, pointer: &str, value: Value) -> Self {
        set(&mut self.0, pointer, value);
        self
    }

    pub fn deployment(mut self, deployment: DeploymentDoc) -> Self {
        self.0["deployments"]
            .as_array_mut()
            .unwrap()
            .push(deployment.0);
        self
    }

    pub fn circuit_breaker(self, enable: bool, rollback: bool) -> Self {
        self.set(
            "/deploymentConfiguration/deploymentCircuitBreaker",
            json!({"enable": enable, "rollback": rollback}),
        )
    }

    pub fn alarms(self, names: &[&str], enable: bool, rollback: bool) -> Self {
        self.set(
            "/deploymentConfiguration/alarms",
            json!({"alarmNames": names, "enable": enable, "rollback": rollback}),
        )
    }

    /// `ROLLING` (the default), `BLUE_GREEN`, `LINEAR`, `CANARY`.
    pub fn strategy(self, strategy: &str) -> Self {
        self.set("/deploymentConfiguration/strategy", json!(strategy))
    }

    pub fn target_group(mut self, target_group: &str, container: &str, port: i32) -> Self {
        self.0["loadBalancers"].as_array_mut().unwrap().push(json!({
            "targetGroupArn": target_group, "containerName": container, "containerPort": port,
        }));
        self
    }

    /// A target group with an alternate one (ECS-native blue/green).
    pub fn blue_green_target_groups(
        mut self,
        production: &str,
        alternate: &str,
        container: &str,
        port: i32,
    ) -> Self {
        self.0["loadBalancers"].as_array_mut().unwrap().push(json!({
            "targetGroupArn": production, "containerName": container, "containerPort": port,
            "advancedConfiguration": {
                "alternateTargetGroupArn": alternate,
                "productionListenerRule": format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"),
                "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsInfrastructureRoleForLoadBalancers"),
            },
        }));
        self
    }

    /// A Classic Load Balancer (`loadBalancerName`, no target group).
    pub fn classic_load_balancer(mut self, name: &str, container: &str, port: i32) -> Self {
        self.0["loadBalancers"].as_array_mut().unwrap().push(json!({
            "loadBalancerName": name, "containerName": container, "containerPort": port,
        }));
        self
    }

    /// Service events come newest first.
    pub fn event(mut self, id: &str, created_at: f64, message: &str) -> Self {
        self.0["events"].as_array_mut().unwrap().insert(
            0,
            json!({"id": id, "createdAt": created_at, "message": message}),
        );
        self
    }

    pub fn grace(self, seconds: i32) -> Self {
        self.set("/healthCheckGracePeriodSeconds", json!(seconds))
    }

    pub fn controller(self, kind: &str) -> Self {
        self.set("/deploymentController", json!({"type": kind}))
    }
}

impl From<ServiceDoc> for Value {
    fn from(doc: ServiceDoc) -> Value {
        doc.0
    }
}

/// An ECS `Deployment` (a service's `deployments[]`).
#[derive(Debug, Clone)]
pub struct DeploymentDoc(pub Value);

impl DeploymentDoc {
    /// `status`: PRIMARY, ACTIVE, INACTIVE. `rollout`: IN_PROGRESS, COMPLETED, FAILED.
    pub fn new(id: &str, status: &str, task_definition: &str, rollout: &str) -> Self {
        let at = now();
        DeploymentDoc(json!({
            "id": id,
            "status": status,
            "taskDefinition": task_definition,
            "desiredCount": 1,
            "pendingCount": 0,
            "runningCount": 0,
            "failedTasks": 0,
            "createdAt": at,
            "updatedAt": at,
            "launchType": "FARGATE",
            "platformVersion": "1.4.0",
            "platformFamily": "Linux",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d4e5f60718"],
                "securityGroups": ["sg-0123456789abcdef0"],
                "assignPublicIp": "DISABLED",
            }},
            "rolloutState": rollout,
            "rolloutStateReason": match rollout {
                "COMPLETED" => "ECS deployment ecs-svc completed.".to_string(),
                "FAILED" => "ECS deployment circuit breaker: tasks failed to start.".to_string(),
                _ => format!("ECS deployment {id} in progress."),
            },
        }))
    }

    pub fn counts(mut self, desired: i32, running: i32, failed: i32) -> Self {
        self.0["desiredCount"] = json!(desired);
        self.0["runningCount"] = json!(running);
        self.0["failedTasks"] = json!(failed);
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.0["rolloutStateReason"] = json!(reason);
        self
    }

    pub fn created_at(mut self, at: f64) -> Self {
        self.0["createdAt"] = json!(at);
        self.0["updatedAt"] = json!(at);
        self
    }
}

/// An ECS `Task` (DescribeTasks `tasks[]`), Fargate/awsvpc by default.
#[derive(Debug, Clone)]
pub struct TaskDoc(pub Value);

impl TaskDoc {
    /// A RUNNING task of `task_definition`, started by deployment `started_by`,
    /// with one essential container `container` and an ENI holding `ipv4`.
    pub fn running(
        arn: &str,
        task_definition: &str,
        started_by: &str,
        container: &str,
        ipv4: &str,
    ) -> Self {
        let at = now();
        let cluster = arn.split('/').nth(1).unwrap_or("default");
        let eni = "eni-0f3c9a1b2d4e5f607";
        TaskDoc(json!({
            "attachments": [{
                "id": "c9ab5a5e-1b2c-4d3e-8f90-1a2b3c4d5e6f",
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": "subnet-0a1b2c3d4e5f60718"},
                    {"name": "networkInterfaceId", "value": eni},
                    {"name": "macAddress", "value": "0a:1b:2c:3d:4e:5f"},
                    {"name": "privateDnsName", "value": format!("ip-{}.ec2.internal", ipv4.replace('.', "-"))},
                    {"name": "privateIPv4Address", "value": ipv4},
                ],
            }],
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "availabilityZone": "us-east-1a",
            "clusterArn": cluster_arn(cluster),
            "connectivity": "CONNECTED",
            "connectivityAt": at - 20.0,
            "containers": [{
                "containerArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:container/{cluster}/{}/1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6", arn.rsplit('/').next().unwrap_or_default()),
                "taskArn": arn,
                "name": container,
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:latest",
                "runtimeId": "0123456789abcdef-1234567890",
                "lastStatus": "RUNNING",
                "networkBindings": [],
                "networkInterfaces": [{
                    "attachmentId": "c9ab5a5e-1b2c-4d3e-8f90-1a2b3c4d5e6f",
                    "privateIpv4Address": ipv4,
                }],
                "healthStatus": "UNKNOWN",
                "cpu": "0",
            }],
            "cpu": "256",
            "createdAt": at - 30.0,
            "desiredStatus": "RUNNING",
            "enableExecuteCommand": false,
            "group": format!("service:{}", "web"),
            "healthStatus": "UNKNOWN",
            "lastStatus": "RUNNING",
            "launchType": "FARGATE",
            "memory": "512",
            "overrides": {"containerOverrides": [{"name": container}], "inferenceAcceleratorOverrides": []},
            "platformVersion": "1.4.0",
            "platformFamily": "Linux",
            "pullStartedAt": at - 28.0,
            "pullStoppedAt": at - 25.0,
            "startedAt": at - 20.0,
            "startedBy": started_by,
            "tags": [],
            "taskArn": arn,
            "taskDefinitionArn": task_definition,
            "version": 3,
            "ephemeralStorage": {"sizeInGiB": 20},
        }))
    }

    pub fn set(mut self, pointer: &str, value: Value) -> Self {
        set(&mut self.0, pointer, value);
        self
    }

    /// PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED.
    pub fn status(mut self, last: &str, desired: &str) -> Self {
        self.0["lastStatus"] = json!(last);
        self.0["desiredStatus"] = json!(desired);
        for c in self.0["containers"].as_array_mut().unwrap() {
            c["lastStatus"] = json!(if last == "STOPPED" { "STOPPED" } else { last });
        }
        self
    }

    /// Stopped by ECS: `stop_code` (TaskFailedToStart, EssentialContainerExited,
    /// UserInitiated, ServiceSchedulerInitiated, SpotInterruption, TerminationNotice).
    pub fn stopped(mut self, stop_code: &str, reason: &str) -> Self {
        let at = now();
        self = self.status("STOPPED", "STOPPED");
        self.0["stopCode"] = json!(stop_code);
        self.0["stoppedReason"] = json!(reason);
        self.0["stoppingAt"] = json!(at - 2.0);
        self.0["executionStoppedAt"] = json!(at - 1.0);
        self.0["stoppedAt"] = json!(at);
        self.0["connectivity"] = json!("DISCONNECTED");
        self
    }

    /// The container's exit: `exitCode`, `reason`.
    pub fn container_exit(mut self, exit_code: Option<i32>, reason: Option<&str>) -> Self {
        let c = &mut self.0["containers"][0];
        c["lastStatus"] = json!("STOPPED");
        if let Some(code) = exit_code {
            c["exitCode"] = json!(code);
        }
        if let Some(reason) = reason {
            c["reason"] = json!(reason);
        }
        self
    }

    /// `healthStatus` of the task and of its (first) container: HEALTHY, UNHEALTHY, UNKNOWN.
    pub fn health(mut self, status: &str) -> Self {
        self.0["healthStatus"] = json!(status);
        self.0["containers"][0]["healthStatus"] = json!(status);
        self
    }

    /// IPv6 only: the ENI has `ipv6Address` and no `privateIPv4Address`.
    pub fn ipv6_only(mut self, ipv6: &str) -> Self {
        let details = self.0["attachments"][0]["details"].as_array_mut().unwrap();
        details.retain(|d| d["name"] != "privateIPv4Address" && d["name"] != "privateDnsName");
        details.push(json!({"name": "ipv6Address", "value": ipv6}));
        self.0["containers"][0]["networkInterfaces"] = json!([{
            "attachmentId": "c9ab5a5e-1b2c-4d3e-8f90-1a2b3c4d5e6f",
            "ipv6Address": ipv6,
        }]);
        self
    }

    /// Dual stack: an `ipv6Address` next to the IPv4 one.
    pub fn ipv6(mut self, ipv6: &str) -> Self {
        self.0["attachments"][0]["details"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "ipv6Address", "value": ipv6}));
        self.0["containers"][0]["networkInterfaces"][0]["ipv6Address"] = json!(ipv6);
        self
    }

    /// EC2 launch type in bridge mode: no ENI, the container's port published
    /// on `host_port` of container instance `container_instance_arn`.
    pub fn bridge(
        mut self,
        container_instance_arn: &str,
        container_port: i32,
        host_port: i32,
    ) -> Self {
        self.0["attachments"] = json!([]);
        self.0["launchType"] = json!("EC2");
        self.0["containerInstanceArn"] = json!(container_instance_arn);
        self.0.as_object_mut().unwrap().remove("platformVersion");
        let c = &mut self.0["containers"][0];
        c.as_object_mut().unwrap().remove("networkInterfaces");
        c["networkBindings"] = json!([{
            "bindIP": "0.0.0.0", "containerPort": container_port, "hostPort": host_port, "protocol": "tcp",
        }]);
        self
    }

    /// `capacityProviderName` (e.g. FARGATE_SPOT), set on tasks placed by a capacity provider strategy.
    pub fn capacity_provider(mut self, name: &str) -> Self {
        self.0["capacityProviderName"] = json!(name);
        self
    }

    pub fn started_at(mut self, at: f64) -> Self {
        self.0["createdAt"] = json!(at - 10.0);
        self.0["startedAt"] = json!(at);
        self
    }
}

impl From<TaskDoc> for Value {
    fn from(doc: TaskDoc) -> Value {
        doc.0
    }
}

/// DescribeContainerInstances' answer: container instance ARN → EC2 instance id.
pub fn container_instances(instances: &[(&str, &str)]) -> Value {
    let docs: Vec<Value> = instances
        .iter()
        .map(|(arn, id)| {
            json!({
                "containerInstanceArn": arn,
                "ec2InstanceId": id,
                "status": "ACTIVE",
                "agentConnected": true,
                "runningTasksCount": 2,
                "pendingTasksCount": 0,
                "versionInfo": {"agentVersion": "1.89.2", "dockerVersion": "DockerVersion: 25.0.8"},
                "attributes": [{"name": "ecs.availability-zone", "value": "us-east-1a"}],
            })
        })
        .collect();
    json!({"containerInstances": docs, "failures": []})
}

/// DescribeTaskDefinition's answer (`include: ["TAGS"]`): `taskDefinition` and `tags`.
pub fn describe_task_definition(task_definition: Value, tags: &[(&str, &str)]) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({"taskDefinition": task_definition, "tags": tags})
}

/// A Fargate `TaskDefinition` with one essential container listening on `port`.
pub fn task_definition(arn: &str, container: &str, image: &str, port: i32) -> Value {
    let (family, revision) = arn
        .rsplit('/')
        .next()
        .and_then(|n| n.rsplit_once(':'))
        .unwrap_or(("web", "1"));
    json!({
        "taskDefinitionArn": arn,
        "containerDefinitions": [{
            "name": container,
            "image": image,
            "cpu": 0,
            "portMappings": [{"containerPort": port, "hostPort": port, "protocol": "tcp", "name": format!("{container}-{port}-tcp"), "appProtocol": "http"}],
            "essential": true,
            "environment": [],
            "mountPoints": [],
            "volumesFrom": [],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": format!("/ecs/{family}"), "awslogs-region": REGION, "awslogs-stream-prefix": "ecs",
            }},
            "systemControls": [],
        }],
        "family": family,
        "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"),
        "networkMode": "awsvpc",
        "revision": revision.parse::<i64>().unwrap_or(1),
        "volumes": [],
        "status": "ACTIVE",
        "requiresAttributes": [
            {"name": "com.amazonaws.ecs.capability.ecr-auth"},
            {"name": "ecs.capability.task-eni"},
        ],
        "placementConstraints": [],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "registeredAt": now() - 86_400.0,
        "registeredBy": format!("arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci"),
    })
}

/// Adds a container `healthCheck` to the first container of a task definition.
pub fn with_health_check(mut task_definition: Value, command: &str) -> Value {
    task_definition["containerDefinitions"][0]["healthCheck"] = json!({
        "command": ["CMD-SHELL", command],
        "interval": 5,
        "timeout": 2,
        "retries": 2,
        "startPeriod": 0,
    });
    task_definition
}

/// An ELBv2 `TargetHealthDescription`: `Target` (`Id`, `Port`), `HealthCheckPort`,
/// `TargetHealth` (`State`, `Reason`, `Description`).
pub fn target(id: &str, port: i32, state: &str) -> Value {
    let (reason, description) = match state {
        "initial" => (
            Some("Elb.InitialHealthChecking"),
            Some("Initial health checks in progress"),
        ),
        "unhealthy" => (
            Some("Target.ResponseCodeMismatch"),
            Some("Health checks failed with these codes: [503]"),
        ),
        "draining" => (
            Some("Target.DeregistrationInProgress"),
            Some("Target deregistration is in progress"),
        ),
        "unused" => (
            Some("Target.NotInUse"),
            Some("Target group is not configured to receive traffic from the load balancer"),
        ),
        _ => (None, None),
    };
    target_with(id, port, state, reason, description)
}

pub fn target_with(
    id: &str,
    port: i32,
    state: &str,
    reason: Option<&str>,
    description: Option<&str>,
) -> Value {
    let mut health = json!({"State": state});
    if let Some(r) = reason {
        health["Reason"] = json!(r);
    }
    if let Some(d) = description {
        health["Description"] = json!(d);
    }
    json!({
        "Target": {"Id": id, "Port": port, "AvailabilityZone": "us-east-1a"},
        "HealthCheckPort": port.to_string(),
        "TargetHealth": health,
    })
}

/// An ELBv2 `TargetGroup` (DescribeTargetGroups).
pub fn target_group(arn: &str, target_type: &str) -> Value {
    let name = arn.split('/').nth(1).unwrap_or("web");
    json!({
        "TargetGroupArn": arn,
        "TargetGroupName": name,
        "Protocol": "HTTP",
        "Port": 8080,
        "VpcId": "vpc-0123456789abcdef0",
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPort": "traffic-port",
        "HealthCheckEnabled": true,
        "HealthCheckIntervalSeconds": 5,
        "HealthCheckTimeoutSeconds": 2,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 2,
        "HealthCheckPath": "/health",
        "Matcher": {"HttpCode": "200"},
        "LoadBalancerArns": [format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/{name}/50dc6c495c0c9188")],
        "TargetType": target_type,
        "ProtocolVersion": "HTTP1",
        "IpAddressType": "ipv4",
    })
}

/// ECR DescribeRepositories' answer for one repository.
pub fn ecr_repositories(name: &str) -> Value {
    json!({"repositories": [{
        "repositoryArn": format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"),
        "registryId": ACCOUNT,
        "repositoryName": name,
        "repositoryUri": ecr_uri(name),
        "createdAt": now() - 864_000.0,
        "imageTagMutability": "MUTABLE",
        "imageScanningConfiguration": {"scanOnPush": false},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    }]})
}

pub fn ecr_uri(name: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}")
}

/// ECR DescribeImages' answer for one tagged image.
pub fn ecr_images(name: &str, tag: &str, digest: &str) -> Value {
    json!({"imageDetails": [{
        "registryId": ACCOUNT,
        "repositoryName": name,
        "imageDigest": digest,
        "imageTags": [tag],
        "imageSizeInBytes": 31_457_280,
        "imagePushedAt": now() - 600.0,
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactMediaType": "application/vnd.oci.image.config.v1+json",
    }]})
}

/// ECR's answer for a tag that is not there.
pub fn ecr_image_not_found(name: &str, tag: &str) -> Reply {
    Reply::error(
        400,
        "ImageNotFoundException",
        &format!("The image with imageId {{imageDigest:'null', imageTag:'{tag}'}} does not exist within the repository with name '{name}' in the registry with id '{ACCOUNT}'"),
    )
}

/// A CloudWatch `MetricAlarm` (DescribeAlarms `MetricAlarms[]`).
pub fn metric_alarm(name: &str, state: &str, reason: &str) -> Value {
    let at = now() - 60.0;
    json!({
        "AlarmName": name,
        "AlarmArn": format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"),
        "ActionsEnabled": true,
        "OKActions": [],
        "AlarmActions": [],
        "InsufficientDataActions": [],
        "StateValue": state,
        "StateReason": reason,
        "StateUpdatedTimestamp": epoch(at),
        "StateTransitionedTimestamp": epoch(at),
        "AlarmConfigurationUpdatedTimestamp": epoch(at - 86_400.0),
        "MetricName": "HTTPCode_Target_5XX_Count",
        "Namespace": "AWS/ApplicationELB",
        "Statistic": "Sum",
        "Dimensions": [{"Name": "TargetGroup", "Value": "targetgroup/web/73e2d6bc24d8a067"}],
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    })
}

/// An ECS `ServiceDeployment` (DescribeServiceDeployments). `status`:
/// PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, STOP_REQUESTED,
/// ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED.
pub fn service_deployment(
    cluster: &str,
    service: &str,
    id: &str,
    target_revision: &str,
    status: &str,
) -> Value {
    let at = now();
    let short = id.trim_start_matches("ecs-svc/");
    json!({
        "serviceDeploymentArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{cluster}/{service}/{short}"),
        "serviceArn": service_arn(cluster, service),
        "clusterArn": cluster_arn(cluster),
        "createdAt": at,
        "startedAt": at,
        "updatedAt": at,
        "sourceServiceRevisions": [],
        "targetServiceRevision": {
            "arn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{cluster}/{service}/{}", target_revision.rsplit(':').next().unwrap_or("1")),
            "requestedTaskCount": 1,
            "runningTaskCount": 1,
            "pendingTaskCount": 0,
        },
        "status": status,
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
        "deploymentCircuitBreaker": {"status": "MONITORING", "failureCount": 0, "threshold": 3},
        "alarms": {"status": "DISABLED", "alarmNames": [], "triggeredAlarmNames": []},
    })
}

/// JSON pointer write that creates objects on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for key in &keys[..keys.len() - 1] {
        if at.get(*key).is_none() {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    at[keys[keys.len() - 1]] = value;
}
