//! Where the documents live: PostgreSQL through a bb8 pool with the
//! report's limits, or (without `DATABASE_URL`) memory. Both load
//! documents by id and run the keyword search that stands in for vector
//! search when the vector store is down.

use serde::Serialize;

use crate::pg::PgPool;

use crate::corpus::DOCUMENTS;
use crate::model::words;

/// A document as an answer cites it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// Its id.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// How well it matched: cosine similarity for vector search, the
    /// keyword rank otherwise.
    pub score: f32,
}

/// A failure of the document store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection within the pool's acquisition timeout.
    #[error("no database connection: {0}")]
    Pool(String),
    /// The query failed.
    #[error("database query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// `DATABASE_URL` is not a PostgreSQL URL.
    #[error("DATABASE_URL is not a PostgreSQL connection string: {0}")]
    Url(String),
}

/// The document store.
#[derive(Debug, Clone)]
pub enum Store {
    /// PostgreSQL.
    Postgres(PgPool),
    /// The built-in corpus, in memory.
    Memory,
}

/// The application name the API's connections carry, so an operator (or
/// the outage drill) can find them in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "knowledge-api";

impl Store {
    /// A pool for `url` with the report's limits: connections live at most
    /// 1 h, acquiring one gives up after 30 s, and the server ends a
    /// statement after 30 s and an idle transaction after 60 s. Nothing
    /// connects until [`prepare`](Store::prepare).
    pub fn postgres(url: &str) -> Result<Store, StoreError> {
        let pool = crate::pg::pool(url, APPLICATION_NAME, 16).map_err(StoreError::Url)?;
        Ok(Store::Postgres(pool))
    }

    /// Whether the documents are in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Creates the table and loads the built-in corpus (once; safe from
    /// many replicas at once).
    pub async fn prepare(&self) -> Result<(), StoreError> {
        let Store::Postgres(pool) = self else {
            return Ok(());
        };
        let mut conn = crate::pg::conn(pool).await.map_err(StoreError::Pool)?;
        let tx = conn.transaction().await?;
        // Two replicas creating the table at once would collide in the
        // catalog: one at a time.
        tx.execute("SELECT pg_advisory_xact_lock(7318002)", &[])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS knowledge_documents (
                 id BIGINT PRIMARY KEY,
                 title TEXT NOT NULL,
                 body TEXT NOT NULL)",
        )
        .await?;
        let insert = tx
            .prepare("INSERT INTO knowledge_documents (id, title, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .await?;
        for d in DOCUMENTS {
            tx.execute(&insert, &[&d.id, &d.title, &d.body]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One round trip: the check behind `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        if let Store::Postgres(pool) = self {
            let conn = crate::pg::conn(pool).await.map_err(StoreError::Pool)?;
            conn.simple_query("SELECT 1").await?;
        }
        Ok(())
    }

    /// The documents with `ids`, in that order, each with its score.
    pub async fn load(&self, hits: &[(i64, f32)]) -> Result<Vec<Passage>, StoreError> {
        let rows: Vec<(i64, String, String)> = match self {
            Store::Memory => DOCUMENTS
                .iter()
                .map(|d| (d.id, d.title.to_owned(), d.body.to_owned()))
                .collect(),
            Store::Postgres(pool) => {
                let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
                let conn = crate::pg::conn(pool).await.map_err(StoreError::Pool)?;
                conn.query(
                    "SELECT id, title, body FROM knowledge_documents WHERE id = ANY($1)",
                    &[&ids],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
            }
        };
        Ok(hits
            .iter()
            .filter_map(|&(id, score)| {
                rows.iter()
                    .find(|r| r.0 == id)
                    .map(|(id, title, body)| Passage {
                        id: *id,
                        title: title.clone(),
                        body: body.clone(),
                        score,
                    })
            })
            .collect())
    }

    /// The `limit` documents that share the most words with `question`:
    /// PostgreSQL's full-text search, or a word count in memory.
    pub async fn keyword(&self, question: &str, limit: usize) -> Result<Vec<Passage>, StoreError> {
        let terms: Vec<String> = words(question).filter(|w| w.len() > 2).collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Store::Memory => Ok(keyword_in_memory(&terms, limit)),
            Store::Postgres(pool) => {
                // Words only (alphanumeric), joined by OR: nothing of the
                // question reaches the query syntax.
                let query = terms.join(" | ");
                let conn = crate::pg::conn(pool).await.map_err(StoreError::Pool)?;
                let rows = conn
                    .query(
                        "SELECT id, title, body,
                                ts_rank(to_tsvector('english', title || ' ' || body), q)::real AS rank
                         FROM knowledge_documents, to_tsquery('english', $1) AS q
                         WHERE to_tsvector('english', title || ' ' || body) @@ q
                         ORDER BY rank DESC, id
                         LIMIT $2",
                        &[&query, &(limit as i64)],
                    )
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| Passage {
                        id: r.get(0),
                        title: r.get(1),
                        body: r.get(2),
                        score: r.get(3),
                    })
                    .collect())
            }
        }
    }
}

fn keyword_in_memory(terms: &[String], limit: usize) -> Vec<Passage> {
    let mut scored: Vec<Passage> = DOCUMENTS
        .iter()
        .filter_map(|d| {
            let text: Vec<String> = words(d.title).chain(words(d.body)).collect();
            let matched = terms.iter().filter(|t| text.contains(t)).count();
            (matched > 0).then(|| Passage {
                id: d.id,
                title: d.title.to_owned(),
                body: d.body.to_owned(),
                score: matched as f32 / terms.len() as f32,
            })
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    scored.truncate(limit);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_finds_by_words_and_ids() {
        let found = Store::Memory
            .keyword("How does a circuit breaker probe?", 3)
            .await
            .unwrap();
        assert_eq!(found[0].id, 1);
        assert!(found.len() <= 3);
        assert!(Store::Memory.keyword("a an ?", 3).await.unwrap().is_empty());
        let loaded = Store::Memory
            .load(&[(3, 0.9), (99, 0.5), (1, 0.4)])
            .await
            .unwrap();
        assert_eq!(loaded.iter().map(|p| p.id).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(loaded[0].score, 0.9);
    }

    #[test]
    fn a_bad_url_is_named() {
        assert!(matches!(
            Store::postgres("mysql://x"),
            Err(StoreError::Url(_))
        ));
    }
}
