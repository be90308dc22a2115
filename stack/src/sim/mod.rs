//! upstream-sim: one server that speaks the LLM server's, the embeddings
//! service's and Qdrant's HTTP APIs, with faults set per API by flags or
//! at run time through `PUT /faults`, so demos and tests can stage
//! outages. Deterministic for a seed.
//!
//! | path | API |
//! |---|---|
//! | `POST /completion`, `POST /v1/chat/completions`, `GET /health` | llama.cpp server (`llm`) |
//! | `POST /v1/embeddings` | OpenAI-compatible embeddings (`embeddings`) |
//! | `POST /collections/{name}/points/search`, `GET /collections/{name}`, `GET /healthz`, `GET /readyz` | Qdrant (`qdrant`) |
//! | the same under `/llm`, `/embeddings`, `/qdrant` | one API each, with its own `/health` |
//! | `GET`/`PUT`/`DELETE /faults`, `GET /stats` | control (no faults) |

mod apis;
mod faults;
mod serve;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

pub use apis::parse_faults;
pub use faults::{Armed, Faults, Latency, MAX_DURATION, Verdict, Window, validate};
pub use serve::serve;

use crate::lock;
use crate::model::HashedModel;

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The LLM server.
    Llm,
    /// The embeddings service.
    Embeddings,
    /// The vector store.
    Qdrant,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 3] = [Target::Llm, Target::Embeddings, Target::Qdrant];

    /// Its name in `/faults` and `/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Llm => "llm",
            Target::Embeddings => "embeddings",
            Target::Qdrant => "qdrant",
        }
    }

    /// Whether `path` is a health endpoint of one of the APIs.
    pub fn is_health_path(path: &str) -> bool {
        matches!(
            path.rsplit('/').next(),
            Some("health" | "healthz" | "readyz")
        )
    }

    /// The API a path belongs to; `None` for the control paths.
    pub fn of_path(path: &str) -> Option<Target> {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "llm" | "completion" | "health" => Some(Target::Llm),
            "embeddings" => Some(Target::Embeddings),
            "v1" if path.starts_with("/v1/embeddings") => Some(Target::Embeddings),
            "v1" => Some(Target::Llm),
            "qdrant" | "collections" | "healthz" | "readyz" => Some(Target::Qdrant),
            _ => None,
        }
    }
}

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed of every draw.
    pub seed: u64,
    /// The faults set at start, by API.
    pub faults: BTreeMap<Target, Faults>,
    /// The vector store's one collection.
    pub collection: String,
}

/// The simulator's port when `PORT` is unset.
pub const DEFAULT_PORT: u16 = 8090;

impl SimConfig {
    /// The address and settings `env` gives: `BIND`, `PORT` (8090),
    /// `SIM_SEED` (1), `SIM_FAULTS` (JSON, as `PUT /faults` takes it) and
    /// `QDRANT_COLLECTION` (`documents`).
    pub fn from_env(
        env: &crate::env::Env,
    ) -> Result<(std::net::SocketAddr, SimConfig), crate::env::EnvError> {
        let listen = env.listen(DEFAULT_PORT)?;
        let seed = env.parse("SIM_SEED", 1u64)?;
        let faults = match env.get("SIM_FAULTS") {
            Some(text) => parse_faults(text.as_bytes()).map_err(|reason| crate::env::EnvError {
                name: "SIM_FAULTS",
                value: text.clone(),
                reason,
            })?,
            None => BTreeMap::new(),
        };
        let collection = env
            .get("QDRANT_COLLECTION")
            .unwrap_or_else(|| "documents".to_owned());
        Ok((
            listen,
            SimConfig {
                seed,
                faults,
                collection,
            },
        ))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            faults: BTreeMap::new(),
            collection: "documents".to_owned(),
        }
    }
}

/// Counts of what happened to one API's requests.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    loading: AtomicU64,
    resets: AtomicU64,
    hangs: AtomicU64,
    health_checks: AtomicU64,
}

/// What happened to one API's requests, as `GET /stats` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Requests that reached this API.
    pub requests: u64,
    /// Answered normally.
    pub answered: u64,
    /// Answered with an injected error.
    pub failed: u64,
    /// Answered 503 "loading".
    pub loading: u64,
    /// Closed without an answer.
    pub resets: u64,
    /// Left hanging.
    pub hangs: u64,
    /// Requests to the API's health endpoints (faults apply to them too,
    /// but they are counted here and not above, so the counts above are
    /// the work a client sent).
    pub health_checks: u64,
}

/// The simulator's state, shared by its handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    faults: Mutex<BTreeMap<Target, Armed>>,
    rng: Mutex<fastrand::Rng>,
    counters: [Counters; 3],
    collection: String,
    /// The corpus's vectors, made once.
    index: Vec<(i64, Vec<f32>)>,
}

impl Sim {
    /// A simulator as `config` says, its faults set from now.
    pub fn new(config: SimConfig) -> Sim {
        let index = crate::corpus::DOCUMENTS
            .iter()
            .map(|d| (d.id, HashedModel.embed(&format!("{} {}", d.title, d.body))))
            .collect();
        let faults = config
            .faults
            .into_iter()
            .map(|(t, f)| (t, Armed::now(f)))
            .collect();
        Sim {
            inner: Arc::new(Inner {
                faults: Mutex::new(faults),
                rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
                counters: Default::default(),
                collection: config.collection,
                index,
            }),
        }
    }

    /// Sets the faults of `target` from now (replacing what it had).
    pub fn set_faults(&self, target: Target, faults: Faults) {
        lock(&self.inner.faults).insert(target, Armed::now(faults));
    }

    /// Clears every fault.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// The faults set, by API.
    pub fn faults(&self) -> BTreeMap<Target, Faults> {
        lock(&self.inner.faults)
            .iter()
            .map(|(t, a)| (*t, a.faults.clone()))
            .collect()
    }

    /// What happened to `target`'s requests so far.
    pub fn stats(&self, target: Target) -> Stats {
        let c = &self.inner.counters[target as usize];
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            requests: get(&c.requests),
            answered: get(&c.answered),
            failed: get(&c.failed),
            loading: get(&c.loading),
            resets: get(&c.resets),
            hangs: get(&c.hangs),
            health_checks: get(&c.health_checks),
        }
    }

    /// Decides what happens to a request for `target` now, and counts it
    /// (as a health check when `health` is set).
    pub fn verdict(&self, target: Target, health: bool) -> Verdict {
        let now = tokio::time::Instant::now();
        let verdict = match lock(&self.inner.faults).get(&target) {
            Some(armed) => armed.verdict(now, &mut lock(&self.inner.rng)),
            None => Verdict::Answer {
                delay: std::time::Duration::ZERO,
            },
        };
        let c = &self.inner.counters[target as usize];
        if health {
            c.health_checks.fetch_add(1, Ordering::Relaxed);
            return verdict;
        }
        c.requests.fetch_add(1, Ordering::Relaxed);
        let counter = match verdict {
            Verdict::Answer { .. } => &c.answered,
            Verdict::Fail { .. } => &c.failed,
            Verdict::Loading(_) => &c.loading,
            Verdict::Reset => &c.resets,
            Verdict::Hang => &c.hangs,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn paths_find_their_api() {
        for (path, target) in [
            ("/completion", Some(Target::Llm)),
            ("/v1/chat/completions", Some(Target::Llm)),
            ("/health", Some(Target::Llm)),
            ("/v1/embeddings", Some(Target::Embeddings)),
            ("/embeddings/health", Some(Target::Embeddings)),
            ("/collections/documents/points/search", Some(Target::Qdrant)),
            ("/qdrant/readyz", Some(Target::Qdrant)),
            ("/llm/completion", Some(Target::Llm)),
            ("/faults", None),
            ("/stats", None),
        ] {
            assert_eq!(Target::of_path(path), target, "{path}");
        }
    }
}
