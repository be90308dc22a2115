//! Where learned patterns live: a PostgreSQL table (one row per pattern,
//! keyed by its hash, so a write done twice stores it once) or, without
//! `DATABASE_URL`, memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use buttress::journal::Cursor;

use super::known::{Hash, NewPattern, hex, parse_hash};
use crate::outbox::{EventType, OutboxTable};
use crate::pg::PgPool;

/// The type of the event each new pattern adds to the outbox.
pub const PATTERN_LEARNED: &str = "pattern.learned";

/// The application name of the learner's connections.
pub const APPLICATION_NAME: &str = "learner";

/// A failure of the pattern store.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// No connection within the pool's acquisition timeout.
    #[error("no database connection: {0}")]
    Pool(String),
    /// A statement failed.
    #[error("database query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// A stored row is not a pattern this learner wrote.
    #[error("table {table} holds a row that is not a pattern: {detail}")]
    Corrupt {
        /// The table.
        table: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// A stored pattern, as [`PatternStore::all`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPattern {
    /// Its hash.
    pub hash: Hash,
    /// The position of the event that introduced it, when that event came
    /// from this store's source (`None`: from another source, so no event
    /// this learner reads introduced it).
    pub at: Option<Cursor>,
}

/// The pattern store.
#[derive(Debug, Clone)]
pub enum PatternStore {
    /// A PostgreSQL table.
    Postgres {
        /// The pool.
        pool: PgPool,
        /// The table (checked by [`crate::pg::valid_table`]).
        table: String,
        /// The outbox each new pattern adds a `pattern.learned` event to,
        /// in the statement that stores it.
        outbox: Option<OutboxTable>,
        /// Where this learner's positions come from
        /// ([`TelemetrySource::label`](super::TelemetrySource::label)),
        /// stored beside each position it writes.
        source: String,
    },
    /// Memory: hash → the pattern's first position and time.
    Memory(Arc<Mutex<HashMap<Hash, (Cursor, u64)>>>),
}

impl PatternStore {
    /// Patterns in memory, lost when the process ends.
    pub fn memory() -> PatternStore {
        PatternStore::Memory(Arc::default())
    }

    /// Whether the patterns are in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, PatternStore::Postgres { .. })
    }

    async fn conn(pool: &PgPool) -> Result<crate::pg::PgConn<'_>, PatternError> {
        crate::pg::conn(pool).await.map_err(PatternError::Pool)
    }

    /// Creates the table (once; safe from many learners at once).
    pub async fn prepare(&self) -> Result<(), PatternError> {
        let PatternStore::Postgres {
            pool,
            table,
            outbox,
            ..
        } = self
        else {
            return Ok(());
        };
        let mut conn = Self::conn(pool).await?;
        let tx = conn.transaction().await?;
        // Creating a table twice at once collides in the catalog.
        tx.execute("SELECT pg_advisory_xact_lock(7318003)", &[])
            .await?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 hash TEXT PRIMARY KEY,
                 first_file BIGINT NOT NULL,
                 first_offset BIGINT NOT NULL,
                 first_seen_ms BIGINT NOT NULL,
                 learned_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                 source TEXT NOT NULL DEFAULT 'journal');
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS source TEXT NOT NULL DEFAULT 'journal';"
        ))
        .await?;
        tx.commit().await?;
        if let Some(outbox) = outbox {
            outbox.prepare(&mut conn).await?;
        }
        Ok(())
    }

    /// One round trip: the check behind `/health`.
    pub async fn ping(&self) -> Result<(), PatternError> {
        if let PatternStore::Postgres { pool, .. } = self {
            Self::conn(pool).await?.simple_query("SELECT 1").await?;
        }
        Ok(())
    }

    /// Stores `patterns` in one statement; those already stored are left
    /// as they are. Returns how many were new to the store. With an
    /// outbox, the same statement adds a `pattern.learned` event for each
    /// new one (hash and first position as JSON): the event exists exactly
    /// when the row does.
    pub async fn insert(&self, patterns: &[NewPattern]) -> Result<u64, PatternError> {
        if patterns.is_empty() {
            return Ok(0);
        }
        match self {
            PatternStore::Memory(map) => {
                let mut map = crate::lock(map);
                let before = map.len();
                for p in patterns {
                    map.entry(p.hash).or_insert((p.at, p.at_ms));
                }
                Ok((map.len() - before) as u64)
            }
            PatternStore::Postgres {
                pool,
                table,
                outbox,
                source,
            } => {
                let hashes: Vec<String> = patterns.iter().map(|p| hex(&p.hash)).collect();
                let files: Vec<i64> = patterns.iter().map(|p| p.at.file as i64).collect();
                let offsets: Vec<i64> = patterns.iter().map(|p| p.at.offset as i64).collect();
                let times: Vec<i64> = patterns.iter().map(|p| p.at_ms as i64).collect();
                let insert = format!(
                    "INSERT INTO {table} (hash, first_file, first_offset, first_seen_ms, source)
                     SELECT *, $5::text FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
                     ON CONFLICT (hash) DO NOTHING"
                );
                let statement = match outbox {
                    None => insert,
                    Some(outbox) => format!(
                        "WITH new AS ({insert} RETURNING hash, first_file, first_offset, first_seen_ms) {} FROM new",
                        outbox.insert_select(
                            &pattern_learned(),
                            "jsonb_build_object('hash', hash, 'first_file', first_file, \
                             'first_offset', first_offset, 'first_seen_ms', first_seen_ms)"
                        )
                    ),
                };
                let conn = Self::conn(pool).await?;
                let n = conn
                    .execute(&statement, &[&hashes, &files, &offsets, &times, source])
                    .await?;
                Ok(n)
            }
        }
    }

    /// Every stored pattern.
    pub async fn all(&self) -> Result<Vec<StoredPattern>, PatternError> {
        match self {
            PatternStore::Memory(map) => Ok(crate::lock(map)
                .iter()
                .map(|(hash, (at, _))| StoredPattern {
                    hash: *hash,
                    at: Some(*at),
                })
                .collect()),
            PatternStore::Postgres {
                pool,
                table,
                source,
                ..
            } => {
                let conn = Self::conn(pool).await?;
                let rows = conn
                    .query(
                        &format!("SELECT hash, first_file, first_offset, source = $1 FROM {table}"),
                        &[source],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        let text: String = r.get(0);
                        let (file, offset, ours): (i64, i64, bool) = (r.get(1), r.get(2), r.get(3));
                        let hash = parse_hash(&text).ok_or_else(|| PatternError::Corrupt {
                            table: table.clone(),
                            detail: format!("hash {text:?} is not 64 hexadecimal digits"),
                        })?;
                        Ok(StoredPattern {
                            hash,
                            at: ours.then(|| Cursor {
                                file: u64::try_from(file).unwrap_or(0),
                                offset: u64::try_from(offset).unwrap_or(0),
                            }),
                        })
                    })
                    .collect()
            }
        }
    }
}

fn pattern_learned() -> EventType {
    EventType::new(PATTERN_LEARNED).expect("a valid event type")
}
