//! Phase timing, done one way: a [`PhaseClock`] announces a phase when it
//! starts and when it ends, and records its seconds in [`Timings`].

use std::time::Instant;

use super::{Event, Report};
use crate::outcome::{Phase, Timing};

/// Seconds per phase, in the order the phases ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings(Vec<(Phase, f64)>);

impl Timings {
    pub fn record(&mut self, phase: Phase, seconds: f64) {
        self.0.push((phase, seconds));
    }

    pub fn extend(&mut self, other: &Timings) {
        self.0.extend(other.0.iter().copied());
    }

    /// As the result object carries them.
    pub fn to_vec(&self) -> Vec<Timing> {
        self.0.iter().copied().map(Into::into).collect()
    }
}

/// A phase in progress.
#[must_use = "finish the phase to report and record it"]
pub struct PhaseClock {
    phase: Phase,
    started: Instant,
}

impl PhaseClock {
    /// Announces the phase.
    pub fn start(report: &Report, phase: Phase) -> Self {
        report.emit(&Event::PhaseStarted { phase });
        Self::silent(phase)
    }

    /// Times a phase whose start someone else announces (the rollback's).
    pub fn silent(phase: Phase) -> Self {
        Self {
            phase,
            started: Instant::now(),
        }
    }

    /// Announces the end and records the seconds.
    pub fn finish(self, report: &Report, timings: &mut Timings) {
        let elapsed = self.started.elapsed();
        report.emit(&Event::PhaseFinished {
            phase: self.phase,
            elapsed,
        });
        timings.record(self.phase, elapsed.as_secs_f64());
    }

    /// Records the seconds without announcing an end.
    pub fn record(self, timings: &mut Timings) {
        timings.record(self.phase, self.started.elapsed().as_secs_f64());
    }
}
