//! Allowlists of IP networks: which clients a keyed limiter never limits,
//! which proxies `client_ip` believes.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// Which keys a [`KeyedRateLimiter`](crate::KeyedRateLimiter) never
/// limits, and which peers [`client_ip`](crate::client_ip) trusts: a
/// closure `Fn(&K) -> bool`, or (for IP addresses) [`Networks`].
pub trait Allowlist<K: ?Sized> {
    /// Whether `key` is on the list.
    fn allows(&self, key: &K) -> bool;
}

impl<K: ?Sized, F> Allowlist<K> for F
where
    F: Fn(&K) -> bool + ?Sized,
{
    #[inline]
    fn allows(&self, key: &K) -> bool {
        self(key)
    }
}

/// A list of IP networks in CIDR form: printable, comparable, and (under
/// the `serde` feature) read from a configuration file as a list of
/// strings. IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) match IPv4
/// networks.
///
/// ```
/// use std::net::IpAddr;
/// use buttress_limit::{Allowlist, Networks};
///
/// let local = Networks::parse(&["127.0.0.0/8", "::1"])?;
/// assert_eq!(local.to_string(), "127.0.0.0/8, ::1/128");
/// assert!(local.allows(&"127.0.0.9".parse::<IpAddr>()?));
/// assert!(local.allows(&"::ffff:127.0.0.1".parse::<IpAddr>()?));
/// assert!(!local.allows(&"203.0.113.7".parse::<IpAddr>()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Networks {
    nets: Arc<[IpNet]>,
}

impl Networks {
    /// Parses each entry: a network in CIDR form (`"10.0.0.0/8"`,
    /// `"fd00::/8"`), or a bare address (a /32 or /128). The first entry
    /// that is neither is the error.
    ///
    /// ```
    /// use buttress_limit::Networks;
    ///
    /// assert!(Networks::parse(&["10.0.0.0/8", "2001:db8::/32"]).is_ok());
    /// let e = Networks::parse(&["10.0.0.0/33"]).unwrap_err();
    /// assert_eq!(e.input(), "10.0.0.0/33");
    /// ```
    pub fn parse<S: AsRef<str>>(networks: &[S]) -> Result<Networks, NetworkError> {
        let nets = networks
            .iter()
            .map(|s| parse_one(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Networks { nets: nets.into() })
    }

    /// The networks, as given (host bits kept).
    ///
    /// ```
    /// use buttress_limit::Networks;
    /// let n = Networks::parse(&["10.0.0.0/8"])?;
    /// assert_eq!(n.networks()[0].to_string(), "10.0.0.0/8");
    /// # Ok::<(), buttress_limit::NetworkError>(())
    /// ```
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` is in one of the networks.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use buttress_limit::Networks;
    /// let n = Networks::parse(&["10.0.0.0/8"])?;
    /// assert!(n.contains(&"10.1.2.3".parse::<IpAddr>()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
            v4 => *v4,
        };
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

fn parse_one(input: &str) -> Result<IpNet, NetworkError> {
    let text = input.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    text.parse::<IpNet>().map_err(|source| NetworkError {
        input: input.to_owned(),
        source,
    })
}

impl Allowlist<IpAddr> for Networks {
    #[inline]
    fn allows(&self, ip: &IpAddr) -> bool {
        self.contains(ip)
    }
}

impl fmt::Display for Networks {
    /// The networks in CIDR form, separated by `", "`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Networks {
    type Err = NetworkError;

    /// Parses a comma-separated list, such as `"127.0.0.0/8, ::1"` (what
    /// `Display` writes).
    fn from_str(s: &str) -> Result<Networks, NetworkError> {
        let parts: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        Networks::parse(&parts)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Networks {
    /// A list of strings, each a network in CIDR form or a bare address,
    /// or one comma-separated string (what `Display` writes).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Networks, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::List(list) => Networks::parse(&list),
            Form::Text(text) => text.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Networks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.nets.iter().map(ToString::to_string))
    }
}

/// An allowlist entry that is not an IP network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not an IP network in CIDR form (such as 10.0.0.0/8 or ::1/128) nor an IP address"
)]
pub struct NetworkError {
    input: String,
    #[source]
    source: ipnet::AddrParseError,
}

impl NetworkError {
    /// The entry that was refused.
    ///
    /// ```
    /// use buttress_limit::Networks;
    ///
    /// let err = Networks::parse(&["10.0.0.0/8", "10.0.0.0/33", "localhost"]).unwrap_err();
    /// assert_eq!(err.input(), "10.0.0.0/33"); // the first bad entry
    /// ```
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// Parses an allowlist of IP networks; the same as [`Networks::parse`].
///
/// ```
/// use std::net::IpAddr;
/// use buttress_limit::{KeyedRateLimiter, Quota, allow_networks};
///
/// let per_ip: KeyedRateLimiter<IpAddr> = KeyedRateLimiter::builder("api", Quota::per_minute(150)?)
///     .allow(allow_networks(&["127.0.0.0/8", "::1"])?)
///     .build()?;
/// # let _ = per_ip;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn allow_networks<S: AsRef<str>>(networks: &[S]) -> Result<Networks, NetworkError> {
    Networks::parse(networks)
}
