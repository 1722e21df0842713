//! `shipit status`: the status screen on stdout (one per service, for
//! several); with `--output json`, each service's snapshot in `snapshots`.

use super::Context;
use crate::cli::StatusArgs;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::settings;
use crate::status;

pub async fn run(ctx: &Context<'_>, args: &StatusArgs) -> Result<Outcome> {
    let services = settings::services(&ctx.file.ecs, &args.service)?;
    let log_lines = settings::status_log_lines(&ctx.file, args.log_lines);
    let clients = ctx.aws().await?;
    let deps = clients.deps(None, ctx.calls);
    let several = services.len() > 1;
    let mut text = String::new();
    let mut outcome = Outcome::new("status", Conclusion::Ok);
    for service in &services {
        let snapshot = status::gather(service, &deps, log_lines).await?;
        if several {
            text.push_str(&format!("=== service {} ===\n", service.service));
        }
        text.push_str(&status::render(&snapshot));
        if several {
            text.push('\n');
        }
        outcome.snapshots.push(status::view(&snapshot));
    }
    ctx.say(text);
    Ok(outcome)
}
