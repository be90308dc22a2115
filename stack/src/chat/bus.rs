//! Where the pipeline publishes its events: a NATS JetStream stream, or
//! (without `NATS_URL`) a list in process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress::BoxError;

use crate::nats::JetStream;

/// The stream the chat backend's events go to.
pub const STREAM: &str = "CHAT_EVENTS";
/// The subjects of that stream: `chat.events.<domain>`.
pub const SUBJECTS: &str = "chat.events.>";

/// An event: its subject, id and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The subject.
    pub subject: String,
    /// The message id (the request id).
    pub id: String,
    /// The body.
    pub body: String,
}

/// The event bus.
#[derive(Debug, Clone)]
pub enum Bus {
    /// NATS JetStream.
    Nats(Arc<JetStream>),
    /// In process.
    Local(Arc<Mutex<Vec<Published>>>),
}

impl Bus {
    /// The stream on the NATS server at `url`.
    pub fn nats(url: &str) -> Bus {
        Bus::Nats(Arc::new(JetStream::new(
            url,
            STREAM,
            &[SUBJECTS],
            Duration::from_secs(2),
        )))
    }

    /// In process.
    pub fn local() -> Bus {
        Bus::Local(Arc::default())
    }

    /// Publishes `event`.
    pub async fn publish(&self, event: &Published) -> Result<(), BoxError> {
        match self {
            Bus::Nats(js) => {
                js.publish(&event.subject, &event.id, event.body.clone().into())
                    .await?;
                Ok(())
            }
            Bus::Local(list) => {
                let mut list = crate::lock(list);
                if list.len() >= 10_000 {
                    list.remove(0);
                }
                list.push(event.clone());
                Ok(())
            }
        }
    }

    /// The events kept in process (empty for NATS).
    pub fn local_events(&self) -> Vec<Published> {
        match self {
            Bus::Local(list) => crate::lock(list).clone(),
            Bus::Nats(_) => Vec::new(),
        }
    }
}
