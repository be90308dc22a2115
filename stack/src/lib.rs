//! The AI stack on buttress: the services of a small retrieval-augmented
//! stack, each held up by the workspace's crates through their public API.
//!
//! * [`knowledge`]: the knowledge API (`POST /query`), in front of an
//!   embeddings service, a vector store, an LLM server and PostgreSQL.
//! * [`embeddings`]: an OpenAI-compatible embeddings service whose model
//!   loads in the background.
//! * [`sim`]: upstream-sim, which speaks the LLM server's, the embeddings
//!   service's and Qdrant's APIs with scriptable faults.
//! * [`learner`]: the continuous learner, which reads the knowledge API's
//!   telemetry journal and stores each new query pattern once.
//! * [`chat`]: the chat backend, whose pipeline runs on the priority
//!   executor and answers the legacy way when it fails.
//! * [`outbox`]: the transactional outbox (the learner is its producer)
//!   and the relay that publishes it to NATS JetStream.
//! * [`journal_relay`]: ships a machine's telemetry journal to NATS
//!   JetStream, for learners on other machines.
//! * [`stack`]: all of them in one process, for `cargo run --bin stack`.
//!
//! The binaries in `src/bin` only read their settings ([`env`](mod@env)) and call
//! these.

pub mod chat;
pub mod client;
pub mod corpus;
pub mod demo;
pub mod embeddings;
pub mod env;
pub mod journal_relay;
pub mod knowledge;
pub mod learner;
pub mod model;
pub mod nats;
pub mod outbox;
pub mod pg;
pub mod serving;
pub mod sim;
pub mod stack;
pub mod wire;
mod worker;

/// Locks `m`; a poisoned lock (a panic while it was held) still holds
/// consistent data here (counters, maps written in one step), so it is used.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
