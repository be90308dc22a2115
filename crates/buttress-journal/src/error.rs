//! Errors of the journal.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A [`JournalConfig`](crate::JournalConfig) that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid journal config: {reason}")]
pub struct ConfigError {
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        ConfigError {
            reason: reason.into(),
        }
    }
}

/// Why a journal could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The config was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The name is empty or holds a path separator or a dot-dot.
    #[error("invalid journal name {0:?}: use letters, digits, '-' and '_'")]
    Name(String),
    /// A file operation failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("could not start the journal's writer thread: {0}")]
    Thread(io::Error),
}

/// Why an append was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The queue was full and the overflow policy is
    /// [`Overflow::Drop`](crate::Overflow::Drop). The event was dropped and
    /// counted.
    #[error("journal queue full ({queued_bytes} bytes queued); event dropped")]
    QueueFull {
        /// Bytes queued when the event was dropped.
        queued_bytes: usize,
    },
    /// The record is larger than `max_record_bytes`.
    #[error("record of {bytes} bytes is larger than max_record_bytes ({max})")]
    TooLarge {
        /// The record's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The event could not be serialized.
    #[error("event could not be serialized: {0}")]
    Serialize(Arc<serde_json::Error>),
    /// Writing or syncing failed. The journal stops acknowledging from the
    /// first failed record on: open it again to go on (recovery seals what
    /// was torn).
    #[error("journal failed: {0}")]
    Failed(Arc<io::Error>),
    /// The journal was closed.
    #[error("journal closed")]
    Closed,
}

/// Why reading failed. Corrupt records are not errors: they are skipped
/// and counted in [`ReadStats`](crate::ReadStats).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A file operation failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A record was valid but its event did not deserialize into the asked
    /// type. The cursor has moved past it.
    #[error("record at {cursor} does not decode as the asked type: {source}")]
    Decode {
        /// Where the record ends.
        cursor: crate::Cursor,
        /// The failure.
        source: serde_json::Error,
    },
}

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ReadError {
    let path = path.into();
    move |source| ReadError::Io { path, source }
}
