//! BuildKit's progress (the `moby.buildkit.trace` status messages the engine
//! streams during a `version=2` build) as plain log lines, in the shape of
//! `docker build --progress=plain`: `#4 [2/3] RUN …`, `#4 CACHED`,
//! `#4 DONE 5.1s`, `#4 ERROR: …`, and each step's own output as `#4 <line>`.

use std::collections::HashMap;

use bollard::moby::buildkit::v1::StatusResponse;

/// The step BuildKit shows while importing a registry cache.
const CACHE_IMPORT: &str = "importing cache manifest from ";

#[derive(Debug, Default)]
struct Step {
    number: usize,
    name: String,
    announced: bool,
    finished: bool,
    /// Output not yet ended by a newline.
    partial: String,
    /// The step's last output lines (for a failure's causes).
    tail: Vec<String>,
}

/// The failing step of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    pub name: String,
    pub error: String,
    pub tail: Vec<String>,
}

/// Turns status messages into log lines, step by step.
#[derive(Debug, Default)]
pub struct Progress {
    steps: HashMap<String, Step>,
    next_number: usize,
    /// Steps seen (any vertex): none means the engine never started the build.
    pub seen: usize,
    /// Steps answered from the cache.
    pub cached: usize,
    pub failed: Option<FailedStep>,
    /// Registry caches that could not be imported: `(reference, error)`.
    pub cache_import_errors: Vec<(String, String)>,
}

const TAIL: usize = 20;

impl Progress {
    /// The lines for one status message. Within a message: new steps are
    /// announced first, then the output, then what finished (a step's last
    /// output comes before its `DONE`).
    pub fn lines(&mut self, status: &StatusResponse) -> Vec<String> {
        let mut out = Vec::new();
        for vertex in &status.vertexes {
            let step = self.step(&vertex.digest);
            if !vertex.name.is_empty() {
                step.name = vertex.name.clone();
            }
            let active = vertex.started.is_some() || vertex.completed.is_some() || vertex.cached;
            if active && !step.announced {
                step.announced = true;
                out.push(format!("#{} {}", step.number, step.name));
            }
        }
        for log in &status.logs {
            let step = self.step(&log.vertex);
            let n = step.number;
            step.partial.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(pos) = step.partial.find(['\n', '\r']) {
                let line: String = step.partial.drain(..=pos).collect();
                let line = line.trim_end();
                if !line.is_empty() {
                    push_tail(&mut step.tail, line);
                    out.push(format!("#{n} {line}"));
                }
            }
        }
        for vertex in &status.vertexes {
            let step = self.steps.get_mut(&vertex.digest).expect("seen above");
            let n = step.number;
            if step.finished {
                continue;
            }
            if vertex.cached {
                step.finished = true;
                self.cached += 1;
                out.push(format!("#{n} CACHED"));
            } else if !vertex.error.is_empty() {
                step.finished = true;
                flush(step, &mut out);
                out.push(format!("#{n} ERROR: {}", vertex.error));
                if let Some(reference) = step.name.strip_prefix(CACHE_IMPORT) {
                    self.cache_import_errors
                        .push((reference.to_string(), vertex.error.clone()));
                } else if self.failed.is_none() {
                    self.failed = Some(FailedStep {
                        name: step.name.clone(),
                        error: vertex.error.clone(),
                        tail: step.tail.clone(),
                    });
                }
            } else if let Some(completed) = &vertex.completed {
                step.finished = true;
                flush(step, &mut out);
                let secs = match &vertex.started {
                    Some(started) => {
                        (completed.seconds - started.seconds) as f64
                            + f64::from(completed.nanos - started.nanos) / 1e9
                    }
                    None => 0.0,
                };
                out.push(format!("#{n} DONE {secs:.1}s"));
            }
        }
        out
    }

    /// The step of a vertex, numbered when first seen.
    fn step(&mut self, digest: &str) -> &mut Step {
        if !self.steps.contains_key(digest) {
            self.next_number += 1;
            self.seen += 1;
            let number = self.next_number;
            self.steps.insert(
                digest.to_string(),
                Step {
                    number,
                    ..Step::default()
                },
            );
        }
        self.steps.get_mut(digest).expect("inserted above")
    }
}

fn push_tail(tail: &mut Vec<String>, line: &str) {
    if tail.len() == TAIL {
        tail.remove(0);
    }
    tail.push(line.to_string());
}

fn flush(step: &mut Step, out: &mut Vec<String>) {
    let rest = std::mem::take(&mut step.partial);
    let rest = rest.trim_end();
    if !rest.is_empty() {
        push_tail(&mut step.tail, rest);
        out.push(format!("#{} {rest}", step.number));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{Vertex, VertexLog};

    /// Sets a prost timestamp field (its type is reached through the field).
    macro_rules! set_time {
        ($slot:expr, $time:expr) => {{
            let (seconds, nanos): (i64, i32) = $time;
            $slot = Some(Default::default());
            let t = $slot.as_mut().unwrap();
            t.seconds = seconds;
            t.nanos = nanos;
        }};
    }

    /// A vertex that started and (optionally) completed at (seconds, nanos).
    fn timed(mut v: Vertex, started: (i64, i32), completed: Option<(i64, i32)>) -> Vertex {
        set_time!(v.started, started);
        if let Some(c) = completed {
            set_time!(v.completed, c);
        }
        v
    }

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn steps_read_like_plain_progress_with_cache_hits_output_and_errors() {
        let mut progress = Progress::default();
        let mut lines = Vec::new();
        let copy = Vertex {
            cached: true,
            ..timed(
                vertex("sha256:a", "[1/3] COPY busybox /bin/busybox"),
                (10, 0),
                Some((10, 0)),
            )
        };
        let run_started = timed(vertex("sha256:b", "[2/3] RUN sleep 5"), (10, 0), None);
        // Announced only once it starts.
        lines.extend(progress.lines(&StatusResponse {
            vertexes: vec![vertex("sha256:b", "[2/3] RUN sleep 5")],
            ..Default::default()
        }));
        assert!(lines.is_empty());
        lines.extend(progress.lines(&StatusResponse {
            vertexes: vec![copy, run_started.clone()],
            logs: vec![VertexLog {
                vertex: "sha256:b".into(),
                msg: b"downloading\nhalf a ".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }));
        lines.extend(progress.lines(&StatusResponse {
            vertexes: vec![timed(run_started, (10, 0), Some((15, 250_000_000)))],
            logs: vec![VertexLog {
                vertex: "sha256:b".into(),
                msg: b"line\n".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }));
        lines.extend(progress.lines(&StatusResponse {
            vertexes: vec![Vertex {
                error: "process \"/bin/sh -c false\" did not complete successfully".into(),
                ..timed(
                    vertex("sha256:c", "[3/3] RUN false"),
                    (16, 0),
                    Some((16, 0)),
                )
            }],
            ..Default::default()
        }));
        assert_eq!(
            lines,
            [
                "#2 [1/3] COPY busybox /bin/busybox",
                "#1 [2/3] RUN sleep 5",
                "#1 downloading",
                "#2 CACHED",
                "#1 half a line",
                "#1 DONE 5.2s",
                "#3 [3/3] RUN false",
                "#3 ERROR: process \"/bin/sh -c false\" did not complete successfully",
            ]
        );
        assert_eq!((progress.seen, progress.cached), (3, 1));
        let failed = progress.failed.unwrap();
        assert_eq!(failed.name, "[3/3] RUN false");
    }

    #[test]
    fn a_cache_that_cannot_be_imported_is_noted_not_a_failure() {
        let mut progress = Progress::default();
        let lines = progress.lines(&StatusResponse {
            vertexes: vec![Vertex {
                error: "127.0.0.1:4566/app:abc: not found".into(),
                ..timed(
                    vertex(
                        "sha256:i",
                        "importing cache manifest from 127.0.0.1:4566/app:abc",
                    ),
                    (1, 0),
                    Some((1, 0)),
                )
            }],
            ..Default::default()
        });
        assert_eq!(lines[1], "#1 ERROR: 127.0.0.1:4566/app:abc: not found");
        assert_eq!(progress.failed, None);
        assert_eq!(
            progress.cache_import_errors,
            [(
                "127.0.0.1:4566/app:abc".to_string(),
                "127.0.0.1:4566/app:abc: not found".to_string()
            )]
        );
    }
}
