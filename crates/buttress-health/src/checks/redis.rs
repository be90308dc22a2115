//! Redis: `PING` on a connection the check keeps.

use std::fmt;
use std::sync::{Arc, Mutex};

use buttress_core::BoxError;
use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;

use crate::{Check, Observation};

/// A check that sends `PING` to Redis at `url` (`redis://host:port`) and
/// expects `PONG`. It keeps its connection between probes and opens a new
/// one when the last failed.
///
/// ```
/// use buttress_health::{CheckOptions, Health, checks};
///
/// let health = Health::new();
/// let cache = checks::redis("redis://127.0.0.1:6379")?;
/// health.register("redis", cache, CheckOptions::non_critical()).unwrap();
/// # Ok::<(), redis::RedisError>(())
/// ```
pub fn redis(url: &str) -> Result<RedisCheck, redis::RedisError> {
    Ok(RedisCheck {
        client: redis::Client::open(url)?,
        connection: Arc::new(Mutex::new(None)),
    })
}

/// The check [`redis()`] makes.
#[derive(Clone)]
pub struct RedisCheck {
    client: redis::Client,
    connection: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCheck")
            .field("address", &self.client.get_connection_info().addr)
            .finish_non_exhaustive()
    }
}

impl RedisCheck {
    async fn probe(&self) -> Result<(), BoxError> {
        let cached = self
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut connection = match cached {
            Some(c) => c,
            None => self.client.get_multiplexed_async_connection().await?,
        };
        let pong: String = redis::cmd("PING").query_async(&mut connection).await?;
        if pong != "PONG" {
            return Err(format!("PING answered {pong:?}").into());
        }
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection);
        Ok(())
    }
}

impl Check for RedisCheck {
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>> {
        let check = self.clone();
        Box::pin(async move {
            check.probe().await?;
            Ok(Observation::up())
        })
    }
}
