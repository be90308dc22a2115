//! The knowledge API: `POST /query {"question": ...}` embeds the question,
//! searches the vector store, loads the documents from PostgreSQL, asks the
//! LLM, and answers with the sources, degraded instead of failing when a
//! non-critical dependency is down. `/health`, `/livez`, `/readyz`,
//! `/metrics` and `/admin` beside it; every error is problem+json with the
//! request id; every answered query is one record in the telemetry journal.

mod cache;
mod config;
mod inbound;
mod index;
mod query;
mod store;
mod telemetry;
mod upstreams;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use buttress::BoxError;
use buttress::admin::Admin;
use buttress::health::{CheckOptions, Health, Shutdown, check_fn};
use buttress::journal::Journal;
use buttress::policy::{FileWatch, Policy};
use buttress::retry::{Backoff, RetryConfig, RetryPolicy};

pub use cache::EmbeddingCache;
pub use config::{DEFAULT_PORT, KnowledgeConfig};
pub use inbound::Inbound;
pub use index::ensure_index;
pub use query::MAX_QUESTION_CHARS;
pub use store::{APPLICATION_NAME, Passage, Store, StoreError};
pub use telemetry::{JOURNAL_NAME, QueryRecord, question_hash};
pub use upstreams::{
    CompleteService, DEPENDENCIES, EmbedQuery, EmbedService, Endpoints, Found, LlmApi, SearchQuery,
    SearchService, Undeclared, Upstreams, complete,
};

use crate::client::JsonClient;

/// The policy used when `POLICY_FILE` is unset.
pub const DEFAULT_POLICY: &str = include_str!("../../policy.toml");

/// The running API, cheap to clone.
#[derive(Debug, Clone)]
pub struct KnowledgeApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: KnowledgeConfig,
    policy: Policy,
    /// Kept so the file stays watched.
    _watch: Option<FileWatch>,
    store: Store,
    cache: EmbeddingCache,
    upstreams: Upstreams,
    journal: Journal,
    health: Health,
    inbound: Inbound,
}

impl KnowledgeApi {
    /// Builds the API from `config`: the policy (watched when it is a
    /// file), the clients, the journal and the health checks. Nothing
    /// waits on a dependency here; [`start_database`](Self::start_database)
    /// connects in the background while the readiness gate stays closed.
    ///
    /// Must be called inside a tokio runtime.
    pub fn new(config: KnowledgeConfig) -> Result<Self, BoxError> {
        let (policy, watch) =
            crate::serving::load_policy(config.policy_file.as_deref(), DEFAULT_POLICY)?;
        let store = match &config.database_url {
            Some(url) => Store::postgres(url)?,
            None => Store::Memory,
        };
        let cache = match &config.redis_url {
            Some(url) => EmbeddingCache::redis(url)?,
            None => EmbeddingCache::memory(),
        };
        let endpoints = Endpoints {
            embeddings: JsonClient::new("embeddings", &config.embeddings_url),
            qdrant: JsonClient::new("vector_store", &config.qdrant_url),
            collection: config.collection.clone(),
            llm: JsonClient::new("llm", &config.llm_url),
            llm_api: config.llm_api,
        };
        let upstreams = Upstreams::new(&policy, endpoints, store.clone(), cache.clone())?;
        let journal =
            telemetry::open(&config.journal_dir, config.journal_keep_bytes).map_err(|e| {
                format!(
                    "cannot open the telemetry journal in {} (set JOURNAL_DIR): {e}",
                    config.journal_dir.display()
                )
            })?;
        let inbound = Inbound::new(&policy, config.redis_url.as_deref())?;
        let health = Health::new().version(env!("CARGO_PKG_VERSION"));
        let api = KnowledgeApi {
            inner: Arc::new(Inner {
                config,
                policy,
                _watch: watch,
                store,
                cache,
                upstreams,
                journal,
                health,
                inbound,
            }),
        };
        api.register_checks()?;
        Ok(api)
    }

    /// The health checks: PostgreSQL (critical, and it gates readiness),
    /// each upstream's own health endpoint and its breaker, critical for
    /// `/health` as the policy says but never gating `/readyz`.
    fn register_checks(&self) -> Result<(), BoxError> {
        let app = &*self.inner;
        let timeout = app.config.check_timeout;
        let options = |critical: bool| {
            let o = if critical {
                CheckOptions::critical()
            } else {
                CheckOptions::non_critical()
            };
            o.timeout(timeout)
        };
        if app.store.is_postgres() {
            let store = app.store.clone();
            app.health.register(
                "postgres",
                check_fn(move || {
                    let store = store.clone();
                    async move { store.ping().await }
                }),
                options(true),
            )?;
        }
        let probes = [
            (
                "embeddings",
                format!("{}/health", app.config.embeddings_url),
            ),
            ("vector_store", format!("{}/readyz", app.config.qdrant_url)),
            ("llm", format!("{}/health", app.config.llm_url)),
        ];
        for (name, url) in probes {
            let Some(dependency) = app.policy.dependency(name) else {
                continue;
            };
            // Every replica shares these upstreams and answers without
            // them (degraded): an outage makes /health unhealthy when the
            // policy says the dependency is critical, but never closes
            // /readyz, or a load balancer would drop every replica at once.
            let options = options(dependency.is_critical()).readiness(false);
            app.health
                .register(name, buttress::health::checks::http(&url)?, options)?;
            if let Some(breaker) = dependency.breaker() {
                app.health.register_breaker(breaker, options)?;
            }
        }
        Ok(())
    }

    /// The retries of the first database connection, as the report sets
    /// them (buttress-retry's `database_connect` preset): 5 retries, 2 s
    /// doubling (2, 4, 8, 16, 32: 62 s of waiting at most), no budget; and
    /// 10 s an attempt at most.
    pub fn database_startup_policy() -> Result<RetryPolicy, BoxError> {
        let config = RetryConfig::database_connect().attempt_timeout(Duration::from_secs(10));
        Ok(RetryPolicy::new("postgres-startup", config)?)
    }

    /// Connects to the database and loads the corpus, retried by
    /// [`database_startup_policy`](Self::database_startup_policy), holding
    /// readiness closed until it succeeds. Returns when it has, or when the
    /// policy gives up (the gate then stays closed and `/health` says why).
    pub async fn start_database(&self) -> Result<(), BoxError> {
        let policy = Self::database_startup_policy()?;
        let store = self.inner.store.clone();
        self.inner
            .health
            .readiness()
            .startup("connecting to PostgreSQL", &policy, || {
                let store = store.clone();
                async move { store.prepare().await }
            })
            .await?;
        Ok(())
    }

    /// Spawns the start-up work: [`start_database`](Self::start_database),
    /// then [`build_index`](Self::build_index). The task ends with an error
    /// when the database never came up (readiness then stays closed: a
    /// binary should exit so its supervisor restarts it); an index that
    /// could not be built is logged, and queries use keyword search.
    pub fn spawn_startup(&self) -> tokio::task::JoinHandle<Result<(), BoxError>> {
        let api = self.clone();
        tokio::spawn(async move {
            api.start_database()
                .await
                .map_err(|e| -> BoxError { format!("the database did not come up: {e}").into() })?;
            if let Err(e) = api.build_index().await {
                tracing::warn!(error = %e, "the vector index was not built; queries use keyword search");
            }
            Ok(())
        })
    }

    /// Loads the corpus into the vector store ([`ensure_index`]), retried
    /// (10 attempts, 1 s doubling to 30 s) while the store or the
    /// embeddings service come up. Queries do not wait for it: until it is
    /// done they fall back to keyword search.
    pub async fn build_index(&self) -> Result<usize, BoxError> {
        let policy = RetryPolicy::builder("vector-index")
            .max_attempts(10)
            .backoff(Backoff::Exponential {
                base: Duration::from_secs(1),
                factor: 2.0,
                max: Duration::from_secs(30),
            })
            .attempt_timeout(Duration::from_secs(30))
            .no_budget()
            .build()?;
        let app = &*self.inner;
        let (embeddings, qdrant) = (
            JsonClient::new("embeddings", &app.config.embeddings_url),
            JsonClient::new("vector_store", &app.config.qdrant_url),
        );
        let written = buttress::retry::retry(&policy, || {
            ensure_index(&embeddings, &qdrant, &app.config.collection)
        })
        .await?;
        tracing::info!(documents = written, collection = %app.config.collection, "vector index ready");
        Ok(written)
    }

    /// The routes: `/query` (behind the inbound limit), health, metrics
    /// and admin, every error as problem+json with the request id.
    pub fn router(&self) -> Router {
        let app = &*self.inner;
        let admin = Admin::new(app.policy.clone())
            .journal(app.journal.clone())
            .health(app.health.clone());
        let work = Router::new()
            .route("/query", post(query::query))
            .route_layer(
                buttress::health::ReadinessLayer::new(app.health.readiness().clone()).http(),
            )
            .layer(axum::middleware::from_fn_with_state(
                app.inbound.clone(),
                inbound::limit,
            ))
            .with_state(self.clone());
        crate::serving::with_surface(work, admin, &app.health, app.config.admin_token.as_deref())
    }

    /// A shutdown that closes the gate, then flushes the journal.
    pub fn shutdown(&self) -> Shutdown {
        let shutdown = Shutdown::new(self.inner.health.readiness().clone());
        let journal = self.inner.journal.clone();
        shutdown.on_drain("telemetry journal", move || {
            let journal = journal.clone();
            async move { journal.flush().await }
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
    pub fn config(&self) -> &KnowledgeConfig {
        &self.inner.config
    }

    /// Its telemetry journal.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }
}
