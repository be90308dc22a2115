//! Embeddings of questions seen before, so a question asked again still
//! gets vector search while the embeddings service is down: in Redis when
//! `REDIS_URL` is set (shared by replicas, kept for a day), else in a
//! bounded map in the process. A cache that fails is a miss, never an
//! error.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::lock;

/// The longest a Redis call may take before it counts as a miss.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis keeps an embedding.
const TTL_SECONDS: u64 = 24 * 3600;
/// How long a failed connection to Redis waits before the next try.
const RECONNECT_AFTER: Duration = Duration::from_secs(5);
/// The most embeddings kept in process.
const MEMORY_ENTRIES: usize = 10_000;

/// The cache of question embeddings, cheap to clone.
#[derive(Clone)]
pub enum EmbeddingCache {
    /// In Redis.
    Redis {
        /// The client.
        client: redis::Client,
        /// The connection, made on first use (so the API starts while
        /// Redis is down) and re-made by the manager after a failure.
        conn: Arc<OnceCell<ConnectionManager>>,
        /// After a failed connection, no other is tried before this: a
        /// Redis that is down costs a query nothing.
        retry_at: Arc<Mutex<Option<std::time::Instant>>>,
    },
    /// In the process.
    Memory(Arc<Mutex<Bounded>>),
}

impl std::fmt::Debug for EmbeddingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EmbeddingCache::Redis { .. } => "EmbeddingCache::Redis",
            EmbeddingCache::Memory(_) => "EmbeddingCache::Memory",
        })
    }
}

/// A map that forgets its oldest entry past a bound.
#[derive(Debug, Default)]
pub struct Bounded {
    map: HashMap<String, Arc<Vec<f32>>>,
    order: VecDeque<String>,
}

impl EmbeddingCache {
    /// In Redis at `url`.
    pub fn redis(url: &str) -> Result<Self, redis::RedisError> {
        Ok(EmbeddingCache::Redis {
            client: redis::Client::open(url)?,
            conn: Arc::new(OnceCell::new()),
            retry_at: Arc::default(),
        })
    }

    /// In the process.
    pub fn memory() -> Self {
        EmbeddingCache::Memory(Default::default())
    }

    fn key(hash: &str) -> String {
        format!("knowledge:embedding:{hash}")
    }

    async fn connection(
        client: &redis::Client,
        conn: &OnceCell<ConnectionManager>,
        retry_at: &Mutex<Option<std::time::Instant>>,
    ) -> Option<ConnectionManager> {
        if let Some(c) = conn.get() {
            return Some(c.clone());
        }
        if lock(retry_at).is_some_and(|at| std::time::Instant::now() < at) {
            return None;
        }
        let made = tokio::time::timeout(
            REDIS_TIMEOUT * 2,
            conn.get_or_try_init(|| {
                // One try a call: a Redis that is down is a miss now, not
                // after a second of reconnecting.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(REDIS_TIMEOUT)
                    .set_response_timeout(REDIS_TIMEOUT);
                ConnectionManager::new_with_config(client.clone(), config)
            }),
        )
        .await;
        match made {
            Ok(Ok(c)) => Some(c.clone()),
            _ => {
                *lock(retry_at) = Some(std::time::Instant::now() + RECONNECT_AFTER);
                None
            }
        }
    }

    /// The embedding of the question whose hash is `hash`, if kept.
    pub async fn get(&self, hash: &str) -> Option<Arc<Vec<f32>>> {
        match self {
            EmbeddingCache::Memory(m) => lock(m).map.get(hash).cloned(),
            EmbeddingCache::Redis {
                client,
                conn,
                retry_at,
            } => {
                let mut c = Self::connection(client, conn, retry_at).await?;
                let bytes: Vec<u8> = tokio::time::timeout(REDIS_TIMEOUT, c.get(Self::key(hash)))
                    .await
                    .ok()?
                    .ok()?;
                decode(&bytes).map(Arc::new)
            }
        }
    }

    /// Keeps `vector` as the embedding of the question whose hash is `hash`.
    pub async fn put(&self, hash: &str, vector: Arc<Vec<f32>>) {
        match self {
            EmbeddingCache::Memory(m) => {
                let mut m = lock(m);
                if m.map.insert(hash.to_owned(), vector).is_none() {
                    m.order.push_back(hash.to_owned());
                }
                while m.order.len() > MEMORY_ENTRIES {
                    if let Some(old) = m.order.pop_front() {
                        m.map.remove(&old);
                    }
                }
            }
            EmbeddingCache::Redis {
                client,
                conn,
                retry_at,
            } => {
                let Some(mut c) = Self::connection(client, conn, retry_at).await else {
                    return;
                };
                let write = c.set_ex::<_, _, ()>(Self::key(hash), encode(&vector), TTL_SECONDS);
                if let Ok(Err(e)) = tokio::time::timeout(REDIS_TIMEOUT, write).await {
                    tracing::debug!(error = %e, "embedding not cached");
                }
            }
        }
    }
}

/// Little-endian `f32`s.
fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`encode`]; `None` for bytes that are not whole floats.
fn decode(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_keeps_and_forgets_the_oldest() {
        let cache = EmbeddingCache::memory();
        for i in 0..=MEMORY_ENTRIES {
            cache.put(&i.to_string(), Arc::new(vec![i as f32])).await;
        }
        assert!(cache.get("0").await.is_none());
        assert_eq!(cache.get("1").await.unwrap()[0], 1.0);
    }

    #[test]
    fn bytes_round_trip_and_torn_bytes_are_a_miss() {
        let v = vec![0.25f32, -1.5, 3.0];
        assert_eq!(decode(&encode(&v)).unwrap(), v);
        assert!(decode(&[1, 2, 3]).is_none());
        assert!(decode(&[]).is_none());
    }

    #[tokio::test]
    async fn redis_down_is_a_miss_and_is_not_tried_again_at_once() {
        let cache = EmbeddingCache::redis("redis://127.0.0.1:1/").unwrap();
        cache.put("q", Arc::new(vec![1.0])).await;
        let EmbeddingCache::Redis { retry_at, .. } = &cache else {
            unreachable!()
        };
        let first = lock(retry_at).expect("the failure is remembered");
        assert!(cache.get("q").await.is_none());
        assert_eq!(
            lock(retry_at).expect("still"),
            first,
            "no second try within the pause"
        );
    }
}
