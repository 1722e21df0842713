//! `shipit status`: the status screen on stdout.

use super::Context;
use crate::cli::ServiceArgs;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::settings;
use crate::status;

pub async fn run(ctx: &Context<'_>, args: &ServiceArgs) -> Result<Outcome> {
    let service = settings::service(&ctx.file.ecs, args)?;
    let clients = ctx.aws().await?;
    let snapshot = status::gather(&service, &clients.deps(None, ctx.calls)).await?;
    ctx.say(status::render(&snapshot));
    Ok(Outcome::new("status", Conclusion::Ok))
}
