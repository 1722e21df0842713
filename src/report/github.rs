//! GitHub Actions extras: `::group::` per phase, `::error::` with the failure
//! reason, a Markdown step summary and step outputs.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Event, Outcome, Reporter};
use crate::failure::FailureReport;

pub struct GithubActions {
    summary: Option<PathBuf>,
    outputs: Option<PathBuf>,
    in_group: Mutex<bool>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl GithubActions {
    pub fn new(
        summary: Option<PathBuf>,
        outputs: Option<PathBuf>,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            summary,
            outputs,
            in_group: Mutex::new(false),
            out: Mutex::new(out),
        }
    }

    fn command(&self, line: &str) {
        let mut out = self.out.lock().unwrap();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn end_group(&self) {
        let mut in_group = self.in_group.lock().unwrap();
        if *in_group {
            self.command("::endgroup::");
            *in_group = false;
        }
    }

    fn write_outputs(&self, outcome: &Outcome) {
        let Some(path) = &self.outputs else { return };
        let mut text = String::new();
        if !outcome.services.is_empty() {
            // Per service: `verdict-<service>`, `task-definition-arn-<service>`, and all as JSON.
            for s in &outcome.services {
                text.push_str(&format!("verdict-{}={}\n", s.service, s.conclusion.name()));
                if let Some(arn) = &s.new_task_definition {
                    text.push_str(&format!("task-definition-arn-{}={arn}\n", s.service));
                }
            }
            let services = serde_json::to_string(&outcome.services).unwrap_or_default();
            text.push_str(&format!("services={services}\n"));
        }
        for (key, value) in [
            ("image", outcome.image.as_deref()),
            ("digest", outcome.digest.as_deref()),
            (
                "task-definition-arn",
                outcome.new_task_definition.as_deref(),
            ),
            (
                "previous-task-definition-arn",
                outcome.previous_task_definition.as_deref(),
            ),
            ("verdict", Some(outcome.conclusion.name())),
        ] {
            if let Some(value) = value {
                text.push_str(&format!("{key}={}\n", value.replace('\n', " ")));
            }
        }
        append(path, &text);
    }

    fn write_summary(&self, outcome: &Outcome) {
        let Some(path) = &self.summary else { return };
        append(path, &summary_markdown(outcome));
    }
}

fn append(path: &PathBuf, text: &str) {
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}

/// The step summary: one table a reviewer can read at a glance.
pub fn summary_markdown(outcome: &Outcome) -> String {
    let icon = if outcome.conclusion.is_success() {
        "✅"
    } else {
        "❌"
    };
    let mut md = format!(
        "### {icon} shipit {}: {}\n\n| | |\n|---|---|\n",
        outcome.command,
        outcome.conclusion.name()
    );
    let mut row = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            md.push_str(&format!("| {key} | `{}` |\n", value.replace('|', "\\|")));
        }
    };
    row("commit", outcome.sha.as_deref());
    row("image", outcome.image.as_deref());
    row("digest", outcome.digest.as_deref());
    row(
        "previous task definition",
        outcome.previous_task_definition.as_deref(),
    );
    row(
        "new task definition",
        outcome.new_task_definition.as_deref(),
    );
    row("reason", outcome.reason.as_deref());
    if let Some(rollback) = &outcome.rollback {
        let state = if rollback.healthy {
            "healthy"
        } else {
            "FAILED"
        };
        md.push_str(&format!(
            "| rollback | {state} on `{}`: {} |\n",
            rollback.to, rollback.reason
        ));
    }
    for task in &outcome.tasks {
        let exit = task
            .exit_code
            .map_or_else(|| "no exit code".to_string(), |c| format!("exit {c}"));
        md.push_str(&format!(
            "| {} | `{}` {exit} in {:.1}s: {} |\n",
            task.label,
            task.task_arn.as_deref().unwrap_or("not started"),
            task.seconds,
            task.reason.replace('|', "\\|")
        ));
    }
    if !outcome.timings.is_empty() {
        let timings: Vec<String> = outcome
            .timings
            .iter()
            .map(|t| format!("{} {:.1}s", t.phase.title(), t.seconds))
            .collect();
        md.push_str(&format!("| timings | {} |\n", timings.join(", ")));
    }
    md.push('\n');
    if !outcome.services.is_empty() {
        md.push_str(&services_markdown(&outcome.services));
        md.push('\n');
    }
    // A release: each failed service's report, and that of a rollback that failed too.
    for s in &outcome.services {
        if let Some(failure) = &s.failure {
            md.push_str(&failure_section(&format!("{}: ", s.service), failure));
        }
        // `shipit rollback` puts its report in both: once is enough.
        if let Some(failure) = s
            .rollback
            .as_ref()
            .and_then(|r| r.failure.as_deref())
            .filter(|f| s.failure.as_deref() != Some(*f))
        {
            md.push_str(&failure_section(
                &format!("{} rollback: ", s.service),
                failure,
            ));
        }
    }
    if let Some(failure) = &outcome.failure {
        md.push_str(&failure_section("", failure));
    }
    // The revision rolled back to failed too (`shipit rollback` puts it in `failure`).
    if let Some(failure) = outcome
        .rollback
        .as_ref()
        .and_then(|r| r.failure.as_deref())
        .filter(|f| outcome.failure.as_deref() != Some(*f))
    {
        md.push_str(&failure_section("rollback: ", failure));
    }
    md
}

fn failure_section(label: &str, failure: &FailureReport) -> String {
    format!(
        "**{label}Why:** {} — {}\n\n**Fix:** {}\n\n<details><summary>{label}failure report</summary>\n\n```\n{}\n```\n\n</details>\n\n",
        failure.cause.title(),
        failure.summary.replace('|', "\\|"),
        failure.hint,
        crate::failure::lines(failure).join("\n").replace("```", "'''"),
    )
}

/// The `::error::` annotation's cause and hint.
fn why(failure: &Option<Box<FailureReport>>) -> String {
    failure
        .as_ref()
        .map(|f| format!(" — {}: {} (hint: {})", f.cause.title(), f.summary, f.hint))
        .unwrap_or_default()
}

/// One row per service: its verdict, its revisions and what happened to it.
fn services_markdown(services: &[crate::outcome::ServiceOutcome]) -> String {
    let mut md = String::from("| service | verdict | new task definition | previous | what happened |\n|---|---|---|---|---|\n");
    for s in services {
        let mut what = s.reason.clone().unwrap_or_default();
        if let Some(rollback) = &s.rollback {
            let state = if rollback.healthy {
                "healthy"
            } else {
                "FAILED"
            };
            what = format!(
                "{what}; rollback {state} on `{}`",
                crate::arn::short(&rollback.to)
            );
        }
        md.push_str(&format!(
            "| {} | {} | `{}` | `{}` | {} |\n",
            s.service,
            s.conclusion.name(),
            s.new_task_definition
                .as_deref()
                .map(crate::arn::short)
                .unwrap_or("-"),
            s.previous_task_definition
                .as_deref()
                .map(crate::arn::short)
                .unwrap_or("-"),
            what.replace('|', "\\|").replace('\n', " "),
        ));
    }
    md
}

fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

impl Reporter for GithubActions {
    fn emit(&self, event: &Event) {
        match event {
            Event::PhaseStarted { phase } => {
                self.end_group();
                self.command(&format!("::group::shipit: {}", phase.title()));
                *self.in_group.lock().unwrap() = true;
            }
            Event::PhaseFinished { .. } => self.end_group(),
            Event::Verdict {
                healthy: false,
                reason,
                failure,
            } => {
                self.end_group();
                self.command(&format!(
                    "::error title=shipit deploy failed::{}",
                    escape(&format!("{reason}{}", why(failure)))
                ));
            }
            Event::RollbackFinished {
                healthy: false,
                reason,
                failure,
            } => {
                self.end_group();
                self.command(&format!(
                    "::error title=shipit rollback failed::{}",
                    escape(&format!("{reason}{}", why(failure)))
                ));
            }
            Event::OneOffFinished {
                label,
                success: false,
                reason,
                ..
            } => self.command(&format!(
                "::error title=shipit {label} failed::{}",
                escape(reason)
            )),
            Event::Warning { message } => self.command(&format!("::warning::{}", escape(message))),
            Event::Error {
                command,
                message,
                hint,
                ..
            } => {
                self.end_group();
                let hint = hint
                    .as_deref()
                    .map(|h| format!(" (hint: {h})"))
                    .unwrap_or_default();
                self.command(&format!(
                    "::error title=shipit {command} failed::{}",
                    escape(&format!("{message}{hint}"))
                ));
            }
            Event::ForService { service, event } => match event.as_ref() {
                Event::Verdict {
                    healthy: false,
                    reason,
                    failure,
                } => {
                    let why = failure
                        .as_ref()
                        .map(|f| {
                            format!(" — {}: {} (hint: {})", f.cause.title(), f.summary, f.hint)
                        })
                        .unwrap_or_default();
                    self.command(&format!(
                        "::error title=shipit deploy failed: {service}::{}",
                        escape(&format!("{reason}{why}"))
                    ));
                }
                Event::RollbackFinished {
                    healthy: false,
                    reason,
                    ..
                } => self.command(&format!(
                    "::error title=shipit rollback failed: {service}::{}",
                    escape(reason)
                )),
                Event::Warning { message } => self.command(&format!(
                    "::warning::{}",
                    escape(&format!("[{service}] {message}"))
                )),
                _ => {}
            },
            Event::Result(outcome) => {
                self.end_group();
                self.write_outputs(outcome);
                self.write_summary(outcome);
            }
            _ => {}
        }
    }

    fn finish(&self) {
        self.end_group();
    }
}

#[cfg(test)]
mod tests {
    use super::summary_markdown;
    use crate::conclusion::{Conclusion, RollbackCause};
    use crate::failure::{Cause, FailureReport};
    use crate::outcome::{Outcome, RollbackOutcome, RolledBackBy, ServiceOutcome};

    fn report(summary: &str) -> Box<FailureReport> {
        Box::new(FailureReport {
            cause: Cause::ContainerExited,
            summary: summary.into(),
            hint: "read the container's last log lines below".into(),
            stops: vec![],
            targets: vec![],
            events: vec![],
            logs: vec![],
            more_tasks: 0,
        })
    }

    fn service(name: &str, conclusion: Conclusion) -> ServiceOutcome {
        ServiceOutcome {
            service: name.into(),
            group: 0,
            previous_task_definition: Some(format!(
                "arn:aws:ecs:us-east-1:1:task-definition/{name}:7"
            )),
            new_task_definition: Some(format!("arn:aws:ecs:us-east-1:1:task-definition/{name}:8")),
            conclusion,
            reason: Some("rolled back with the release".into()),
            rollback: None,
            failure: None,
        }
    }

    #[test]
    fn a_release_summary_has_a_failure_report_per_failed_service_and_failed_rollback() {
        let web = service("web", Conclusion::RolledBack(RollbackCause::DeployFailed));
        let mut worker = service("worker", Conclusion::NeedsHuman(None));
        worker.failure = Some(report("container `app` exited with code 3"));
        worker.rollback = Some(RollbackOutcome {
            to: "arn:aws:ecs:us-east-1:1:task-definition/worker:7".into(),
            healthy: false,
            reason: "Essential container in task exited".into(),
            by: RolledBackBy::Shipit,
            failure: Some(report("container `app` exited with code 4")),
            interrupted: None,
        });
        let outcome = Outcome {
            services: vec![web, worker],
            ..Outcome::new("deploy", Conclusion::NeedsHuman(None))
        };
        let md = summary_markdown(&outcome);
        assert!(
            md.contains("**worker: Why:** container exited — container `app` exited with code 3"),
            "{md}"
        );
        assert!(
            md.contains(
                "**worker rollback: Why:** container exited — container `app` exited with code 4"
            ),
            "{md}"
        );
        assert!(
            md.contains("<summary>worker rollback: failure report</summary>"),
            "{md}"
        );
        assert!(!md.contains("**web: Why:**"), "web did not fail: {md}");

        // `shipit rollback` of several: its report is in both places, shown once.
        let mut web = service("web", Conclusion::NeedsHuman(None));
        let failed = report("container `app` exited with code 4");
        web.failure = Some(failed.clone());
        web.rollback = Some(RollbackOutcome {
            to: "arn:aws:ecs:us-east-1:1:task-definition/web:7".into(),
            healthy: false,
            reason: "Essential container in task exited".into(),
            by: RolledBackBy::Shipit,
            failure: Some(failed),
            interrupted: None,
        });
        let md = summary_markdown(&Outcome {
            services: vec![web],
            ..Outcome::new("rollback", Conclusion::NeedsHuman(None))
        });
        assert_eq!(md.matches("failure report</summary>").count(), 1, "{md}");
    }
}
