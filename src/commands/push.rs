//! `shipit push`: build unless the SHA tag is already in ECR, then push.

use super::Context;
use crate::cli::PushArgs;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::image::pipeline;
use crate::outcome::Outcome;
use crate::settings;

pub async fn run(ctx: &Context<'_>, args: &PushArgs) -> Result<Outcome> {
    let image = settings::image(&ctx.repo, &ctx.file.image, &args.image, Some(&args.push))?;
    image.repository()?;
    let commit = ctx.commit(&args.sha)?;
    let clients = ctx.aws().await?;
    let plan = pipeline::plan(&image, &commit, clients.registry.as_ref()).await?;
    let engine = ctx.engine_if(plan.build, &image).await?;
    let pushed = pipeline::ensure(
        &plan,
        &image,
        &commit,
        clients.registry.as_ref(),
        engine.as_deref(),
        ctx.report,
    )
    .await?;
    ctx.say(format!("{}@{}\n", pushed.reference, pushed.digest));
    let conclusion = if pushed.built {
        Conclusion::Pushed
    } else {
        Conclusion::AlreadyPushed
    };
    Ok(Outcome {
        sha: Some(commit.sha.to_string()),
        image: Some(pushed.reference),
        digest: Some(pushed.digest),
        timings: pushed.timings.to_vec(),
        ..Outcome::new("push", conclusion)
    })
}
