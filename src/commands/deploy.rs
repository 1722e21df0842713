//! `shipit deploy`: connect to the engine only when a build is needed, then
//! run the deploy ([`crate::deploy`], or [`crate::release`] for several
//! services) and say its verdict.

use super::Context;
use crate::cli::DeployArgs;
use crate::deploy;
use crate::error::Result;
use crate::image::pipeline;
use crate::outcome::Outcome;
use crate::release;
use crate::settings::{self, DeployTargets, ReleaseSettings};

pub async fn run(ctx: &Context<'_>, args: &DeployArgs) -> Result<Outcome> {
    let settings = match settings::deploy_targets(&ctx.repo, &ctx.file, args)? {
        DeployTargets::One(settings) => *settings,
        DeployTargets::Several(release) => return run_several(ctx, args, &release).await,
    };
    let commit = ctx.commit(&args.sha)?;
    let clients = ctx.aws().await?;
    // Connect to the engine before any change when a build will be needed.
    let image = pipeline::plan(&settings.image, &commit, clients.registry.as_ref()).await?;
    let engine = ctx.engine_if(image.build, &settings.image).await?;
    let deps = clients.deps(engine.as_deref(), ctx.calls);
    let outcome = deploy::run(&settings, &commit, &deps, ctx.report, Some(image)).await?;
    ctx.say(verdict_line(&outcome));
    Ok(outcome)
}

/// Several services from one build: one image plan, one engine, one release.
async fn run_several(
    ctx: &Context<'_>,
    args: &DeployArgs,
    settings: &ReleaseSettings,
) -> Result<Outcome> {
    let commit = ctx.commit(&args.sha)?;
    let clients = ctx.aws().await?;
    let image = pipeline::plan(&settings.shared.image, &commit, clients.registry.as_ref()).await?;
    let engine = ctx.engine_if(image.build, &settings.shared.image).await?;
    let deps = clients.deps(engine.as_deref(), ctx.calls);
    let outcome = release::run(settings, &commit, &deps, ctx.report, Some(image)).await?;
    ctx.say(verdict_line(&outcome));
    Ok(outcome)
}

/// `<verdict> <task definition ARN>`, what deploy and rollback print on
/// stdout; one such line per service for several.
pub fn verdict_line(outcome: &Outcome) -> String {
    if !outcome.services.is_empty() {
        return outcome
            .services
            .iter()
            .map(|s| {
                format!(
                    "{} {}\n",
                    s.conclusion.name(),
                    s.new_task_definition
                        .as_deref()
                        .or(s.previous_task_definition.as_deref())
                        .unwrap_or(&s.service)
                )
            })
            .collect();
    }
    format!(
        "{} {}\n",
        outcome.conclusion.name(),
        outcome.new_task_definition.as_deref().unwrap_or("")
    )
}
