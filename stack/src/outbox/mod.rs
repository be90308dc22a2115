//! The transactional outbox and its relay.
//!
//! Producers add an event to the outbox table in the transaction that
//! writes their data ([`OutboxTable::enqueue`], or in the same statement
//! with [`OutboxTable::insert_select`]), so an event exists exactly when
//! its data does. The [`Relay`] claims unsent events in batches (oldest
//! first, `FOR UPDATE SKIP LOCKED`, so several relays share the work),
//! publishes each batch to a NATS JetStream stream through the policy's
//! `nats` dependency (timeout, retries in a budget, breaker), marks it
//! sent and commits. Each message carries the id `<table>:<id>`: a relay
//! that dies between publishing and committing leaves the batch unsent,
//! the next relay publishes it again, and the stream drops the repeats
//! inside its duplicate window (10 minutes here). Delivery into the stream
//! is exactly once as long as no batch waits longer than that window
//! between its two publications; past it, a consumer sees the repeat with
//! the same id.
//!
//! The relay reads what is pending from the table every second:
//! `outbox_pending_events{event_type}`, `outbox_oldest_pending_seconds`
//! and `outbox_depth` (all unsent events), and keeps the batch in hand in
//! a [`LagGauge`] named `outbox` (on `/admin`, and as
//! `buttress_pressure_pending{name="outbox"}`). A shutdown publishes
//! what was pending when it began, within the drain timeout (10 s); a
//! second signal exits at once.

mod config;
mod table;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use buttress::BoxError;
use buttress::admin::Admin;
use buttress::health::{CheckOptions, Health, Shutdown, check_fn};
use buttress::policy::{FileWatch, Policy, Stacked};
use buttress::pressure::LagGauge;
use tokio::sync::watch;
use tower::ServiceExt;

pub use config::{DEFAULT_PORT, RelayConfig};
pub use table::{BadEventType, Claimed, EventType, OutboxTable, Pending};

use crate::nats::{Batch, JetStream};
use crate::pg::PgPool;

/// The policy used when `POLICY_FILE` is unset.
pub const DEFAULT_POLICY: &str = include_str!("../../outbox.toml");

/// The dependency publishing goes through, as the policy names it.
pub const NATS: &str = "nats";

/// The application name of the relay's connections.
pub const APPLICATION_NAME: &str = "outbox-relay";

/// The subject word events of a type that is not an [`EventType`] go
/// under (written by hand into the table, say): published, not lost.
pub const UNROUTABLE: &str = "unroutable";

/// How often sent events older than `KEEP_SENT` are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What `GET /outbox/stats` shows.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RelayStats {
    /// Unsent events in the table, as last read.
    pub pending: Pending,
    /// All unsent events (`outbox_depth`).
    pub depth: u64,
    /// Events claimed and not yet marked sent by this relay.
    pub in_hand: u64,
    /// Events this relay published and marked sent.
    pub published: u64,
    /// Of those, how many the stream had already (a batch published
    /// again after a relay died before marking it).
    pub duplicates: u64,
    /// Batches published and marked.
    pub batches: u64,
    /// Batches that failed (publish, mark or commit) and were left unsent.
    pub failed_batches: u64,
    /// The last failure, if any since the last batch that succeeded.
    pub last_error: Option<String>,
    /// Sent events deleted after `KEEP_SENT`.
    pub pruned: u64,
    /// Whether a shutdown is draining the outbox.
    pub draining: bool,
}

/// The relay, cheap to clone.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    config: RelayConfig,
    policy: Policy,
    _watch: Option<FileWatch>,
    pool: PgPool,
    table: OutboxTable,
    nats: Arc<JetStream>,
    publish: Stacked<Batch, u64>,
    lag: LagGauge,
    health: Health,
    stats: Mutex<RelayStats>,
    /// Its stop is a drain: what was pending when it was asked is
    /// published first.
    worker: crate::worker::Worker,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Builds the relay from `config`: the policy, the pool, the stream
    /// and the health checks. Nothing connects here; [`spawn`](Self::spawn)
    /// starts the work.
    ///
    /// Must be called inside a tokio runtime.
    pub fn new(config: RelayConfig) -> Result<Relay, BoxError> {
        let (policy, watch) =
            crate::serving::load_policy(config.policy_file.as_deref(), DEFAULT_POLICY)?;
        let table = OutboxTable::new(&config.table)?;
        let pool = crate::pg::pool(&config.database_url, APPLICATION_NAME, 4)
            .map_err(|e| format!("DATABASE_URL is not a PostgreSQL connection string: {e}"))?;
        let dependency = policy.dependency(NATS).ok_or_else(|| {
            format!("the policy declares no [dependencies.{NATS}]: publishing needs it")
        })?;
        let (nats, publish) = JetStream::publisher(
            &config.nats_url,
            &config.stream,
            &[&format!("{}.>", config.subject_prefix)],
            &dependency,
            config.duplicate_window,
        );
        let health = Health::new().version(env!("CARGO_PKG_VERSION"));
        let worker = crate::worker::Worker::new("relay", &health, "creating the outbox table");
        let relay = Relay {
            inner: Arc::new(Inner {
                config,
                policy,
                _watch: watch,
                pool,
                table,
                nats,
                publish,
                lag: LagGauge::new("outbox")?,
                health,
                stats: Mutex::default(),
                worker,
            }),
        };
        relay.register_checks(&dependency)?;
        Ok(relay)
    }

    fn register_checks(&self, dependency: &buttress::policy::Dependency) -> Result<(), BoxError> {
        let app = &*self.inner;
        let options = CheckOptions::critical().timeout(app.config.check_timeout);
        let pool = app.pool.clone();
        app.health.register(
            "postgres",
            check_fn(move || {
                let pool = pool.clone();
                async move {
                    let conn = crate::pg::conn(&pool).await?;
                    conn.simple_query("SELECT 1").await?;
                    Ok::<(), BoxError>(())
                }
            }),
            options,
        )?;
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
        Ok(())
    }

    /// Starts the relay on a task: creates the table (retried, behind the
    /// readiness gate), then relays until a [`drain`](Self::drain) has
    /// published what was pending. A second task reads the pending
    /// metrics and prunes sent events meanwhile.
    pub fn spawn(&self) -> tokio::task::JoinHandle<Result<(), BoxError>> {
        let relay = self.clone();
        self.inner.worker.spawn(async move {
            let watcher = tokio::spawn(relay.clone().watch_table());
            let result = relay.run().await;
            watcher.abort();
            result
        })
    }

    /// Publishes every event pending now, then stops; returns when the
    /// relay has stopped (at once when it is not running). Events added
    /// meanwhile stay for the next relay.
    pub async fn drain(&self) {
        crate::lock(&self.inner.stats).draining = true;
        self.inner.worker.stop().await;
    }

    async fn run(&self) -> Result<(), BoxError> {
        let app = &*self.inner;
        app.worker.started(self.prepare().await)?;
        tracing::info!(table = %app.table.name(), stream = %app.nats.stream(), nats = %app.nats.url(), "relaying the outbox");
        let mut mode = app.worker.stopping();
        let mut up_to: Option<i64> = None;
        let mut pause = Duration::from_millis(250);
        loop {
            let draining = *mode.borrow_and_update();
            if draining && up_to.is_none() {
                match self.last_unsent().await {
                    Ok(last) => {
                        tracing::info!(up_to = last, "draining the outbox");
                        up_to = Some(last);
                    }
                    Err(e) => {
                        self.failed(&e);
                        sleep_or_change(pause, &mut mode).await;
                        continue;
                    }
                }
            }
            match self.relay_batch(up_to.unwrap_or(i64::MAX)).await {
                Ok(0) if draining => break,
                Ok(0) => sleep_or_change(app.config.poll_interval, &mut mode).await,
                Ok(_) => pause = Duration::from_millis(250),
                Err(e) => {
                    self.failed(&e);
                    sleep_or_change(pause, &mut mode).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!("outbox drained; relay stopped");
        Ok(())
    }

    async fn prepare(&self) -> Result<(), BoxError> {
        let app = &*self.inner;
        let policy = crate::knowledge::KnowledgeApi::database_startup_policy()?;
        buttress::retry::retry(&policy, || async {
            let mut conn = crate::pg::conn(&app.pool).await?;
            app.table.prepare(&mut conn).await?;
            Ok::<(), BoxError>(())
        })
        .await
        .map_err(|e| {
            format!("the outbox table could not be created (PostgreSQL did not come up?): {e}")
                .into()
        })
    }

    async fn last_unsent(&self) -> Result<i64, BoxError> {
        let conn = crate::pg::conn(&self.inner.pool).await?;
        Ok(self.inner.table.last_unsent(&*conn).await?)
    }

    fn failed(&self, e: &BoxError) {
        tracing::warn!(error = %e, "outbox batch not relayed; it stays unsent and is tried again");
        let mut stats = crate::lock(&self.inner.stats);
        stats.failed_batches += 1;
        stats.last_error = Some(e.to_string());
    }

    /// One batch: claim, publish, mark, commit. Returns how many events it
    /// relayed (0: none pending up to `up_to`). On any failure the
    /// transaction rolls back and the events stay unsent.
    async fn relay_batch(&self, up_to: i64) -> Result<usize, BoxError> {
        let app = &*self.inner;
        let mut conn = crate::pg::conn(&app.pool).await?;
        let tx = conn.transaction().await?;
        let claimed = app
            .table
            .claim(&tx, i64::from(app.config.batch_size), up_to)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let in_hand: Vec<_> = claimed
            .iter()
            .map(|c| app.lag.enqueue(&c.event_type))
            .collect();
        crate::lock(&app.stats).in_hand = in_hand.len() as u64;
        let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        let result = async {
            let prefix = &app.config.subject_prefix;
            let batch = claimed
                .iter()
                .map(|c| message(&app.table, prefix, c))
                .collect();
            let duplicates = app.publish.clone().oneshot(Arc::new(batch)).await?;
            app.table.mark_sent(&tx, &ids).await?;
            tx.commit().await?;
            Ok::<u64, BoxError>(duplicates)
        }
        .await;
        drop(in_hand);
        let mut stats = crate::lock(&app.stats);
        stats.in_hand = 0;
        let duplicates = result?;
        stats.published += ids.len() as u64;
        stats.duplicates += duplicates;
        stats.batches += 1;
        stats.last_error = None;
        drop(stats);
        metrics::counter!("outbox_published_total").increment(ids.len() as u64);
        metrics::counter!("outbox_duplicates_total").increment(duplicates);
        let (first, last) = (ids[0], ids[ids.len() - 1]);
        if duplicates > 0 {
            tracing::info!(
                first,
                last,
                events = ids.len(),
                duplicates,
                "relayed a batch the stream had seen in part: published before a relay stopped"
            );
        } else {
            tracing::debug!(first, last, events = ids.len(), "relayed a batch");
        }
        Ok(ids.len())
    }

    /// Reads what is pending into the metrics every `STATS_INTERVAL`, and
    /// deletes old sent events every minute.
    async fn watch_table(self) {
        let app = &*self.inner;
        let mut seen: std::collections::BTreeSet<String> = Default::default();
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            if let Err(e) = self.read_pending(&mut seen).await {
                tracing::debug!(error = %e, "the pending events could not be counted");
            }
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(tokio::time::Instant::now());
                match self.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "deleted sent events past KEEP_SENT"),
                    Err(e) => tracing::debug!(error = %e, "sent events could not be pruned"),
                }
            }
            tokio::time::sleep(app.config.stats_interval).await;
        }
    }

    async fn read_pending(
        &self,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> Result<(), BoxError> {
        let app = &*self.inner;
        let conn = crate::pg::conn(&app.pool).await?;
        let pending = app.table.pending(&*conn).await?;
        drop(conn);
        for t in seen.iter() {
            if !pending.by_type.contains_key(t) {
                metrics::gauge!("outbox_pending_events", "event_type" => t.clone()).set(0.0);
            }
        }
        for (t, n) in &pending.by_type {
            metrics::gauge!("outbox_pending_events", "event_type" => t.clone()).set(*n as f64);
            seen.insert(t.clone());
        }
        metrics::gauge!("outbox_oldest_pending_seconds").set(pending.oldest_seconds);
        metrics::gauge!("outbox_depth").set(pending.total() as f64);
        // Refreshes the in-hand ages on the admin page and in metrics.
        app.lag.snapshot();
        let mut stats = crate::lock(&app.stats);
        stats.depth = pending.total();
        stats.pending = pending;
        Ok(())
    }

    async fn prune(&self) -> Result<u64, BoxError> {
        let app = &*self.inner;
        let conn = crate::pg::conn(&app.pool).await?;
        let n = app
            .table
            .prune(&*conn, app.config.keep_sent, 10_000)
            .await?;
        crate::lock(&app.stats).pruned += n;
        Ok(n)
    }

    /// The routes: `/outbox/stats`, health, metrics and admin.
    pub fn router(&self) -> Router {
        let app = &*self.inner;
        let work = Router::new()
            .route("/outbox/stats", get(stats_handler))
            .with_state(self.clone());
        let admin = Admin::new(app.policy.clone())
            .health(app.health.clone())
            .lag("outbox", app.lag.clone());
        crate::serving::with_surface(work, admin, &app.health, app.config.admin_token.as_deref())
    }

    /// `/outbox/stats` as last read.
    pub fn stats(&self) -> RelayStats {
        crate::lock(&self.inner.stats).clone()
    }

    /// A shutdown that closes the gate, then drains the outbox (what was
    /// pending when it began), within `DRAIN_TIMEOUT`.
    pub fn shutdown(&self) -> Shutdown {
        let shutdown = Shutdown::new(self.inner.health.readiness().clone())
            .grace(self.inner.config.drain_timeout);
        let relay = self.clone();
        shutdown.on_drain("outbox", move || async move {
            relay.drain().await;
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
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// Its table.
    pub fn table(&self) -> &OutboxTable {
        &self.inner.table
    }
}

/// Subject, message id and payload of `event`.
fn message(table: &OutboxTable, prefix: &str, event: &Claimed) -> (String, String, bytes::Bytes) {
    let word = match EventType::new(&event.event_type) {
        Ok(t) => t.to_string(),
        Err(e) => {
            tracing::warn!(id = event.id, error = %e, "published under {prefix}.{UNROUTABLE}");
            UNROUTABLE.to_owned()
        }
    };
    (
        format!("{prefix}.{word}"),
        table.message_id(event.id),
        bytes::Bytes::from(event.payload.clone()),
    )
}

async fn stats_handler(State(relay): State<Relay>) -> axum::Json<RelayStats> {
    axum::Json(relay.stats())
}

/// Waits `pause`, or less when the mode changes (a drain begins).
async fn sleep_or_change(pause: Duration, mode: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        _ = mode.changed() => {}
    }
}
