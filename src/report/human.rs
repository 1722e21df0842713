//! Progress bars on a terminal (indicatif): a spinner per phase, bytes for
//! the build context and each pushed layer, a live line for the rollout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{describe, Event, Reporter, Verbosity};

pub struct Human {
    verbosity: Verbosity,
    multi: MultiProgress,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    phase: Option<ProgressBar>,
    layers: HashMap<String, ProgressBar>,
}

impl Human {
    pub fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            state: Mutex::new(State::default()),
        }
    }

    fn spinner(&self, title: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} [{elapsed}] {wide_msg}")
                .expect("static template"),
        );
        bar.set_prefix(title.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

impl Reporter for Human {
    fn emit(&self, event: &Event) {
        let mut state = self.state.lock().unwrap();
        match event {
            Event::PhaseStarted { phase } => {
                if let Some(old) = state.phase.take() {
                    old.finish_and_clear();
                }
                state.phase = Some(self.spinner(phase.title()));
            }
            Event::PhaseFinished { phase, elapsed } => {
                if let Some(bar) = state.phase.take() {
                    bar.finish_and_clear();
                }
                for (_, bar) in state.layers.drain() {
                    bar.finish_and_clear();
                }
                if self.verbosity > Verbosity::Quiet {
                    self.println(&format!(
                        "✓ {} ({:.1}s)",
                        phase.title(),
                        elapsed.as_secs_f64()
                    ));
                }
            }
            Event::ContextProgress { bytes, files } => {
                if let Some(bar) = &state.phase {
                    bar.set_message(format!(
                        "sending context: {} in {files} files",
                        indicatif::HumanBytes(*bytes)
                    ));
                }
            }
            Event::PushProgress {
                layer,
                status,
                current,
                total,
            } => match (current, total) {
                (Some(current), Some(total)) if *total > 0 => {
                    let bar = state.layers.entry(layer.clone()).or_insert_with(|| {
                        let bar = self.multi.add(ProgressBar::new(*total));
                        bar.set_style(
                            ProgressStyle::with_template(
                                "  {prefix} {bar:30} {bytes}/{total_bytes} {msg}",
                            )
                            .expect("static template"),
                        );
                        bar.set_prefix(layer.chars().take(12).collect::<String>());
                        bar
                    });
                    bar.set_length(*total);
                    bar.set_position(*current);
                    bar.set_message(status.clone());
                }
                _ => {
                    if let Some(bar) = state.layers.get(layer) {
                        bar.set_message(status.clone());
                    }
                }
            },
            Event::Waiting { what } => {
                if let Some(bar) = &state.phase {
                    bar.set_message(what.clone());
                }
            }
            Event::BuildLog { line } if self.verbosity < Verbosity::Verbose => {
                // Keep the screen calm: the latest build line rides on the spinner.
                if let Some(bar) = &state.phase {
                    bar.set_message(line.clone());
                } else {
                    self.println(&format!("    | {line}"));
                }
            }
            other => {
                if let Some(line) = describe(other, self.verbosity) {
                    self.println(&line);
                }
            }
        }
    }

    fn finish(&self) {
        let mut state = self.state.lock().unwrap();
        if let Some(bar) = state.phase.take() {
            bar.finish_and_clear();
        }
        for (_, bar) in state.layers.drain() {
            bar.finish_and_clear();
        }
    }
}
