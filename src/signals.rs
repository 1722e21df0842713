//! SIGINT/SIGTERM as values: the watch selects on them to roll back cleanly.

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::error::ExitCode;

pub struct Signals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
}

impl Signals {
    pub fn install() -> Self {
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Never resolves when no handler could be installed.
    pub async fn next(&mut self) -> ExitCode {
        let interrupt = async {
            match &mut self.interrupt {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let terminate = async {
            match &mut self.terminate {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = interrupt => ExitCode::Interrupted,
            _ = terminate => ExitCode::Terminated,
        }
    }
}
