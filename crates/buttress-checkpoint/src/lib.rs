//! An atomic checkpoint store: the last state of a stream consumer, saved
//! so that it survives `kill -9` and power loss, and loaded back after
//! either.
//!
//! * [`FileStore`]: checkpoints as files, each save a new generation
//!   written through the full atomic-replace sequence (exclusive temp file,
//!   header with a CRC32C, `fsync`, rename, directory `fsync`), the last K
//!   kept, one writer per store across processes.
//! * [`load`] returns the newest valid generation and reports the damaged
//!   ones it passed over; every kind of damage is a typed [`FrameError`],
//!   never a panic, and nothing is ever deleted because it failed to load.
//! * [`save`] and [`load`] are async (the file work runs on tokio's
//!   blocking pool); [`FileStore::save_blocking`] and
//!   [`FileStore::load_blocking`] do the same on the calling thread, with
//!   no runtime, as the journal's `append`/`append_blocking` do.
//! * [`Checkpointer`]: save every N events and/or every T, and on shutdown;
//!   resume after a restart. With the journal's
//!   [`Cursor`](https://docs.rs/buttress-journal) in the state, a consumer
//!   processes every event at least once and redoes at most the events
//!   since its last save.
//! * `PgStore` (feature `postgres`): the same [`Store`] on a PostgreSQL
//!   table, refusing to go backwards, for workers that move between
//!   machines. Async only.
//! * Configuration ([`FileStoreConfig`], [`Policy`]) is built from
//!   `Default` with chainable setters and validated into a
//!   [`ConfigError`]; with the `serde` feature it loads from a file,
//!   durations as `"60s"` and sizes as `"64MiB"`.
//! * Errors say what failed at their level and keep the cause typed behind
//!   `source()`: the codec's error in a [`CodecError`] (serde_json's or
//!   postcard's, downcastable), the `io::Error`, tokio's `JoinError`, the
//!   database's error in a [`BackendError`] (with its SQLSTATE).
//!
//! All file access goes through [`buttress_fs`], so every crash is
//! testable. See the [`guide`] for the protocol step by step.
//!
//! # The format
//!
//! A 36-byte header (magic `BTRSCKPT`, format version, codec id, sequence
//! number, payload length, CRC32C of the header and the payload), then the
//! payload, encoded by a [`Codec`]: [`Json`] by default, [`Binary`]
//! (postcard) when size or speed matter.
//!
//! # Example
//!
//! ```
//! use buttress_checkpoint::{FileStore, FileStoreConfig, Json, load, save};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("ckpt-lib-doc-{}", std::process::id()));
//! let store = FileStore::open(&dir, "model", FileStoreConfig::default().keep(3))?;
//! save(&store, &Json, 1, &vec![0.5f64, 0.25]).await?; // durable when it returns
//! let loaded = load::<_, _, Vec<f64>>(&store, &Json).await?.expect("one checkpoint");
//! assert_eq!((loaded.seq, loaded.state), (1, vec![0.5, 0.25]));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../guide.md")]
pub mod guide {}
mod checkpointer;
mod codec;
pub mod error;
mod file;
mod frame;
#[cfg(feature = "postgres")]
mod postgres;
mod store;

pub use checkpointer::{Checkpointer, Policy};
pub use codec::{Binary, Codec, CodecError, Json};
pub use error::{
    BackendError, ConfigError, LoadError, OpenError, ReadError, SaveError, SkipReason, Skipped,
};
pub use file::{FileStore, FileStoreConfig};
pub use frame::FrameError;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use store::{Candidate, Loaded, Store, decode, load, save};

#[doc(hidden)]
pub mod __fuzz {
    //! Entry point for the fuzz target; not a public API.

    /// Runs the frame decoder on `bytes`.
    pub fn decode_frame(bytes: &[u8]) -> bool {
        crate::frame::decode(bytes).is_ok()
    }
}

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
