//! `shipit plan` (and `shipit deploy --dry-run`, which is this command):
//! read calls only, the plan and the task definition diff on stdout.

use super::Context;
use crate::cli::DeployArgs;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::plan;
use crate::settings;
use crate::task;

pub async fn run(ctx: &Context<'_>, args: &DeployArgs) -> Result<Outcome> {
    let settings = settings::deploy(&ctx.repo, &ctx.file, args)?;
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
