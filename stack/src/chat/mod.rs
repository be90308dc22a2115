//! The chat backend: `POST /api/chat {"message": ..., "domain": ...}` runs
//! the "cognition pipeline" (an LLM call, a memory write to PostgreSQL, an
//! event published to NATS JetStream) on a bounded priority executor:
//! chats first, background summaries after them, equal priorities in
//! arrival order. Whatever fails or runs late, the endpoint answers `200`:
//! without the LLM (down, slow past its timeout, its breaker open, the
//! queue full) with the legacy answer, `"degraded": true`, the request id
//! and the error's kind; a memory or bus failure only skips that step.
//! `/health`, `/livez`, `/readyz`, `/metrics` and `/admin` beside it; a
//! shutdown drains the executor.

mod bus;
mod config;
mod memory;
mod request;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::routing::post;
use axum::{Extension, Json};
use buttress::BoxError;
use buttress::admin::Admin;
use buttress::degrade::{Problem, RequestId, reason_of};
use buttress::executor::{Executor, SubmitError, TaskError};
use buttress::health::{CheckOptions, Health, Shutdown, check_fn};
use buttress::policy::{FileWatch, Policy, Stacked};
use bytes::Bytes;
use serde_json::{Value, json};
use tower::{ServiceExt, service_fn};

pub use bus::{Bus, Published, STREAM, SUBJECTS};
pub use config::{ChatConfig, DEFAULT_PORT};
pub use memory::{APPLICATION_NAME, Exchange, Memory, MemoryError};
pub use request::{ChatRequest, Domain, MAX_MESSAGE_CHARS, parse};

use crate::client::JsonClient;

/// The policy used when `POLICY_FILE` is unset.
pub const DEFAULT_POLICY: &str = include_str!("../../chat.toml");

/// A chat's priority on the executor.
pub const PRIORITY_CHAT: u8 = 9;
/// A background summary's priority.
pub const PRIORITY_SUMMARY: u8 = 1;

/// Messages kept per domain for its next summary.
const SUMMARY_MESSAGES: usize = 20;

/// The running chat backend, cheap to clone.
#[derive(Debug, Clone)]
pub struct Chat {
    inner: Arc<Inner>,
}

struct Inner {
    config: ChatConfig,
    policy: Policy,
    _watch: Option<FileWatch>,
    executor: Executor,
    llm: Stacked<Arc<str>, String>,
    memory: Memory,
    remember: Stacked<Arc<Exchange>, ()>,
    bus: Bus,
    publish: Stacked<Arc<Published>, ()>,
    health: Health,
    recent: std::sync::Mutex<HashMap<Domain, Vec<String>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the pipeline produced.
#[derive(Debug)]
struct Answered {
    answer: String,
    skipped: Vec<Value>,
}

/// Why the pipeline produced no answer: the step and the error's kind.
#[derive(Debug)]
struct Failed {
    step: &'static str,
    kind: &'static str,
}

impl Failed {
    fn pipeline(kind: &'static str) -> Failed {
        Failed {
            step: "pipeline",
            kind,
        }
    }
}

impl Chat {
    /// Builds the backend from `config`: the policy (watched when it is a
    /// file), the executor it declares, the clients and the health checks.
    /// Nothing connects here.
    ///
    /// Must be called inside a tokio runtime.
    pub fn new(config: ChatConfig) -> Result<Self, BoxError> {
        let (policy, watch) =
            crate::serving::load_policy(config.policy_file.as_deref(), DEFAULT_POLICY)?;
        let dependency = |name: &str| {
            policy.dependency(name).ok_or_else(|| -> BoxError {
                format!("the policy declares no [dependencies.{name}]: the chat pipeline needs it")
                    .into()
            })
        };
        let executor = dependency("pipeline")?
            .executor()
            .cloned()
            .ok_or("the policy's [dependencies.pipeline] declares no concurrency: the executor the pipeline runs on")?;
        let client = JsonClient::new("llm", &config.llm_url);
        let api = config.llm_api;
        let llm = dependency("llm")?.service(service_fn(move |prompt: Arc<str>| {
            let client = client.clone();
            async move { crate::knowledge::complete(&client, api, &prompt).await }
        }));
        let memory = match &config.database_url {
            Some(url) => {
                Memory::Postgres(crate::pg::pool(url, APPLICATION_NAME, 8).map_err(|e| {
                    format!("DATABASE_URL is not a PostgreSQL connection string: {e}")
                })?)
            }
            None => Memory::local(),
        };
        let store = memory.clone();
        let remember = dependency("memory")?.service(service_fn(move |e: Arc<Exchange>| {
            let store = store.clone();
            async move { store.remember(&e).await }
        }));
        let bus = match &config.nats_url {
            Some(url) => Bus::nats(url),
            None => Bus::local(),
        };
        let out = bus.clone();
        let publish = dependency("bus")?.service(service_fn(move |e: Arc<Published>| {
            let out = out.clone();
            async move { out.publish(&e).await }
        }));
        let health = Health::new().version(env!("CARGO_PKG_VERSION"));
        let chat = Chat {
            inner: Arc::new(Inner {
                config,
                policy,
                _watch: watch,
                executor,
                llm,
                memory,
                remember,
                bus,
                publish,
                health,
                recent: Default::default(),
            }),
        };
        chat.register_checks()?;
        Ok(chat)
    }

    /// The executor (degraded once it stops accepting),
    /// PostgreSQL and NATS (not critical: their steps are skipped), and
    /// each breaker as the policy says.
    fn register_checks(&self) -> Result<(), BoxError> {
        let app = &*self.inner;
        let timeout = app.config.check_timeout;
        app.health.register_executor(&app.executor)?;
        if app.memory.is_postgres() {
            let memory = app.memory.clone();
            app.health.register(
                "postgres",
                check_fn(move || {
                    let memory = memory.clone();
                    async move { memory.ping().await }
                }),
                CheckOptions::non_critical().timeout(timeout),
            )?;
        }
        if let Bus::Nats(js) = &app.bus {
            let js = js.clone();
            app.health.register(
                "nats",
                check_fn(move || {
                    let js = js.clone();
                    async move { js.ping().await }
                }),
                CheckOptions::non_critical().timeout(timeout),
            )?;
        }
        for name in ["llm", "memory", "bus"] {
            if let Some(d) = app.policy.dependency(name)
                && let Some(breaker) = d.breaker()
            {
                let options = if d.is_critical() {
                    CheckOptions::critical()
                } else {
                    CheckOptions::non_critical()
                };
                // An LLM outage degrades every answer, but every replica
                // shares it: never a reason to drop out of the load balancer.
                app.health
                    .register_breaker(breaker, options.readiness(false))?;
            }
        }
        Ok(())
    }

    /// Runs one chat through the pipeline on the executor, and answers.
    pub async fn answer(&self, request_id: &str, request: ChatRequest) -> Value {
        let app = &*self.inner;
        let pipeline = self
            .clone()
            .pipeline(request_id.to_owned(), request.clone());
        let outcome = match app.executor.submit(PRIORITY_CHAT, pipeline) {
            Ok(handle) => match handle.await {
                Ok(result) => result,
                Err(TaskError::TimedOut) => Err(Failed::pipeline("timed_out")),
                Err(TaskError::Cancelled) => Err(Failed::pipeline("shutting_down")),
                Err(TaskError::Panicked) => Err(Failed::pipeline("panicked")),
                Err(_) => Err(Failed::pipeline("error")),
            },
            Err(SubmitError::Full(_)) => Err(Failed::pipeline("queue_full")),
            Err(SubmitError::Closed) => Err(Failed::pipeline("shutting_down")),
            Err(_) => Err(Failed::pipeline("error")),
        };
        match outcome {
            Ok(answered) => json!({
                "answer": answered.answer,
                "degraded": false,
                "pipeline": "cognition",
                "domain": request.domain,
                "request_id": request_id,
                "skipped": answered.skipped,
            }),
            Err(failed) => {
                tracing::info!(
                    step = failed.step,
                    kind = failed.kind,
                    request_id,
                    "legacy answer"
                );
                metrics::counter!("chat_legacy_answers_total", "kind" => failed.kind).increment(1);
                json!({
                    "answer": legacy_answer(request.domain),
                    "degraded": true,
                    "pipeline": "legacy",
                    "domain": request.domain,
                    "request_id": request_id,
                    "error": { "step": failed.step, "kind": failed.kind },
                })
            }
        }
    }

    /// The cognition pipeline: the LLM's answer (or a failure), then the
    /// memory write and the event, each skipped when it fails.
    async fn pipeline(self, request_id: String, request: ChatRequest) -> Result<Answered, Failed> {
        let app = &*self.inner;
        let prompt: Arc<str> = format!(
            "You are a helpful assistant for {} questions.\nUser: {}\nAssistant:",
            request.domain.as_str(),
            request.message
        )
        .into();
        let answer = app.llm.clone().oneshot(prompt).await.map_err(|e| Failed {
            step: "llm",
            kind: reason_of(&e).as_str(),
        })?;
        {
            let mut recent = crate::lock(&app.recent);
            let list = recent.entry(request.domain).or_default();
            if list.len() >= SUMMARY_MESSAGES {
                list.remove(0);
            }
            list.push(request.message.clone());
        }
        let mut skipped = Vec::new();
        let exchange = Arc::new(Exchange {
            id: request_id.clone(),
            domain: request.domain.as_str().to_owned(),
            kind: "chat",
            message: request.message.clone(),
            answer: answer.clone(),
        });
        if let Err(e) = app.remember.clone().oneshot(exchange).await {
            tracing::warn!(error = %e, request_id, "memory write skipped");
            skipped.push(json!({"step": "memory", "kind": reason_of(&e).as_str()}));
        }
        let event = Arc::new(Published {
            subject: format!("chat.events.{}", request.domain.as_str()),
            id: request_id.clone(),
            body: json!({
                "type": "chat.answered",
                "request_id": request_id,
                "domain": request.domain,
                "message_chars": request.message.chars().count(),
                "answer_chars": answer.chars().count(),
            })
            .to_string(),
        });
        if let Err(e) = app.publish.clone().oneshot(event).await {
            tracing::warn!(error = %e, request_id, "event skipped");
            skipped.push(json!({"step": "bus", "kind": reason_of(&e).as_str()}));
        }
        Ok(Answered { answer, skipped })
    }

    /// Queues a low-priority summary of each domain's recent messages
    /// (those since its last summary); returns how many were queued. A
    /// full queue refuses them: chats come first.
    pub fn summarise(&self) -> usize {
        let app = &*self.inner;
        let due: Vec<(Domain, Vec<String>)> = crate::lock(&app.recent)
            .drain()
            .filter(|(_, m)| !m.is_empty())
            .collect();
        let mut queued = 0;
        for (domain, messages) in due {
            let chat = self.clone();
            let task = async move {
                let app = &*chat.inner;
                let prompt: Arc<str> = format!(
                    "Summarise these {} questions in one sentence:\n{}",
                    domain.as_str(),
                    messages.join("\n")
                )
                .into();
                let summary = app.llm.clone().oneshot(prompt).await?;
                let exchange = Arc::new(Exchange {
                    id: format!("summary-{}-{}", domain.as_str(), uuid_like()),
                    domain: domain.as_str().to_owned(),
                    kind: "summary",
                    message: messages.join("\n"),
                    answer: summary,
                });
                app.remember.clone().oneshot(exchange).await?;
                Ok::<(), BoxError>(())
            };
            match app.executor.submit(PRIORITY_SUMMARY, task) {
                Ok(_) => queued += 1,
                Err(e) => {
                    tracing::info!(error = %e, domain = domain.as_str(), "summary not queued")
                }
            }
        }
        queued
    }

    /// Queues summaries every `SUMMARY_INTERVAL` until the executor stops.
    pub fn spawn_summaries(&self) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.inner.config.summary_interval;
        if every.is_zero() {
            return None;
        }
        let chat = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if !chat.inner.executor.snapshot().accepting {
                    return;
                }
                chat.summarise();
            }
        }))
    }

    /// The routes: `/api/chat`, health, metrics and admin, every error as
    /// problem+json with the request id.
    pub fn router(&self) -> Router {
        let app = &*self.inner;
        let work = Router::new()
            .route("/api/chat", post(chat_handler))
            .layer(axum::extract::DefaultBodyLimit::max(64 << 10))
            .with_state(self.clone());
        let admin = Admin::new(app.policy.clone()).health(app.health.clone());
        crate::serving::with_surface(work, admin, &app.health, app.config.admin_token.as_deref())
    }

    /// A shutdown that closes the gate, then drains the executor: the
    /// chats queued and running finish (within `DRAIN_TIMEOUT`), the rest
    /// are cancelled and answered with the legacy answer.
    pub fn shutdown(&self) -> Shutdown {
        let shutdown = Shutdown::new(self.inner.health.readiness().clone())
            .grace(self.inner.config.drain_timeout + Duration::from_secs(5));
        let (executor, deadline) = (self.inner.executor.clone(), self.inner.config.drain_timeout);
        shutdown.on_drain("pipeline executor", move || async move {
            let report = executor.shutdown(deadline).await;
            tracing::info!(?report, "pipeline drained");
            Ok::<(), BoxError>(())
        });
        shutdown
    }

    /// The pipeline's executor.
    pub fn executor(&self) -> &Executor {
        &self.inner.executor
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
    pub fn config(&self) -> &ChatConfig {
        &self.inner.config
    }

    /// Its memory.
    pub fn memory(&self) -> &Memory {
        &self.inner.memory
    }

    /// Its event bus.
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }
}

/// The answer of the system before the pipeline: fixed text per domain,
/// which needs nothing but this process.
pub fn legacy_answer(domain: Domain) -> &'static str {
    match domain {
        Domain::General => {
            "I can't give a considered answer right now. Please try again in a minute."
        }
        Domain::Engineering => {
            "I can't give a considered answer right now. The engineering handbook and runbooks have most answers; please try again in a minute."
        }
        Domain::Research => {
            "I can't give a considered answer right now. The paper index is searchable meanwhile; please try again in a minute."
        }
        Domain::Support => {
            "I can't give a considered answer right now. The help centre covers the common questions, and the support team reads every ticket."
        }
    }
}

/// A unique enough id for a summary.
fn uuid_like() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

async fn chat_handler(
    State(chat): State<Chat>,
    Extension(id): Extension<RequestId>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let body = body.map_err(|r| crate::serving::body_problem(&r))?;
    let request = parse(&body).map_err(Problem::invalid)?;
    let request_id = id.header_value().to_str().unwrap_or_default().to_owned();
    Ok(Json(chat.answer(&request_id, request).await))
}
