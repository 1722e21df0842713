//! `shipit plan` (and `shipit deploy --dry-run`, which is this command):
//! read calls only, the plan and the task definition diff on stdout (one
//! section per service for several).

use super::Context;
use crate::cli::DeployArgs;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::outcome::{Outcome, ServiceOutcome};
use crate::plan;
use crate::report::for_service;
use crate::settings::{self, DeployTargets, ReleaseSettings};
use crate::task;

pub async fn run(ctx: &Context<'_>, args: &DeployArgs) -> Result<Outcome> {
    let settings = match settings::deploy_targets(&ctx.repo, &ctx.file, args)? {
        DeployTargets::One(settings) => *settings,
        DeployTargets::Several(release) => return run_several(ctx, args, &release).await,
    };
    let commit = ctx.commit(&args.sha)?;
    let clients = ctx.aws().await?;
    let plan = plan::plan(&settings, &commit, &clients.deps(None, ctx.calls), None).await?;
    if plan.image.build {
        settings.image.require_dockerfile()?;
    }
    // The --before steps are checked as a deploy checks them (bad input: exit 2).
    let before = task::before_steps(&settings, &plan, "")?;
    ctx.say(plan::render(&plan, &commit));
    if !before.is_empty() {
        ctx.say(task::render_steps(&before));
    }
    plan::warn(&plan, ctx.report);
    Ok(Outcome {
        sha: Some(commit.sha.to_string()),
        image: plan.image.reference(),
        digest: plan.image.existing_digest.clone(),
        previous_task_definition: Some(plan.current.arn.clone()),
        ..Outcome::new("plan", Conclusion::Planned)
    })
}

/// Every service's plan (each with its diff and rollback target), in group
/// order; any service's bad input fails the whole plan.
async fn run_several(
    ctx: &Context<'_>,
    args: &DeployArgs,
    settings: &ReleaseSettings,
) -> Result<Outcome> {
    let commit = ctx.commit(&args.sha)?;
    let clients = ctx.aws().await?;
    let deps = clients.deps(None, ctx.calls);
    let image =
        crate::image::pipeline::plan(&settings.shared.image, &commit, clients.registry.as_ref())
            .await?;
    if image.build {
        settings.shared.image.require_dockerfile()?;
    }
    let mut text = String::new();
    let mut services = Vec::new();
    let mut before = Vec::new();
    let groups = settings.groups();
    for (group, indexes) in &groups {
        for i in indexes {
            let target = &settings.services[*i];
            let name = &target.deploy.service.service;
            let plan = plan::plan(&target.deploy, &commit, &deps, Some(image.clone()))
                .await
                .map_err(|err| err.context(format!("service `{name}`")))?;
            let order = if groups.len() > 1 {
                format!(" (group {group})")
            } else {
                String::new()
            };
            if *i == 0 {
                // The release runs the --before steps once, on this service's
                // new revision: checked as the deploy checks them (exit 2).
                before = task::before_steps(&target.deploy, &plan, "")
                    .map_err(|err| err.context(format!("service `{name}`")))?;
            }
            text.push_str(&format!("=== service {name}{order} ===\n"));
            text.push_str(&plan::render(&plan, &commit));
            text.push('\n');
            plan::warn(&plan, &for_service(ctx.report, name));
            services.push(ServiceOutcome {
                service: name.clone(),
                group: *group,
                previous_task_definition: Some(plan.current.arn.clone()),
                new_task_definition: None,
                conclusion: Conclusion::Planned,
                reason: Some(format!(
                    "a new revision of `{}`, changing container(s) {}; rollback to {}",
                    plan.family(),
                    plan.containers.join(", "),
                    plan.current.arn
                )),
                rollback: None,
                failure: None,
            });
        }
    }
    if !before.is_empty() {
        text.push_str(&format!(
            "=== before any update, once, on service {}'s new revision ===",
            settings.services[0].deploy.service.service
        ));
        text.push_str(&task::render_steps(&before));
    }
    ctx.say(text);
    Ok(Outcome {
        sha: Some(commit.sha.to_string()),
        image: image.reference(),
        digest: image.existing_digest.clone(),
        services,
        ..Outcome::new("plan", Conclusion::Planned)
    })
}
