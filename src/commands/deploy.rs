//! `shipit deploy`: connect to the engine only when a build is needed, then
//! run the deploy ([`crate::deploy`]) and say its verdict.

use super::Context;
use crate::cli::DeployArgs;
use crate::deploy;
use crate::error::Result;
use crate::image::pipeline;
use crate::outcome::Outcome;
use crate::settings;

pub async fn run(ctx: &Context<'_>, args: &DeployArgs) -> Result<Outcome> {
    let settings = settings::deploy(&ctx.repo, &ctx.file, args)?;
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

/// `<verdict> <task definition ARN>`, what deploy and rollback print on stdout.
pub fn verdict_line(outcome: &Outcome) -> String {
    format!(
        "{} {}\n",
        outcome.conclusion.name(),
        outcome.new_task_definition.as_deref().unwrap_or("")
    )
}
