//! `shipit rollback`: to the last revision shipit saw healthy, or to the one
//! `--to` names. The rollback itself is a [`Rollout`].

use crate::arn::{short, Arn};
use crate::conclusion::{Conclusion, RollbackCause};
use crate::ecs::{tags, taskdef, Ecs};
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::plan::active_service;
use crate::report::{Report, Timings};
use crate::rollout::{Move, Rollout};
use crate::settings::RollbackSettings;
use crate::signals::Signals;
use crate::world::Deps;

/// `shipit rollback`.
pub async fn run(settings: &RollbackSettings, deps: &Deps<'_>, report: &Report) -> Result<Outcome> {
    let chosen = choose(settings, deps).await?;
    roll(settings, deps, report, chosen).await
}

/// Where a rollback goes, worked out with read calls only (bad input fails
/// here, nothing changed): several services are all chosen before any moves.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The revision the service runs now.
    pub current: String,
    pub target: String,
    target_doc: crate::ecs::TaskDefinitionDoc,
}

/// The rollback target of `settings.service` (see [`choose_target`]).
pub async fn choose(settings: &RollbackSettings, deps: &Deps<'_>) -> Result<Chosen> {
    let service = &settings.service;
    let current = active_service(deps.ecs, &service.cluster, &service.service).await?;
    let target = choose_target(deps.ecs, &current.task_definition, settings.to.as_deref()).await?;
    if target == current.task_definition {
        return Err(Error::bad_input(format!(
            "service `{}` already runs {}",
            service.service,
            short(&target)
        ))
        .hint("pick another revision with --to"));
    }
    // Watched like a deploy: the target's container health checks count too.
    let target_doc = deps.ecs.task_definition(&target).await?;
    Ok(Chosen {
        current: current.task_definition,
        target,
        target_doc,
    })
}

/// Moves the service to the chosen revision and watches it.
pub async fn roll(
    settings: &RollbackSettings,
    deps: &Deps<'_>,
    report: &Report,
    chosen: Chosen,
) -> Result<Outcome> {
    let service = &settings.service;
    let Chosen {
        current,
        target,
        target_doc,
    } = chosen;
    let reason = format!("manual rollback from {}", short(&current));
    let rollout = Rollout {
        deps,
        report,
        service,
        watch: &settings.watch,
    };
    let mv = Move {
        to: target.clone(),
        from: Some(current.clone()),
        health_checked: taskdef::health_checked_essential_containers(&target_doc.json),
        ..Move::default()
    };
    let mut signals = Signals::install();
    // The manual rollback's result carries no timings (as before the rollout module).
    let rolled = rollout
        .roll_back(&mv, &reason, &mut signals, &mut Timings::default())
        .await?;
    if rolled.healthy {
        rollout.mark(&target, "healthy").await;
    }
    let conclusion = match (rolled.healthy, rolled.interrupted) {
        (true, _) => Conclusion::RolledBack(RollbackCause::Requested),
        // Interrupted: 130/143, the service updated but not yet seen healthy.
        (false, interrupted) => Conclusion::NeedsHuman(interrupted),
    };
    Ok(Outcome {
        previous_task_definition: Some(current.clone()),
        new_task_definition: Some(target.clone()),
        reason: Some(rolled.reason.clone()),
        // The rollback's revision is what failed: its report is this command's.
        failure: rolled.failure.clone(),
        rollback: Some(rolled),
        ..Outcome::new("rollback", conclusion)
    })
}

/// Which revision `shipit rollback` returns to: `--to` (revision number, ARN
/// or commit SHA), else the newest revision older than the current one that
/// shipit tagged healthy.
pub async fn choose_target(ecs: &dyn Ecs, current: &str, to: Option<&str>) -> Result<String> {
    let family = Arn(current).family().to_string();
    let current_rev = Arn(current).revision().unwrap_or(u32::MAX);
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
                        .map(|(sha, arn)| format!("{sha} ({})", short(arn)))
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
        if Arn(&arn).revision().unwrap_or(0) >= current_rev {
            continue;
        }
        let doc = ecs.task_definition(&arn).await?;
        if doc.tag(tags::VERDICT) == Some("healthy") {
            return Ok(doc.arn);
        }
    }
    Err(Error::bad_input(format!(
        "no revision of `{family}` older than {} was seen healthy by shipit",
        short(current)
    ))
    .hint("say where to go with --to <revision|ARN|SHA>"))
}

async fn revisions_newest_first(ecs: &dyn Ecs, family: &str) -> Result<Vec<String>> {
    let mut arns = ecs.task_definition_arns(family).await?;
    // Sort by revision number: some implementations sort ARNs as strings (`:10` before `:2`).
    arns.sort_by_key(|arn| std::cmp::Reverse(Arn(arn).revision().unwrap_or(0)));
    Ok(arns)
}

#[cfg(test)]
mod tests {
    use crate::arn::Arn;

    #[test]
    fn revision_and_family_come_from_the_arn() {
        let arn = "arn:aws:ecs:us-east-1:1:task-definition/web-api:12";
        assert_eq!(Arn(arn).revision(), Some(12));
        assert_eq!(Arn(arn).family(), "web-api");
    }
}
