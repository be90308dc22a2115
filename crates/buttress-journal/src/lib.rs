//! A locked, append-only telemetry journal: JSON lines that many threads and
//! many processes append to at once, that no crash can tear into garbage,
//! and that a consumer reads from a saved cursor.
//!
//! * **Format**: one record per line, `{"crc32c":"…","event":…}`, the
//!   checksum covering the event's bytes. Ordinary JSON-lines tools read it
//!   (`jq .event`); readers skip and count torn, zero-filled and bit-flipped
//!   records.
//! * **Writing**: [`Journal`] serializes on the caller's thread and queues
//!   the record (bounded; wait or drop when full). One writer thread per
//!   journal writes each batch with one `write` on an `O_APPEND` handle
//!   under the file's `flock`, sealing a torn tail first.
//! * **Durability**: [`Durability::Buffered`], [`Durability::GroupCommit`]
//!   (one `fdatasync` per batch, an append acknowledged only after it), or
//!   [`Durability::SyncEach`]. A failed sync is final: nothing after it is
//!   acknowledged.
//! * **Files**: `name.0000000001.jsonl`, `name.0000000002.jsonl`, …; the
//!   highest id is active. Rotation by size or age, retention by count or
//!   bytes, gzip of sealed files in a crash-safe order.
//! * **Reading**: [`JournalReader`] from a [`Cursor`] (file id and offset),
//!   across rotated and compressed files, with the bytes still unread for
//!   backpressure.
//! * **Tower**: [`JournalLayer`] records one event per request.
//! * **Configuration**: [`JournalConfig`], from `Default` with chainable
//!   setters, validated into a [`ConfigError`]; with the `serde` feature it
//!   loads from a file, durations as `"15m"` and sizes as `"64MiB"`.
//! * **Errors**: each says what failed at its level and keeps the cause (an
//!   `io::Error`, a `serde_json::Error`) typed behind `source()`.
//!
//! All file access goes through [`buttress_fs`], so every crash is
//! testable. See the [`guide`] for the guarantees and their limits.
//!
//! # Example
//!
//! ```
//! use buttress_journal::{Cursor, Durability, Journal, JournalConfig, JournalReader};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Query { text: String, ms: u32 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("journal-doc-{}", std::process::id()));
//! let config = JournalConfig::default().durability(Durability::GroupCommit);
//! let journal = Journal::open(&dir, "queries", config)?;
//! journal.append_blocking(&Query { text: "hello".into(), ms: 12 })?; // durable now
//!
//! let mut reader = JournalReader::open(&dir, "queries")?;
//! let record = reader.next_record::<Query>()?.expect("one record");
//! assert_eq!(record.event, Query { text: "hello".into(), ms: 12 });
//! assert!(reader.next_record::<Query>()?.is_none());
//! # journal.close()?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}
mod config;
pub mod error;
mod journal;
mod layer;
mod layout;
mod maintenance;
mod metrics;
mod queue;
mod reader;
mod record;
mod writer;

pub use config::{Compression, Durability, JournalConfig, Overflow};
pub use error::{AppendError, ConfigError, OpenError, ReadError};
pub use journal::{Journal, Receipt};
pub use layer::{FnEvents, JournalLayer, JournalService, RecordEvents, events, future};
pub use reader::{Cursor, JournalReader, ReadStats, Record};

#[doc(hidden)]
pub mod __fuzz {
    //! Entry points for the fuzz targets; not a public API.

    /// Runs the record decoder and its resynchronization on `line`.
    pub fn decode_line(line: &[u8]) -> Option<usize> {
        crate::record::decode(line)
            .map(<[u8]>::len)
            .or_else(|| crate::record::resync(line).map(|(at, _)| at))
    }
}

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
