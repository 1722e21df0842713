//! Timestamped, append-only lines for CI logs: one per state change, no ANSI,
//! no repeated identical lines, and a heartbeat at least every 60 s whatever
//! shipit is doing (CircleCI kills a step that is silent for 10 minutes; a long
//! build step or push can be silent that long).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{describe, Event, Reporter, Verbosity};

pub struct Lines {
    verbosity: Verbosity,
    heartbeat: Duration,
    shared: Arc<Shared>,
}

/// What the renderer and its heartbeat timer share.
struct Shared {
    state: Mutex<State>,
    out: Mutex<Box<dyn Write + Send>>,
    timestamps: bool,
    stopped: AtomicBool,
}

struct State {
    last_line: Option<String>,
    last_write: Instant,
    /// The phase running now and when it started.
    phase: Option<(&'static str, Instant)>,
    /// Per service (a deploy of several): the last waiting line written, so
    /// that services taking turns do not repeat theirs every poll.
    waiting: std::collections::HashMap<String, String>,
}

impl Lines {
    /// Lines on stderr, with a heartbeat timer.
    pub fn stderr(verbosity: Verbosity) -> Self {
        let lines = Self::new(Box::new(std::io::stderr()), verbosity, true);
        lines.start_heartbeat();
        lines
    }

    pub fn new(out: Box<dyn Write + Send>, verbosity: Verbosity, timestamps: bool) -> Self {
        Self {
            verbosity,
            heartbeat: Duration::from_secs(60),
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    last_line: None,
                    last_write: Instant::now(),
                    phase: None,
                    waiting: Default::default(),
                }),
                out: Mutex::new(out),
                timestamps,
                stopped: AtomicBool::new(false),
            }),
        }
    }

    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// A timer thread that writes `still …` after `heartbeat` of silence,
    /// until [`Reporter::finish`].
    pub fn start_heartbeat(&self) {
        let shared = self.shared.clone();
        let every = self.heartbeat;
        let tick = (every / 4).clamp(Duration::from_millis(5), Duration::from_secs(5));
        std::thread::spawn(move || loop {
            std::thread::sleep(tick);
            if shared.stopped.load(Ordering::SeqCst) {
                return;
            }
            let mut state = shared.state.lock().unwrap();
            if state.last_write.elapsed() < every {
                continue;
            }
            let doing = match state.phase {
                Some((phase, since)) => format!("{phase}, {}s", since.elapsed().as_secs()),
                None => "working".to_string(),
            };
            let last = state.last_line.as_deref().unwrap_or("started");
            shared.write(&format!("still {doing} — last: {last}"));
            state.last_write = Instant::now();
        });
    }

    fn write(&self, line: &str) {
        self.shared.write(line);
    }
}

impl Shared {
    fn write(&self, line: &str) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let mut out = self.out.lock().unwrap();
        let line = strip_ansi(line);
        let _ = if self.timestamps {
            writeln!(
                out,
                "{} {line}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
            )
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
    }
}

impl Reporter for Lines {
    fn emit(&self, event: &Event) {
        let mut state = self.shared.state.lock().unwrap();
        match event {
            Event::PhaseStarted { phase } => state.phase = Some((phase.title(), Instant::now())),
            Event::PhaseFinished { .. } => state.phase = None,
            Event::Output { text } => return super::write_stdout(text),
            // A task's output repeats lines on purpose: every one is written.
            Event::OneOffLog { .. } => {
                if let Some(line) = describe(event, self.verbosity) {
                    self.write(&line);
                    state.last_line = Some(line);
                    state.last_write = Instant::now();
                }
                return;
            }
            Event::Error {
                message,
                causes,
                hint,
                ..
            } => {
                // Whole and untimestamped, as a person reads an error.
                let text = super::error_text(message, causes, hint.as_deref());
                let mut out = self.shared.out.lock().unwrap();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                return;
            }
            _ => {}
        }
        let Some(line) = describe(event, self.verbosity) else {
            return;
        };
        if let Event::ForService { service, event } = event {
            if matches!(**event, Event::Waiting { .. }) {
                if state.waiting.get(service) == Some(&line) {
                    return;
                }
                state.waiting.insert(service.clone(), line.clone());
            }
        }
        let repeated = state.last_line.as_deref() == Some(line.as_str());
        if repeated {
            // A wait that did not change: say so only as a heartbeat.
            if matches!(event, Event::Waiting { .. })
                && state.last_write.elapsed() >= self.heartbeat
            {
                self.write(&format!("still {line}"));
                state.last_write = Instant::now();
            }
            return;
        }
        self.write(&line);
        state.last_line = Some(line);
        state.last_write = Instant::now();
    }

    fn finish(&self) {
        // The result goes out last: nothing after it, not even a heartbeat.
        let _state = self.shared.state.lock().unwrap();
        self.shared.stopped.store(true, Ordering::SeqCst);
    }
}

/// Engine output can carry colour codes; CI logs get none.
pub fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(ch);
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn identical_consecutive_lines_are_written_once_and_heartbeats_repeat_waits() {
        let buf = Buf::default();
        let lines = Lines::new(Box::new(buf.clone()), Verbosity::Normal, false)
            .with_heartbeat(Duration::ZERO);
        let wait = Event::Waiting {
            what: "1/1 tasks running".into(),
        };
        lines.emit(&Event::Info {
            message: "hello".into(),
        });
        lines.emit(&Event::Info {
            message: "hello".into(),
        });
        lines.emit(&wait);
        lines.emit(&wait);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "hello\nwaiting: 1/1 tasks running\nstill waiting: 1/1 tasks running\n"
        );
    }

    #[test]
    fn a_silent_phase_gets_a_heartbeat_line_and_none_comes_after_finish() {
        let buf = Buf::default();
        let lines = Lines::new(Box::new(buf.clone()), Verbosity::Normal, false)
            .with_heartbeat(Duration::from_millis(40));
        lines.start_heartbeat();
        lines.emit(&Event::PhaseStarted {
            phase: super::super::Phase::Build,
        });
        std::thread::sleep(Duration::from_millis(300));
        lines.finish();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("==> build\n"), "{text}");
        assert!(
            text.contains("still build, 0s — last: ==> build\n"),
            "a heartbeat names the phase and the last line: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
        let after = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(after, text, "nothing is written after finish");
    }

    #[test]
    fn ansi_codes_are_removed() {
        assert_eq!(strip_ansi("\x1b[1;31mred\x1b[0m plain"), "red plain");
    }
}
