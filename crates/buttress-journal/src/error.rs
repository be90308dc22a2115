//! Errors of the journal.
//!
//! Each error says what went wrong at its level; the cause (an
//! [`io::Error`], a [`serde_json::Error`]) is not repeated in its
//! `Display` but returned, typed, by [`source`](std::error::Error::source).

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A [`JournalConfig`](crate::JournalConfig) that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_record_bytes` cannot hold the smallest record.
    #[error(
        "invalid journal config: max_record_bytes is {max_record_bytes}, it must be at least {min}, the smallest record"
    )]
    RecordTooSmall {
        /// The value given.
        max_record_bytes: usize,
        /// The smallest record, with its framing.
        min: usize,
    },
    /// `queue_bytes` cannot hold one record of `max_record_bytes`.
    #[error(
        "invalid journal config: queue_bytes ({queue_bytes}) must hold at least one record of max_record_bytes ({max_record_bytes})"
    )]
    QueueTooSmall {
        /// The value given.
        queue_bytes: usize,
        /// The largest record.
        max_record_bytes: usize,
    },
    /// A size or duration that must be above zero is zero.
    #[error("invalid journal config: {field} must be above zero")]
    Zero {
        /// The field (`batch_bytes`, `rotate_bytes`, `rotate_age`).
        field: &'static str,
    },
    /// `keep_files` is zero.
    #[error(
        "invalid journal config: keep_files must be at least 1: the active file is always kept"
    )]
    KeepFiles,
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
    #[error("could not open the journal in {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The writer or maintenance thread could not be started.
    #[error("could not start the journal's threads")]
    Thread(#[source] io::Error),
}

/// Why an append was not acknowledged.
///
/// [`Serialize`](AppendError::Serialize) and [`Failed`](AppendError::Failed)
/// share their cause between every append they fail (hence the `Arc`);
/// [`source`](std::error::Error::source) returns the cause itself, so it
/// downcasts to [`serde_json::Error`] or [`io::Error`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AppendError {
    /// The queue was full and the overflow policy is
    /// [`Overflow::Drop`](crate::Overflow::Drop). The event was dropped and
    /// counted.
    QueueFull {
        /// Bytes queued when the event was dropped.
        queued_bytes: usize,
    },
    /// The record is larger than `max_record_bytes`.
    TooLarge {
        /// The record's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The event could not be serialized.
    Serialize(Arc<serde_json::Error>),
    /// Writing or syncing failed. The journal stops acknowledging from the
    /// first failed record on: open it again to go on (recovery seals what
    /// was torn).
    Failed(Arc<io::Error>),
    /// The journal was closed.
    Closed,
}

// By hand rather than with thiserror: `source` must return the error inside
// the `Arc`, not the `Arc`, for callers to downcast it.
impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::QueueFull { queued_bytes } => write!(
                f,
                "journal queue full ({queued_bytes} bytes queued); event dropped"
            ),
            AppendError::TooLarge { bytes, max } => write!(
                f,
                "record of {bytes} bytes is larger than max_record_bytes ({max})"
            ),
            AppendError::Serialize(_) => f.write_str("event could not be serialized"),
            AppendError::Failed(_) => {
                f.write_str("journal write or sync failed; no later append is acknowledged")
            }
            AppendError::Closed => f.write_str("journal closed"),
        }
    }
}

impl Error for AppendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AppendError::Serialize(e) => Some(&**e),
            AppendError::Failed(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Why reading failed. Corrupt records are not errors: they are skipped
/// and counted in [`ReadStats`](crate::ReadStats).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A file operation failed.
    #[error("could not read journal {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A record was valid but its event did not deserialize into the asked
    /// type. The cursor has moved past it.
    #[error("record at {cursor} does not decode as the asked type")]
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
