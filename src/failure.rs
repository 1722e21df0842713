//! The failure report: why a revision failed, in ECS's, ELB's and the
//! application's own words, with a classified cause and a fix hint. Pure: it
//! reads what the watch's last poll saw (tasks, target health, service
//! events), the target groups' health-check settings and the new revision's
//! task definition; it calls nothing.

use serde::Serialize;
use serde_json::Value;

use crate::ecs::{Service, Task};
use crate::elb::{TargetGroupInfo, TargetHealth, TargetState};

/// At most this many failing tasks are examined (the rest are counted).
pub const MAX_TASKS: usize = 10;
/// At most this many distinct stops, target problems and events are shown.
pub const MAX_ITEMS: usize = 5;
/// Task ids listed per distinct stop.
const MAX_IDS: usize = 3;
/// A reason or description longer than this is cut (ECS's can run to kilobytes).
pub const MAX_TEXT: usize = 400;
/// Clock skew tolerated when telling new tasks and events from old ones.
const SKEW_SECONDS: f64 = 5.0;

/// The cause, as a machine reads it (`failure.cause` in the JSON result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The image tag (or repository) is not in the registry.
    ImageNotFound,
    /// The task cannot reach the registry (no NAT, public IP or VPC endpoint).
    ImageNoRoute,
    /// The execution role may not pull (ecr:GetAuthorizationToken and friends).
    ImagePullDenied,
    /// The image cannot be pulled, for another reason.
    ImagePull,
    /// Secrets Manager secrets or SSM parameters cannot be read.
    SecretsUnreadable,
    /// The target group names a container the task definition does not have.
    ContainerNameMismatch,
    /// The container was killed for using too much memory.
    OutOfMemory,
    /// The health check reached the app, which answered with the wrong code.
    HealthCheckPath,
    /// The health check does not reach the app on its port.
    HealthCheckPort,
    /// The load balancer's health check failed, and neither a target's reason
    /// nor anything else says how (ECS's "failed ELB health checks" stop,
    /// `Elb.InternalError`).
    HealthCheckFailed,
    /// An essential container exited.
    ContainerExited,
    /// A container health check stayed UNHEALTHY.
    ContainerUnhealthy,
    /// The task could not start, for another reason.
    TaskFailedToStart,
    /// None of the above: the report still shows what was seen.
    Unknown,
}

impl Cause {
    pub fn title(self) -> &'static str {
        match self {
            Cause::ImageNotFound => "image not found",
            Cause::ImageNoRoute => "no route to the image registry",
            Cause::ImagePullDenied => "not allowed to pull the image",
            Cause::ImagePull => "image cannot be pulled",
            Cause::SecretsUnreadable => "secrets cannot be read",
            Cause::ContainerNameMismatch => "load balancer container not in the task definition",
            Cause::OutOfMemory => "out of memory",
            Cause::HealthCheckPath => "health check path answers the wrong code",
            Cause::HealthCheckPort => "health check does not reach the app",
            Cause::ContainerExited => "container exited",
            Cause::ContainerUnhealthy => "container health check failing",
            Cause::HealthCheckFailed => "load balancer health check failing",
            Cause::TaskFailedToStart => "task failed to start",
            Cause::Unknown => "cause not recognised",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureReport {
    pub cause: Cause,
    /// One line a person can act on, e.g. "the health check path `/health` returned 404, expected 200".
    pub summary: String,
    pub hint: String,
    /// Distinct stops of the new revision's tasks (the same cause once).
    pub stops: Vec<Stop>,
    /// Distinct target health problems of the new tasks.
    pub targets: Vec<TargetProblem>,
    /// Service events since the update, newest first.
    pub events: Vec<String>,
    /// The last log lines of the failed containers (awslogs), or why there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<ContainerLog>,
    /// Failing tasks not examined (past [`MAX_TASKS`]) or stops not shown.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_tasks: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stop {
    /// Task ids that stopped this way (at most a few).
    pub tasks: Vec<String>,
    /// How many tasks stopped this way.
    pub count: usize,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    pub containers: Vec<ContainerExit>,
}

/// One container's last log lines (`lines`, oldest first, `HH:MM:SSZ text`)
/// or, in `note`, why they cannot be shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerLog {
    pub task: String,
    pub container: String,
    pub lines: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ContainerLog {
    pub fn lines(task: &str, container: &str, lines: &[crate::logs::LogLine]) -> Self {
        Self {
            task: task.to_string(),
            container: container.to_string(),
            lines: lines
                .iter()
                .map(|l| {
                    let at = chrono::DateTime::from_timestamp_millis((l.timestamp * 1000.0) as i64)
                        .map(|t| t.format("%H:%M:%SZ ").to_string())
                        .unwrap_or_default();
                    format!("{at}{}", truncate(&l.message))
                })
                .collect(),
            note: None,
        }
    }

    pub fn note(task: &str, container: &str, note: String) -> Self {
        Self {
            task: task.to_string(),
            container: container.to_string(),
            lines: vec![],
            note: Some(note),
        }
    }
}

/// The last `limit` log lines of each `(task, container)` of `requests`
/// ([`log_requests`]): one GetLogEvents each, or in words why there are none
/// (no awslogs driver, no permission, no such group). Never fails: a missing
/// log must not hide a verdict.
pub async fn read_logs(
    reader: &dyn crate::logs::ContainerLogs,
    task_definition: &Value,
    requests: Vec<(String, String)>,
    limit: usize,
) -> Vec<ContainerLog> {
    let mut found = Vec::new();
    for (task, container) in requests {
        let log = match crate::logs::source(task_definition, &container, &task) {
            Err(why) => ContainerLog::note(&task, &container, why),
            Ok(source) => match reader.last_lines(&source, limit).await {
                Ok(lines) => ContainerLog::lines(&task, &container, &lines),
                Err(err) => ContainerLog::note(
                    &task,
                    &container,
                    crate::logs::unreadable(err.aws_code(), err.message(), &source.group),
                ),
            },
        };
        found.push(log);
    }
    found
}

/// The (task id, container) pairs whose logs the report shows: each distinct
/// stop's first task, its essential containers that ran and exited (one that
/// never started, e.g. its image could not be pulled, has no log); at most
/// [`MAX_ITEMS`] pairs, one GetLogEvents call each.
pub fn log_requests(report: &FailureReport) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for stop in &report.stops {
        let Some(task) = stop.tasks.first() else {
            continue;
        };
        for c in stop.containers.iter().filter(|c| c.exit_code.is_some()) {
            let pair = (task.clone(), c.name.clone());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    pairs.truncate(MAX_ITEMS);
    pairs
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerExit {
    pub name: String,
    pub exit_code: Option<i32>,
    /// What the exit code means, where it is well known.
    pub meaning: Option<String>,
    pub reason: Option<String>,
    /// The memory limit in MiB (the container's, else the task's).
    pub memory_mib: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetProblem {
    /// The target group's short name.
    pub target_group: String,
    pub targets: Vec<String>,
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
    /// The target group's health check in words (path, port, matcher, interval, thresholds).
    pub health_check: Option<String>,
}

/// What the report is made from.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The verdict's reason (the summary when nothing better is known).
    pub reason: &'a str,
    /// The failing revision's ARN and its task definition JSON.
    pub revision: &'a str,
    pub task_definition: &'a Value,
    /// Seconds since the epoch of the update: older tasks and events are not this rollout's.
    pub since: f64,
    pub service: &'a Service,
    pub tasks: &'a [Task],
    /// The ARNs of the tasks the watch counted as this rollout's, when it
    /// said (else: the revision's tasks created since the update).
    pub ours: Option<&'a [String]>,
    pub targets: &'a [(String, Vec<TargetHealth>)],
    pub groups: &'a [TargetGroupInfo],
}

/// What a well-known exit code means.
pub fn exit_meaning(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "exited normally, but an essential container must keep running",
        1 => "application error",
        2 => "application error (often a bad argument or shell misuse)",
        126 => "the command cannot be executed (permissions or not a binary)",
        127 => "command not found (check the image's entrypoint and the task's command)",
        134 => "aborted (SIGABRT)",
        // Also what a container gets that ignores SIGTERM for `stopTimeout` (30 s).
        137 => {
            "killed (SIGKILL): out of memory, or it did not stop within stopTimeout after SIGTERM"
        }
        139 => "segmentation fault (SIGSEGV)",
        143 => "terminated (SIGTERM)",
        _ => return None,
    })
}

/// Cuts `text` to [`MAX_TEXT`] characters (on a char boundary), marking the cut.
pub fn truncate(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_TEXT {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX_TEXT).collect();
    format!("{cut}…")
}

/// The report: always one, with the verdict's reason as the summary when
/// nothing better is known.
pub fn report(ev: &Evidence) -> FailureReport {
    let ours: Vec<&Task> = ev
        .tasks
        .iter()
        .filter(|t| match ev.ours {
            Some(ours) => ours.contains(&t.arn),
            None => {
                t.task_definition == ev.revision
                    && t.created_at.is_none_or(|at| at + SKEW_SECONDS >= ev.since)
            }
        })
        .collect();
    let failing: Vec<&Task> = ours
        .iter()
        .copied()
        .filter(|t| t.is_leaving() && (t.stopped_reason.is_some() || t.stop_code.is_some()))
        // Scale-in, draining, maintenance, Spot, and a person's StopTask are
        // not why a revision fails (the rollback's own stops among them).
        .filter(|t| !t.stopped_from_outside())
        .collect();
    let more = failing.len().saturating_sub(MAX_TASKS);
    let (stops, more_stops) = stops(ev, &failing[..failing.len().min(MAX_TASKS)]);
    let targets = target_problems(ev, &ours);
    let events: Vec<String> = ev
        .service
        .events
        .iter()
        .filter(|e| e.created_at + SKEW_SECONDS >= ev.since)
        .take(MAX_ITEMS)
        .map(|e| truncate(&e.message))
        .collect();
    let (cause, summary, hint) = classify(ev, &stops, &targets, &events);
    FailureReport {
        cause,
        summary,
        hint,
        stops,
        targets,
        events,
        logs: Vec::new(),
        more_tasks: more + more_stops,
    }
}

fn stops(ev: &Evidence, failing: &[&Task]) -> (Vec<Stop>, usize) {
    let mut stops: Vec<Stop> = Vec::new();
    for task in failing {
        let containers: Vec<ContainerExit> = task
            .containers
            .iter()
            .filter(|c| essential(ev.task_definition, &c.name))
            .filter(|c| c.exit_code.is_some() || c.reason.as_deref().is_some_and(|r| !r.is_empty()))
            .map(|c| ContainerExit {
                name: c.name.clone(),
                exit_code: c.exit_code,
                meaning: c.exit_code.and_then(exit_meaning).map(str::to_string),
                reason: c.reason.as_deref().filter(|r| !r.is_empty()).map(truncate),
                memory_mib: memory_mib(ev.task_definition, &c.name),
            })
            .collect();
        let stop = Stop {
            tasks: vec![task.id().to_string()],
            count: 1,
            stopped_reason: task.stopped_reason.as_deref().map(truncate),
            stop_code: task.stop_code.as_ref().map(|c| c.as_str().to_string()),
            containers,
        };
        match stops.iter_mut().find(|s| same_stop(s, &stop)) {
            Some(seen) => {
                seen.count += 1;
                if seen.tasks.len() < MAX_IDS {
                    seen.tasks.push(task.id().to_string());
                }
            }
            None => stops.push(stop),
        }
    }
    let more: usize = stops.iter().skip(MAX_ITEMS).map(|s| s.count).sum();
    stops.truncate(MAX_ITEMS);
    (stops, more)
}

fn same_stop(a: &Stop, b: &Stop) -> bool {
    a.stopped_reason == b.stopped_reason
        && a.stop_code == b.stop_code
        && a.containers == b.containers
}

fn container_def<'v>(td: &'v Value, name: &str) -> Option<&'v Value> {
    td.get("containerDefinitions")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

fn essential(td: &Value, name: &str) -> bool {
    container_def(td, name)
        .and_then(|c| c.get("essential"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// The container's hard limit (`memory`), else its reservation, else the task's `memory`.
fn memory_mib(td: &Value, name: &str) -> Option<u64> {
    let number = |v: Option<&Value>| {
        v.and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    let c = container_def(td, name);
    number(c.and_then(|c| c.get("memory")))
        .or_else(|| number(c.and_then(|c| c.get("memoryReservation"))))
        .or_else(|| number(td.get("memory")))
}

fn target_problems(ev: &Evidence, ours: &[&Task]) -> Vec<TargetProblem> {
    let mut problems: Vec<TargetProblem> = Vec::new();
    for (group, targets) in ev.targets {
        let lbs: Vec<_> = ev
            .service
            .load_balancers
            .iter()
            .filter(|lb| &lb.target_group_arn == group)
            .collect();
        let our_ids: Vec<(String, i32)> = ours
            .iter()
            .flat_map(|t| {
                lbs.iter()
                    .flat_map(|lb| t.target_ids(&lb.container_name, lb.container_port))
            })
            .collect();
        let info = ev.groups.iter().find(|g| &g.arn == group);
        for target in targets {
            // `initial` always carries a reason (Elb.RegistrationInProgress,
            // Elb.InitialHealthChecking): not a problem yet.
            // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
            let bad = matches!(
                target.state,
                TargetState::Unhealthy | TargetState::UnhealthyDraining
            );
            let port = target.port.unwrap_or_default();
            let is_ours = our_ids
                .iter()
                .any(|(id, p)| id == &target.id && (*p == port || target.port.is_none()));
            if !bad || !is_ours || target.reason.is_none() {
                continue;
            }
            let name = format!("{}:{port}", target.id);
            let problem = TargetProblem {
                target_group: crate::arn::short(group).to_string(),
                targets: vec![name.clone()],
                state: target.state.to_string(),
                reason: target.reason.clone(),
                description: target.description.as_deref().map(truncate),
                health_check: info.map(health_check_words),
            };
            match problems.iter_mut().find(|p| {
                p.target_group == problem.target_group
                    && p.reason == problem.reason
                    && p.description == problem.description
            }) {
                Some(seen) if seen.targets.len() < MAX_IDS => seen.targets.push(name),
                Some(_) => {}
                None => problems.push(problem),
            }
        }
    }
    problems.truncate(MAX_ITEMS);
    problems
}

/// "HTTP /health on traffic-port, expects 200, every 30s, healthy after 5, unhealthy after 2".
pub fn health_check_words(info: &TargetGroupInfo) -> String {
    let mut words = vec![info
        .health_check_protocol
        .clone()
        .unwrap_or_else(|| "HTTP".into())];
    if let Some(path) = &info.health_check_path {
        words.push(path.clone());
    }
    let mut line = words.join(" ");
    line.push_str(&format!(
        " on {}",
        info.health_check_port.as_deref().unwrap_or("traffic-port")
    ));
    // No Matcher in the answer: ELB's default for HTTP(S), 200
    // (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_Matcher.html).
    match &info.matcher {
        Some(matcher) => line.push_str(&format!(", expects {matcher}")),
        None if words[0].starts_with("HTTP") => {
            line.push_str(", expects 200 (ALB's default; an NLB's is 200-399)")
        }
        None => {}
    }
    line.push_str(&format!(
        ", every {}s, healthy after {}, unhealthy after {}",
        info.interval_seconds, info.healthy_threshold, info.unhealthy_threshold
    ));
    line
}

/// The first "not authorized to perform: X" action in an AccessDenied text.
fn denied_action(text: &str) -> Option<&str> {
    let at = text.find("not authorized to perform: ")? + "not authorized to perform: ".len();
    text[at..].split_whitespace().next()
}

fn is_network(text: &str) -> bool {
    [
        "i/o timeout",
        "dial tcp",
        "context deadline exceeded",
        "Client.Timeout",
        "request canceled",
        "connection timed out",
    ]
    .iter()
    .any(|s| text.contains(s))
}

fn is_denied(text: &str) -> bool {
    ["AccessDenied", "not authorized to perform", "403 Forbidden"]
        .iter()
        .any(|s| text.contains(s))
}

/// Every text a stop gives: the stop reason and each container's reason.
fn stop_texts(stops: &[Stop]) -> Vec<(&Stop, &str)> {
    let mut texts = Vec::new();
    for stop in stops {
        if let Some(r) = &stop.stopped_reason {
            texts.push((stop, r.as_str()));
        }
        for c in &stop.containers {
            if let Some(r) = &c.reason {
                texts.push((stop, r.as_str()));
            }
        }
    }
    texts
}

/// The image the task definition gives the container of a failing stop.
/// The image a pull failure is about: the stop's container whose image (or,
/// failing that, whose tag) the error text names, else its first container's.
/// Several containers of one task may carry the same pull text.
fn image_of(td: &Value, stop: &Stop, text: &str) -> Option<String> {
    let names: Vec<&str> = stop.containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = crate::ecs::taskdef::containers(td)
        .into_iter()
        .filter(|(name, _)| names.is_empty() || names.contains(name))
        .map(|(_, image)| image)
        .filter(|i| !i.is_empty())
        .collect();
    let tag = |image: &str| image.rsplit_once(':').map(|(_, tag)| tag.to_string());
    images
        .iter()
        .find(|i| text.contains(**i))
        .or_else(|| {
            images
                .iter()
                .find(|i| tag(i).is_some_and(|t| !t.contains('/') && text.contains(&t)))
        })
        .or(images.first())
        .map(|i| i.to_string())
}

/// A pull failure in a stop reason. ECS says `CannotPullContainerError` or
/// `CannotPullImageManifestError`
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html),
/// or a registry auth failure inside `ResourceInitializationError`; an
/// engine's own words ("image pull failed", Docker) count too.
fn is_pull_failure(text: &str) -> bool {
    text.contains("CannotPullContainerError")
        || text.contains("CannotPullImageManifestError")
        || text.contains("image pull failed")
        || (text.contains("ResourceInitializationError") && text.contains("ecr registry auth"))
}

fn classify(
    ev: &Evidence,
    stops: &[Stop],
    targets: &[TargetProblem],
    events: &[String],
) -> (Cause, String, String) {
    let texts = stop_texts(stops);
    let td = ev.task_definition;
    // 1. The image cannot be pulled.
    let pull = texts.iter().find(|(_, t)| is_pull_failure(t));
    if let Some((stop, text)) = pull {
        let image = image_of(td, stop, text).unwrap_or_else(|| "the image".into());
        return if is_denied(text) {
            // A 403 on the manifest names no action: usually ecr:BatchGetImage
            // or a repository policy, not the auth token.
            let lacks = denied_action(text).map_or_else(
                || {
                    "access denied (403): check ecr:BatchGetImage and the repository policy"
                        .to_string()
                },
                |action| format!("it lacks {action}"),
            );
            (
                Cause::ImagePullDenied,
                format!("the task execution role may not pull `{image}`: {lacks}"),
                "attach AmazonECSTaskExecutionRolePolicy (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer) to the task definition's executionRoleArn".into(),
            )
        } else if is_network(text) {
            (
                Cause::ImageNoRoute,
                format!("the task cannot reach the registry to pull `{image}` (network timeout)"),
                "give the task's subnets a route to ECR: a NAT gateway, assignPublicIp ENABLED in a public subnet, or VPC endpoints for ecr.api, ecr.dkr and s3 (gateway); check the security group allows outbound 443".into(),
            )
        } else if [
            "not found",
            "manifest unknown",
            "MANIFEST_UNKNOWN",
            "does not exist",
            "NotFound",
        ]
        .iter()
        .any(|s| text.contains(s))
        {
            (
                Cause::ImageNotFound,
                format!("the image `{image}` is not in the registry"),
                "push that tag (or fix the image URI in the task definition); check the repository and region match".into(),
            )
        } else {
            (
                Cause::ImagePull,
                format!("the image `{image}` cannot be pulled"),
                "check the image URI, that the tag exists, and that the execution role and network can reach the registry".into(),
            )
        };
    }
    // 2. Secrets Manager / SSM cannot be read.
    if let Some((_, text)) = texts.iter().find(|(_, t)| {
        t.contains("ResourceInitializationError")
            && ["secret", "ssm", "asm", "parameter"]
                .iter()
                .any(|s| t.contains(s))
    }) {
        let (summary, hint) = if is_denied(text) {
            let action =
                denied_action(text).unwrap_or("secretsmanager:GetSecretValue / ssm:GetParameters");
            (
                format!("the task execution role may not read the task's secrets: it lacks {action}"),
                format!("allow {action} (and kms:Decrypt for a customer-managed key) on the secret or parameter for the task definition's executionRoleArn"),
            )
        } else if is_network(text) {
            (
                "the task cannot reach Secrets Manager or SSM to read its secrets (network timeout)".into(),
                "give the task's subnets a route to Secrets Manager/SSM: a NAT gateway, a public IP, or VPC endpoints (secretsmanager, ssm)".into(),
            )
        } else {
            (
                "the task's secrets cannot be read".into(),
                "check each `secrets[].valueFrom` ARN or parameter name exists in this region and the execution role may read it".into(),
            )
        };
        return (Cause::SecretsUnreadable, summary, hint);
    }
    // 3. The target group names a container the task definition does not have.
    let names: Vec<&str> = crate::ecs::taskdef::containers(td)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    if !names.is_empty() {
        if let Some(lb) = ev.service.load_balancers.iter().find(|lb| {
            !lb.container_name.is_empty() && !names.contains(&lb.container_name.as_str())
        }) {
            return (
                Cause::ContainerNameMismatch,
                format!(
                    "the service's load balancer sends to container `{}`, which the task definition does not have (it has {})",
                    lb.container_name,
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
                "rename the container in the task definition, or update the service's loadBalancers containerName".into(),
            );
        }
    }
    if let Some(event) = events
        .iter()
        .find(|e| e.contains("does not exist in the task definition"))
    {
        return (
            Cause::ContainerNameMismatch,
            format!("ECS: {event}"),
            "rename the container in the task definition, or update the service's loadBalancers containerName".into(),
        );
    }
    // 4. Out of memory, said outright.
    for stop in stops {
        for c in &stop.containers {
            if c.reason
                .as_deref()
                .is_some_and(|r| r.contains("OutOfMemory"))
            {
                return out_of_memory(c);
            }
        }
    }
    // 5. The load balancer's health check: a target's reason, else ECS's
    // "Task failed ELB health checks in (target-group …)" stop (its exit
    // code is only the SIGTERM/SIGKILL of the stop, not the cause).
    if let Some(found) = health_check(ev, targets) {
        return found;
    }
    if let Some(stop) = stops.iter().find(|s| {
        s.stopped_reason
            .as_deref()
            .is_some_and(|r| r.contains("failed ELB health checks"))
    }) {
        let check = ev
            .groups
            .first()
            .map(|g| format!(" ({})", health_check_words(g)))
            .unwrap_or_default();
        return (
            Cause::HealthCheckFailed,
            format!(
                "ECS stopped the task: {}{check}",
                stop.stopped_reason.as_deref().unwrap_or_default()
            ),
            "check that the app answers the target group's health check path on its port within the timeout; give it a healthCheckGracePeriodSeconds if it starts slowly".into(),
        );
    }
    // 6. An essential container exited: a code of its own first, before the
    // 0/143/137 of a container that was stopped.
    let exits = || stops.iter().flat_map(|s| s.containers.iter());
    let exited = exits()
        .find(|c| c.exit_code.is_some_and(|e| ![0, 137, 143].contains(&e)))
        .or_else(|| exits().find(|c| c.exit_code.is_some()));
    if let Some(c) = exited {
        let code = c.exit_code.unwrap_or_default();
        let meaning = c
            .meaning
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        return (
            Cause::ContainerExited,
            format!("container `{}` exited with code {code}{meaning}", c.name),
            "run the image locally with the task's environment to reproduce; its last log lines say why".into(),
        );
    }
    // 7. Container health check, or a task that could not start.
    if let Some(stop) = stops.iter().find(|s| {
        s.stopped_reason
            .as_deref()
            .is_some_and(|r| r.contains("container health check"))
    }) {
        return (
            Cause::ContainerUnhealthy,
            format!("ECS stopped the task: {}", stop.stopped_reason.as_deref().unwrap_or_default()),
            "run the container's healthCheck command inside the image; give it a longer startPeriod if the app starts slowly".into(),
        );
    }
    if let Some(stop) = stops
        .iter()
        .find(|s| s.stop_code.as_deref() == Some("TaskFailedToStart"))
    {
        return (
            Cause::TaskFailedToStart,
            format!(
                "the task failed to start: {}",
                stop.stopped_reason.as_deref().unwrap_or("no reason given")
            ),
            "fix the cause ECS names above; the service events say more".into(),
        );
    }
    (
        Cause::Unknown,
        ev.reason.to_string(),
        "see the stops, target health and service events below".into(),
    )
}

fn out_of_memory(c: &ContainerExit) -> (Cause, String, String) {
    let limit = c
        .memory_mib
        .map(|m| format!(" (limit {m} MiB)"))
        .unwrap_or_default();
    (
        Cause::OutOfMemory,
        format!("container `{}` was killed for using too much memory{limit}", c.name),
        "raise the container's `memory` (or the task's) in the task definition, or lower the app's memory use (heap size)".into(),
    )
}

/// The codes in "Health checks failed with these codes: [404]".
fn codes(description: &str) -> Option<String> {
    let start = description.find('[')? + 1;
    let end = start + description[start..].find(']')?;
    Some(description[start..end].trim().to_string()).filter(|c| !c.is_empty())
}

fn health_check(ev: &Evidence, targets: &[TargetProblem]) -> Option<(Cause, String, String)> {
    let problem = targets.first()?;
    let reason = problem.reason.as_deref()?;
    let info = ev
        .groups
        .iter()
        .find(|g| crate::arn::short(&g.arn) == problem.target_group);
    let path = info
        .and_then(|i| i.health_check_path.clone())
        .unwrap_or_else(|| "/".into());
    let matcher = info
        .and_then(|i| i.matcher.clone())
        .unwrap_or_else(|| "200".into());
    let lb = ev
        .service
        .load_balancers
        .iter()
        .find(|lb| crate::arn::short(&lb.target_group_arn) == problem.target_group);
    let container_port = lb.map(|lb| lb.container_port);
    let checked_port: Option<i32> = info
        .and_then(|i| i.health_check_port.as_deref())
        .and_then(|p| p.parse().ok());
    match reason {
        "Target.ResponseCodeMismatch" => {
            let got = problem
                .description
                .as_deref()
                .and_then(codes)
                .unwrap_or_else(|| "another code".into());
            Some((
                Cause::HealthCheckPath,
                format!("the health check path `{path}` returned {got}, expected {matcher}"),
                format!("serve {matcher} on `{path}` in the app, or set the target group's health check path (and matcher) to one the app answers"),
            ))
        }
        "Elb.InternalError" => Some((
            Cause::HealthCheckFailed,
            format!("the load balancer's health check of `{path}` failed inside ELB (Elb.InternalError)"),
            "an ELB-side error, not the app's: retry the deploy; if it persists, open an AWS support case".into(),
        )),
        "Target.Timeout" | "Target.FailedHealthChecks" => {
            let port = container_port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "its port".into());
            if let (Some(checked), Some(container)) = (checked_port, container_port) {
                if checked != container {
                    return Some((
                        Cause::HealthCheckPort,
                        format!("the target group checks port {checked}, but the container port is {container}"),
                        "set the target group's health check port to traffic-port (or the container's port)".into(),
                    ));
                }
            }
            if let Some(mapped) =
                lb.and_then(|lb| mapped_ports(ev.task_definition, &lb.container_name))
            {
                if !mapped.is_empty() && container_port.is_some_and(|p| !mapped.contains(&p)) {
                    return Some((
                        Cause::HealthCheckPort,
                        format!("the load balancer sends to port {port}, but the container maps {}", mapped.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")),
                        "make the service's loadBalancers containerPort and the container's portMappings agree".into(),
                    ));
                }
            }
            let what = problem
                .description
                .clone()
                .unwrap_or_else(|| reason.to_string());
            // A TCP check has no path.
            let of = info
                .and_then(|i| i.health_check_path.as_deref())
                .map(|p| format!(" of `{p}`"))
                .unwrap_or_default();
            Some((
                Cause::HealthCheckPort,
                format!("the health check{of} on port {port} gets no answer ({what})"),
                format!("make the app listen on 0.0.0.0:{port} (not 127.0.0.1, not another port), and let the load balancer's security group reach the task on {port}"),
            ))
        }
        // Another reason: the stops (or the report's target list) say more.
        _ => None,
    }
}

fn mapped_ports(td: &Value, name: &str) -> Option<Vec<i32>> {
    let maps = container_def(td, name)?.get("portMappings")?.as_array()?;
    Some(
        maps.iter()
            .filter_map(|m| m.get("containerPort").and_then(Value::as_i64))
            .filter_map(|p| i32::try_from(p).ok())
            .collect(),
    )
}

/// The log blocks as indented lines (also printed alone when the logs come
/// after the verdict).
pub fn log_lines(logs: &[ContainerLog]) -> Vec<String> {
    let mut out = Vec::new();
    for log in logs {
        match &log.note {
            Some(note) => out.push(format!(
                "  logs of {} in task {}: {note}",
                log.container, log.task
            )),
            None if log.lines.is_empty() => out.push(format!(
                "  logs of {} in task {}: no lines returned",
                log.container, log.task
            )),
            None => {
                out.push(format!(
                    "  last {} log line(s) of {} in task {}:",
                    log.lines.len(),
                    log.container,
                    log.task
                ));
                out.extend(log.lines.iter().map(|l| format!("    | {l}")));
            }
        }
    }
    out
}

/// The report as indented lines, after the verdict (terminal and CI).
pub fn lines(report: &FailureReport) -> Vec<String> {
    let mut out = vec![
        format!("why: {} — {}", report.cause.title(), report.summary),
        format!("  fix: {}", report.hint),
    ];
    for stop in &report.stops {
        let tasks = if stop.count > stop.tasks.len() {
            format!(
                "{} (+{} more)",
                stop.tasks.join(", "),
                stop.count - stop.tasks.len()
            )
        } else {
            stop.tasks.join(", ")
        };
        let code = stop
            .stop_code
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        out.push(format!(
            "  stopped {tasks}: {}{code}",
            stop.stopped_reason.as_deref().unwrap_or("no reason given")
        ));
        for c in &stop.containers {
            let mut bits = Vec::new();
            if let Some(code) = c.exit_code {
                bits.push(match &c.meaning {
                    Some(m) => format!("exit {code} ({m})"),
                    None => format!("exit {code}"),
                });
            }
            if let Some(reason) = &c.reason {
                bits.push(reason.clone());
            }
            if c.exit_code == Some(137) {
                if let Some(m) = c.memory_mib {
                    bits.push(format!("memory limit {m} MiB"));
                }
            }
            out.push(format!("    container {}: {}", c.name, bits.join(", ")));
        }
    }
    for t in &report.targets {
        let reason = t.reason.as_deref().unwrap_or_default();
        let description = t
            .description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        out.push(format!(
            "  target {} in {}: {} {reason}{description}",
            t.targets.join(", "),
            t.target_group,
            t.state
        ));
        if let Some(hc) = &t.health_check {
            out.push(format!("    health check: {hc}"));
        }
    }
    for e in &report.events {
        out.push(format!("  ECS: {e}"));
    }
    out.extend(log_lines(&report.logs));
    if report.more_tasks > 0 {
        out.push(format!(
            "  ({} more failing tasks not shown)",
            report.more_tasks
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ecs::{
        ContainerState, DesiredStatus, LoadBalancerRef, ServiceEvent, StopCode, TaskStatus,
    };

    const REV: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/0123456789abcdef";
    const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:3f2c1ab";

    fn td() -> Value {
        json!({"family": "web", "memory": "1024", "containerDefinitions": [
            {"name": "app", "image": IMAGE, "memory": 512, "essential": true,
             "portMappings": [{"containerPort": 8080}]},
            {"name": "sidecar", "image": "busybox", "essential": false}
        ]})
    }

    fn service() -> Service {
        Service {
            load_balancers: vec![LoadBalancerRef {
                target_group_arn: TG.into(),
                container_name: "app".into(),
                container_port: 8080,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn stopped(id: &str, reason: &str, code: StopCode, containers: Vec<ContainerState>) -> Task {
        Task {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}"),
            task_definition: REV.into(),
            last_status: TaskStatus::Stopped,
            desired_status: DesiredStatus::Stopped,
            stopped_reason: Some(reason.into()),
            stop_code: Some(code),
            containers,
            created_at: Some(1000.0),
            ..Default::default()
        }
    }

    fn container(exit: Option<i32>, reason: Option<&str>) -> ContainerState {
        ContainerState {
            name: "app".into(),
            exit_code: exit,
            reason: reason.map(str::to_string),
            ..Default::default()
        }
    }

    fn running(id: &str, ip: &str) -> Task {
        Task {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}"),
            task_definition: REV.into(),
            last_status: TaskStatus::Running,
            desired_status: DesiredStatus::Running,
            private_ip: Some(ip.into()),
            created_at: Some(1000.0),
            ..Default::default()
        }
    }

    fn group(path: &str, port: &str, matcher: &str) -> TargetGroupInfo {
        TargetGroupInfo {
            arn: TG.into(),
            health_check_protocol: Some("HTTP".into()),
            health_check_path: Some(path.into()),
            health_check_port: Some(port.into()),
            matcher: Some(matcher.into()),
            ..Default::default()
        }
    }

    fn unhealthy(ip: &str, reason: &str, description: &str) -> TargetHealth {
        TargetHealth {
            id: ip.into(),
            port: Some(8080),
            state: TargetState::Unhealthy,
            reason: Some(reason.into()),
            description: Some(description.into()),
        }
    }

    struct Case {
        tasks: Vec<Task>,
        targets: Vec<TargetHealth>,
        groups: Vec<TargetGroupInfo>,
        service: Service,
        td: Value,
    }

    impl Case {
        fn tasks(tasks: Vec<Task>) -> Self {
            Self {
                tasks,
                targets: vec![],
                groups: vec![group("/health", "traffic-port", "200")],
                service: service(),
                td: td(),
            }
        }

        fn run(&self) -> FailureReport {
            let targets = vec![(TG.to_string(), self.targets.clone())];
            report(&Evidence {
                reason: "the verdict's reason",
                revision: REV,
                task_definition: &self.td,
                since: 1000.0,
                service: &self.service,
                tasks: &self.tasks,
                ours: None,
                targets: &targets,
                groups: &self.groups,
            })
        }
    }

    fn stopped_with(reason: &str, code: StopCode, c: ContainerState) -> Case {
        Case::tasks(vec![stopped("t1", reason, code, vec![c])])
    }

    /// Two containers carry the same pull text (an engine's words, as Docker
    /// writes them): the report names the image whose tag the text names,
    /// not the first container's.
    #[test]
    fn a_pull_failure_names_the_image_the_error_is_about() {
        let text = "image pull failed: Error response from daemon: <Code>MANIFEST_UNKNOWN</Code> <Message>manifest no-such-tag not found in repository web</Message>";
        let mut case = Case::tasks(vec![stopped(
            "t1",
            text,
            StopCode::TaskFailedToStart,
            vec![
                container(None, Some(text)),
                ContainerState {
                    name: "proxy".into(),
                    reason: Some(text.into()),
                    ..Default::default()
                },
            ],
        )]);
        case.td = json!({"family": "web", "containerDefinitions": [
            {"name": "app", "image": IMAGE, "essential": true},
            {"name": "proxy", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:no-such-tag", "essential": true}
        ]});
        let report = case.run();
        assert_eq!(report.cause, Cause::ImageNotFound);
        assert_eq!(
            report.summary,
            "the image `123456789012.dkr.ecr.us-east-1.amazonaws.com/web:no-such-tag` is not in the registry"
        );
    }

    /// The replacement's target is still `initial` (ELB always gives a reason
    /// there) while the crashed task's exit code is the cause.
    #[test]
    fn a_target_still_in_initial_beside_a_crash_is_no_problem_the_exit_code_is_the_cause() {
        let mut case = Case::tasks(vec![
            stopped(
                "t1",
                "Essential container in task exited",
                StopCode::EssentialContainerExited,
                vec![container(Some(3), None)],
            ),
            running("t2", "10.0.1.7"),
        ]);
        case.targets = vec![TargetHealth {
            id: "10.0.1.7".into(),
            port: Some(8080),
            state: TargetState::Initial,
            reason: Some("Elb.InitialHealthChecking".into()),
            description: Some("Initial health checks in progress".into()),
        }];
        let report = case.run();
        assert_eq!(report.cause, Cause::ContainerExited, "{report:?}");
        assert!(report.targets.is_empty(), "{report:?}");
    }

    /// A 403 on the manifest names no action: the report does not guess the
    /// auth token permission.
    #[test]
    fn a_denied_pull_without_a_named_action_does_not_blame_the_auth_token() {
        let text = format!("CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref {IMAGE}: unexpected status from HEAD request: 403 Forbidden");
        let report = stopped_with(
            &text,
            StopCode::TaskFailedToStart,
            container(None, Some(&text)),
        )
        .run();
        assert_eq!(report.cause, Cause::ImagePullDenied);
        assert!(
            report.summary.contains("access denied (403)"),
            "{}",
            report.summary
        );
        assert!(
            !report.summary.contains("GetAuthorizationToken"),
            "{}",
            report.summary
        );
    }

    #[test]
    fn a_health_check_without_a_matcher_in_the_answer_expects_elbs_default_200() {
        let mut info = group("/health", "traffic-port", "200");
        info.matcher = None;
        assert!(health_check_words(&info)
            .contains("/health on traffic-port, expects 200 (ALB's default; an NLB's is 200-399)"));
        info.health_check_protocol = Some("TCP".into());
        info.health_check_path = None;
        assert!(!health_check_words(&info).contains("expects"));
    }

    /// The classification table: the exact texts ECS and ELB write.
    #[test]
    fn each_cause_is_classified_from_the_texts_ecs_and_elb_write() {
        let pull_missing = format!("CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref {IMAGE}: {IMAGE}: not found");
        let pull_timeout = "CannotPullContainerError: Error response from daemon: Get https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/: net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)";
        let auth_denied = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/0a1b is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action";
        let auth_timeout = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed caused by: Post \"https://api.ecr.us-east-1.amazonaws.com/\": dial tcp 52.46.134.45:443: i/o timeout";
        let secret_denied = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf from secrets manager: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/0a1b is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        let ssm_missing = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: /prod/web/DATABASE_URL";
        let start = StopCode::TaskFailedToStart;
        let exited = StopCode::EssentialContainerExited;
        let cases: Vec<(&str, Case, Cause, &str)> = vec![
            (
                "tag missing",
                stopped_with(
                    &pull_missing,
                    start.clone(),
                    container(None, Some(&pull_missing)),
                ),
                Cause::ImageNotFound,
                "web:3f2c1ab` is not in the registry",
            ),
            (
                "no route (pull)",
                stopped_with(
                    pull_timeout,
                    start.clone(),
                    container(None, Some(pull_timeout)),
                ),
                Cause::ImageNoRoute,
                "cannot reach the registry",
            ),
            (
                "no route (auth)",
                stopped_with(auth_timeout, start.clone(), container(None, None)),
                Cause::ImageNoRoute,
                "network timeout",
            ),
            (
                "role lacks ecr",
                stopped_with(auth_denied, start.clone(), container(None, None)),
                Cause::ImagePullDenied,
                "lacks ecr:GetAuthorizationToken",
            ),
            (
                "secret denied",
                stopped_with(secret_denied, start.clone(), container(None, None)),
                Cause::SecretsUnreadable,
                "lacks secretsmanager:GetSecretValue",
            ),
            (
                "ssm missing",
                stopped_with(ssm_missing, start.clone(), container(None, None)),
                Cause::SecretsUnreadable,
                "secrets cannot be read",
            ),
            (
                "oom",
                stopped_with(
                    "Essential container in task exited",
                    exited.clone(),
                    container(
                        Some(137),
                        Some("OutOfMemoryError: Container killed due to memory usage"),
                    ),
                ),
                Cause::OutOfMemory,
                "limit 512 MiB",
            ),
            (
                // 137 alone is SIGKILL: out of memory, or SIGTERM ignored for
                // stopTimeout; only ECS's OutOfMemoryError says which.
                "137 without OutOfMemoryError",
                stopped_with(
                    "Essential container in task exited",
                    exited.clone(),
                    container(Some(137), None),
                ),
                Cause::ContainerExited,
                "did not stop within stopTimeout",
            ),
            (
                "ELB health check stop",
                stopped_with(
                    "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067)",
                    StopCode::ServiceSchedulerInitiated,
                    container(Some(143), None),
                ),
                Cause::HealthCheckFailed,
                "HTTP /health on traffic-port, expects 200",
            ),
            (
                "exit 3",
                stopped_with(
                    "Essential container in task exited",
                    exited.clone(),
                    container(Some(3), None),
                ),
                Cause::ContainerExited,
                "exited with code 3",
            ),
            (
                "segfault",
                stopped_with(
                    "Essential container in task exited",
                    exited.clone(),
                    container(Some(139), None),
                ),
                Cause::ContainerExited,
                "code 139 (segmentation fault",
            ),
            (
                "container health",
                stopped_with(
                    "Task failed container health checks",
                    StopCode::Other("".into()),
                    container(None, None),
                ),
                Cause::ContainerUnhealthy,
                "container health checks",
            ),
        ];
        for (name, case, cause, words) in cases {
            let r = case.run();
            assert_eq!(r.cause, cause, "{name}: {r:#?}");
            assert!(r.summary.contains(words), "{name}: {}", r.summary);
            assert!(!r.hint.is_empty(), "{name}");
        }
    }

    #[test]
    fn a_404_health_check_names_the_path_and_the_matcher() {
        let mut case = Case::tasks(vec![running("t1", "10.0.1.5")]);
        case.targets = vec![unhealthy(
            "10.0.1.5",
            "Target.ResponseCodeMismatch",
            "Health checks failed with these codes: [404]",
        )];
        let r = case.run();
        assert_eq!(r.cause, Cause::HealthCheckPath);
        assert_eq!(
            r.summary,
            "the health check path `/health` returned 404, expected 200"
        );
        assert_eq!(r.targets.len(), 1);
        assert_eq!(
            r.targets[0].health_check.as_deref(),
            Some("HTTP /health on traffic-port, expects 200, every 30s, healthy after 5, unhealthy after 2")
        );
    }

    #[test]
    fn a_timeout_is_a_port_problem_and_names_the_mismatched_port() {
        let mut case = Case::tasks(vec![running("t1", "10.0.1.5")]);
        case.targets = vec![unhealthy("10.0.1.5", "Target.Timeout", "Request timed out")];
        let r = case.run();
        assert_eq!(r.cause, Cause::HealthCheckPort);
        assert!(
            r.summary
                .contains("port 8080 gets no answer (Request timed out)"),
            "{}",
            r.summary
        );
        case.groups = vec![group("/health", "80", "200")];
        let r = case.run();
        assert_eq!(
            r.summary,
            "the target group checks port 80, but the container port is 8080"
        );
    }

    #[test]
    fn a_load_balancer_container_missing_from_the_task_definition_is_named() {
        let mut case = Case::tasks(vec![]);
        case.service.load_balancers[0].container_name = "web".into();
        let r = case.run();
        assert_eq!(r.cause, Cause::ContainerNameMismatch);
        assert!(r.summary.contains("container `web`"), "{}", r.summary);
        assert!(r.summary.contains("`app`, `sidecar`"), "{}", r.summary);
    }

    #[test]
    fn the_same_stop_on_many_tasks_is_one_entry_with_a_count() {
        let tasks: Vec<Task> = (0..7)
            .map(|i| {
                stopped(
                    &format!("t{i}"),
                    "Essential container in task exited",
                    StopCode::EssentialContainerExited,
                    vec![container(Some(1), None)],
                )
            })
            .collect();
        let r = Case::tasks(tasks).run();
        assert_eq!(r.stops.len(), 1);
        assert_eq!(r.stops[0].count, 7);
        assert_eq!(r.stops[0].tasks, vec!["t0", "t1", "t2"]);
        assert_eq!(
            r.stops[0].containers[0].meaning.as_deref(),
            Some("application error")
        );
        assert!(
            lines(&r).iter().any(|l| l.contains("t0, t1, t2 (+4 more)")),
            "{:?}",
            lines(&r)
        );
    }

    #[test]
    fn old_revisions_and_non_essential_containers_are_left_out() {
        let mut old = stopped(
            "old",
            "Scaling activity initiated by (deployment ecs-svc/1)",
            StopCode::ServiceSchedulerInitiated,
            vec![],
        );
        old.task_definition = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7".into();
        let mut sidecar = container(Some(1), None);
        sidecar.name = "sidecar".into();
        let ours = stopped(
            "t1",
            "Essential container in task exited",
            StopCode::EssentialContainerExited,
            vec![container(Some(2), None), sidecar],
        );
        let r = Case::tasks(vec![old, ours]).run();
        assert_eq!(r.stops.len(), 1);
        assert_eq!(r.stops[0].containers.len(), 1);
        assert_eq!(r.cause, Cause::ContainerExited);
    }

    #[test]
    fn well_known_exit_codes_have_a_meaning() {
        assert_eq!(
            exit_meaning(137),
            Some("killed (SIGKILL): out of memory, or it did not stop within stopTimeout after SIGTERM")
        );
        assert_eq!(exit_meaning(139), Some("segmentation fault (SIGSEGV)"));
        assert_eq!(exit_meaning(1), Some("application error"));
        assert!(exit_meaning(2).unwrap().starts_with("application error"));
        assert_eq!(exit_meaning(3), None);
    }

    #[test]
    fn long_texts_are_cut_and_tasks_past_the_cap_are_counted() {
        let long = "é".repeat(MAX_TEXT + 50);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), MAX_TEXT + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("  short  "), "short");
        let tasks: Vec<Task> = (0..(MAX_TASKS + 3))
            .map(|i| {
                stopped(
                    &format!("t{i}"),
                    &format!("reason {i}"),
                    StopCode::EssentialContainerExited,
                    vec![],
                )
            })
            .collect();
        let r = Case::tasks(tasks).run();
        assert_eq!(r.stops.len(), MAX_ITEMS);
        assert_eq!(r.more_tasks, 3 + (MAX_TASKS - MAX_ITEMS));
    }

    #[test]
    fn service_events_since_the_update_are_kept_newest_first() {
        let mut case = Case::tasks(vec![]);
        case.service.events = vec![
            ServiceEvent {
                id: "2".into(),
                created_at: 1010.0,
                message: "(service web) has started 1 tasks: (task t1).".into(),
            },
            ServiceEvent {
                id: "1".into(),
                created_at: 900.0,
                message: "(service web) has reached a steady state.".into(),
            },
        ];
        let r = case.run();
        assert_eq!(
            r.events,
            vec!["(service web) has started 1 tasks: (task t1)."]
        );
        assert_eq!(r.cause, Cause::Unknown);
        assert_eq!(r.summary, "the verdict's reason");
    }
}
