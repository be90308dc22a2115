//! What code logs: the warnings and errors emitted while a closure runs on
//! this thread, for tests of failures that are logged rather than returned.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

/// Runs `f` and returns its result with the messages of the `WARN` and
/// `ERROR` events it emitted on this thread, in order.
pub fn warnings<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    capture(false, f)
}

/// [`warnings`], each event with its fields after its message:
/// `message field=value ...`.
pub fn warnings_with_fields<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    capture(true, f)
}

/// Runs `f` under a [`Capture`] and returns what it kept.
fn capture<R>(fields: bool, f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let capture = Capture {
        seen: Arc::clone(&seen),
        fields,
    };
    let result = tracing::subscriber::with_default(capture, f);
    let messages = std::mem::take(&mut *seen.lock().unwrap());
    (result, messages)
}

/// A subscriber that keeps the message of every warning and error, and
/// its other fields when asked.
struct Capture {
    seen: Arc<Mutex<Vec<String>>>,
    fields: bool,
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // More severe levels compare lower.
        *metadata.level() <= Level::WARN
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message {
            text: String::new(),
            fields: self.fields.then(String::new),
        };
        event.record(&mut message);
        let text = match message.fields {
            Some(fields) => message.text + &fields,
            None => message.text,
        };
        self.seen.lock().unwrap().push(text);
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

struct Message {
    text: String,
    /// ` name=value` for each field but the message, when kept.
    fields: Option<String>,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.text = format!("{value:?}");
        } else if let Some(fields) = &mut self.fields {
            fields.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}
