//! What a refused call returns.

use crate::error::{BoxError, Rejected};

/// Turns a rejection into the service's result.
pub trait OnRejected<Response> {
    /// The result a refused call returns.
    fn on_rejected(&self, rejected: Rejected) -> Result<Response, BoxError>;
}

/// Refused calls fail with a boxed [`Rejected`] (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectWithError;

impl<Response> OnRejected<Response> for RejectWithError {
    #[inline]
    fn on_rejected(&self, rejected: Rejected) -> Result<Response, BoxError> {
        Err(Box::new(rejected))
    }
}

/// Refused calls are answered `503 Service Unavailable` with a
/// `Retry-After` header (whole seconds, rounded up) when the breaker knows
/// when it will admit again, and an empty (`Default`) body. The
/// [`Rejected`] value is attached as a response extension.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Http503;

#[cfg(feature = "http")]
impl<B: Default> OnRejected<http::Response<B>> for Http503 {
    fn on_rejected(&self, rejected: Rejected) -> Result<http::Response<B>, BoxError> {
        let mut response = buttress_core::service_unavailable(rejected.retry_after());
        response.extensions_mut().insert(rejected);
        Ok(response)
    }
}
