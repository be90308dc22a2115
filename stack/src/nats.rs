//! NATS JetStream as the stack uses it: one stream, connected on first use
//! (and again after a failed attempt), each message published with an id so
//! that the stream drops a repeat inside its duplicate window.

use std::time::Duration;

use async_nats::jetstream::{self, Context, context::PublishAckFuture, stream};
use buttress::BoxError;

/// A JetStream stream, and the connection to it, made on first use.
#[derive(Debug)]
pub struct JetStream {
    url: String,
    stream: String,
    subjects: Vec<String>,
    timeout: Duration,
    context: tokio::sync::OnceCell<Context>,
}

/// How long the stream remembers message ids to drop repeats: JetStream's
/// default, two minutes.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long the stream keeps a message: a week (consumers that fall
/// further behind lose the oldest).
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

impl JetStream {
    /// The stream `stream` (created, or updated, to take `subjects`) on the
    /// server at `url`; each connection attempt and each acknowledgement
    /// waits at most `timeout`.
    pub fn new(url: &str, stream: &str, subjects: &[&str], timeout: Duration) -> JetStream {
        JetStream {
            url: url.to_owned(),
            stream: stream.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            timeout,
            context: tokio::sync::OnceCell::new(),
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The JetStream context, connecting first if need be. A failed
    /// connection is tried again by the next call.
    pub async fn context(&self) -> Result<&Context, BoxError> {
        self.context
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(self.timeout)
                    .connect(self.url.as_str())
                    .await
                    .map_err(|e| format!("cannot connect to NATS at {}: {e}", self.url))?;
                let mut context = jetstream::new(client);
                context.set_timeout(self.timeout);
                context
                    .create_or_update_stream(stream::Config {
                        name: self.stream.clone(),
                        subjects: self.subjects.clone(),
                        duplicate_window: DUPLICATE_WINDOW,
                        max_age: MAX_AGE,
                        ..stream::Config::default()
                    })
                    .await
                    .map_err(|e| format!("cannot create the stream {}: {e}", self.stream))?;
                Ok::<_, BoxError>(context)
            })
            .await
    }

    /// Publishes `payload` to `subject` with the message id `id`, and waits
    /// for the stream's acknowledgement. Returns whether the stream had
    /// seen the id already (a repeat, dropped).
    pub async fn publish(
        &self,
        subject: &str,
        id: &str,
        payload: bytes::Bytes,
    ) -> Result<bool, BoxError> {
        let context = self.context().await?;
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(id);
        let ack: PublishAckFuture = context
            .send_publish(subject.to_owned(), message)
            .await
            .map_err(|e| format!("publish to {subject} failed: {e}"))?;
        let ack = ack
            .await
            .map_err(|e| format!("publish to {subject} not acknowledged: {e}"))?;
        Ok(ack.duplicate)
    }

    /// One round trip to the server: the check behind `/health`.
    pub async fn ping(&self) -> Result<(), BoxError> {
        let context = self.context().await?;
        tokio::time::timeout(self.timeout, context.get_stream(&self.stream))
            .await
            .map_err(|_| "NATS did not answer in time")?
            .map_err(|e| format!("the stream {} is not there: {e}", self.stream))?;
        Ok(())
    }
}
