//! Errors of the checkpoint store.

use std::io;
use std::path::PathBuf;

use crate::FrameError;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another writer (in this or another process) holds the store.
    #[error("checkpoint store {path} is locked by another writer")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The name is empty or holds anything but letters, digits, `-`, `_`.
    #[error("invalid checkpoint store name {0:?}: use letters, digits, '-' and '_'")]
    Name(String),
    /// `keep` was zero.
    #[error("keep must be at least 1")]
    Keep,
    /// A file operation failed.
    #[error("checkpoint store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The database refused (feature `postgres`).
    #[error("checkpoint store backend: {0}")]
    Backend(String),
}

/// Why a save was not acknowledged. The last acknowledged checkpoint is
/// intact after every one of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The state could not be encoded.
    #[error("state could not be encoded: {0}")]
    Encode(String),
    /// A step of the protocol failed; `step` names it (`create`, `write`,
    /// `fsync`, `rename`, `fsync directory`).
    #[error("checkpoint save failed at {step} of {path}: {source}")]
    Io {
        /// The step.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A newer checkpoint is already stored (another worker saved one):
    /// sequences never go backwards.
    #[error("a newer checkpoint ({current}) is already stored; refusing {attempted}")]
    Stale {
        /// The stored sequence.
        current: u64,
        /// The refused one.
        attempted: u64,
    },
    /// The store was opened read-only.
    #[error("checkpoint store is read-only")]
    ReadOnly,
    /// The state encodes, but does not decode back (for example a NaN,
    /// which JSON writes as `null`): storing it would make a checkpoint
    /// that can never be loaded, so it is refused.
    #[error("state does not decode back after encoding: {0}")]
    RoundTrip(String),
    /// Sequence numbers are used up (a generation is named `u64::MAX`).
    #[error("checkpoint sequence numbers are exhausted")]
    SequenceExhausted,
    /// The store could not tell the latest sequence.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The database refused (feature `postgres`).
    #[error("checkpoint store backend: {0}")]
    Backend(String),
    /// The blocking task doing the file work could not run (runtime
    /// shutting down).
    #[error("checkpoint task failed: {0}")]
    Task(String),
}

/// A generation `load` passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its sequence number.
    pub seq: u64,
    /// Where it is (a path, or a table row).
    pub location: String,
    /// What is wrong with it.
    pub reason: SkipReason,
}

/// Why a generation was passed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// Its bytes are damaged, foreign, or do not decode.
    #[error(transparent)]
    Corrupt(#[from] FrameError),
    /// It could not be read.
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// Why no state was loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Checkpoints exist but none is valid. Nothing was deleted; `skipped`
    /// says what is wrong with each.
    #[error("no valid checkpoint among {}: {}", skipped.len(), describe(skipped))]
    NoValid {
        /// Every generation, newest first, with its fault.
        skipped: Vec<Skipped>,
    },
    /// The store could not be listed.
    #[error("checkpoint store {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The database refused (feature `postgres`).
    #[error("checkpoint store backend: {0}")]
    Backend(String),
    /// The blocking task doing the file work could not run.
    #[error("checkpoint task failed: {0}")]
    Task(String),
}

fn describe(skipped: &[Skipped]) -> String {
    skipped
        .iter()
        .map(|s| format!("{} ({})", s.location, s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}
