//! axum: problems as responses, and the function for `HandleErrorLayer`.

use axum::response::{IntoResponse, Response};
use buttress_core::BoxError;

use crate::problem::{Invalid, Problem};

impl IntoResponse for Problem {
    /// The problem+json response; a [`ProblemLayer`](crate::ProblemLayer)
    /// outside adds the request id.
    fn into_response(self) -> Response {
        Problem::into_response(self)
    }
}

impl IntoResponse for Invalid {
    /// A `422` problem listing the field errors.
    fn into_response(self) -> Response {
        Problem::invalid(self).into_response()
    }
}

/// The function for axum's `HandleErrorLayer`: any error of the tower
/// layers under it (a timeout, an open breaker, a spent rate limit, a
/// shed, a full queue) as its problem+json answer. A `500`'s error is
/// logged, not sent.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, error_handling::HandleErrorLayer, routing::get};
/// use buttress_degrade::{ProblemLayer, handle_error};
/// use tower::ServiceBuilder;
///
/// let app: Router = Router::new()
///     .route("/ask", get(|| async { "an answer" }))
///     .layer(
///         ServiceBuilder::new()
///             .layer(HandleErrorLayer::new(handle_error))
///             .timeout(Duration::from_secs(30)),
///     )
///     .layer(ProblemLayer::new());
/// # let _ = app;
/// ```
pub async fn handle_error(error: BoxError) -> Problem {
    let problem = Problem::from_error(&*error);
    if problem.kind() == "internal" {
        tracing::error!(error = %error, "request failed");
    }
    problem
}
