//! The documents the stack answers from: a small built-in corpus about
//! running services through outages. The knowledge API loads them into
//! PostgreSQL (or keeps them in memory), and the upstream simulator's
//! vector store indexes the same ones, so search results agree.

use serde::Serialize;

/// One document.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Document {
    /// Its id, the same in the database and the vector store.
    pub id: i64,
    /// A short title.
    pub title: &'static str,
    /// The passage itself.
    pub body: &'static str,
}

/// The built-in corpus.
pub const DOCUMENTS: &[Document] = &[
    doc(
        1,
        "Circuit breakers",
        "A circuit breaker counts the failures of a dependency and opens after a threshold, refusing calls at once instead of waiting on a dependency that is down. After its open period it goes half-open and lets a single probe through: one success closes it, one failure opens it again.",
    ),
    doc(
        2,
        "Half-open probes",
        "In the half-open state a breaker admits only as many calls as it has permits, usually one. Letting every call through in half-open turns a recovering dependency into a thundering herd.",
    ),
    doc(
        3,
        "Retry budgets",
        "Retries multiply load during an outage. A retry budget allows retries only up to a fraction of the calls, such as ten percent, so that a failing dependency sees at most a little more traffic than usual, never three times as much.",
    ),
    doc(
        4,
        "Exponential backoff with jitter",
        "Between attempts a client waits an exponentially growing delay with random jitter, so that clients that failed together do not retry together. A deadline bounds the whole call, retries included.",
    ),
    doc(
        5,
        "Rate limiting with GCRA",
        "The generic cell rate algorithm keeps one timestamp per limit, the theoretical arrival time, and admits a request when it is not too far ahead of now. It is a token bucket without a refill task.",
    ),
    doc(
        6,
        "Per-client limits",
        "A public API limits each client IP separately, for example 150 requests a minute, and exempts localhost. Behind a proxy the client address comes from Forwarded or X-Forwarded-For, trusted only from known proxies.",
    ),
    doc(
        7,
        "Telemetry journals",
        "A telemetry journal appends one JSON line per event under a file lock, so two writers never interleave bytes and a killed process leaves at most a torn last line, which the reader skips.",
    ),
    doc(
        8,
        "Atomic checkpoints",
        "A checkpoint is written to a temporary file, synced, renamed over the old one, and the directory synced, so that after a power loss the old or the new checkpoint is there, never a mix or nothing.",
    ),
    doc(
        9,
        "Backpressure with watermarks",
        "A consumer pauses reading when its backlog passes a high watermark, such as 100 MB, and resumes only below a low watermark, such as 50 MB. The gap between them keeps it from flapping.",
    ),
    doc(
        10,
        "Priority executors",
        "A bounded priority executor runs at most a fixed number of tasks at once, queues the rest by priority, keeps tasks of equal priority in arrival order, and refuses work when the queue is full instead of growing without bound.",
    ),
    doc(
        11,
        "Health and readiness",
        "Liveness says the process runs; readiness says it can serve. A service is unhealthy when a critical dependency such as its database is down, and degraded when only an optional one such as a cache is.",
    ),
    doc(
        12,
        "Degraded answers",
        "When a dependency fails, a service can still answer with less: keyword search instead of vector search, cached embeddings, or the retrieved passages without a generated answer, marked as degraded so the client knows.",
    ),
    doc(
        13,
        "Graceful shutdown",
        "On SIGTERM a service stops taking new requests, finishes those in flight, drains its queues and flushes its journals within a grace period; a second signal ends it at once.",
    ),
    doc(
        14,
        "Timeouts",
        "Every call to a dependency needs a timeout: thirty seconds for a language model, five seconds for a database or an embeddings service. A call without a timeout can hold a connection forever.",
    ),
    doc(
        15,
        "Connection pools",
        "A database pool caps its connections, recycles each after a maximum lifetime such as one hour, and gives up acquiring one after a timeout. Server-side statement and idle-in-transaction timeouts stop runaway queries.",
    ),
    doc(
        16,
        "Vector search",
        "A vector store such as Qdrant finds the documents whose embeddings are closest to the question's embedding by cosine similarity. Without it, full-text keyword search in PostgreSQL still finds documents that share words with the question.",
    ),
];

const fn doc(id: i64, title: &'static str, body: &'static str) -> Document {
    Document { id, title, body }
}

/// The document with `id`.
pub fn by_id(id: i64) -> Option<&'static Document> {
    DOCUMENTS.iter().find(|d| d.id == id)
}
