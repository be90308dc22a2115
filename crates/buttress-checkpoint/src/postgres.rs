//! [`PgStore`]: checkpoints in a PostgreSQL table.

use tokio_postgres::{Client, NoTls};

use crate::error::{BackendError, LoadError, OpenError, SaveError};
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
///
/// Database failures are [`BackendError`]s saying what the store was
/// doing, with the `tokio_postgres::Error` as their source
/// ([`BackendError::postgres`], and the SQLSTATE through
/// [`BackendError::code`]).
///
/// ```no_run
/// use buttress_checkpoint::{Checkpointer, PgStore, Policy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgStore::connect("postgres://postgres@127.0.0.1/test", "checkpoints", "learner-1").await?;
/// let mut checkpointer = Checkpointer::new(store, Policy::every_events(100));
/// let mut cursor: u64 = checkpointer.resume().await?.unwrap_or(0);
/// cursor += 1; // process an event
/// checkpointer.tick(&cursor).await?;
/// # Ok(()) }
/// ```
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

/// A `BackendError` saying what the store was doing.
fn backend(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> BackendError {
    move |e| BackendError::new(context, e)
}

impl PgStore {
    /// Connects to `url` (for example `postgres://postgres@127.0.0.1/test`),
    /// creates `table` if it does not exist, and serves store `name` from
    /// it. The connection runs on a task spawned on the current tokio
    /// runtime.
    ///
    /// `table` must be lowercase letters, digits and `_` (at most 63), and
    /// `name` not empty ([`OpenError::Name`]); a failure of the database is
    /// an [`OpenError::Backend`].
    ///
    /// ```no_run
    /// use buttress_checkpoint::{OpenError, PgStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// match PgStore::connect("postgres://postgres@127.0.0.1/test", "checkpoints", "learner-1").await {
    ///     Ok(store) => drop(store), // save and load through it
    ///     Err(OpenError::Backend(e)) => eprintln!("{e} (SQLSTATE {:?})", e.code()),
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// # }
    /// ```
    pub async fn connect(url: &str, table: &str, name: &str) -> Result<PgStore, OpenError> {
        if !valid_table(table) {
            return Err(OpenError::Name(table.to_owned()));
        }
        if name.is_empty() {
            return Err(OpenError::Name(name.to_owned()));
        }
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(backend("could not connect to PostgreSQL"))
            .map_err(OpenError::Backend)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "checkpoint store connection ended"
                );
            }
        });
        // Acknowledge only what PostgreSQL has flushed, whatever the
        // server's or role's default.
        client
            .batch_execute("SET synchronous_commit = on")
            .await
            .map_err(backend("could not set synchronous_commit on the session"))
            .map_err(OpenError::Backend)?;
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
                .map_err(backend("could not look up the checkpoint table"))
                .map_err(OpenError::Backend)?
                .is_some();
            if !exists {
                return Err(OpenError::Backend(backend(
                    "could not create the checkpoint table",
                )(e)));
            }
        }
        Ok(PgStore {
            client,
            table: format!("\"{table}\""),
            name: name.to_owned(),
        })
    }

    async fn current(&self) -> Result<Option<(u64, Vec<u8>)>, BackendError> {
        let row = self
            .client
            .query_opt(
                &format!("SELECT seq, frame FROM {} WHERE name = $1", self.table),
                &[&self.name],
            )
            .await
            .map_err(backend("could not read the checkpoint row"))?;
        Ok(row.map(|row| {
            let seq: i64 = row.get(0);
            (u64::try_from(seq).unwrap_or(0), row.get(1))
        }))
    }
}

impl Store for PgStore {
    /// The sequence in the store's row (0 when there is none).
    ///
    /// ```no_run
    /// use buttress_checkpoint::{PgStore, Store};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PgStore::connect("postgres://postgres@127.0.0.1/test", "checkpoints", "learner-1").await?;
    /// let next = store.latest_seq().await? + 1;
    /// # let _ = next;
    /// # Ok(()) }
    /// ```
    async fn latest_seq(&self) -> Result<u64, LoadError> {
        Ok(self
            .current()
            .await
            .map_err(LoadError::Backend)?
            .map_or(0, |(seq, _)| seq))
    }

    /// Replaces the row with checkpoint `seq` in one statement, only if
    /// the stored sequence is lower ([`SaveError::Stale`] otherwise);
    /// durable when it returns.
    ///
    /// ```no_run
    /// use buttress_checkpoint::{Json, PgStore, SaveError, Store, save};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PgStore::connect("postgres://postgres@127.0.0.1/test", "checkpoints", "learner-1").await?;
    /// save(&store, &Json, 5, &"state").await?; // through `put`
    /// assert!(matches!(save(&store, &Json, 4, &"older").await, Err(SaveError::Stale { current: 5, .. })));
    /// # Ok(()) }
    /// ```
    async fn put(&self, seq: u64, bytes: Vec<u8>) -> Result<(), SaveError> {
        let signed = i64::try_from(seq).map_err(|_| SaveError::SequenceTooLarge {
            seq,
            max: i64::MAX as u64,
        })?;
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
            .map_err(backend("could not store the checkpoint row"))
            .map_err(SaveError::Backend)?;
        if rows == 0 {
            let current = self.latest_seq().await?;
            return Err(SaveError::Stale {
                current,
                attempted: seq,
            });
        }
        Ok(())
    }

    /// The one stored generation (or none), with its bytes unchecked.
    ///
    /// ```no_run
    /// use buttress_checkpoint::{Json, PgStore, Store, load};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PgStore::connect("postgres://postgres@127.0.0.1/test", "checkpoints", "learner-1").await?;
    /// assert!(store.candidates().await?.len() <= 1);
    /// let state = load::<_, _, String>(&store, &Json).await?.map(|l| l.state); // checked and decoded
    /// # let _ = state;
    /// # Ok(()) }
    /// ```
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
