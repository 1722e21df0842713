//! What a command produced: the result object every renderer shows and
//! `--output json` prints, and the phases it went through.

use serde::Serialize;

use crate::conclusion::Conclusion;
use crate::error::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Plan,
    Build,
    Push,
    Register,
    Update,
    Watch,
    Rollback,
    /// `--before` tasks, between register and update.
    Before,
    /// `shipit run`'s task.
    Run,
}

impl Phase {
    pub fn title(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Build => "build",
            Phase::Push => "push",
            Phase::Register => "register task definition",
            Phase::Update => "update service",
            Phase::Watch => "watch rollout",
            Phase::Rollback => "rollback",
            Phase::Before => "before-update task",
            Phase::Run => "one-off task",
        }
    }
}

/// The final result object: what a machine reading shipit's output needs.
/// Its `verdict` and `exit_code` both come from the one [`Conclusion`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub command: String,
    pub sha: Option<String>,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub previous_task_definition: Option<String>,
    pub new_task_definition: Option<String>,
    pub conclusion: Conclusion,
    pub reason: Option<String>,
    pub rollback: Option<RollbackOutcome>,
    /// Why the revision failed: classified cause, hint, stops, target health.
    pub failure: Option<Box<crate::failure::FailureReport>>,
    /// Polls and AWS API calls the rollout watch made (deploy only).
    pub watch: Option<WatchStats>,
    /// One-off tasks run (`--before`, `shipit run`): ARN, exit code, seconds.
    pub tasks: Vec<TaskOutcome>,
    /// Seconds per phase, in the order they ran.
    pub timings: Vec<Timing>,
    /// Every AWS API call the run made (attempts, retries included), when it made any.
    pub aws_api_calls: Option<crate::api_calls::ApiCallCount>,
    /// A deploy (or rollback) of several services: what happened to each.
    /// Empty for one service, whose result is the fields above.
    pub services: Vec<ServiceOutcome>,
    /// `shipit status`: each service's snapshot (`status::view`).
    pub snapshots: Vec<serde_json::Value>,
}

/// What one service of a deploy of several went through. Its `verdict` and
/// `exit_code` come from its own [`Conclusion`]; the run's are the worst.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceOutcome {
    pub service: String,
    /// Its group: groups are deployed one after the other, lowest first.
    pub group: u32,
    pub previous_task_definition: Option<String>,
    pub new_task_definition: Option<String>,
    pub conclusion: Conclusion,
    pub reason: Option<String>,
    pub rollback: Option<RollbackOutcome>,
    pub failure: Option<Box<crate::failure::FailureReport>>,
}

impl ServiceOutcome {
    /// One service's part of a command run on several, each on its own
    /// (`rollback`, `watch`): its own outcome.
    pub fn of(service: &str, outcome: Outcome) -> Self {
        Self {
            service: service.to_string(),
            group: 0,
            previous_task_definition: outcome.previous_task_definition,
            new_task_definition: outcome.new_task_definition,
            conclusion: outcome.conclusion,
            reason: outcome.reason,
            rollback: outcome.rollback,
            failure: outcome.failure,
        }
    }

    /// A service of such a command whose part ended in an error.
    pub fn error(service: &str, err: &crate::error::Error) -> Self {
        Self {
            service: service.to_string(),
            group: 0,
            previous_task_definition: None,
            new_task_definition: None,
            conclusion: Conclusion::Error(err.exit_code()),
            reason: Some(err.message().to_string()),
            rollback: None,
            failure: None,
        }
    }
}

impl Serialize for ServiceOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            service: &'a str,
            group: u32,
            previous_task_definition: &'a Option<String>,
            new_task_definition: &'a Option<String>,
            verdict: Conclusion,
            exit_code: i32,
            reason: &'a Option<String>,
            rollback: &'a Option<RollbackOutcome>,
            #[serde(skip_serializing_if = "Option::is_none")]
            failure: &'a Option<Box<crate::failure::FailureReport>>,
        }
        Wire {
            service: &self.service,
            group: self.group,
            previous_task_definition: &self.previous_task_definition,
            new_task_definition: &self.new_task_definition,
            verdict: self.conclusion,
            exit_code: self.conclusion.exit_code().code(),
            reason: &self.reason,
            rollback: &self.rollback,
            failure: &self.failure,
        }
        .serialize(s)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WatchStats {
    pub polls: u32,
    pub aws_calls: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    pub phase: Phase,
    pub seconds: f64,
}

impl From<(Phase, f64)> for Timing {
    fn from((phase, seconds): (Phase, f64)) -> Self {
        Self {
            phase,
            seconds: (seconds * 1000.0).round() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackOutcome {
    pub to: String,
    pub healthy: bool,
    pub reason: String,
    /// Who moved the service back: shipit's UpdateService, or ECS itself
    /// (its circuit breaker or alarm rollback), which shipit only watched.
    pub by: RolledBackBy,
    /// Why the rollback's revision is not healthy either, when a poll saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Box<crate::failure::FailureReport>>,
    /// Set when a signal stopped the wait (the exit code it asks for).
    #[serde(skip)]
    pub interrupted: Option<crate::error::ExitCode>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RolledBackBy {
    #[default]
    Shipit,
    Ecs,
}

impl Outcome {
    /// Puts the log lines read (while the rollback ran) into the failure report.
    pub fn with_logs(mut self, logs: Vec<crate::failure::ContainerLog>) -> Self {
        if let Some(failure) = self.failure.as_mut() {
            failure.logs = logs;
        }
        self
    }

    pub fn new(command: &str, conclusion: Conclusion) -> Self {
        Self {
            command: command.to_string(),
            conclusion,
            ..Default::default()
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        self.conclusion.exit_code()
    }

    /// The outcome of `command` run on several services: the worst
    /// service's conclusion, and a reason that names each.
    pub fn of_services(command: &str, services: Vec<ServiceOutcome>) -> Self {
        let conclusion = crate::conclusion::worst(services.iter().map(|s| s.conclusion));
        let summary: Vec<String> = services
            .iter()
            .map(|s| format!("{} {}", s.service, s.conclusion.name()))
            .collect();
        Self {
            reason: Some(format!(
                "{} services: {}",
                services.len(),
                summary.join(", ")
            )),
            services,
            ..Outcome::new(command, conclusion)
        }
    }
}

/// The wire form: the fields in order, `verdict` and `exit_code` from the conclusion.
#[derive(Serialize)]
struct Wire<'a> {
    command: &'a str,
    sha: &'a Option<String>,
    image: &'a Option<String>,
    digest: &'a Option<String>,
    previous_task_definition: &'a Option<String>,
    new_task_definition: &'a Option<String>,
    verdict: Conclusion,
    reason: &'a Option<String>,
    rollback: &'a Option<RollbackOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: &'a Option<Box<crate::failure::FailureReport>>,
    exit_code: i32,
    watch: &'a Option<WatchStats>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tasks: &'a [TaskOutcome],
    timings: &'a [Timing],
    aws_api_calls: &'a Option<crate::api_calls::ApiCallCount>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    services: &'a [ServiceOutcome],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    snapshots: &'a [serde_json::Value],
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            command: &self.command,
            sha: &self.sha,
            image: &self.image,
            digest: &self.digest,
            previous_task_definition: &self.previous_task_definition,
            new_task_definition: &self.new_task_definition,
            verdict: self.conclusion,
            reason: &self.reason,
            rollback: &self.rollback,
            failure: &self.failure,
            exit_code: self.conclusion.exit_code().code(),
            watch: &self.watch,
            tasks: &self.tasks,
            timings: &self.timings,
            aws_api_calls: &self.aws_api_calls,
            services: &self.services,
            snapshots: &self.snapshots,
        }
        .serialize(s)
    }
}

/// What a one-off task came to, as the result object carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskOutcome {
    pub label: String,
    /// `None` when RunTask placed no task.
    pub task_arn: Option<String>,
    pub task_definition: String,
    pub container: String,
    pub command: Vec<String>,
    pub success: bool,
    /// The deciding container's exit code; absent when none ran to an exit.
    pub exit_code: Option<i32>,
    pub reason: String,
    pub seconds: f64,
    /// The container's last log lines (failures only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
}
