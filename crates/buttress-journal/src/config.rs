//! [`JournalConfig`]: how a journal writes, rotates and keeps its files.

use std::time::Duration;

use crate::error::ConfigError;

/// When an append is acknowledged, and when the journal calls `fdatasync`.
///
/// In a configuration file: `"buffered"`, `"group_commit"` or
/// `"sync_each"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Durability {
    /// No fsync: an append is acknowledged once queued, and written soon
    /// after. What was written survives `kill -9` of the process, not a
    /// power loss.
    Buffered,
    /// The writer takes everything queued, writes it with one `write`, calls
    /// `fdatasync` once, and only then acknowledges the whole batch. Many
    /// producers share each sync.
    #[default]
    GroupCommit,
    /// One `write` and one `fdatasync` per record, in order.
    SyncEach,
}

/// What an append does when the queue to the writer is full.
///
/// In a configuration file: `"wait"` or `"drop"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for space.
    #[default]
    Wait,
    /// Drop the event, count it (`buttress_journal_dropped_total`) and
    /// return [`AppendError::QueueFull`](crate::AppendError::QueueFull).
    Drop,
}

/// Gzip compression of sealed files.
///
/// In a configuration file: `"none"` or `"gzip"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Compression {
    /// Sealed files stay as they are.
    #[default]
    None,
    /// Sealed files are gzipped, in a crash-safe order, off the write path.
    Gzip,
}

/// How a journal writes, rotates and keeps its files.
///
/// Every field has a default; build one from [`Default`] with the
/// chainable setters. [`validate`](JournalConfig::validate) (called by
/// [`Journal::open`](crate::Journal::open)) rejects nonsense with a
/// [`ConfigError`].
///
/// ```
/// use std::time::Duration;
/// use buttress_journal::{Compression, Durability, JournalConfig};
///
/// let config = JournalConfig::default()
///     .durability(Durability::GroupCommit)
///     .rotate_bytes(Some(64 << 20))
///     .rotate_age(Some(Duration::from_secs(15 * 60)))
///     .keep_bytes(Some(1 << 30))
///     .compression(Compression::Gzip);
/// assert!(config.validate().is_ok());
/// assert!(JournalConfig::default().keep_files(Some(0)).validate().is_err());
/// ```
///
/// Under the `serde` feature it loads from a configuration file: every
/// field is optional, unknown fields are refused, durations are written
/// like `"15m"` and byte counts like `"64MiB"`, `"1GB"` or a plain number.
/// Deserializing checks the form; [`validate`](JournalConfig::validate)
/// (or opening the journal) checks that the values make sense together.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use buttress_journal::{Durability, JournalConfig};
///
/// let config: JournalConfig = serde_json::from_str(r#"{
///     "durability": "sync_each",
///     "queue_bytes": "16MiB",
///     "rotate_bytes": "100MB",
///     "rotate_age": "15m",
///     "keep_bytes": "2GiB"
/// }"#).unwrap();
/// assert_eq!(config.durability, Durability::SyncEach);
/// assert_eq!(config.queue_bytes, 16 << 20);
/// assert_eq!(config.rotate_bytes, Some(100_000_000));
/// assert_eq!(config.rotate_age, Some(Duration::from_secs(900)));
/// assert_eq!(config.keep_bytes, Some(2 << 30));
/// config.validate().unwrap();
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct JournalConfig {
    /// When appends are acknowledged. Default: group commit.
    pub durability: Durability,
    /// What an append does when the queue is full. Default: wait.
    pub overflow: Overflow,
    /// The most bytes of records queued or being written at once. Default:
    /// 8 MiB.
    #[cfg_attr(feature = "serde", serde(with = "usize_size"))]
    pub queue_bytes: usize,
    /// The largest record (with its framing). Default: 1 MiB. Readers skip
    /// longer lines as corrupt without holding them in memory.
    #[cfg_attr(feature = "serde", serde(with = "usize_size"))]
    pub max_record_bytes: usize,
    /// The most bytes one batch writes with one `write`. Default: 1 MiB.
    #[cfg_attr(feature = "serde", serde(with = "usize_size"))]
    pub batch_bytes: usize,
    /// Start a new file before one would pass this size. Default: 64 MiB.
    #[cfg_attr(feature = "serde", serde(with = "buttress_core::human::option_size"))]
    pub rotate_bytes: Option<u64>,
    /// Start a new file when the active one is older than this (measured
    /// from when this process opened it). Default: none.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub rotate_age: Option<Duration>,
    /// Keep at most this many files, the active one included. Default: none.
    pub keep_files: Option<usize>,
    /// Keep at most this many bytes of files, the active one included (it
    /// is never removed). Default: none.
    #[cfg_attr(feature = "serde", serde(with = "buttress_core::human::option_size"))]
    pub keep_bytes: Option<u64>,
    /// Compress sealed files. Default: none.
    pub compression: Compression,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            durability: Durability::default(),
            overflow: Overflow::default(),
            queue_bytes: 8 << 20,
            max_record_bytes: 1 << 20,
            batch_bytes: 1 << 20,
            rotate_bytes: Some(64 << 20),
            rotate_age: None,
            keep_files: None,
            keep_bytes: None,
            compression: Compression::None,
        }
    }
}

impl JournalConfig {
    buttress_core::setters! {
        /// Sets [`durability`](JournalConfig::durability).
        ///
        /// ```
        /// use buttress_journal::{Durability, JournalConfig};
        ///
        /// let config = JournalConfig::default().durability(Durability::SyncEach);
        /// assert_eq!(config.durability, Durability::SyncEach);
        /// ```
        durability: Durability,
        /// Sets [`overflow`](JournalConfig::overflow).
        ///
        /// ```
        /// use buttress_journal::{JournalConfig, Overflow};
        ///
        /// let config = JournalConfig::default().overflow(Overflow::Drop);
        /// assert_eq!(config.overflow, Overflow::Drop);
        /// ```
        overflow: Overflow,
        /// Sets [`queue_bytes`](JournalConfig::queue_bytes).
        ///
        /// ```
        /// use buttress_journal::JournalConfig;
        ///
        /// let config = JournalConfig::default().queue_bytes(32 << 20);
        /// assert_eq!(config.queue_bytes, 32 << 20);
        /// ```
        queue_bytes: usize,
        /// Sets [`max_record_bytes`](JournalConfig::max_record_bytes).
        ///
        /// ```
        /// use buttress_journal::JournalConfig;
        ///
        /// let config = JournalConfig::default().max_record_bytes(64 << 10);
        /// assert_eq!(config.max_record_bytes, 64 << 10);
        /// ```
        max_record_bytes: usize,
        /// Sets [`batch_bytes`](JournalConfig::batch_bytes).
        ///
        /// ```
        /// use buttress_journal::JournalConfig;
        ///
        /// let config = JournalConfig::default().batch_bytes(256 << 10);
        /// assert_eq!(config.batch_bytes, 256 << 10);
        /// ```
        batch_bytes: usize,
        /// Sets [`rotate_bytes`](JournalConfig::rotate_bytes); `None` never
        /// rotates by size.
        ///
        /// ```
        /// use buttress_journal::JournalConfig;
        ///
        /// let config = JournalConfig::default().rotate_bytes(Some(16 << 20));
        /// assert_eq!(config.rotate_bytes, Some(16 << 20));
        /// ```
        rotate_bytes: into Option<u64>,
        /// Sets [`rotate_age`](JournalConfig::rotate_age); `None` never rotates
        /// by age.
        ///
        /// ```
        /// use std::time::Duration;
        /// use buttress_journal::JournalConfig;
        ///
        /// let config = JournalConfig::default().rotate_age(Some(Duration::from_secs(3600)));
        /// assert_eq!(config.rotate_age, Some(Duration::from_secs(3600)));
        /// ```
        rotate_age: into Option<Duration>,
        /// Sets [`keep_files`](JournalConfig::keep_files); `None` keeps every
        /// file.
        ///
        /// ```
        /// use buttress_journal::JournalConfig;
        ///
        /// let config = JournalConfig::default().keep_files(Some(10));
        /// assert_eq!(config.keep_files, Some(10));
        /// ```
        keep_files: into Option<usize>,
        /// Sets [`keep_bytes`](JournalConfig::keep_bytes); `None` keeps every
        /// byte.
        ///
        /// ```
        /// use buttress_journal::JournalConfig;
        ///
        /// let config = JournalConfig::default().keep_bytes(Some(1 << 30));
        /// assert_eq!(config.keep_bytes, Some(1 << 30));
        /// ```
        keep_bytes: into Option<u64>,
        /// Sets [`compression`](JournalConfig::compression).
        ///
        /// ```
        /// use buttress_journal::{Compression, JournalConfig};
        ///
        /// let config = JournalConfig::default().compression(Compression::Gzip);
        /// assert_eq!(config.compression, Compression::Gzip);
        /// ```
        compression: Compression,
    }

    /// Checks that the numbers make sense together; the first problem
    /// found is returned.
    ///
    /// ```
    /// use buttress_journal::{ConfigError, JournalConfig};
    ///
    /// assert_eq!(JournalConfig::default().validate(), Ok(()));
    /// assert_eq!(
    ///     JournalConfig::default().batch_bytes(0).validate(),
    ///     Err(ConfigError::Zero { field: "batch_bytes" }),
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let min = crate::record::OVERHEAD + 1;
        if self.max_record_bytes < min {
            return Err(ConfigError::RecordTooSmall {
                max_record_bytes: self.max_record_bytes,
                min,
            });
        }
        if self.queue_bytes < self.max_record_bytes {
            return Err(ConfigError::QueueTooSmall {
                queue_bytes: self.queue_bytes,
                max_record_bytes: self.max_record_bytes,
            });
        }
        if self.batch_bytes == 0 {
            return Err(ConfigError::Zero {
                field: "batch_bytes",
            });
        }
        if self.rotate_bytes == Some(0) {
            return Err(ConfigError::Zero {
                field: "rotate_bytes",
            });
        }
        if self.rotate_age == Some(Duration::ZERO) {
            return Err(ConfigError::Zero {
                field: "rotate_age",
            });
        }
        if self.keep_files == Some(0) {
            return Err(ConfigError::KeepFiles);
        }
        Ok(())
    }
}

/// `buttress_core::human::size` for the `usize` fields.
#[cfg(feature = "serde")]
mod usize_size {
    use serde::{Deserializer, Serializer, de::Error as _};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let bytes = buttress_core::human::size::deserialize(d)?;
        usize::try_from(bytes).map_err(|_| {
            D::Error::custom(format_args!(
                "size {bytes} is too large for this platform's usize"
            ))
        })
    }

    pub(super) fn serialize<S: Serializer>(v: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v as u64)
    }
}
