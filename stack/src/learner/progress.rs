//! Where the learner's checkpoints live: files by default, a PostgreSQL
//! table when `DATABASE_URL` is set (so a learner that moves to another
//! machine takes its progress with it).

use buttress::checkpoint::{Candidate, FileStore, LoadError, PgStore, SaveError, Store};

/// The checkpoint store: one of buttress-checkpoint's two, behind one type.
#[derive(Debug)]
pub enum ProgressStore {
    /// Files in a directory.
    File(FileStore),
    /// A row of a PostgreSQL table.
    Postgres(PgStore),
}

impl ProgressStore {
    /// Where the checkpoints are, for logs and `/learning/stats`.
    pub fn describe(&self) -> &'static str {
        match self {
            ProgressStore::File(_) => "file",
            ProgressStore::Postgres(_) => "postgres",
        }
    }
}

impl Store for ProgressStore {
    async fn latest_seq(&self) -> Result<u64, LoadError> {
        match self {
            ProgressStore::File(s) => s.latest_seq().await,
            ProgressStore::Postgres(s) => s.latest_seq().await,
        }
    }

    async fn put(&self, seq: u64, bytes: Vec<u8>) -> Result<(), SaveError> {
        match self {
            ProgressStore::File(s) => s.put(seq, bytes).await,
            ProgressStore::Postgres(s) => s.put(seq, bytes).await,
        }
    }

    async fn candidates(&self) -> Result<Vec<Candidate>, LoadError> {
        match self {
            ProgressStore::File(s) => s.candidates().await,
            ProgressStore::Postgres(s) => s.candidates().await,
        }
    }
}
