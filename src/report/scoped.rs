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
        phases: true,
    })
}

/// `service`'s events when it is one of several run side by side, each on
/// its own (`shipit watch` of several services): as [`for_service`], but its
/// phase events are dropped. The caller times the phase once for all, so
/// one service's end does not close another's (a terminal's board, a
/// GitHub Actions group).
pub fn for_one_of_several(report: &Report, service: &str) -> Report {
    Arc::new(Scoped {
        service: service.to_string(),
        inner: report.clone(),
        phases: false,
    })
}

struct Scoped {
    service: String,
    inner: Report,
    /// Pass phase events through (else drop them).
    phases: bool,
}

impl Reporter for Scoped {
    fn emit(&self, event: &Event) {
        match event {
            Event::PhaseStarted { .. } | Event::PhaseFinished { .. } if !self.phases => {}
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

    #[test]
    fn one_of_several_keeps_its_events_named_and_leaves_the_phases_to_the_caller() {
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        for scoped in [
            for_service(&report, "web"),
            for_one_of_several(&report, "worker"),
        ] {
            scoped.emit(&Event::PhaseStarted {
                phase: crate::outcome::Phase::Watch,
            });
            scoped.emit(&Event::Info {
                message: "attached".into(),
            });
        }
        let events = recorder.events();
        let phases = events
            .iter()
            .filter(|e| matches!(e, Event::PhaseStarted { .. }))
            .count();
        assert_eq!(phases, 1, "web's only: {events:?}");
        let named: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::ForService { service, .. } => Some(service.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(named, ["web", "worker"]);
    }
}
