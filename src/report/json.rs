//! JSON Lines: one object per event with a `type` field; the last is the result.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

pub struct Json {
    events: Mutex<Box<dyn Write + Send>>,
    result: Mutex<Box<dyn Write + Send>>,
}

impl Json {
    /// Events to stderr, the final result object to stdout (it is the result).
    pub fn standard() -> Self {
        Self::new(Box::new(std::io::stderr()), Box::new(std::io::stdout()))
    }

    pub fn new(events: Box<dyn Write + Send>, result: Box<dyn Write + Send>) -> Self {
        Self {
            events: Mutex::new(events),
            result: Mutex::new(result),
        }
    }
}

impl Reporter for Json {
    fn emit(&self, event: &Event) {
        if matches!(event, Event::Output { .. }) {
            return;
        }
        let mut value = match event {
            // The service's own event, with a `service` field.
            Event::ForService { service, event } => {
                let mut value = serde_json::to_value(event).unwrap_or_default();
                if let Some(map) = value.as_object_mut() {
                    map.insert("service".into(), service.clone().into());
                }
                value
            }
            event => serde_json::to_value(event).unwrap_or_default(),
        };
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "time".into(),
                chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .into(),
            );
        }
        let sink = if matches!(event, Event::Result(_)) {
            &self.result
        } else {
            &self.events
        };
        // One write per event: a line is never split among other output.
        let line = format!("{value}\n");
        let mut out = sink.lock().unwrap();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}
