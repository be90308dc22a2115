//! The embeddings service's routes.

use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use buttress::degrade::{Invalid, Problem, handle_error, problem_stack};
use buttress::health::{HealthEndpoints, ReadinessLayer};
use bytes::Bytes;
use tower::ServiceBuilder;

use super::Embeddings;
use crate::wire::{EmbeddingsRequest, EmbeddingsResponse};

/// `POST /v1/embeddings` behind the readiness gate and the request
/// timeout; `/health`, `/livez`, `/readyz`, `/metrics`; every error as
/// problem+json with the request id.
pub fn router(app: Embeddings) -> Router {
    // The largest valid batch, JSON-escaped at worst (a character outside
    // the basic plane is 12 bytes as a `\u` pair), and room for the rest.
    let limit = app.config.max_inputs * app.config.max_chars * 12 + 64 * 1024;
    let work = Router::new()
        .route("/v1/embeddings", post(embed))
        .layer(DefaultBodyLimit::max(limit))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .timeout(app.config.request_timeout)
                .layer(ReadinessLayer::new(app.health.readiness().clone())),
        )
        .with_state(app.clone());
    Router::new()
        .merge(work)
        .merge(HealthEndpoints::new(app.health.clone()).router())
        .merge(crate::serving::metrics_router())
        .layer(problem_stack())
}

async fn embed(
    State(app): State<Embeddings>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EmbeddingsResponse>, Problem> {
    let body = body.map_err(|r| crate::serving::body_problem(&r))?;
    let request: EmbeddingsRequest = serde_json::from_slice(&body).map_err(|e| {
        let mut invalid = Invalid::new();
        invalid.push(
            "body",
            format!("not an embeddings request ({{\"input\": \"text\" or [\"text\", ...]}}): {e}"),
        );
        Problem::invalid(invalid)
    })?;
    let texts = request.input.into_vec();
    check(&app, &texts).map_err(Problem::invalid)?;
    // The gate is open, so the model is there; a race with nothing is
    // still an answer, not a panic.
    let model = app
        .model()
        .ok_or_else(|| Problem::for_status(http::StatusCode::SERVICE_UNAVAILABLE))?;
    // Hashing 32 × 10,000 characters is a few milliseconds of CPU: off
    // the async workers.
    let response = tokio::task::spawn_blocking(move || {
        let tokens = texts.iter().map(|t| model.tokens(t)).sum();
        let vectors = texts.iter().map(|t| model.embed(t)).collect();
        EmbeddingsResponse::new(model.name(), vectors, tokens)
    })
    .await
    .map_err(|_| Problem::internal())?;
    metrics::counter!("embeddings_inputs_total").increment(response.data.len() as u64);
    Ok(Json(response))
}

/// The batch's bounds, every input in error named.
fn check(app: &Embeddings, texts: &[String]) -> Result<(), Invalid> {
    let mut invalid = Invalid::new();
    let max = app.config.max_inputs;
    if texts.is_empty() {
        invalid.push("input", "must hold at least one text");
    } else if texts.len() > max {
        invalid.push(
            "input",
            format!(
                "holds {} texts; at most {max} fit in one request",
                texts.len()
            ),
        );
    }
    for (i, text) in texts.iter().enumerate().take(max) {
        let chars = text.chars().count();
        if text.trim().is_empty() {
            invalid.push(format!("input[{i}]"), "must not be empty");
        } else if chars > app.config.max_chars {
            invalid.push(
                format!("input[{i}]"),
                format!(
                    "is {chars} characters; at most {} fit",
                    app.config.max_chars
                ),
            );
        }
    }
    invalid.into_result()
}
