//! The learner: reads the knowledge API's telemetry journal from its saved
//! cursor (across rotated and gzipped files), deduplicates the query
//! patterns by their SHA-256, writes each new one to PostgreSQL through a
//! breaker, and saves its progress every 100 events, so that a restart
//! redoes at most 100 and stores nothing twice. Reading runs ahead of the
//! writes, and pauses while more than 100 MB are read and not processed.
//! `GET /learning/stats`, `/health`, `/livez`, `/readyz`, `/metrics` and
//! `/admin` beside it; a graceful shutdown finishes the batch in hand,
//! saves, and stops.

mod config;
mod ingest;
mod ingest_nats;
mod known;
mod patterns;
mod progress;
mod stats;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use buttress::BoxError;
use buttress::admin::Admin;
use buttress::checkpoint::{
    Checkpointer, FileStore, FileStoreConfig, PgStore, Policy as SavePolicy, SaveError,
};
use buttress::health::{CheckOptions, Health, Shutdown, check_fn};
use buttress::journal::JournalReader;
use buttress::policy::{FileWatch, Policy, Stacked};
use buttress::pressure::{Gauge, GaugeConfig, Watermarks};
use tokio::sync::{mpsc, watch};
use tower::{ServiceExt, service_fn};

pub use config::{DEFAULT_PORT, LearnerConfig, TelemetrySource};
pub use known::{
    ELSEWHERE, Event, Hash, Known, Lesson, NewPattern, Progress, Seen, hex, parse_hash,
};
pub use patterns::{APPLICATION_NAME, PATTERN_LEARNED, PatternError, PatternStore, StoredPattern};
pub use progress::ProgressStore;
pub use stats::LearningStats;

use crate::knowledge::JOURNAL_NAME;

/// The policy used when `POLICY_FILE` is unset.
pub const DEFAULT_POLICY: &str = include_str!("../../learner.toml");

/// The dependency the pattern writes go through, as the policy names it.
pub const PATTERNS: &str = "patterns";

type WriteService = Stacked<Arc<Vec<NewPattern>>, u64>;

/// What [`Learner::start`] hands to processing.
type Started = (
    Checkpointer<ProgressStore>,
    Known,
    Progress,
    Reading,
    mpsc::UnboundedReceiver<Vec<Event>>,
);

/// What reads ahead of processing: the journal's thread, or the stream's
/// consumer task.
#[derive(Debug)]
enum Reading {
    Journal(ingest::Ingest),
    Nats(ingest_nats::NatsIngest),
}

impl Reading {
    async fn stop(&mut self) {
        match self {
            Reading::Journal(i) => i.stop(),
            Reading::Nats(i) => i.stop().await,
        }
    }
}

/// The running learner, cheap to clone.
#[derive(Debug, Clone)]
pub struct Learner {
    inner: Arc<Inner>,
}

struct Inner {
    config: LearnerConfig,
    policy: Policy,
    _watch: Option<FileWatch>,
    patterns: PatternStore,
    /// The telemetry stream, for the NATS source.
    nats: Option<Arc<crate::nats::JetStream>>,
    write: WriteService,
    gauge: Gauge,
    health: Health,
    stats: Arc<stats::Shared>,
    worker: crate::worker::Worker,
    checkpoint_every: SavePolicy,
    every_events: u64,
    idle_save: Duration,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("config", &self.config)
            .field("patterns", &self.patterns)
            .finish_non_exhaustive()
    }
}

impl Learner {
    /// Builds the learner from `config`: the policy (watched when it is a
    /// file), the pattern store and the health checks. Nothing is read or
    /// connected here; [`spawn`](Self::spawn) starts the work.
    ///
    /// Must be called inside a tokio runtime.
    pub fn new(config: LearnerConfig) -> Result<Self, BoxError> {
        let (policy, watch) =
            crate::serving::load_policy(config.policy_file.as_deref(), DEFAULT_POLICY)?;
        let patterns = match &config.database_url {
            Some(url) => PatternStore::Postgres {
                pool: crate::pg::pool(url, APPLICATION_NAME, 4).map_err(|e| {
                    format!("DATABASE_URL is not a PostgreSQL connection string: {e}")
                })?,
                table: config.patterns_table.clone(),
                outbox: match &config.outbox_table {
                    Some(t) => Some(crate::outbox::OutboxTable::new(t)?),
                    None => None,
                },
                source: config.source.label(),
            },
            None => PatternStore::memory(),
        };
        let dependency = policy.dependency(PATTERNS).ok_or_else(|| {
            format!("the policy declares no [dependencies.{PATTERNS}]: the pattern writes need it")
        })?;
        let store = patterns.clone();
        let write = dependency.service(service_fn(move |batch: Arc<Vec<NewPattern>>| {
            let store = store.clone();
            async move { store.insert(&batch).await }
        }));
        let gauge = match policy.backpressure() {
            Some(g) => g.clone(),
            None => Gauge::builder(
                "learner",
                GaugeConfig::from(Watermarks::new(100_000_000, 50_000_000)?),
            )
            .build()?,
        };
        let saving = policy.document().service.checkpoint.unwrap_or_default();
        let every_events = saving.every_events.unwrap_or(100).max(1);
        let mut checkpoint_every = SavePolicy::every_events(every_events);
        if let Some(every) = saving.every {
            checkpoint_every = checkpoint_every.or_every(every);
        }
        let nats = match &config.source {
            TelemetrySource::Journal => None,
            TelemetrySource::Nats { url, stream } => Some(Arc::new(
                crate::nats::JetStream::new(
                    url,
                    stream,
                    // Looked up, not created: its subjects are the relay's.
                    &[],
                    Duration::from_secs(5),
                )
                .existing(),
            )),
        };
        let health = Health::new().version(env!("CARGO_PKG_VERSION"));
        let worker = crate::worker::Worker::new("learner", &health, "resuming from the checkpoint");
        let learner = Learner {
            inner: Arc::new(Inner {
                idle_save: saving.every.unwrap_or(Duration::from_secs(10)),
                config,
                policy,
                _watch: watch,
                patterns,
                nats,
                write,
                gauge,
                health,
                stats: Arc::default(),
                worker,
                checkpoint_every,
                every_events,
            }),
        };
        learner.register_checks(&dependency)?;
        Ok(learner)
    }

    fn register_checks(&self, dependency: &buttress::policy::Dependency) -> Result<(), BoxError> {
        let app = &*self.inner;
        let options = CheckOptions::critical().timeout(app.config.check_timeout);
        if app.patterns.is_postgres() {
            let store = app.patterns.clone();
            app.health.register(
                "postgres",
                check_fn(move || {
                    let store = store.clone();
                    async move { store.ping().await }
                }),
                options,
            )?;
        }
        if let Some(nats) = &app.nats {
            let nats = nats.clone();
            app.health.register(
                "nats",
                check_fn(move || {
                    let nats = nats.clone();
                    async move { nats.ping().await }
                }),
                options,
            )?;
        }
        if let Some(breaker) = dependency.breaker() {
            app.health.register_breaker(breaker, options)?;
        }
        app.health.register_gauge(&app.gauge)?;
        Ok(())
    }

    /// Starts the learner on a task: connects (PostgreSQL retried as the
    /// knowledge API does, behind the readiness gate), resumes from the
    /// checkpoint, loads the patterns stored, then reads and learns until
    /// [`stop`](Self::stop). The task ends with an error when it cannot
    /// start or another learner took over its checkpoint.
    pub fn spawn(&self) -> tokio::task::JoinHandle<Result<(), BoxError>> {
        let learner = self.clone();
        self.inner.worker.spawn(async move { learner.run().await })
    }

    /// Asks the learner to stop: it finishes the batch in hand, saves its
    /// progress, and its task ends. Returns when it has (at once when it
    /// is not running).
    pub async fn stop(&self) {
        self.inner.worker.stop().await;
    }

    async fn run(&self) -> Result<(), BoxError> {
        let (mut checkpointer, known, progress, mut reading, rx) =
            self.inner.worker.started(self.start().await)?;
        let result = self.process(&mut checkpointer, known, rx, progress).await;
        reading.stop().await;
        // What was read and not processed is read again after a restart.
        self.inner.gauge.set(0);
        result
    }

    /// Connects, resumes and starts reading.
    async fn start(&self) -> Result<Started, BoxError> {
        let app = &*self.inner;
        let policy = crate::knowledge::KnowledgeApi::database_startup_policy()?;
        if app.patterns.is_postgres() {
            let store = app.patterns.clone();
            buttress::retry::retry(&policy, || {
                let store = store.clone();
                async move { store.prepare().await }
            })
            .await
            .map_err(|e| format!("PostgreSQL did not come up: {e}"))?;
        }
        let store = self.open_progress_store(&policy).await?;
        let store_kind = store.describe();
        let mut checkpointer = Checkpointer::new(store, app.checkpoint_every);
        let resumed: Option<Progress> = checkpointer
            .resume()
            .await
            .map_err(|e| format!("the checkpoint could not be loaded: {e}"))?;
        for skipped in checkpointer.skipped() {
            tracing::warn!(location = %skipped.location, reason = %skipped.reason, "a damaged checkpoint was passed over");
        }
        let mut known = Known::default();
        let stored = buttress::retry::retry(&policy, || app.patterns.all())
            .await
            .map_err(|e| format!("the stored patterns could not be loaded: {e}"))?;
        for p in &stored {
            known.insert(p.hash, p.at.unwrap_or(ELSEWHERE));
        }
        let progress = resumed.unwrap_or_default();
        match resumed {
            Some(p) => tracing::info!(
                events = p.events,
                cursor = %p.cursor,
                patterns = known.len(),
                "resuming from the checkpoint"
            ),
            None => tracing::info!(
                patterns = known.len(),
                "no checkpoint: reading the journal from its start"
            ),
        }
        app.stats.started(
            app.config.source.label(),
            store_kind,
            app.every_events,
            resumed,
            stored.len() as u64,
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let reading = match &app.nats {
            None => {
                let mut reader = JournalReader::open(&app.config.journal_dir, JOURNAL_NAME)
                    .map_err(|e| {
                        format!(
                            "cannot read the telemetry journal in {} (set JOURNAL_DIR): {e}",
                            app.config.journal_dir.display()
                        )
                    })?;
                reader.seek(progress.cursor);
                Reading::Journal(ingest::Ingest::spawn(
                    reader,
                    app.gauge.clone(),
                    tx,
                    app.stats.clone(),
                    app.config.poll_interval,
                )?)
            }
            Some(js) => {
                let name = app.config.checkpoint_name().replace('.', "_");
                let started = buttress::retry::retry(&policy, || {
                    ingest_nats::NatsIngest::start(
                        js,
                        &name,
                        progress.cursor.offset,
                        app.gauge.clone(),
                        tx.clone(),
                        app.stats.clone(),
                        app.config.poll_interval,
                    )
                })
                .await
                .map_err(|e| format!("cannot read the telemetry stream: {e}"))?;
                Reading::Nats(started)
            }
        };
        Ok((checkpointer, known, progress, reading, rx))
    }

    async fn open_progress_store(
        &self,
        policy: &buttress::retry::RetryPolicy,
    ) -> Result<ProgressStore, BoxError> {
        let app = &*self.inner;
        Ok(match &app.config.database_url {
            Some(url) => {
                let name = app.config.checkpoint_name();
                let store = buttress::retry::retry(policy, || {
                    PgStore::connect(url, &app.config.checkpoint_table, &name)
                })
                .await
                .map_err(|e| format!("the checkpoint table could not be opened: {e}"))?;
                ProgressStore::Postgres(store)
            }
            None => {
                let store = FileStore::open(
                    &app.config.checkpoint_dir,
                    &app.config.checkpoint_name(),
                    FileStoreConfig::default(),
                )
                .map_err(|e| {
                    format!(
                        "cannot keep checkpoints in {} (set CHECKPOINT_DIR): {e}",
                        app.config.checkpoint_dir.display()
                    )
                })?;
                ProgressStore::File(store)
            }
        })
    }

    /// The processing loop: batches that end where a checkpoint is due,
    /// each stored before its progress is saved, so the progress saved
    /// never runs ahead of the store, and processing never runs more than
    /// one batch (`every_events`) ahead of the progress saved.
    async fn process(
        &self,
        checkpointer: &mut Checkpointer<ProgressStore>,
        mut known: Known,
        mut rx: mpsc::UnboundedReceiver<Vec<Event>>,
        mut progress: Progress,
    ) -> Result<(), BoxError> {
        let app = &*self.inner;
        let mut stop = app.worker.stopping();
        let mut pending: VecDeque<Event> = VecDeque::new();
        let mut since_save = 0u64;
        loop {
            if *stop.borrow() {
                break;
            }
            if pending.is_empty() {
                tokio::select! {
                    chunk = rx.recv() => match chunk {
                        Some(chunk) => pending.extend(chunk),
                        None => break,
                    },
                    _ = stop.changed() => continue,
                    () = tokio::time::sleep(app.idle_save), if since_save > 0 => {
                        self.save_until_done(checkpointer, &progress, &mut stop).await?;
                        since_save = 0;
                        continue;
                    }
                }
            }
            while pending.len() < app.every_events as usize {
                match rx.try_recv() {
                    Ok(chunk) => pending.extend(chunk),
                    Err(_) => break,
                }
            }
            // End the batch where the next save is due.
            let room = app.every_events.saturating_sub(since_save).max(1);
            let take = (room as usize).min(pending.len());
            let batch: Vec<Event> = pending.drain(..take).collect();
            let bytes: u64 = batch.iter().map(|e| e.bytes).sum();
            let lesson = known.learn(progress, &batch);
            tracing::debug!(
                from = progress.events,
                to = lesson.progress.events,
                new = lesson.new.len(),
                "processing events"
            );
            let Some(written) = self.write_until_stored(lesson.new, &mut stop).await else {
                // Stopped while the writes failed: this batch is not
                // processed; a restart does it again.
                break;
            };
            progress = lesson.progress;
            app.stats.processed(progress, written);
            app.gauge.sub(bytes);
            let mut failed = false;
            for _ in 0..batch.len() {
                match checkpointer.tick(&progress).await {
                    Ok(true) => {
                        app.stats.saved(progress);
                        since_save = 0;
                    }
                    Ok(false) => since_save += 1,
                    Err(e) => {
                        fatal(&e)?;
                        tracing::warn!(error = %e, "the checkpoint could not be saved");
                        app.stats.save_failed();
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                // Never run more than one batch ahead of the progress saved.
                self.save_until_done(checkpointer, &progress, &mut stop)
                    .await?;
                since_save = 0;
            }
        }
        if since_save > 0 {
            checkpointer
                .save(&progress)
                .await
                .map_err(|e| format!("the last checkpoint could not be saved: {e}"))?;
            app.stats.saved(progress);
        }
        tracing::info!(events = progress.events, cursor = %progress.cursor, "learner stopped; progress saved");
        Ok(())
    }

    /// Stores `new` through the policy (timeout, retries, breaker), and
    /// again after a pause while that fails: the batch is never skipped.
    /// `None` when asked to stop meanwhile.
    async fn write_until_stored(
        &self,
        new: Vec<NewPattern>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<u64> {
        let app = &*self.inner;
        if new.is_empty() {
            return Some(0);
        }
        let batch = Arc::new(new);
        let mut pause = Duration::from_millis(250);
        loop {
            match app.write.clone().oneshot(batch.clone()).await {
                Ok(n) => return Some(n),
                Err(e) => {
                    app.stats.write_failed();
                    tracing::warn!(error = %e, patterns = batch.len(), retry_in = ?pause, "patterns not stored; trying again");
                }
            }
            if pause_or_stop(pause, stop).await {
                return None;
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Saves `progress`, reopening the store and trying again while it
    /// fails, until it is saved or the learner is asked to stop.
    async fn save_until_done(
        &self,
        checkpointer: &mut Checkpointer<ProgressStore>,
        progress: &Progress,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), BoxError> {
        let app = &*self.inner;
        let mut pause = Duration::from_millis(250);
        loop {
            match checkpointer.save(progress).await {
                Ok(_) => {
                    app.stats.saved(*progress);
                    return Ok(());
                }
                Err(e) => {
                    fatal(&e)?;
                    app.stats.save_failed();
                    tracing::warn!(error = %e, retry_in = ?pause, "the checkpoint could not be saved; trying again");
                }
            }
            if pause_or_stop(pause, stop).await {
                return Ok(());
            }
            pause = (pause * 2).min(Duration::from_secs(5));
            // A PostgreSQL store's connection may be gone for good (a
            // restarted server, a terminated backend): connect again.
            if matches!(checkpointer.store(), ProgressStore::Postgres(_)) {
                let retry = buttress::retry::RetryPolicy::builder("checkpoint-reconnect")
                    .max_attempts(1)
                    .no_budget()
                    .build()?;
                if let Ok(store) = self.open_progress_store(&retry).await {
                    let mut fresh = Checkpointer::new(store, app.checkpoint_every);
                    if fresh.resume::<Progress>().await.is_ok() {
                        *checkpointer = fresh;
                    }
                }
            }
        }
    }

    /// The routes: `/learning/stats`, health, metrics and admin.
    pub fn router(&self) -> Router {
        let app = &*self.inner;
        let work = Router::new()
            .route("/learning/stats", get(stats_handler))
            .with_state(self.clone());
        let admin = Admin::new(app.policy.clone()).health(app.health.clone());
        crate::serving::with_surface(work, admin, &app.health, app.config.admin_token.as_deref())
    }

    /// `/learning/stats` as it is now.
    pub fn stats(&self) -> LearningStats {
        self.inner.stats.snapshot(&self.inner.gauge)
    }

    /// The progress processed so far.
    pub fn progress(&self) -> Progress {
        self.inner.stats.progress()
    }

    /// A shutdown that closes the gate, then stops the learner (the batch
    /// in hand finished and saved).
    pub fn shutdown(&self) -> Shutdown {
        let shutdown = Shutdown::new(self.inner.health.readiness().clone());
        let learner = self.clone();
        shutdown.on_drain("learner", move || async move {
            learner.stop().await;
            Ok::<(), BoxError>(())
        });
        shutdown
    }

    /// Its health registry.
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// Its running policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Its settings.
    pub fn config(&self) -> &LearnerConfig {
        &self.inner.config
    }

    /// Its pattern store.
    pub fn patterns(&self) -> &PatternStore {
        &self.inner.patterns
    }

    /// Its backpressure gauge: bytes read and not yet processed.
    pub fn gauge(&self) -> &Gauge {
        &self.inner.gauge
    }
}

async fn stats_handler(State(learner): State<Learner>) -> axum::Json<LearningStats> {
    axum::Json(learner.stats())
}

/// A save refused because another learner saved a newer checkpoint under
/// the same name: this one must not go on.
fn fatal(e: &SaveError) -> Result<(), BoxError> {
    if let SaveError::Stale { .. } = e {
        return Err(format!(
            "{e}: another learner with this LEARNER_NAME is running; this one stops"
        )
        .into());
    }
    Ok(())
}

/// Waits `pause`; `true` when asked to stop meanwhile.
async fn pause_or_stop(pause: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(pause) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}
