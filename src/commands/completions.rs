//! `shipit completions SHELL`: the completion script on stdout.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::conclusion::Conclusion;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::report::{Event, Report};

pub fn run(shell: clap_complete::Shell, report: &Report) -> Result<Outcome> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shipit", &mut script);
    report.emit(&Event::Output {
        text: String::from_utf8_lossy(&script).into_owned(),
    });
    Ok(Outcome::new("completions", Conclusion::Ok))
}
