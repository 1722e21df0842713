//! Timestamped, append-only lines for CI logs: one per state change, no ANSI,
//! no repeated identical lines, and a heartbeat at least every 60 s while waiting.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{describe, Event, Reporter, Verbosity};

pub struct Lines {
    verbosity: Verbosity,
    heartbeat: Duration,
    state: Mutex<State>,
    out: Mutex<Box<dyn Write + Send>>,
    timestamps: bool,
}

struct State {
    last_line: Option<String>,
    last_write: Instant,
}

impl Lines {
    pub fn stderr(verbosity: Verbosity) -> Self {
        Self::new(Box::new(std::io::stderr()), verbosity, true)
    }

    pub fn new(out: Box<dyn Write + Send>, verbosity: Verbosity, timestamps: bool) -> Self {
        Self {
            verbosity,
            heartbeat: Duration::from_secs(60),
            state: Mutex::new(State {
                last_line: None,
                last_write: Instant::now(),
            }),
            out: Mutex::new(out),
            timestamps,
        }
    }

    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    fn write(&self, line: &str) {
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
        let Some(line) = describe(event, self.verbosity) else {
            return;
        };
        let mut state = self.state.lock().unwrap();
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
    fn ansi_codes_are_removed() {
        assert_eq!(strip_ansi("\x1b[1;31mred\x1b[0m plain"), "red plain");
    }
}
