//! A TCP connect: the dependency accepts connections.

use buttress_core::BoxError;
use futures_util::future::BoxFuture;

use crate::{Check, Observation};

/// Up when a TCP connection to the address opens (what wait-for-it
/// checks). The address is resolved at each probe, so a name that starts
/// resolving later (a container coming up) is found.
///
/// ```
/// use buttress_health::{CheckOptions, Health, checks};
///
/// let health = Health::new();
/// health.register("postgres", checks::tcp("127.0.0.1:5432"), CheckOptions::critical()).unwrap();
/// ```
pub fn tcp(address: impl Into<String>) -> TcpCheck {
    TcpCheck {
        address: address.into(),
    }
}

/// The check [`tcp()`] makes.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    address: String,
}

impl TcpCheck {
    /// The address it connects to.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Check for TcpCheck {
    fn check(&self) -> BoxFuture<'static, Result<Observation, BoxError>> {
        let address = self.address.clone();
        Box::pin(async move {
            match tokio::net::TcpStream::connect(&address).await {
                Ok(_) => Ok(Observation::up()),
                Err(e) => Err(format!("connect to {address}: {e}").into()),
            }
        })
    }
}
