//! One journal record per answered query: what the learner reads.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use buttress::journal::{Compression, Durability, Journal, JournalConfig, OpenError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The journal's name: files are `queries.<id>.jsonl`.
pub const JOURNAL_NAME: &str = "queries";

/// One query, as the journal keeps it. The question itself is not kept,
/// only its hash: telemetry must not hold what users typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// When it was answered, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The request id the client saw.
    pub request_id: String,
    /// SHA-256 of the normalised question, in hex.
    pub question_sha256: String,
    /// How long the answer took, in milliseconds.
    pub latency_ms: u64,
    /// The dependencies that answered (`embeddings`, `embedding_cache`,
    /// `vector_store`, `keyword_search`, `documents`, `llm`).
    pub answered_by: Vec<String>,
    /// What was degraded (`cached embedding`, `no vector search`,
    /// `no generated answer`).
    pub degraded: Vec<String>,
    /// How many passages the answer cites.
    pub passages: usize,
}

/// The journal in `dir`, each append acknowledged once it is on disk
/// (group commit), so an answered query's record survives a `kill -9`;
/// files of 64 MB, gzipped once sealed, at most `keep_bytes` of them kept.
pub(super) fn open(dir: &Path, keep_bytes: u64) -> Result<Journal, OpenError> {
    let config = JournalConfig::default()
        .durability(Durability::GroupCommit)
        .rotate_bytes(Some(64 << 20))
        .compression(Compression::Gzip)
        .keep_bytes(Some(keep_bytes));
    Journal::open(dir, JOURNAL_NAME, config)
}

/// The question as hashed: trimmed, lower-cased, runs of white space as
/// one space.
pub(super) fn normalise(question: &str) -> String {
    question
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// SHA-256 of the normalised question, in hex.
pub fn question_hash(question: &str) -> String {
    let digest = Sha256::digest(normalise(question).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_question_same_hash() {
        assert_eq!(
            question_hash("  What is a  Breaker? "),
            question_hash("what is a breaker?")
        );
        assert_ne!(question_hash("a"), question_hash("b"));
        assert_eq!(question_hash("").len(), 64);
    }
}
