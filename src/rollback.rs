//! Rolling a service back: to the revision recorded before a failed deploy,
//! or (manual `shipit rollback`) to the last revision shipit saw healthy.

use std::time::Instant;

use crate::deploy::{active_service, criteria, mark, primary_deployment, Deps};
use crate::ecs::{tags, Ecs, ServiceUpdate};
use crate::error::{Error, ExitCode, Result};
use crate::report::{short_arn, Event, Outcome, Phase, Report, RollbackOutcome};
use crate::settings::{ServiceSettings, WatchSettings};
use crate::signals::Signals;
use crate::watch::{self, Goal, Tracker, Verdict, Watch};

/// Updates the service to `to` and watches it with the same verdict until
/// healthy or the rollback deadline. A second signal stops waiting at once,
/// saying which command finishes the recovery.
#[allow(clippy::too_many_arguments)]
pub async fn to_revision(
    deps: &Deps<'_>,
    report: &Report,
    cluster: &str,
    service: &str,
    to: &str,
    from: Option<&str>,
    reason: &str,
    settings: &WatchSettings,
    signals: &mut Signals,
) -> Result<RollbackOutcome> {
    report.emit(&Event::PhaseStarted {
        phase: Phase::Rollback,
    });
    report.emit(&Event::RollbackStarted {
        to: to.to_string(),
        reason: reason.to_string(),
    });
    let started_at = watch::now_epoch();
    let update = ServiceUpdate {
        cluster: cluster.to_string(),
        service: service.to_string(),
        task_definition: to.to_string(),
        desired_count: None,
        force_new_deployment: false,
    };
    let started = Instant::now();
    let updated = match deps.ecs.update_service(&update).await {
        Ok(updated) => updated,
        Err(err) => {
            let finish =
                format!("shipit rollback --cluster {cluster} --service {service} --to {to}");
            report.emit(&Event::RollbackFinished {
                healthy: false,
                reason: format!(
                    "the service could not be updated back to {}: {}; it still runs the failed revision; to finish: {finish}",
                    short_arn(to),
                    err.message()
                ),
            });
            return Err(err
                .context(format!("rolling back to {to}"))
                .with_kind(crate::error::ErrorKind::NeedsHuman)
                .hint(format!("retry: {finish}")));
        }
    };
    report.emit(&Event::ServiceUpdated {
        task_definition: to.to_string(),
        deployment_id: primary_deployment(&updated, to),
    });
    let goal = Goal {
        task_definition: to.to_string(),
        deployment_id: primary_deployment(&updated, to),
        previous_task_definition: from.map(str::to_string),
        started_at,
        health_checked: Vec::new(),
    };
    let watcher = Watch {
        ecs: deps.ecs,
        elb: deps.elb,
        report,
        cluster,
        service,
        interval: settings.poll_interval,
        deadline: watch::Deadline::fixed(settings.rollback_timeout),
        calls: deps.calls.clone(),
    };
    let mut tracker = Tracker::new(criteria(settings), goal);
    let result = tokio::select! {
        result = watcher.run(&mut tracker) => result,
        code = signals.next() => {
            let message = format!(
                "interrupted while rolling back to {}: the service is updated but not yet seen healthy; to finish: shipit rollback --cluster {cluster} --service {service} --to {to}",
                short_arn(to)
            );
            report.emit(&Event::RollbackFinished { healthy: false, reason: message.clone() });
            return Ok(RollbackOutcome {
                to: to.to_string(),
                healthy: false,
                reason: message,
                interrupted: Some(code),
            });
        }
    };
    report.emit(&Event::PhaseFinished {
        phase: Phase::Rollback,
        elapsed: started.elapsed(),
    });
    let (healthy, reason) = match result.verdict {
        // desiredCount 0 was "healthy" before the verdict could say "unverifiable".
        Verdict::Healthy(summary) | Verdict::Unverifiable(summary) => (true, summary),
        Verdict::Failed(failure) => (false, failure.reason),
        Verdict::Pending(what)
        | Verdict::Superseded(what)
        | Verdict::Blind(what)
        | Verdict::EcsRollingBack { reason: what, .. } => (false, what),
    };
    let outcome = RollbackOutcome {
        to: to.to_string(),
        healthy,
        reason,
        interrupted: None,
    };
    report.emit(&Event::RollbackFinished {
        healthy: outcome.healthy,
        reason: outcome.reason.clone(),
    });
    Ok(outcome)
}

/// `family:revision` → revision number.
fn revision_of(arn: &str) -> Option<u32> {
    arn.rsplit(':').next()?.parse().ok()
}

fn family_of(arn: &str) -> &str {
    let name = arn.rsplit('/').next().unwrap_or(arn);
    name.rsplit_once(':').map(|(f, _)| f).unwrap_or(name)
}

/// Which revision `shipit rollback` returns to: `--to` (revision number, ARN
/// or commit SHA), else the newest revision older than the current one that
/// shipit tagged healthy.
pub async fn choose_target(ecs: &dyn Ecs, current: &str, to: Option<&str>) -> Result<String> {
    let family = family_of(current).to_string();
    let current_rev = revision_of(current).unwrap_or(u32::MAX);
    if let Some(to) = to {
        if let Ok(rev) = to.parse::<u32>() {
            if to.len() < 7 {
                return Ok(ecs.task_definition(&format!("{family}:{rev}")).await?.arn);
            }
        }
        if to.starts_with("arn:") || to.contains(':') {
            return Ok(ecs.task_definition(to).await?.arn);
        }
        let sha = to.to_ascii_lowercase();
        if sha.len() < 7 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::bad_input(format!(
                "--to `{to}` is not a revision number, an ARN or a commit SHA (7 to 40 hex characters)"
            ))
            .hint("e.g. --to 41, --to web:41, --to arn:aws:ecs:…:task-definition/web:41 or --to 3f5c2a1"));
        }
        // The newest revision per matching commit; two different commits is ambiguous.
        let mut found: Vec<(String, String)> = Vec::new();
        for arn in revisions_newest_first(ecs, &family).await? {
            let doc = ecs.task_definition(&arn).await?;
            if let Some(tagged) = doc.tag(tags::SHA).filter(|t| t.starts_with(&sha)) {
                if !found.iter().any(|(s, _)| s == tagged) {
                    found.push((tagged.to_string(), doc.arn.clone()));
                }
            }
        }
        match found.as_slice() {
            [(_, arn)] => return Ok(arn.clone()),
            [] => {}
            several => {
                return Err(Error::bad_input(format!(
                    "--to {to} matches {} commits in `{family}`",
                    several.len()
                ))
                .cause(
                    several
                        .iter()
                        .map(|(sha, arn)| format!("{sha} ({})", short_arn(arn)))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
                .hint("give more characters of the SHA, or the revision number"))
            }
        }
        return Err(Error::bad_input(format!(
            "no revision of `{family}` is tagged with commit {to}"
        ))
        .hint("pass a revision number or ARN with --to, or a SHA shipit deployed"));
    }
    for arn in revisions_newest_first(ecs, &family).await? {
        if revision_of(&arn).unwrap_or(0) >= current_rev {
            continue;
        }
        let doc = ecs.task_definition(&arn).await?;
        if doc.tag(tags::VERDICT) == Some("healthy") {
            return Ok(doc.arn);
        }
    }
    Err(Error::bad_input(format!(
        "no revision of `{family}` older than {} was seen healthy by shipit",
        short_arn(current)
    ))
    .hint("say where to go with --to <revision|ARN|SHA>"))
}

async fn revisions_newest_first(ecs: &dyn Ecs, family: &str) -> Result<Vec<String>> {
    let mut arns = ecs.task_definition_arns(family).await?;
    // Sort by revision number: some implementations sort ARNs as strings (`:10` before `:2`).
    arns.sort_by_key(|arn| std::cmp::Reverse(revision_of(arn).unwrap_or(0)));
    Ok(arns)
}

/// `shipit rollback`.
pub async fn run(
    service: &ServiceSettings,
    watch: &WatchSettings,
    to: Option<&str>,
    deps: &Deps<'_>,
    report: &Report,
    signals: &mut Signals,
) -> Result<Outcome> {
    let current = active_service(deps.ecs, &service.cluster, &service.service).await?;
    let target = choose_target(deps.ecs, &current.task_definition, to).await?;
    if target == current.task_definition {
        return Err(Error::bad_input(format!(
            "service `{}` already runs {}",
            service.service,
            short_arn(&target)
        ))
        .hint("pick another revision with --to"));
    }
    let reason = format!(
        "manual rollback from {}",
        short_arn(&current.task_definition)
    );
    let rolled = to_revision(
        deps,
        report,
        &service.cluster,
        &service.service,
        &target,
        Some(&current.task_definition),
        &reason,
        watch,
        signals,
    )
    .await?;
    if rolled.healthy {
        mark(deps.ecs, &target, "healthy", report).await;
    }
    Ok(Outcome {
        command: "rollback".into(),
        previous_task_definition: Some(current.task_definition.clone()),
        new_task_definition: Some(target.clone()),
        verdict: if rolled.healthy {
            "rolled_back".into()
        } else {
            "needs_human".into()
        },
        reason: Some(rolled.reason.clone()),
        // Interrupted: 130/143, the service updated but not yet seen healthy.
        exit_code: match (rolled.healthy, rolled.interrupted) {
            (true, _) => ExitCode::Success.code(),
            (false, Some(code)) => code.code(),
            (false, None) => ExitCode::NeedsHuman.code(),
        },
        rollback: Some(rolled),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn revision_and_family_come_from_the_arn() {
        let arn = "arn:aws:ecs:us-east-1:1:task-definition/web-api:12";
        assert_eq!(super::revision_of(arn), Some(12));
        assert_eq!(super::family_of(arn), "web-api");
    }
}
