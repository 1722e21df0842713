//! `shipit rollback`: back to the last revision shipit saw healthy, or `--to`.

use super::deploy::verdict_line;
use super::Context;
use crate::cli::RollbackArgs;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::rollback;
use crate::settings;

pub async fn run(ctx: &Context<'_>, args: &RollbackArgs) -> Result<Outcome> {
    let settings = settings::rollback(&ctx.file, args)?;
    let clients = ctx.aws().await?;
    let outcome = rollback::run(&settings, &clients.deps(None, ctx.calls), ctx.report).await?;
    ctx.say(verdict_line(&outcome));
    Ok(outcome)
}
