//! What the core says happened. Renderers decide how it looks.

use std::time::Duration;

use serde::Serialize;

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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    PhaseStarted {
        phase: Phase,
    },
    PhaseFinished {
        phase: Phase,
        #[serde(serialize_with = "secs")]
        elapsed: Duration,
    },
    Info {
        message: String,
    },
    Warning {
        message: String,
    },
    /// One line of the engine's build output.
    BuildLog {
        line: String,
    },
    /// Bytes of build context sent so far.
    ContextProgress {
        bytes: u64,
        files: u64,
    },
    /// Push progress of one layer.
    PushProgress {
        layer: String,
        status: String,
        current: Option<u64>,
        total: Option<u64>,
    },
    ImagePushed {
        image: String,
        digest: String,
        tags: Vec<String>,
    },
    TaskDefinitionRegistered {
        arn: String,
    },
    ServiceUpdated {
        task_definition: String,
        deployment_id: Option<String>,
    },
    /// A task appeared or changed state.
    TaskChanged {
        task: String,
        revision: String,
        status: String,
        detail: Option<String>,
    },
    /// A target's health changed in a target group.
    TargetChanged {
        target_group: String,
        target: String,
        state: String,
        reason: Option<String>,
    },
    /// What the watch is waiting for (sent every poll; renderers repeat it only when it changes).
    Waiting {
        what: String,
    },
    Verdict {
        healthy: bool,
        reason: String,
    },
    RollbackStarted {
        to: String,
        reason: String,
    },
    RollbackFinished {
        healthy: bool,
        reason: String,
    },
    /// The run ended with an error (before or instead of a verdict). Line and
    /// terminal output print it as `error:`/`Caused by:`/`hint:` text.
    Error {
        command: String,
        message: String,
        causes: Vec<String>,
        hint: Option<String>,
    },
    Result(Box<Outcome>),
}

/// The final result object: what a machine reading shipit's output needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    pub command: String,
    pub sha: Option<String>,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub previous_task_definition: Option<String>,
    pub new_task_definition: Option<String>,
    /// `deployed`, `failed`, `rolled_back`, `needs_human`, `pushed`, `built`, `planned`, …
    pub verdict: String,
    pub reason: Option<String>,
    pub rollback: Option<RollbackOutcome>,
    pub exit_code: i32,
    /// Polls and AWS API calls the rollout watch made (deploy only).
    pub watch: Option<WatchStats>,
    /// Seconds per phase, in the order they ran.
    pub timings: Vec<Timing>,
    /// Every AWS API call the run made (attempts, retries included), when it made any.
    pub aws_api_calls: Option<crate::api_calls::ApiCallCount>,
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
    /// Set when a signal stopped the wait (the exit code it asks for).
    #[serde(skip)]
    pub interrupted: Option<crate::error::ExitCode>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}
