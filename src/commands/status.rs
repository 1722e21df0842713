//! `shipit status`: the status screen on stdout (one per service, for several).

use super::Context;
use crate::cli::ServiceArgs;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::settings;
use crate::status;

pub async fn run(ctx: &Context<'_>, args: &ServiceArgs) -> Result<Outcome> {
    let services = settings::services(&ctx.file.ecs, args)?;
    let clients = ctx.aws().await?;
    let deps = clients.deps(None, ctx.calls);
    let several = services.len() > 1;
    let mut text = String::new();
    for service in &services {
        let snapshot = status::gather(service, &deps).await?;
        if several {
            text.push_str(&format!("=== service {} ===\n", service.service));
        }
        text.push_str(&status::render(&snapshot));
        if several {
            text.push('\n');
        }
    }
    ctx.say(text);
    Ok(Outcome::new("status", Conclusion::Ok))
}
