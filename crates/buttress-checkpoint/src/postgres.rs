//! [`PgStore`]: checkpoints in a PostgreSQL table.

use tokio_postgres::{Client, NoTls};

use crate::error::{LoadError, OpenError, SaveError};
use crate::store::{Candidate, Store};

/// The [`Store`] on a PostgreSQL table, one row per store name: for workers
/// that move between machines and must resume where any of them stopped.
///
/// A save is one `INSERT … ON CONFLICT … DO UPDATE … WHERE seq < new seq`:
/// atomic, durable when PostgreSQL commits (with the default
/// `synchronous_commit`), and refused with [`SaveError::Stale`] when a
/// newer checkpoint is already stored, so a slow worker can never roll the
/// state back. The row holds the whole checkpoint (header and CRC32C
/// included), and loading checks it exactly as for files.
///
/// Only the newest generation is kept; PostgreSQL's own durability takes
/// the place of the fallback generations of [`FileStore`](crate::FileStore).
/// The session sets `synchronous_commit = on`. A dropped connection is
/// not re-established: every call fails with a backend error, and a new
/// `PgStore` must be connected.
///
/// It is async only: its client (`tokio-postgres`) runs on the tokio
/// runtime, so there is no `save_blocking`/`load_blocking` here as on
/// [`FileStore`](crate::FileStore). A program without a runtime keeps its
/// checkpoints in files, or drives this store from a runtime of its own.
#[derive(Debug)]
pub struct PgStore {
    client: Client,
    table: String,
    name: String,
}

fn valid_table(table: &str) -> bool {
    let mut bytes = table.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && table.len() <= 63
}

fn backend(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl PgStore {
    /// Connects to `url` (for example `postgres://postgres@127.0.0.1/test`),
    /// creates `table` if it does not exist, and serves store `name` from
    /// it. The connection runs on a task spawned on the current tokio
    /// runtime.
    pub async fn connect(url: &str, table: &str, name: &str) -> Result<PgStore, OpenError> {
        if !valid_table(table) {
            return Err(OpenError::Name(table.to_owned()));
        }
        if name.is_empty() {
            return Err(OpenError::Name(name.to_owned()));
        }
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| OpenError::Backend(backend(e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "checkpoint store connection ended");
            }
        });
        // Acknowledge only what PostgreSQL has flushed, whatever the
        // server's or role's default.
        client
            .batch_execute("SET synchronous_commit = on")
            .await
            .map_err(|e| OpenError::Backend(backend(e)))?;
        let quoted = format!("\"{table}\"");
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {quoted} (\
               name TEXT PRIMARY KEY, \
               seq BIGINT NOT NULL CHECK (seq > 0), \
               frame BYTEA NOT NULL, \
               saved_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        );
        if let Err(e) = client.batch_execute(&create).await {
            // Two connections creating the table at once: one loses the
            // race on the catalog, and the table exists.
            let exists = client
                .query_opt(
                    "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
                    &[&table],
                )
                .await
                .map_err(|e| OpenError::Backend(backend(e)))?
                .is_some();
            if !exists {
                return Err(OpenError::Backend(backend(e)));
            }
        }
        Ok(PgStore {
            client,
            table: format!("\"{table}\""),
            name: name.to_owned(),
        })
    }

    async fn current(&self) -> Result<Option<(u64, Vec<u8>)>, String> {
        let row = self
            .client
            .query_opt(
                &format!("SELECT seq, frame FROM {} WHERE name = $1", self.table),
                &[&self.name],
            )
            .await
            .map_err(backend)?;
        Ok(row.map(|row| {
            let seq: i64 = row.get(0);
            (u64::try_from(seq).unwrap_or(0), row.get(1))
        }))
    }
}

impl Store for PgStore {
    async fn latest_seq(&self) -> Result<u64, LoadError> {
        Ok(self
            .current()
            .await
            .map_err(LoadError::Backend)?
            .map_or(0, |(seq, _)| seq))
    }

    async fn put(&self, seq: u64, bytes: Vec<u8>) -> Result<(), SaveError> {
        let signed = i64::try_from(seq)
            .map_err(|_| SaveError::Backend(format!("sequence {seq} does not fit a BIGINT")))?;
        let table = &self.table;
        let rows = self
            .client
            .execute(
                &format!(
                    "INSERT INTO {table} (name, seq, frame) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE \
                       SET seq = EXCLUDED.seq, frame = EXCLUDED.frame, saved_at = now() \
                       WHERE {table}.seq < EXCLUDED.seq"
                ),
                &[&self.name, &signed, &bytes],
            )
            .await
            .map_err(|e| SaveError::Backend(backend(e)))?;
        if rows == 0 {
            let current = self
                .latest_seq()
                .await
                .map_err(|e| SaveError::Backend(e.to_string()))?;
            return Err(SaveError::Stale {
                current,
                attempted: seq,
            });
        }
        Ok(())
    }

    async fn candidates(&self) -> Result<Vec<Candidate>, LoadError> {
        Ok(self
            .current()
            .await
            .map_err(LoadError::Backend)?
            .map(|(seq, frame)| Candidate {
                seq,
                location: format!("{} row {:?}", self.table, self.name),
                bytes: Ok(frame),
            })
            .into_iter()
            .collect())
    }
}
