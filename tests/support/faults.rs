//! A fault-injecting proxy between shipit and the local AWS emulator.
//!
//! It forwards every request to the emulator, records each AWS operation it
//! sees (`ECS.UpdateService`, `ELBv2.DescribeTargetHealth`, …), and, per
//! operation, can answer instead with throttling (the JSON protocol's
//! `ThrottlingException` or the ELBv2 query protocol's XML `Throttling`), a
//! 500/503, a dropped connection, or forward after a delay. An outage switch
//! drops every connection, as a dead emulator would.
//!
//! Faults are armed by rules; a rule can wait until another operation has been
//! seen (e.g. only after `ECS.UpdateService`, so that the watch is hit and the
//! plan is not), and fires a set number of times.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the proxy dropped a connection instead of answering.
#[derive(Debug)]
struct Dropped(&'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Dropped {}

/// What the proxy does instead of (or before) forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 with the protocol's throttling error.
    Throttle,
    /// 500 InternalFailure.
    InternalError,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// The connection is closed with no response.
    Reset,
    /// Forwarded after this many milliseconds.
    DelayMs(u64),
}

/// Operations that change something in AWS.
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
    "ECR.CreateRepository",
    "ECR.DeleteRepository",
    "ECR.PutImage",
    "ECR.BatchDeleteImage",
    "ECR.InitiateLayerUpload",
    "ECR.CompleteLayerUpload",
    "ELBv2.RegisterTargets",
    "ELBv2.DeregisterTargets",
    "ELBv2.ModifyTargetGroup",
];

#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    fault: Fault,
    /// Armed once this operation has been seen (None: armed from the start).
    after: Option<String>,
    remaining: u32,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Every operation seen, in order.
    seen: Vec<String>,
    /// (operation, fault) for every fault injected.
    injected: Vec<(String, Fault)>,
    /// The access key id each request was signed with, in order.
    access_keys: Vec<String>,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    down: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy to the emulator named by `AWS_ENDPOINT_URL`.
    pub async fn start() -> FaultProxy {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is set");
        let upstream: SocketAddr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("AWS_ENDPOINT_URL is http://<ip>:<port>");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = FaultProxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            state: Arc::default(),
            down: Arc::default(),
        };
        let server = proxy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let proxy = server.clone();
                tokio::spawn(async move {
                    if proxy.down.load(Ordering::SeqCst) {
                        drop(stream);
                        return;
                    }
                    let service = hyper::service::service_fn(move |req| {
                        let proxy = proxy.clone();
                        async move { proxy.handle(req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        proxy
    }

    /// The endpoint URL to give shipit (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` into the next `times` calls of `operation` (`*` for any).
    pub fn inject(&self, operation: &str, fault: Fault, times: u32) -> &Self {
        self.add(operation, fault, times, None)
    }

    /// Like [`inject`](Self::inject), armed only once `after` has been seen.
    pub fn inject_after(&self, after: &str, operation: &str, fault: Fault, times: u32) -> &Self {
        self.add(operation, fault, times, Some(after))
    }

    fn add(&self, operation: &str, fault: Fault, times: u32, after: Option<&str>) -> &Self {
        self.state.lock().unwrap().rules.push(Rule {
            operation: operation.into(),
            fault,
            after: after.map(Into::into),
            remaining: times,
        });
        self
    }

    /// Every connection is dropped while `down` (the emulator "died").
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Every operation seen, in order.
    pub fn seen(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn count(&self, operation: &str) -> usize {
        self.seen().iter().filter(|op| *op == operation).count()
    }

    /// The mutating operations seen, in order.
    pub fn mutations(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|op| MUTATING.contains(&op.as_str()))
            .collect()
    }

    /// The distinct access key ids requests were signed with, in first-seen order.
    pub fn access_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for key in &self.state.lock().unwrap().access_keys {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// Faults injected so far.
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.state.lock().unwrap().injected.clone()
    }

    /// Rules that still have faults to inject.
    pub fn unspent(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .rules
            .iter()
            .filter(|r| r.remaining > 0)
            .map(|r| format!("{} {:?} ×{}", r.operation, r.fault, r.remaining))
            .collect()
    }

    /// Records the operation and picks the fault to inject, if any.
    fn decide(&self, operation: &str) -> Option<Fault> {
        let mut state = self.state.lock().unwrap();
        state.seen.push(operation.to_string());
        let State {
            rules,
            seen,
            injected,
            ..
        } = &mut *state;
        let rule = rules.iter_mut().find(|r| {
            r.remaining > 0
                && (r.operation == "*" || r.operation == operation)
                && r.after.as_ref().is_none_or(|after| {
                    // Armed by an earlier call of `after` (not this very call).
                    seen[..seen.len() - 1].iter().any(|op| op == after)
                })
        })?;
        rule.remaining -= 1;
        injected.push((operation.to_string(), rule.fault));
        Some(rule.fault)
    }

    /// An `Err` makes hyper drop the connection without answering: a reset.
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let operation = operation_of(&parts.headers, &body);
        if let Some(key) = access_key_of(&parts.headers) {
            self.state.lock().unwrap().access_keys.push(key);
        }
        let query = operation.starts_with("ELBv2.");
        match self.decide(&operation) {
            Some(Fault::Reset) => return Err(Dropped("injected connection reset")),
            Some(Fault::Throttle) => return Ok(error_response(400, query, "Throttling")),
            Some(Fault::InternalError) => return Ok(error_response(500, query, "InternalFailure")),
            Some(Fault::Unavailable) => {
                return Ok(error_response(503, query, "ServiceUnavailable"))
            }
            Some(Fault::DelayMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => {}
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(Dropped("the emulator is down (injected)"));
        }
        Ok(self.forward(parts, body).await.unwrap_or_else(|err| {
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Full::new(Bytes::from(format!("fault proxy: {err}"))))
                .unwrap()
        }))
    }

    async fn forward(
        &self,
        mut parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Full<Bytes>>, BoxError> {
        let stream = TcpStream::connect(self.upstream).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        // The emulator builds URLs (registry, endpoints) from Host: keep them its own.
        parts.headers.insert(
            hyper::header::HOST,
            self.upstream.to_string().parse().unwrap(),
        );
        let req = Request::from_parts(parts, Full::new(body));
        let resp = sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

/// `ECS.DescribeServices` from `X-Amz-Target` (JSON protocols), or
/// `ELBv2.DescribeTargetHealth` from the form body's `Action` (query protocol).
fn operation_of(headers: &hyper::HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, op) = target.split_once('.').unwrap_or(("", target));
        let service = if prefix.starts_with("AmazonEC2ContainerServiceV") {
            "ECS"
        } else if prefix.starts_with("AmazonEC2ContainerRegistry") {
            "ECR"
        } else {
            prefix
        };
        return format!("{service}.{op}");
    }
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(|action| format!("ELBv2.{action}"))
        .unwrap_or_else(|| "unknown".into())
}

/// `AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, …` → AKID.
fn access_key_of(headers: &hyper::HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_string())
}

fn error_response(status: u16, query: bool, code: &str) -> Response<Full<Bytes>> {
    let (content_type, body) = if query {
        (
            "text/xml",
            format!(
                "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
                 <Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded (injected)</Message></Error>\
                 <RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
        )
    } else {
        let code = if code == "Throttling" {
            "ThrottlingException"
        } else {
            code
        };
        (
            "application/x-amz-json-1.1",
            format!("{{\"__type\":\"{code}\",\"message\":\"injected by the fault proxy\"}}"),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "fault-proxy")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}
