//! Progress bars on a terminal (indicatif): a spinner per phase, bytes for
//! the build context and each pushed layer, and a live rollout board (tasks
//! by revision and state, targets by health) under the watch's spinner.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{describe, Event, Reporter, Verbosity};

pub struct Human {
    verbosity: Verbosity,
    colour: bool,
    multi: MultiProgress,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    phase: Option<ProgressBar>,
    layers: HashMap<String, ProgressBar>,
    /// The rollout board's line, and what it shows.
    board: Option<ProgressBar>,
    /// task id → (revision, status)
    tasks: BTreeMap<String, (String, String)>,
    /// (target group, target) → state
    targets: BTreeMap<(String, String), String>,
}

/// One line: tasks counted by revision and state, targets by state.
/// `tasks  web:8 RUNNING 1, PENDING 1 · web:7 RUNNING 1 │ targets  healthy 1, initial 1`
pub fn board(
    tasks: &BTreeMap<String, (String, String)>,
    targets: &BTreeMap<(String, String), String>,
) -> String {
    let mut by_revision: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (revision, status) in tasks.values() {
        *by_revision
            .entry(revision)
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    let counts = |map: &BTreeMap<&str, usize>| {
        map.iter()
            .map(|(state, n)| format!("{state} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Newest revision first (`web:10` after `web:9` by number, not text).
    let mut revisions: Vec<(&str, &BTreeMap<&str, usize>)> =
        by_revision.iter().map(|(r, m)| (*r, m)).collect();
    let number = |r: &str| {
        r.rsplit(':')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    revisions.sort_by_key(|(r, _)| std::cmp::Reverse(number(r)));
    let tasks = revisions
        .iter()
        .map(|(r, m)| format!("{r} {}", counts(m)))
        .collect::<Vec<_>>()
        .join(" · ");
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for state in targets.values() {
        *by_state.entry(state).or_default() += 1;
    }
    let mut line = format!(
        "tasks  {}",
        if tasks.is_empty() {
            "none yet".into()
        } else {
            tasks
        }
    );
    if !by_state.is_empty() {
        line.push_str(&format!(" │ targets  {}", counts(&by_state)));
    }
    line
}

impl Human {
    pub fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            // https://no-color.org: any value turns colour off.
            colour: crate::env::var(crate::env::NO_COLOR).is_none(),
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            state: Mutex::new(State::default()),
        }
    }

    fn spinner(&self, title: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(if self.colour {
                "{spinner:.cyan} {prefix:.bold} [{elapsed}] {wide_msg}"
            } else {
                "{spinner} {prefix} [{elapsed}] {wide_msg}"
            })
            .expect("static template"),
        );
        bar.set_prefix(title.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    fn redraw_board(&self, state: &mut State) {
        let text = board(&state.tasks, &state.targets);
        let bar = state.board.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("  {wide_msg}").expect("static template"));
            bar
        });
        bar.set_message(text);
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
                // A rollback starts a fresh board.
                if let Some(board) = state.board.take() {
                    board.finish_and_clear();
                }
                state.tasks.clear();
                state.targets.clear();
                state.phase = Some(self.spinner(phase.title()));
            }
            Event::TaskChanged {
                task,
                revision,
                status,
                ..
            } => {
                if let Some(line) = describe(event, self.verbosity) {
                    self.println(&line);
                }
                state
                    .tasks
                    .insert(task.clone(), (revision.clone(), status.clone()));
                self.redraw_board(&mut state);
            }
            Event::TargetChanged {
                target_group,
                target,
                state: health,
                ..
            } => {
                if let Some(line) = describe(event, self.verbosity) {
                    self.println(&line);
                }
                state
                    .targets
                    .insert((target_group.clone(), target.clone()), health.clone());
                self.redraw_board(&mut state);
            }
            Event::PhaseFinished { phase, elapsed } => {
                if let Some(bar) = state.phase.take() {
                    bar.finish_and_clear();
                }
                if let Some(board) = state.board.take() {
                    // The board's last state stays on screen under the phase.
                    let text = board.message();
                    if !text.is_empty() && self.verbosity > Verbosity::Quiet {
                        self.println(&format!("  {text}"));
                    }
                    board.finish_and_clear();
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
            // A deploy of several services: their tasks and targets share the
            // board (each revision is named by its family), their waits ride
            // on the spinner.
            Event::ForService {
                service,
                event: inner,
            } => {
                match inner.as_ref() {
                    Event::TaskChanged {
                        task,
                        revision,
                        status,
                        ..
                    } => {
                        state
                            .tasks
                            .insert(task.clone(), (revision.clone(), status.clone()));
                        self.redraw_board(&mut state);
                    }
                    Event::TargetChanged {
                        target_group,
                        target,
                        state: health,
                        ..
                    } => {
                        state
                            .targets
                            .insert((target_group.clone(), target.clone()), health.clone());
                        self.redraw_board(&mut state);
                    }
                    Event::Waiting { what } => {
                        if let Some(bar) = &state.phase {
                            bar.set_message(format!("[{service}] {what}"));
                        }
                        return;
                    }
                    _ => {}
                }
                if let Some(line) = describe(event, self.verbosity) {
                    self.println(&line);
                }
            }
            Event::Output { text } => self.multi.suspend(|| super::write_stdout(text)),
            Event::Error {
                message,
                causes,
                hint,
                ..
            } => {
                // Printed even where the bars are hidden (stderr not a terminal).
                let text = super::error_text(message, causes, hint.as_deref());
                self.multi.suspend(|| eprint!("{text}"));
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
        if let Some(board) = state.board.take() {
            board.finish_and_clear();
        }
        for (_, bar) in state.layers.drain() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_counts_tasks_per_revision_newest_first_and_targets_per_state() {
        let mut tasks = BTreeMap::new();
        for (id, rev, status) in [
            ("a", "web:9", "RUNNING"),
            ("b", "web:10", "PENDING"),
            ("c", "web:10", "RUNNING"),
            ("d", "web:9", "STOPPED"),
        ] {
            tasks.insert(id.to_string(), (rev.to_string(), status.to_string()));
        }
        let mut targets = BTreeMap::new();
        targets.insert(
            ("web".to_string(), "10.0.0.5:8080".to_string()),
            "healthy".to_string(),
        );
        targets.insert(
            ("web".to_string(), "10.0.0.6:8080".to_string()),
            "initial".to_string(),
        );
        assert_eq!(
            board(&tasks, &targets),
            "tasks  web:10 PENDING 1, RUNNING 1 · web:9 RUNNING 1, STOPPED 1 │ targets  healthy 1, initial 1"
        );
        assert_eq!(board(&BTreeMap::new(), &BTreeMap::new()), "tasks  none yet");
    }
}
