//! The journal relay: ships this machine's telemetry journal to a NATS
//! JetStream stream, so that learners on other machines can read it.
//!
//! It reads the journal from its saved cursor (rotated and gzipped files
//! included) in batches, publishes each record as it is to the subject
//! `telemetry.<machine>` (the prefix is `TELEMETRY_SUBJECT_PREFIX`) with
//! the message id `<machine>:<file>:<offset>`
//! (the record's position, which never changes), waits for every
//! acknowledgement, and then saves the cursor past the batch. Delivery is
//! at least once: a relay killed after publishing and before saving
//! publishes the batch again when it restarts, and the stream drops those
//! repeats inside its duplicate window (10 minutes); past it, the repeat
//! is stored, and a consumer tells it by its id. Publishing goes through
//! the policy's `nats` dependency (timeout, retries in a budget, breaker);
//! a batch that fails is kept and tried again after a pause, never
//! skipped. `GET /relay/stats`, health, metrics and admin beside it; a
//! shutdown finishes the batch in hand and saves.

mod config;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use buttress::BoxError;
use buttress::admin::Admin;
use buttress::checkpoint::{Checkpointer, FileStore, FileStoreConfig, Policy as SavePolicy};
use buttress::health::{CheckOptions, Health, Shutdown, check_fn};
use buttress::journal::{Cursor, JournalReader, ReadStats};
use buttress::policy::{FileWatch, Policy, Stacked};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower::ServiceExt;

pub(crate) use config::telemetry_stream;
pub use config::{DEFAULT_PORT, JournalRelayConfig};

use crate::knowledge::JOURNAL_NAME;
use crate::nats::{Batch, JetStream};

/// The policy used when `POLICY_FILE` is unset.
pub const DEFAULT_POLICY: &str = include_str!("../../journal-relay.toml");

/// The default subjects' prefix: records go to `telemetry.<machine>`.
pub const SUBJECT_PREFIX: &str = "telemetry";

/// A batch stops growing past this many bytes (by one record at most).
const BATCH_BYTES: usize = 1 << 20;

/// What the relay saves: where the next record starts, and how many it
/// has shipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    /// Where the next record starts.
    pub cursor: Cursor,
    /// Records shipped (published and acknowledged).
    pub records: u64,
}

/// What `GET /relay/stats` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JournalRelayStats {
    /// This machine's name.
    pub machine: String,
    /// The stream.
    pub stream: String,
    /// Shipped so far (as last saved).
    pub shipped: Shipped,
    /// Where it resumed at start.
    pub resumed_from: Option<Shipped>,
    /// Of the records published, how many the stream had already
    /// (published again after a restart).
    pub duplicates: u64,
    /// Batches published and saved.
    pub batches: u64,
    /// Batches that failed to publish (kept, and tried again).
    pub failed_batches: u64,
    /// The last failure since the last batch that went through.
    pub last_error: Option<String>,
    /// Journal bytes not yet read.
    pub unread_bytes: u64,
    /// What reading skipped (corrupt records, missing files).
    pub journal: ReadSummary,
}

/// The reader's counts, as `/relay/stats` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadSummary {
    /// Corrupt records passed over.
    pub corrupt_records: u64,
    /// Files missing from the sequence.
    pub missing_files: u64,
}

impl From<ReadStats> for ReadSummary {
    fn from(s: ReadStats) -> Self {
        ReadSummary {
            corrupt_records: s.corrupt_records,
            missing_files: s.missing_files,
        }
    }
}

/// The journal relay, cheap to clone.
#[derive(Debug, Clone)]
pub struct JournalRelay {
    inner: Arc<Inner>,
}

struct Inner {
    config: JournalRelayConfig,
    policy: Policy,
    _watch: Option<FileWatch>,
    nats: Arc<JetStream>,
    publish: Stacked<Batch, u64>,
    health: Health,
    stats: Mutex<JournalRelayStats>,
    worker: crate::worker::Worker,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalRelay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JournalRelay {
    /// Builds the relay from `config`. Nothing is read or connected here;
    /// [`spawn`](Self::spawn) starts the work.
    ///
    /// Must be called inside a tokio runtime.
    pub fn new(config: JournalRelayConfig) -> Result<JournalRelay, BoxError> {
        let (policy, watch) =
            crate::serving::load_policy(config.policy_file.as_deref(), DEFAULT_POLICY)?;
        let dependency = policy.dependency("nats").ok_or_else(|| {
            "the policy declares no [dependencies.nats]: publishing needs it".to_owned()
        })?;
        let (nats, publish) = JetStream::publisher(
            &config.nats_url,
            &config.stream,
            &[&format!("{}.>", config.subject_prefix)],
            &dependency,
            config.duplicate_window,
        );
        let health = Health::new().version(env!("CARGO_PKG_VERSION"));
        let worker =
            crate::worker::Worker::new("journal relay", &health, "resuming from the saved cursor");
        let stats = JournalRelayStats {
            machine: config.machine.clone(),
            stream: config.stream.clone(),
            ..JournalRelayStats::default()
        };
        let relay = JournalRelay {
            inner: Arc::new(Inner {
                config,
                policy,
                _watch: watch,
                nats,
                publish,
                health,
                stats: Mutex::new(stats),
                worker,
            }),
        };
        let app = &*relay.inner;
        let options = CheckOptions::critical().timeout(app.config.check_timeout);
        let nats = app.nats.clone();
        app.health.register(
            "nats",
            check_fn(move || {
                let nats = nats.clone();
                async move { nats.ping().await }
            }),
            options,
        )?;
        if let Some(breaker) = dependency.breaker() {
            app.health.register_breaker(breaker, options)?;
        }
        Ok(relay)
    }

    /// Starts the relay on a task; it ends when [`stop`](Self::stop) is
    /// called (after the batch in hand), or with an error when it cannot
    /// start.
    pub fn spawn(&self) -> tokio::task::JoinHandle<Result<(), BoxError>> {
        let relay = self.clone();
        self.inner.worker.spawn(async move { relay.run().await })
    }

    /// Asks the relay to stop after the batch in hand; returns when it has.
    pub async fn stop(&self) {
        self.inner.worker.stop().await;
    }

    async fn run(&self) -> Result<(), BoxError> {
        let app = &*self.inner;
        let (mut checkpointer, mut shipped, mut reader) = app.worker.started(self.start().await)?;
        let mut stop = app.worker.stopping();
        let mut pause = Duration::from_millis(250);
        let mut batch: Option<(Batch, Cursor)> = None;
        while !*stop.borrow() {
            let (messages, end) = match batch.take() {
                Some(b) => b,
                None => {
                    let (r, read) = tokio::task::spawn_blocking({
                        let subject =
                            format!("{}.{}", app.config.subject_prefix, app.config.machine);
                        let (machine, size) = (app.config.machine.clone(), app.config.batch_size);
                        move || {
                            let read = read_batch(&mut reader, &subject, &machine, size);
                            (reader, read)
                        }
                    })
                    .await?;
                    reader = r;
                    match read {
                        Ok((messages, end, unread, journal)) => {
                            self.read_stats(unread, journal);
                            if messages.is_empty() {
                                sleep_or_stop(app.config.poll_interval, &mut stop).await;
                                continue;
                            }
                            (Arc::new(messages), end)
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the journal could not be read; trying again");
                            sleep_or_stop(app.config.poll_interval, &mut stop).await;
                            continue;
                        }
                    }
                }
            };
            match app.publish.clone().oneshot(messages.clone()).await {
                Ok(duplicates) => {
                    pause = Duration::from_millis(250);
                    let next = Shipped {
                        cursor: end,
                        records: shipped.records + messages.len() as u64,
                    };
                    self.save_until_done(&mut checkpointer, &next).await?;
                    shipped = next;
                    {
                        let mut stats = crate::lock(&app.stats);
                        stats.shipped = shipped;
                        stats.duplicates += duplicates;
                        stats.batches += 1;
                        stats.last_error = None;
                    }
                    metrics::counter!("journal_relay_records_total")
                        .increment(messages.len() as u64);
                    if duplicates > 0 {
                        tracing::info!(records = messages.len(), duplicates, cursor = %end, "shipped a batch the stream had seen in part: published before a restart");
                    } else {
                        tracing::debug!(records = messages.len(), cursor = %end, "shipped a batch");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?pause, "the batch was not shipped; trying again");
                    {
                        let mut stats = crate::lock(&app.stats);
                        stats.failed_batches += 1;
                        stats.last_error = Some(e.to_string());
                    }
                    batch = Some((messages, end));
                    sleep_or_stop(pause, &mut stop).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!(records = shipped.records, cursor = %shipped.cursor, "journal relay stopped; cursor saved");
        Ok(())
    }

    fn read_stats(&self, unread: u64, journal: ReadSummary) {
        let mut stats = crate::lock(&self.inner.stats);
        stats.unread_bytes = unread;
        stats.journal = journal;
    }

    /// Opens the checkpoint and the journal at the saved cursor.
    async fn start(&self) -> Result<(Checkpointer<FileStore>, Shipped, JournalReader), BoxError> {
        let app = &*self.inner;
        let store = FileStore::open(
            &app.config.checkpoint_dir,
            &format!("journal-relay-{}", app.config.machine),
            FileStoreConfig::default(),
        )
        .map_err(|e| {
            format!(
                "cannot keep the cursor in {} (set CHECKPOINT_DIR): {e}",
                app.config.checkpoint_dir.display()
            )
        })?;
        // Saved after every batch, by `save`.
        let mut checkpointer = Checkpointer::new(store, SavePolicy::every_events(u64::MAX));
        let resumed: Option<Shipped> = checkpointer
            .resume()
            .await
            .map_err(|e| format!("the saved cursor could not be loaded: {e}"))?;
        let shipped = resumed.unwrap_or_default();
        match resumed {
            Some(s) => {
                tracing::info!(records = s.records, cursor = %s.cursor, "resuming from the saved cursor")
            }
            None => tracing::info!("no saved cursor: shipping the journal from its start"),
        }
        {
            let mut stats = crate::lock(&app.stats);
            stats.resumed_from = resumed;
            stats.shipped = shipped;
        }
        let mut reader =
            JournalReader::open(&app.config.journal_dir, JOURNAL_NAME).map_err(|e| {
                format!(
                    "cannot read the telemetry journal in {} (set JOURNAL_DIR): {e}",
                    app.config.journal_dir.display()
                )
            })?;
        reader.seek(shipped.cursor);
        Ok((checkpointer, shipped, reader))
    }

    async fn save_until_done(
        &self,
        checkpointer: &mut Checkpointer<FileStore>,
        shipped: &Shipped,
    ) -> Result<(), BoxError> {
        let mut pause = Duration::from_millis(250);
        loop {
            match checkpointer.save(shipped).await {
                Ok(_) => return Ok(()),
                Err(buttress::checkpoint::SaveError::Stale { .. }) => {
                    return Err(format!(
                        "another journal relay for machine {} saved a newer cursor; this one stops",
                        self.inner.config.machine
                    )
                    .into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?pause, "the cursor could not be saved; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The routes: `/relay/stats`, health, metrics and admin.
    pub fn router(&self) -> Router {
        let app = &*self.inner;
        let work = Router::new()
            .route("/relay/stats", get(stats_handler))
            .with_state(self.clone());
        let admin = Admin::new(app.policy.clone()).health(app.health.clone());
        crate::serving::with_surface(work, admin, &app.health, app.config.admin_token.as_deref())
    }

    /// `/relay/stats` now.
    pub fn stats(&self) -> JournalRelayStats {
        crate::lock(&self.inner.stats).clone()
    }

    /// A shutdown that closes the gate, then stops the relay (the batch in
    /// hand shipped and saved, or kept for the next start).
    pub fn shutdown(&self) -> Shutdown {
        let shutdown = Shutdown::new(self.inner.health.readiness().clone());
        let relay = self.clone();
        shutdown.on_drain("journal-relay", move || async move {
            relay.stop().await;
            Ok::<(), BoxError>(())
        });
        shutdown
    }

    /// Its settings.
    pub fn config(&self) -> &JournalRelayConfig {
        &self.inner.config
    }
}

async fn stats_handler(State(relay): State<JournalRelay>) -> axum::Json<JournalRelayStats> {
    axum::Json(relay.stats())
}

/// Up to `size` records (and about 1 MiB) from where `reader` is, as
/// messages to `subject`; the cursor past the last; the bytes left unread; the
/// reader's counts. A read error ends the batch early when something was
/// read (it comes back on the next call).
#[allow(clippy::type_complexity)]
fn read_batch(
    reader: &mut JournalReader,
    subject: &str,
    machine: &str,
    size: usize,
) -> Result<
    (
        Vec<(String, String, bytes::Bytes)>,
        Cursor,
        u64,
        ReadSummary,
    ),
    BoxError,
> {
    let mut messages = Vec::new();
    let mut bytes = 0;
    let mut end = reader.cursor();
    while messages.len() < size && bytes < BATCH_BYTES {
        let (line, at) = match reader.next_raw() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) if messages.is_empty() => return Err(e.into()),
            Err(_) => break,
        };
        bytes += line.len();
        messages.push((
            subject.to_owned(),
            message_id(machine, at),
            bytes::Bytes::copy_from_slice(line),
        ));
        end = at;
    }
    let unread = reader.unprocessed_bytes().unwrap_or(0);
    Ok((messages, end, unread, reader.stats().into()))
}

/// The message id of the record that ends at `at` on `machine`.
pub fn message_id(machine: &str, at: Cursor) -> String {
    format!("{machine}:{}:{}", at.file, at.offset)
}

/// Waits `pause`, or less when asked to stop.
async fn sleep_or_stop(pause: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}
