//! The binary: parse, start the runtime, run, exit. Everything else is in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = shipit::cli::Cli::parse();
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
