//! What the core says happened. Renderers decide how it looks.

use std::time::Duration;

use serde::Serialize;

use crate::outcome::{Outcome, Phase};

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
    /// The builder the build runs with (`buildkit` or `classic`) and why:
    /// the engine it found, a fallback and its cause, or the user's choice.
    BuilderChosen {
        builder: String,
        reason: String,
    },
    /// Where the build's layers may come from: an image in ECR, or none
    /// (`image` null) and why.
    LayerCache {
        image: Option<String>,
        reason: String,
        /// Older commit images offered to BuildKit as well.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        older: Vec<String>,
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
        /// Why a failed revision failed (deploy and watch), when a poll saw it.
        #[serde(skip_serializing_if = "Option::is_none")]
        failure: Option<Box<crate::failure::FailureReport>>,
    },
    /// The failed containers' last log lines, read after the verdict (while
    /// the rollback runs): printed as a block, kept with `-q`.
    FailureLogs {
        logs: Vec<crate::failure::ContainerLog>,
    },
    RollbackStarted {
        to: String,
        reason: String,
    },
    /// A one-off task (`--before`, `shipit run`) was started.
    OneOffStarted {
        /// `before 1/2`, `run`: which one-off task this is.
        label: String,
        task: String,
        task_definition: String,
        container: String,
        command: Vec<String>,
    },
    /// One line the one-off task's container wrote (awslogs), as it arrives:
    /// printed marked as the task's, never deduplicated.
    OneOffLog {
        label: String,
        task: String,
        container: String,
        line: String,
    },
    /// The one-off task's verdict: its essential containers' exit codes, or
    /// why it never ran to the end.
    OneOffFinished {
        label: String,
        task: Option<String>,
        success: bool,
        exit_code: Option<i32>,
        reason: String,
    },
    RollbackFinished {
        healthy: bool,
        reason: String,
        /// Why the revision rolled back to is not healthy either, when a poll saw it.
        #[serde(skip_serializing_if = "Option::is_none")]
        failure: Option<Box<crate::failure::FailureReport>>,
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
    /// An event of one service in a deploy (or rollback, status) of several:
    /// the line and terminal renderers prefix it with `[service]`, JSON adds
    /// a `service` field to the event's own object. Phases, the result,
    /// stdout data and errors are never wrapped: they belong to the whole run.
    ForService {
        service: String,
        event: Box<Event>,
    },
    /// Data for stdout (the plan, the status screen, `<verdict> <arn>`):
    /// printed by the line and terminal renderers, never with `--output json`,
    /// where stdout carries only the result object.
    Output {
        text: String,
    },
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}
