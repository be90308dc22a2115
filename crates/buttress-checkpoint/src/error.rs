//! Errors of the checkpoint store.
//!
//! Each error says what went wrong at its level; the cause (an
//! [`io::Error`], a [`CodecError`], a database error, tokio's
//! [`JoinError`](tokio::task::JoinError)) is not repeated in its `Display`
//! but returned, typed, by [`source`](std::error::Error::source).

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::{CodecError, FrameError};

/// A [`FileStoreConfig`](crate::FileStoreConfig) that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `keep` was zero.
    #[error("invalid checkpoint store config: keep must be at least 1")]
    Keep,
    /// `max_bytes` is below the size of the smallest checkpoint, so nothing
    /// could ever be loaded.
    #[error(
        "invalid checkpoint store config: max_bytes is {max_bytes}, it must be at least {min}, the size of an empty checkpoint"
    )]
    MaxBytes {
        /// The value given.
        max_bytes: u64,
        /// The smallest checkpoint: a header and an empty payload.
        min: u64,
    },
}

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
    /// The config was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file operation failed.
    #[error("could not open the checkpoint store in {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The database refused (feature `postgres`).
    #[error(transparent)]
    Backend(BackendError),
}

/// Why a save was not acknowledged. The last acknowledged checkpoint is
/// intact after every one of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The state could not be encoded.
    #[error("state could not be encoded")]
    Encode(#[source] CodecError),
    /// A step of the protocol failed; `step` names it (`create`, `write`,
    /// `fsync`, `rename`, `fsync directory`).
    #[error("checkpoint save failed at {step} of {path}")]
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
    #[error("state does not decode back after encoding")]
    RoundTrip(#[source] CodecError),
    /// Sequence numbers are used up (a generation is named `u64::MAX`).
    #[error("checkpoint sequence numbers are exhausted")]
    SequenceExhausted,
    /// The sequence is larger than the store can hold (a PostgreSQL
    /// `BIGINT` holds at most `i64::MAX`).
    #[error("sequence {seq} is larger than the store holds (at most {max})")]
    SequenceTooLarge {
        /// The refused sequence.
        seq: u64,
        /// The largest the store holds.
        max: u64,
    },
    /// The store could not tell the latest sequence.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The database refused (feature `postgres`).
    #[error(transparent)]
    Backend(BackendError),
    /// The blocking task doing the file work did not finish (the runtime
    /// is shutting down, or the task panicked).
    #[error("the checkpoint's blocking task did not finish")]
    Task(#[source] tokio::task::JoinError),
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
    #[error(transparent)]
    Unreadable(#[from] ReadError),
}

/// Why the bytes of a stored generation could not be read (what a
/// [`Store`](crate::Store) puts in [`Candidate::bytes`](crate::Candidate::bytes)).
///
/// Cheap to clone; two are equal when they are the same variant with the
/// same values (for [`Io`](ReadError::Io): the same kind and text).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReadError {
    /// Reading failed.
    Io(Arc<io::Error>),
    /// It is not a regular file (a directory, a FIFO, a device): reading
    /// it could block or never end.
    NotAFile,
    /// It is larger than [`max_bytes`](crate::FileStoreConfig::max_bytes),
    /// and was not read.
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max_bytes: u64,
    },
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(Arc::new(e))
    }
}

// By hand: `source` returns the `io::Error` itself, not the `Arc`.
impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(_) => f.write_str("could not be read"),
            ReadError::NotAFile => f.write_str("not a regular file"),
            ReadError::TooLarge { len, max_bytes } => {
                write!(f, "{len} bytes, more than max_bytes ({max_bytes})")
            }
        }
    }
}

impl Error for ReadError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(&**e),
            _ => None,
        }
    }
}

impl PartialEq for ReadError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ReadError::Io(a), ReadError::Io(b)) => {
                a.kind() == b.kind() && a.to_string() == b.to_string()
            }
            (ReadError::NotAFile, ReadError::NotAFile) => true,
            (
                ReadError::TooLarge { len, max_bytes },
                ReadError::TooLarge {
                    len: l,
                    max_bytes: m,
                },
            ) => (len, max_bytes) == (l, m),
            _ => false,
        }
    }
}

impl Eq for ReadError {}

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
    #[error("could not list the checkpoint store in {path}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Every listed generation was removed before it could be read, again
    /// and again (a writer pruning faster than this reader reads).
    #[error("checkpoints in {path} kept vanishing while being read")]
    Vanishing {
        /// The directory.
        path: PathBuf,
    },
    /// The database refused (feature `postgres`).
    #[error(transparent)]
    Backend(BackendError),
    /// The blocking task doing the file work did not finish (the runtime
    /// is shutting down, or the task panicked).
    #[error("the checkpoint's blocking task did not finish")]
    Task(#[source] tokio::task::JoinError),
}

/// `NoValid` has no single source: it lists every generation with its
/// whole chain of causes.
fn describe(skipped: &[Skipped]) -> String {
    skipped
        .iter()
        .map(|s| format!("{} ({})", s.location, chain(&s.reason)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An error and its sources, joined by `": "`.
pub(crate) fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

/// What a database behind a [`Store`](crate::Store) reported: what the
/// store was doing, with the database's own error as the
/// [`source`](Error::source).
///
/// For `PgStore` (feature `postgres`) the source is a
/// `tokio_postgres::Error`; `postgres()` and `code()` (the SQLSTATE, both
/// with the feature) reach it. Stores of your own make one with
/// [`new`](BackendError::new).
///
/// ```
/// use std::error::Error;
/// use buttress_checkpoint::{BackendError, LoadError};
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
/// let err = LoadError::Backend(BackendError::new("could not read the checkpoint key", io));
/// assert_eq!(err.to_string(), "could not read the checkpoint key");
/// assert!(err.source().unwrap().is::<std::io::Error>());
/// ```
pub struct BackendError {
    context: Cow<'static, str>,
    source: Box<dyn Error + Send + Sync>,
}

impl BackendError {
    /// What the store was doing (`"could not read the checkpoint row"`),
    /// and the database's error.
    ///
    /// ```
    /// use buttress_checkpoint::{BackendError, SaveError};
    ///
    /// let err = SaveError::Backend(BackendError::new("could not store the checkpoint", "quota exceeded"));
    /// assert_eq!(err.to_string(), "could not store the checkpoint");
    /// ```
    pub fn new(
        context: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        BackendError {
            context: context.into(),
            source: source.into(),
        }
    }

    /// The database's error, if it is an `E`.
    ///
    /// ```
    /// use buttress_checkpoint::BackendError;
    ///
    /// let err = BackendError::new("could not connect", std::io::Error::other("refused"));
    /// assert!(err.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }

    /// The PostgreSQL client's error, when the backend is PostgreSQL.
    ///
    /// ```no_run
    /// use buttress_checkpoint::{OpenError, PgStore};
    ///
    /// # async fn run() {
    /// match PgStore::connect("postgres://postgres@127.0.0.1/test", "checkpoints", "learner").await {
    ///     Err(OpenError::Backend(e)) => {
    ///         let client_error = e.postgres().expect("PgStore errors hold one");
    ///         eprintln!("is closed: {}", client_error.is_closed());
    ///     }
    ///     _ => {}
    /// }
    /// # }
    /// ```
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Option<&tokio_postgres::Error> {
        self.downcast_ref::<tokio_postgres::Error>()
    }

    /// The SQLSTATE of the PostgreSQL error, when the database answered
    /// with one (not for a connection that failed or closed).
    ///
    /// ```no_run
    /// use buttress_checkpoint::{OpenError, PgStore};
    /// use tokio_postgres::error::SqlState;
    ///
    /// # async fn run() {
    /// match PgStore::connect("postgres://reader@127.0.0.1/test", "checkpoints", "learner").await {
    ///     Err(OpenError::Backend(e)) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
    ///         eprintln!("the role may not create the table");
    ///     }
    ///     _ => {}
    /// }
    /// # }
    /// ```
    #[cfg(feature = "postgres")]
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.postgres().and_then(tokio_postgres::Error::code)
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendError")
            .field("context", &self.context)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

// By hand: `source` returns the database's error itself, not the `Box`.
impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}
