//! The conversation memory: one row per exchange in PostgreSQL, or (without
//! `DATABASE_URL`) in process.

use std::sync::{Arc, Mutex};

use crate::pg::PgPool;

/// The application name of the chat backend's connections.
pub const APPLICATION_NAME: &str = "chat";

/// One exchange (or one background summary) to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request id (the summary's own id for a summary).
    pub id: String,
    /// The domain.
    pub domain: String,
    /// `chat` or `summary`.
    pub kind: &'static str,
    /// What was asked (the messages summarised, for a summary).
    pub message: String,
    /// What was answered.
    pub answer: String,
}

/// A failure of the memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// No connection within the pool's acquisition timeout.
    #[error("no database connection: {0}")]
    Pool(String),
    /// A statement failed.
    #[error("database query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
}

/// Where exchanges are kept.
#[derive(Debug, Clone)]
pub enum Memory {
    /// The `chat_memory` table.
    Postgres(PgPool),
    /// In process, the newest 10,000.
    Local(Arc<Mutex<Vec<Exchange>>>),
}

/// Exchanges kept in process, at most.
const LOCAL_KEPT: usize = 10_000;

impl Memory {
    /// In process.
    pub fn local() -> Memory {
        Memory::Local(Arc::default())
    }

    /// Whether it is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Memory::Postgres(_))
    }

    async fn conn(pool: &PgPool) -> Result<crate::pg::PgConn<'_>, MemoryError> {
        crate::pg::conn(pool).await.map_err(MemoryError::Pool)
    }

    /// Remembers `exchange` (once per id: a retried write stores it once).
    /// The table is created on the first write.
    pub async fn remember(&self, exchange: &Exchange) -> Result<(), MemoryError> {
        match self {
            Memory::Local(list) => {
                let mut list = crate::lock(list);
                if !list.iter().any(|e| e.id == exchange.id) {
                    if list.len() >= LOCAL_KEPT {
                        list.remove(0);
                    }
                    list.push(exchange.clone());
                }
                Ok(())
            }
            Memory::Postgres(pool) => {
                let conn = Self::conn(pool).await?;
                let insert = "INSERT INTO chat_memory (id, domain, kind, message, answer)
                              VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";
                let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                    &exchange.id,
                    &exchange.domain,
                    &exchange.kind,
                    &exchange.message,
                    &exchange.answer,
                ];
                match conn.execute(insert, &args).await {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
                    {
                        conn.batch_execute(
                            "CREATE TABLE IF NOT EXISTS chat_memory (
                                 id TEXT PRIMARY KEY,
                                 domain TEXT NOT NULL,
                                 kind TEXT NOT NULL,
                                 message TEXT NOT NULL,
                                 answer TEXT NOT NULL,
                                 created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                        )
                        .await?;
                        conn.execute(insert, &args).await?;
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// One round trip: the check behind `/health`.
    pub async fn ping(&self) -> Result<(), MemoryError> {
        if let Memory::Postgres(pool) = self {
            Self::conn(pool).await?.simple_query("SELECT 1").await?;
        }
        Ok(())
    }

    /// The exchanges kept in process (empty for PostgreSQL).
    pub fn local_exchanges(&self) -> Vec<Exchange> {
        match self {
            Memory::Local(list) => crate::lock(list).clone(),
            Memory::Postgres(_) => Vec::new(),
        }
    }
}
