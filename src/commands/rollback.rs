//! `shipit rollback`: back to the last revision shipit saw healthy, or `--to`
//! (several services: each its own, all together; the worst verdict wins).

use futures_util::future::join_all;

use super::deploy::verdict_line;
use super::Context;
use crate::cli::RollbackArgs;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::report::{for_service, Report};
use crate::rollback;
use crate::settings;

pub async fn run(ctx: &Context<'_>, args: &RollbackArgs) -> Result<Outcome> {
    let mut all = settings::rollbacks(&ctx.file, args)?;
    let clients = ctx.aws().await?;
    let deps = clients.deps(None, ctx.calls);
    if all.len() == 1 {
        let settings = all.remove(0);
        let outcome = rollback::run(&settings, &deps, ctx.report).await?;
        ctx.say(verdict_line(&outcome));
        return Ok(outcome);
    }
    // Every target first (read calls only): bad input in any service changes nothing.
    let mut chosen = Vec::with_capacity(all.len());
    for settings in &all {
        let name = &settings.service.service;
        chosen.push(rollback::choose(settings, &deps).await.map_err(|err| {
            err.context(format!("service `{name}` (no service was rolled back)"))
        })?);
    }
    let reports: Vec<Report> = all
        .iter()
        .map(|s| for_service(ctx.report, &s.service.service))
        .collect();
    let results = join_all(
        all.iter()
            .zip(&reports)
            .zip(chosen)
            .map(|((settings, report), chosen)| rollback::roll(settings, &deps, report, chosen)),
    )
    .await;
    let services = all
        .iter()
        .zip(results)
        .map(|(settings, result)| {
            let name = &settings.service.service;
            super::service_part(
                name,
                result,
                &for_service(ctx.report, name),
                "not rolled back",
            )
        })
        .collect();
    let outcome = Outcome::of_services("rollback", services);
    ctx.say(verdict_line(&outcome));
    Ok(outcome)
}
