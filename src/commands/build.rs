//! `shipit build`: build the image locally; no AWS calls.

use super::Context;
use crate::cli::BuildArgs;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::image::pipeline;
use crate::outcome::Outcome;
use crate::settings;

pub async fn run(ctx: &Context<'_>, args: &BuildArgs) -> Result<Outcome> {
    let image = settings::image(&ctx.repo, &ctx.file.image, &args.image, None)?;
    image.require_dockerfile()?;
    let commit = ctx.commit(&args.sha)?;
    let engine = ctx.world.engine().await?;
    let name = image.repository.as_deref().unwrap_or("shipit-build");
    let local = format!("{name}:{}", pipeline::tag_for(&image, &commit));
    let id = pipeline::build(&image, &commit, &local, engine.as_ref(), ctx.report).await?;
    ctx.say(format!("{local} {id}\n"));
    Ok(Outcome {
        sha: Some(commit.sha.to_string()),
        image: Some(local),
        digest: Some(id),
        ..Outcome::new("build", Conclusion::Built)
    })
}
