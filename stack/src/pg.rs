//! PostgreSQL pools as every service of the stack sets them up.

use std::str::FromStr;
use std::time::Duration;

use bb8::Pool;
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::NoTls;

/// A pool of PostgreSQL connections.
pub type PgPool = Pool<PostgresConnectionManager<NoTls>>;

/// A pool for `url` with the report's limits: connections live at most
/// 1 h, acquiring one gives up after 30 s, and the server ends a statement
/// after 30 s and an idle transaction after 60 s. Each connection carries
/// `application_name`, so an operator (or the outage drill) finds it in
/// `pg_stat_activity`. Nothing connects until the pool is used.
///
/// Fails with the parser's message when `url` is not a connection string.
/// Must be called inside a tokio runtime (the pool's reaper is a task).
pub fn pool(url: &str, application_name: &str, max_size: u32) -> Result<PgPool, String> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| e.to_string())?;
    config
        .application_name(application_name)
        .connect_timeout(Duration::from_secs(5))
        .options("-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000");
    let manager = PostgresConnectionManager::new(config, NoTls);
    Ok(Pool::builder()
        .max_size(max_size)
        .max_lifetime(Some(Duration::from_secs(3600)))
        .connection_timeout(Duration::from_secs(30))
        .build_unchecked(manager))
}

/// A connection taken from a [`PgPool`].
pub type PgConn<'a> = bb8::PooledConnection<'a, PostgresConnectionManager<NoTls>>;

/// A connection from `pool`, or why there is none (the pool's own error,
/// as text: "timed out waiting for connection", the server's refusal).
pub async fn conn(pool: &PgPool) -> Result<PgConn<'_>, String> {
    pool.get().await.map_err(|e| e.to_string())
}

/// Whether `name` can be used as a table name unquoted: lower-case ASCII
/// letters, digits and `_`, starting with a letter, at most 63 bytes.
pub fn valid_table(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(valid_table("learned_patterns"));
        assert!(valid_table("t1"));
        for bad in [
            "",
            "1t",
            "Patterns",
            "a-b",
            "a b",
            "a;drop",
            &"a".repeat(64),
        ] {
            assert!(!valid_table(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        assert!(pool("not a url at all=", "x", 1).is_err());
        assert!(pool("postgres://postgres@127.0.0.1/test", "x", 1).is_ok());
    }
}
