//! [`JournalConfig`]: how a journal writes, rotates and keeps its files.

use std::time::Duration;

use crate::error::ConfigError;

/// When an append is acknowledged, and when the journal calls `fdatasync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde-config", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde-config", serde(rename_all = "snake_case"))]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde-config", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde-config", serde(rename_all = "snake_case"))]
pub enum Overflow {
    /// Wait for space.
    #[default]
    Wait,
    /// Drop the event, count it (`buttress_journal_dropped_total`) and
    /// return [`AppendError::QueueFull`](crate::AppendError::QueueFull).
    Drop,
}

/// Gzip compression of sealed files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde-config", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde-config", serde(rename_all = "snake_case"))]
pub enum Compression {
    /// Sealed files stay as they are.
    #[default]
    None,
    /// Sealed files are gzipped, in a crash-safe order, off the write path.
    Gzip,
}

/// How a journal writes, rotates and keeps its files.
///
/// Every field has a default; [`validate`](JournalConfig::validate) (called
/// by `Journal::open`) rejects nonsense with a [`ConfigError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde-config", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde-config", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct JournalConfig {
    /// When appends are acknowledged. Default: group commit.
    pub durability: Durability,
    /// What an append does when the queue is full. Default: wait.
    pub overflow: Overflow,
    /// The most bytes of records queued or being written at once. Default:
    /// 8 MiB.
    pub queue_bytes: usize,
    /// The largest record (with its framing). Default: 1 MiB. Readers skip
    /// longer lines as corrupt without holding them in memory.
    pub max_record_bytes: usize,
    /// The most bytes one batch writes with one `write`. Default: 1 MiB.
    pub batch_bytes: usize,
    /// Start a new file before one would pass this size. Default: 64 MiB.
    pub rotate_bytes: Option<u64>,
    /// Start a new file when the active one is older than this (measured
    /// from when this process opened it). Default: none.
    #[cfg_attr(feature = "serde-config", serde(with = "humantime_serde"))]
    pub rotate_age: Option<Duration>,
    /// Keep at most this many files, the active one included. Default: none.
    pub keep_files: Option<usize>,
    /// Keep at most this many bytes of files, the active one included (it
    /// is never removed). Default: none.
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
    /// Sets [`durability`](JournalConfig::durability).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
    /// Sets [`overflow`](JournalConfig::overflow).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }
    /// Sets [`queue_bytes`](JournalConfig::queue_bytes).
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }
    /// Sets [`max_record_bytes`](JournalConfig::max_record_bytes).
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes;
        self
    }
    /// Sets [`batch_bytes`](JournalConfig::batch_bytes).
    pub fn batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }
    /// Sets [`rotate_bytes`](JournalConfig::rotate_bytes).
    pub fn rotate_bytes(mut self, bytes: Option<u64>) -> Self {
        self.rotate_bytes = bytes;
        self
    }
    /// Sets [`rotate_age`](JournalConfig::rotate_age).
    pub fn rotate_age(mut self, age: Option<Duration>) -> Self {
        self.rotate_age = age;
        self
    }
    /// Sets [`keep_files`](JournalConfig::keep_files).
    pub fn keep_files(mut self, files: Option<usize>) -> Self {
        self.keep_files = files;
        self
    }
    /// Sets [`keep_bytes`](JournalConfig::keep_bytes).
    pub fn keep_bytes(mut self, bytes: Option<u64>) -> Self {
        self.keep_bytes = bytes;
        self
    }
    /// Sets [`compression`](JournalConfig::compression).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Checks that the numbers make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let min = crate::record::OVERHEAD + 1;
        if self.max_record_bytes < min {
            return Err(ConfigError::new(format!(
                "max_record_bytes must be at least {min}, the smallest record"
            )));
        }
        if self.queue_bytes < self.max_record_bytes {
            return Err(ConfigError::new(
                "queue_bytes must hold at least one record of max_record_bytes",
            ));
        }
        if self.batch_bytes == 0 {
            return Err(ConfigError::new("batch_bytes must be above zero"));
        }
        if self.rotate_bytes == Some(0) {
            return Err(ConfigError::new("rotate_bytes must be above zero"));
        }
        if self.rotate_age == Some(Duration::ZERO) {
            return Err(ConfigError::new("rotate_age must be above zero"));
        }
        if self.keep_files == Some(0) {
            return Err(ConfigError::new(
                "keep_files must be at least 1: the active file is always kept",
            ));
        }
        Ok(())
    }
}
