//! The binary: parse, start the runtime, run, exit. Everything else is in the library.

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match shipit::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(shipit::env::SHIPIT_LOG)
                .unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = runtime.block_on(shipit::run(cli));
    std::process::ExitCode::from(code.code() as u8)
}

/// Help and version go to stdout with exit 0; a usage error keeps clap's
/// message and adds shipit's `hint:` line, exit 2 (nothing was done).
fn usage_error(err: clap::Error) -> std::process::ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return std::process::ExitCode::from(if err.use_stderr() { 2 } else { 0 });
    }
    let text = err.render().to_string();
    let text = text
        .lines()
        .filter(|line| !line.starts_with("For more information, try"))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("{}", text.trim_end());
    eprintln!("hint: see `shipit --help`, or `shipit <command> --help` for the command's flags");
    std::process::ExitCode::from(shipit::error::ExitCode::Usage.code() as u8)
}
