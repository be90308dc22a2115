//! The environment each binary reads, declared in one place: the binaries
//! read through [`Env`], and the compose test reads the same declarations
//! to check that `docker-compose.yml` sets every variable with a value the
//! binary accepts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Where a binary's settings come from: the process environment, or (in
/// tests) a map. Every name read is remembered.
#[derive(Debug, Default)]
pub struct Env {
    values: Option<BTreeMap<String, String>>,
    read: std::cell::RefCell<Vec<&'static str>>,
}

/// A setting that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct EnvError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env::default()
    }

    /// A fixed set of variables, for tests.
    pub fn from_map(values: BTreeMap<String, String>) -> Self {
        Env {
            values: Some(values),
            read: Default::default(),
        }
    }

    /// A fixed set of variables from pairs, for tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// Every variable read so far.
    pub fn names_read(&self) -> Vec<&'static str> {
        self.read.borrow().clone()
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &'static str) -> Option<String> {
        self.read.borrow_mut().push(name);
        let value = match &self.values {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// `name` parsed, or `default` when unset.
    pub fn parse<T>(&self, name: &'static str, default: T) -> Result<T, EnvError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| EnvError {
                name,
                value: v.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// A duration such as `30s` or `250ms`, or `default` when unset.
    pub fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, EnvError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => humantime::parse_duration(v.trim()).map_err(|e| EnvError {
                name,
                value: v.clone(),
                reason: format!("{e} (write a duration such as 30s or 250ms)"),
            }),
        }
    }

    /// A size such as `1GiB` or `512MB` (or a number of bytes), or
    /// `default` when unset.
    pub fn bytes(&self, name: &'static str, default: u64) -> Result<u64, EnvError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| b.as_u64())
                .map_err(|e| EnvError {
                    name,
                    value: v.clone(),
                    reason: format!("{e} (write a size such as 1GiB or 512MB)"),
                }),
        }
    }

    /// The address to listen on: `BIND` (default all interfaces) and
    /// `PORT` (default `port`).
    pub fn listen(&self, port: u16) -> Result<SocketAddr, EnvError> {
        let host = self.get("BIND").unwrap_or_else(|| "0.0.0.0".to_owned());
        let port: u16 = self.parse("PORT", port)?;
        let text = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        text.parse().map_err(|_| EnvError {
            name: "BIND",
            value: host,
            reason: "not an IP address".to_owned(),
        })
    }

    /// An `http://` base URL, without a trailing slash.
    pub fn url(&self, name: &'static str, default: &str) -> Result<String, EnvError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        check_url(&value).map_err(|reason| EnvError {
            name,
            value: value.clone(),
            reason,
        })?;
        Ok(value.trim_end_matches('/').to_owned())
    }
}

fn check_url(value: &str) -> Result<(), String> {
    let uri: http::Uri = value
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    if uri.scheme_str() != Some("http") {
        return Err("must be an http:// URL".to_owned());
    }
    if uri.host().is_none() {
        return Err("has no host".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs)
    }

    #[test]
    fn reads_and_remembers() {
        let e = env(&[("PORT", "9000"), ("T", "250ms"), ("U", "http://x:1/")]);
        assert_eq!(e.listen(80).unwrap(), "0.0.0.0:9000".parse().unwrap());
        assert_eq!(
            e.duration("T", Duration::ZERO).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(e.url("U", "http://d").unwrap(), "http://x:1");
        assert_eq!(e.names_read(), ["BIND", "PORT", "T", "U"]);
    }

    #[test]
    fn bad_values_are_named() {
        let e = env(&[
            ("PORT", "eighty"),
            ("T", "soon"),
            ("U", "ftp://x"),
            ("BIND", "::1"),
        ]);
        assert_eq!(e.listen(80).unwrap_err().name, "PORT");
        assert!(
            e.duration("T", Duration::ZERO)
                .unwrap_err()
                .to_string()
                .starts_with("T=\"soon\"")
        );
        assert_eq!(
            e.url("U", "http://d").unwrap_err().reason,
            "must be an http:// URL"
        );
        let e = env(&[("BIND", "::1")]);
        assert_eq!(e.listen(80).unwrap(), "[::1]:80".parse().unwrap());
    }
}
