//! NATS JetStream as the stack uses it: one stream, connected on first use
//! (and again after a failed attempt), each message published with an id so
//! that the stream drops a repeat inside its duplicate window.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream::{self, Context, context::PublishAckFuture, stream};
use buttress::BoxError;

use crate::env::EnvError;

/// A JetStream stream, and the connection to it, made on first use.
#[derive(Debug)]
pub struct JetStream {
    url: String,
    stream: String,
    subjects: Vec<String>,
    timeout: Duration,
    duplicate_window: Duration,
    /// Only look the stream up (a consumer): never create or reconfigure it.
    existing: bool,
    context: tokio::sync::OnceCell<Context>,
}

/// How long the stream remembers message ids to drop repeats: JetStream's
/// default, two minutes.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Messages to publish at once: subject, message id, payload.
pub type Batch = std::sync::Arc<Vec<(String, String, bytes::Bytes)>>;

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
            duplicate_window: DUPLICATE_WINDOW,
            existing: false,
            context: tokio::sync::OnceCell::new(),
        }
    }

    /// The same stream, remembering message ids for `window` instead of
    /// [`DUPLICATE_WINDOW`]: a publisher that may send a message again
    /// after a longer pause (a relay restarted after a crash) needs the
    /// stream to remember at least that long.
    pub fn duplicate_window(mut self, window: Duration) -> JetStream {
        self.duplicate_window = window;
        self
    }

    /// The stream `stream` (subjects `subjects`) on the server at `url`,
    /// published to through `dependency`: each connection attempt and
    /// each acknowledgement waits at most its attempt timeout (else its
    /// timeout, else 5 s), and message ids are remembered for `window`.
    /// Returns the stream and the batch publisher (the dependency's
    /// timeout, retries and breaker around [`publish_batch`](Self::publish_batch);
    /// it answers how many of the batch the stream had seen already).
    pub fn publisher(
        url: &str,
        stream: &str,
        subjects: &[&str],
        dependency: &buttress::policy::Dependency,
        window: Duration,
    ) -> (
        std::sync::Arc<JetStream>,
        buttress::policy::Stacked<Batch, u64>,
    ) {
        let timeout = dependency
            .attempt_timeout()
            .or(dependency.timeout())
            .unwrap_or(Duration::from_secs(5));
        let js = std::sync::Arc::new(
            JetStream::new(url, stream, subjects, timeout).duplicate_window(window),
        );
        let nats = js.clone();
        let publish = dependency.service(tower::service_fn(move |batch: Batch| {
            let nats = nats.clone();
            async move { nats.publish_batch(batch.iter().cloned()).await }
        }));
        (js, publish)
    }

    /// The same stream, for a consumer: looked up, never created or
    /// reconfigured (its publisher owns its settings), so connecting fails
    /// while it does not exist.
    pub fn existing(mut self) -> JetStream {
        self.existing = true;
        self
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
                if self.existing {
                    context.get_stream(&self.stream).await.map_err(|e| {
                        format!(
                            "the stream {} is not there (is its publisher running?): {e}",
                            self.stream
                        )
                    })?;
                    return Ok::<_, BoxError>(context);
                }
                context
                    .create_or_update_stream(stream::Config {
                        name: self.stream.clone(),
                        subjects: self.subjects.clone(),
                        duplicate_window: self.duplicate_window,
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

    /// Publishes every message of `batch` (subject, message id, payload)
    /// at once, then waits for every acknowledgement. Returns how many the
    /// stream had seen already (repeats, dropped). Fails when any is not
    /// acknowledged: the caller sends the whole batch again, and the ids
    /// make the stream keep each message once.
    pub async fn publish_batch(
        &self,
        batch: impl IntoIterator<Item = (String, String, bytes::Bytes)>,
    ) -> Result<u64, BoxError> {
        let context = self.context().await?;
        let mut acks = Vec::new();
        for (subject, id, payload) in batch {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload)
                .message_id(id);
            let ack = context
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| format!("publish to {subject} failed: {e}"))?;
            acks.push(ack);
        }
        let mut duplicates = 0;
        for ack in
            futures_util::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await
        {
            let ack = ack.map_err(|e| format!("publish not acknowledged: {e}"))?;
            duplicates += u64::from(ack.duplicate);
        }
        Ok(duplicates)
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

/// Checks a `NATS_URL`: `nats://`, `tls://` or a bare `host:port`.
pub fn check_url(url: &str) -> Result<(), EnvError> {
    if url.starts_with("nats://") || url.starts_with("tls://") || !url.contains("://") {
        Ok(())
    } else {
        Err(EnvError {
            name: "NATS_URL",
            value: url.to_owned(),
            reason: "must be nats://host:port, tls://host:port or host:port".to_owned(),
        })
    }
}
