//! PostgreSQL: `SELECT 1` on a connection the check keeps.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use buttress_core::BoxError;
use futures_util::future::BoxFuture;
use tokio_postgres::{Client, Config, NoTls};

use crate::{Check, Observation};

/// A check that runs `SELECT 1` on PostgreSQL at `url`
/// (`postgres://user@host:port/database`), with a `statement_timeout` of
/// 2 s on its session (`application_name` `buttress-health` unless the
/// URL sets one). It keeps its connection between probes and opens
/// a new one when the last failed or was closed, so a probe a second costs
/// one round trip, not a connection.
///
/// Without TLS; for TLS, write a [`check_fn`](crate::check_fn) on your own
/// pool.
///
/// ```
/// use buttress_health::{CheckOptions, Health, checks};
///
/// let health = Health::new();
/// let db = checks::postgres("postgres://postgres@127.0.0.1:5432/test")?;
/// health.register("postgres", db, CheckOptions::critical()).unwrap();
/// # Ok::<(), tokio_postgres::Error>(())
/// ```
pub fn postgres(url: &str) -> Result<PostgresCheck, tokio_postgres::Error> {
    let mut config = Config::from_str(url)?;
    config.connect_timeout(Duration::from_secs(5));
    if config.get_application_name().is_none() {
        // What `pg_stat_activity` shows for the check's connection.
        config.application_name("buttress-health");
    }
    let mut check = PostgresCheck {
        config,
        client: Arc::new(Mutex::new(None)),
    };
    check.set_statement_timeout(Duration::from_secs(2));
    Ok(check)
}

/// The check [`postgres()`] makes.
#[derive(Clone)]
pub struct PostgresCheck {
    config: Config,
    client: Arc<Mutex<Option<Client>>>,
}

impl fmt::Debug for PostgresCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCheck")
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

impl PostgresCheck {
    /// Sets the session's `statement_timeout` (whole milliseconds).
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.set_statement_timeout(timeout);
        self
    }

    fn set_statement_timeout(&mut self, timeout: Duration) {
        self.config
            .options(format!("-c statement_timeout={}", timeout.as_millis()));
    }

    fn take(&self) -> Option<Client> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|c| !c.is_closed())
    }

    async fn probe(&self) -> Result<(), tokio_postgres::Error> {
        let client = match self.take() {
            Some(client) => client,
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "health check's PostgreSQL connection ended");
                    }
                });
                client
            }
        };
        client.simple_query("SELECT 1").await?;
        // Kept only after it worked.
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        Ok(())
    }
}

impl Check for PostgresCheck {
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>> {
        let check = self.clone();
        Box::pin(async move {
            match check.probe().await {
                Ok(()) => Ok(Observation::up()),
                // tokio-postgres puts the server's message in the source.
                Err(e) => Err(crate::check::error_chain(&e).into()),
            }
        })
    }
}
