//! One service's view of the run's report: what a deploy of several
//! services emits for one of them comes out as [`Event::ForService`].

use std::sync::Arc;

use super::{Event, Report, Reporter};

/// A report whose events are `service`'s (phases, results, stdout data and
/// errors pass through as they are: they belong to the whole run).
pub fn for_service(report: &Report, service: &str) -> Report {
    Arc::new(Scoped {
        service: service.to_string(),
        inner: report.clone(),
    })
}

struct Scoped {
    service: String,
    inner: Report,
}

impl Reporter for Scoped {
    fn emit(&self, event: &Event) {
        match event {
            Event::PhaseStarted { .. }
            | Event::PhaseFinished { .. }
            | Event::Result(_)
            | Event::Output { .. }
            | Event::Error { .. }
            | Event::ForService { .. } => self.inner.emit(event),
            other => self.inner.emit(&Event::ForService {
                service: self.service.clone(),
                event: Box::new(other.clone()),
            }),
        }
    }

    /// The run's report is finished once, by the run.
    fn finish(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{describe, Recorder, Verbosity};

    #[test]
    fn a_service_event_is_wrapped_and_named_in_its_line_while_phases_pass_through() {
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        let worker = for_service(&report, "worker");
        worker.emit(&Event::Waiting {
            what: "0/1 new tasks running".into(),
        });
        worker.emit(&Event::PhaseStarted {
            phase: crate::outcome::Phase::Rollback,
        });
        let events = recorder.events();
        assert!(matches!(&events[0], Event::ForService { service, .. } if service == "worker"));
        assert!(matches!(events[1], Event::PhaseStarted { .. }));
        assert_eq!(
            describe(&events[0], Verbosity::Normal).as_deref(),
            Some("[worker] waiting: 0/1 new tasks running")
        );
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(json["type"], "for_service");
    }
}
