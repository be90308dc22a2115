//! The outbox table: what producers write in their own transaction, and
//! the statements the relay claims, marks and prunes with.

use std::time::Duration;

use tokio_postgres::GenericClient;

/// Serialises table creation across processes (any number of producers
/// and relays may start at once).
const CREATE_LOCK: i64 = 7_318_004;

/// An event's type: dot-separated words of lower-case letters, digits,
/// `_` and `-` (`pattern.learned`), at most 100 bytes. It names the
/// event's subject (`<prefix>.<type>`) and labels the pending metric, so
/// nothing else is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(String);

/// A string that is not an [`EventType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an event type: dot-separated words of a-z, 0-9, '_' and '-', at most 100 bytes"
)]
pub struct BadEventType(pub String);

impl EventType {
    /// `text` as an event type.
    ///
    /// ```
    /// use buttress_stack::outbox::EventType;
    /// assert!(EventType::new("pattern.learned").is_ok());
    /// assert!(EventType::new("Pattern learned").is_err());
    /// assert!(EventType::new("a..b").is_err());
    /// ```
    pub fn new(text: &str) -> Result<EventType, BadEventType> {
        let word_ok = |w: &str| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        if text.len() <= 100 && text.split('.').all(word_ok) {
            Ok(EventType(text.to_owned()))
        } else {
            Err(BadEventType(text.to_owned()))
        }
    }

    /// The type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event claimed for publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its id in the table: the order producers committed ids in, and
    /// (with the table's name) its message id.
    pub id: i64,
    /// Its type.
    pub event_type: String,
    /// Its JSON payload, as text.
    pub payload: String,
}

/// What is waiting in the table, per event type.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Pending {
    /// Event type → events not yet sent.
    pub by_type: std::collections::BTreeMap<String, u64>,
    /// How long the oldest unsent event has waited (PostgreSQL's clock).
    pub oldest_seconds: f64,
}

impl Pending {
    /// Every unsent event.
    pub fn total(&self) -> u64 {
        self.by_type.values().sum()
    }
}

/// The outbox table `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxTable {
    name: String,
}

impl OutboxTable {
    /// The table `name`, refused unless [`crate::pg::valid_table`] accepts it.
    pub fn new(name: &str) -> Result<OutboxTable, String> {
        if crate::pg::valid_table(name) {
            Ok(OutboxTable {
                name: name.to_owned(),
            })
        } else {
            Err(format!(
                "{name:?} is not a table name: lower-case letters, digits and _, starting with a letter, at most 63"
            ))
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message id of event `id`: the table and the id, so the stream
    /// drops a second publication of the same row.
    pub fn message_id(&self, id: i64) -> String {
        format!("{}:{id}", self.name)
    }

    /// Creates the table and its index of unsent rows, if missing. Safe
    /// from many processes at once.
    pub async fn prepare(
        &self,
        client: &mut tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK])
            .await?;
        let t = &self.name;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 event_type TEXT NOT NULL,
                 payload JSONB NOT NULL,
                 created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                 sent_at TIMESTAMPTZ);
             CREATE INDEX IF NOT EXISTS {t}_unsent ON {t} (id) WHERE sent_at IS NULL;"
        ))
        .await?;
        tx.commit().await
    }

    /// Adds an event, on `client`: pass the producer's transaction, so
    /// the event exists exactly when the producer's data does. `payload`
    /// is JSON text (PostgreSQL refuses anything else). Returns its id.
    pub async fn enqueue(
        &self,
        client: &impl GenericClient,
        event_type: &EventType,
        payload: &str,
    ) -> Result<i64, tokio_postgres::Error> {
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO {} (event_type, payload) VALUES ($1, ($2::text)::jsonb) RETURNING id",
                    self.name
                ),
                &[&event_type.as_str(), &payload],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The SQL that adds one event per row of a query: producers that
    /// insert rows with `RETURNING` can add their events in the same
    /// statement (`WITH new AS (INSERT ... RETURNING ...) <this> FROM new`).
    /// `payload` is a SQL expression over the query's columns giving JSON.
    pub fn insert_select(&self, event_type: &EventType, payload: &str) -> String {
        format!(
            "INSERT INTO {} (event_type, payload) SELECT '{}', {payload}",
            self.name,
            event_type.as_str()
        )
    }

    /// Claims up to `limit` unsent events with ids at most `up_to`, oldest
    /// first, locked by `tx` until it ends: other relays pass over them
    /// (`SKIP LOCKED`), and a relay that dies leaves them unsent.
    pub async fn claim(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        limit: i64,
        up_to: i64,
    ) -> Result<Vec<Claimed>, tokio_postgres::Error> {
        let rows = tx
            .query(
                &format!(
                    "SELECT id, event_type, payload::text FROM {} WHERE sent_at IS NULL AND id <= $2
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                    self.name
                ),
                &[&limit, &up_to],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Claimed {
                id: r.get(0),
                event_type: r.get(1),
                payload: r.get(2),
            })
            .collect())
    }

    /// Marks `ids` sent, in `tx`.
    pub async fn mark_sent(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        ids: &[i64],
    ) -> Result<u64, tokio_postgres::Error> {
        tx.execute(
            &format!(
                "UPDATE {} SET sent_at = clock_timestamp() WHERE id = ANY($1)",
                self.name
            ),
            &[&ids],
        )
        .await
    }

    /// The highest id of an unsent event (0 when none): what a drain
    /// publishes up to.
    pub async fn last_unsent(
        &self,
        client: &impl GenericClient,
    ) -> Result<i64, tokio_postgres::Error> {
        let row = client
            .query_one(
                &format!(
                    "SELECT COALESCE(max(id), 0) FROM {} WHERE sent_at IS NULL",
                    self.name
                ),
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Unsent events per type (the 256 most numerous types) and the age of
    /// the oldest.
    pub async fn pending(
        &self,
        client: &impl GenericClient,
    ) -> Result<Pending, tokio_postgres::Error> {
        let rows = client
            .query(
                &format!(
                    "SELECT event_type, count(*),
                            EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8
                     FROM {} WHERE sent_at IS NULL
                     GROUP BY event_type ORDER BY count(*) DESC LIMIT 256",
                    self.name
                ),
                &[],
            )
            .await?;
        let mut pending = Pending::default();
        for r in &rows {
            let n: i64 = r.get(1);
            let age: f64 = r.get(2);
            pending.by_type.insert(r.get(0), n.max(0) as u64);
            pending.oldest_seconds = pending.oldest_seconds.max(age.max(0.0));
        }
        Ok(pending)
    }

    /// Deletes up to `limit` events sent more than `kept` ago. Returns how
    /// many.
    pub async fn prune(
        &self,
        client: &impl GenericClient,
        kept: Duration,
        limit: i64,
    ) -> Result<u64, tokio_postgres::Error> {
        let t = &self.name;
        client
            .execute(
                &format!(
                    "DELETE FROM {t} WHERE id IN (
                         SELECT id FROM {t} WHERE sent_at < clock_timestamp() - make_interval(secs => $1)
                         ORDER BY id LIMIT $2)"
                ),
                &[&kept.as_secs_f64(), &limit],
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types() {
        for good in ["a", "pattern.learned", "x-1.y_2", &"a".repeat(100)] {
            assert!(EventType::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "A",
            "a b",
            "a>",
            "a*",
            "ü",
            &"a".repeat(101),
        ] {
            assert_eq!(EventType::new(bad), Err(BadEventType(bad.to_owned())));
        }
    }

    #[test]
    fn names_and_ids() {
        assert!(OutboxTable::new("Outbox; drop").is_err());
        let t = OutboxTable::new("outbox").unwrap();
        assert_eq!(t.message_id(42), "outbox:42");
        let e = EventType::new("pattern.learned").unwrap();
        assert_eq!(
            t.insert_select(&e, "json_build_object('a', 1)"),
            "INSERT INTO outbox (event_type, payload) SELECT 'pattern.learned', json_build_object('a', 1)"
        );
    }
}
