//! One event stream, several renderers: progress bars on a terminal,
//! timestamped lines in CI, JSON Lines for machines, GitHub Actions extras.

mod event;
mod github;
mod human;
mod json;
mod lines;
mod scoped;
mod timing;

use std::sync::Arc;

pub use crate::outcome::{Outcome, Phase, RollbackOutcome, Timing, WatchStats};
pub use event::Event;
pub use github::GithubActions;
pub use human::Human;
pub use json::Json;
pub use lines::Lines;
pub use scoped::{for_one_of_several, for_service};
pub use timing::{PhaseClock, Timings};

/// Where the core sends what happened. Implementations must not block for long.
pub trait Reporter: Send + Sync {
    fn emit(&self, event: &Event);
    /// Called once at the end, before the process exits (flush, clear bars).
    fn finish(&self) {}
}

pub type Report = Arc<dyn Reporter>;

/// How much the renderers show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Sends every event to several reporters (e.g. lines + GitHub Actions files).
pub struct Tee(pub Vec<Report>);

impl Reporter for Tee {
    fn emit(&self, event: &Event) {
        for reporter in &self.0 {
            reporter.emit(event);
        }
    }

    fn finish(&self) {
        for reporter in &self.0 {
            reporter.finish();
        }
    }
}

/// Records events, for tests.
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn emit(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

/// `error: …`, then `Caused by:` lines, then `hint: …`: how the line and
/// terminal renderers print an [`Event::Error`] (on stderr, untimestamped).
pub fn error_text(message: &str, causes: &[String], hint: Option<&str>) -> String {
    let mut text = format!("error: {message}\n");
    for cause in causes {
        for line in cause.lines() {
            text.push_str(&format!("  Caused by: {line}\n"));
        }
    }
    if let Some(hint) = hint {
        text.push_str(&format!("hint: {hint}\n"));
    }
    text
}

/// Writes data to stdout in one piece.
pub fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A line of text for an event, shared by the line and terminal renderers.
/// `None` for events that have no line at this verbosity.
pub fn describe(event: &Event, verbosity: Verbosity) -> Option<String> {
    let quiet = verbosity == Verbosity::Quiet;
    Some(match event {
        Event::PhaseStarted { phase } if !quiet => format!("==> {}", phase.title()),
        Event::PhaseFinished { phase, elapsed } if !quiet => {
            format!(
                "    {} done in {:.1}s",
                phase.title(),
                elapsed.as_secs_f64()
            )
        }
        Event::Info { message } if !quiet => message.clone(),
        Event::Warning { message } => format!("warning: {message}"),
        Event::BuildLog { line } if !quiet => format!("    | {line}"),
        Event::BuilderChosen { builder, reason } if !quiet => {
            format!("builder: {builder} ({reason})")
        }
        Event::LayerCache {
            image: Some(image),
            reason,
            older,
        } if !quiet => match older.len() {
            0 => format!("layer cache: {image} ({reason})"),
            1 => format!("layer cache: {image} ({reason}; 1 older commit image too)"),
            n => format!("layer cache: {image} ({reason}; {n} older commit images too)"),
        },
        Event::LayerCache {
            image: None,
            reason,
            ..
        } if !quiet => format!("layer cache: none ({reason})"),
        Event::ContextProgress { .. } => return None,
        Event::PushProgress { layer, status, .. } if verbosity == Verbosity::Verbose => {
            format!("    {layer}: {status}")
        }
        Event::ImagePushed {
            image,
            digest,
            tags,
        } if !quiet => {
            format!("pushed {image}@{digest} (tags: {})", tags.join(", "))
        }
        Event::TaskDefinitionRegistered { arn } if !quiet => format!("registered {arn}"),
        Event::ServiceUpdated {
            task_definition,
            deployment_id,
        } if !quiet => match deployment_id {
            Some(id) => format!("service updated to {task_definition} (deployment {id})"),
            None => format!("service updated to {task_definition}"),
        },
        Event::TaskChanged {
            task,
            revision,
            status,
            detail,
        } if !quiet => match detail {
            Some(detail) => format!("task {task} ({revision}): {status} — {detail}"),
            None => format!("task {task} ({revision}): {status}"),
        },
        Event::TargetChanged {
            target_group,
            target,
            state,
            reason,
        } if !quiet => match reason {
            Some(reason) => format!("target {target} in {target_group}: {state} ({reason})"),
            None => format!("target {target} in {target_group}: {state}"),
        },
        Event::Waiting { what } if !quiet => format!("waiting: {what}"),
        Event::Verdict {
            healthy: true,
            reason,
            ..
        } => format!("verdict: healthy — {reason}"),
        Event::Verdict {
            healthy: false,
            reason,
            failure,
        } => with_report(format!("verdict: FAILED — {reason}"), failure),
        Event::FailureLogs { logs } if !logs.is_empty() => {
            crate::failure::log_lines(logs).join("\n")
        }
        Event::OneOffStarted {
            label,
            task,
            task_definition,
            container,
            command,
        } if !quiet => format!(
            "{label}: started task {} of {} ({container}: {})",
            short_id(task),
            crate::arn::short(task_definition),
            crate::argv::text(command)
        ),
        Event::OneOffLog { label, line, .. } if !quiet => format!("    [{label}] {line}"),
        Event::OneOffFinished {
            label,
            success: true,
            reason,
            ..
        } if !quiet => format!("{label}: {reason}"),
        // Kept with -q: it is why the command fails.
        Event::OneOffFinished {
            label,
            success: false,
            reason,
            ..
        } => format!("{label}: FAILED — {reason}"),
        Event::RollbackStarted { to, reason } => format!("rolling back to {to}: {reason}"),
        Event::RollbackFinished {
            healthy: true,
            reason,
            ..
        } => format!("rollback healthy — {reason}"),
        Event::RollbackFinished {
            healthy: false,
            reason,
            failure,
        } => with_report(format!("rollback FAILED — {reason}"), failure),
        Event::ForService { service, event } => describe(event, verbosity)?
            .lines()
            .map(|line| format!("[{service}] {line}"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    })
}

/// A failed verdict's line and, below it, its failure report: kept with -q,
/// it is the why of the verdict.
fn with_report(line: String, failure: &Option<Box<crate::failure::FailureReport>>) -> String {
    let mut text = line;
    for line in failure.iter().flat_map(|f| crate::failure::lines(f)) {
        text.push('\n');
        text.push_str(&line);
    }
    text
}

pub use crate::arn::short as short_arn;

/// A task ARN's id, shortened for a line (`9d5988f6`).
fn short_id(task: &str) -> &str {
    let id = task.rsplit('/').next().unwrap_or(task);
    &id[..id.len().min(8)]
}

#[cfg(test)]
mod snapshots;
