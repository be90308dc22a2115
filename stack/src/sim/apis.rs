//! The simulated APIs and the control endpoints.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Faults, Sim, Target, validate};
use crate::model::{HashedModel, MODEL_NAME, cosine};
use crate::wire::{
    ChatRequest, CompletionRequest, CompletionResponse, EmbeddingsRequest, EmbeddingsResponse,
    ScoredPoint, SearchRequest, SearchResponse,
};

/// Every route: each API at the root and under its own prefix, and the
/// control endpoints.
pub(super) fn router(sim: Sim) -> Router {
    let llm = Router::new()
        .route("/completion", post(completion))
        .route("/v1/chat/completions", post(chat))
        .route("/health", get(ok));
    let embeddings = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/health", get(ok));
    let qdrant = Router::new()
        .route("/collections/{name}/points/search", post(search))
        .route(
            "/collections/{name}",
            get(collection).put(create_collection),
        )
        .route(
            "/collections/{name}/points",
            axum::routing::put(upsert_points),
        )
        .route("/healthz", get(ok))
        .route("/readyz", get(ok));
    Router::new()
        .merge(llm.clone())
        .route("/v1/embeddings", post(embeddings_root))
        .merge(qdrant.clone())
        .nest("/llm", llm)
        .nest("/embeddings", embeddings)
        .nest("/qdrant", qdrant)
        .route(
            "/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/stats", get(stats))
        .with_state(sim)
}

async fn ok() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn completion(Json(req): Json<CompletionRequest>) -> Json<CompletionResponse> {
    Json(CompletionResponse {
        content: answer_to(&req.prompt),
        stop: true,
    })
}

async fn chat(Json(req): Json<ChatRequest>) -> Json<Value> {
    let prompt = req
        .messages
        .last()
        .map(|m| m.content.as_str())
        .unwrap_or("");
    Json(json!({
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "model": req.model.unwrap_or_else(|| "upstream-sim".to_owned()),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_to(prompt)}, "finish_reason": "stop"}],
    }))
}

/// A stand-in for generation: deterministic, and visibly built from the
/// prompt (its first line, which the knowledge API makes the question).
fn answer_to(prompt: &str) -> String {
    let first = prompt.lines().next().unwrap_or("").trim();
    let words = prompt.split_whitespace().count();
    format!("From the {words} words given: {first}")
}

async fn embeddings(Json(req): Json<EmbeddingsRequest>) -> Json<EmbeddingsResponse> {
    let texts = req.input.into_vec();
    let tokens = texts.iter().map(|t| HashedModel.tokens(t)).sum();
    let vectors = texts.iter().map(|t| HashedModel.embed(t)).collect();
    Json(EmbeddingsResponse::new(MODEL_NAME, vectors, tokens))
}

async fn embeddings_root(body: Json<EmbeddingsRequest>) -> Json<EmbeddingsResponse> {
    embeddings(body).await
}

async fn search(
    State(sim): State<Sim>,
    Path(name): Path<String>,
    Json(req): Json<SearchRequest>,
) -> Response {
    if name != sim.inner.collection {
        return missing_collection(&name);
    }
    let mut result: Vec<ScoredPoint> = sim
        .inner
        .index
        .iter()
        .map(|(id, v)| ScoredPoint {
            id: *id,
            score: cosine(&req.vector, v),
            payload: req.with_payload.then(|| {
                let title = crate::corpus::by_id(*id).map(|d| d.title).unwrap_or("");
                json!({"title": title})
            }),
        })
        .collect();
    result.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    result.truncate(req.limit);
    Json(SearchResponse {
        result,
        status: "ok".to_owned(),
        time: 0.0001,
    })
    .into_response()
}

async fn collection(State(sim): State<Sim>, Path(name): Path<String>) -> Response {
    if name != sim.inner.collection {
        return missing_collection(&name);
    }
    Json(json!({
        "result": {"status": "green", "points_count": sim.inner.index.len()},
        "status": "ok",
        "time": 0.0001,
    }))
    .into_response()
}

/// Qdrant's create: the simulator indexes the built-in corpus itself, so
/// it only says yes.
async fn create_collection() -> Json<Value> {
    Json(json!({"result": true, "status": "ok", "time": 0.0001}))
}

/// Qdrant's upsert: acknowledged; the corpus is already indexed.
async fn upsert_points() -> Json<Value> {
    Json(
        json!({"result": {"operation_id": 0, "status": "completed"}, "status": "ok", "time": 0.0001}),
    )
}

fn missing_collection(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"status": {"error": format!("Not found: Collection `{name}` doesn't exist!")}}),
        ),
    )
        .into_response()
}

async fn get_faults(State(sim): State<Sim>) -> Json<BTreeMap<Target, Faults>> {
    Json(sim.faults())
}

/// Sets the faults of each API named in the body, from now; the others
/// keep theirs.
async fn put_faults(State(sim): State<Sim>, body: axum::body::Bytes) -> Response {
    match parse_faults(&body) {
        Ok(set) => {
            for (target, faults) in set {
                sim.set_faults(target, faults);
            }
            Json(sim.faults()).into_response()
        }
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": message})),
        )
            .into_response(),
    }
}

/// Reads `{"llm": {...}, "embeddings": {...}, "qdrant": {...}}` (any of
/// them), checked.
pub fn parse_faults(text: &[u8]) -> Result<BTreeMap<Target, Faults>, String> {
    let raw: BTreeMap<String, Value> =
        serde_json::from_slice(text).map_err(|e| format!("not a JSON object of faults: {e}"))?;
    let mut set = BTreeMap::new();
    for (name, value) in raw {
        let target = Target::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| format!("{name}: not an API (llm, embeddings or qdrant)"))?;
        let faults: Faults = serde_json::from_value(value).map_err(|e| format!("{name}: {e}"))?;
        validate(&faults).map_err(|e| format!("{name}: {e}"))?;
        set.insert(target, faults);
    }
    Ok(set)
}

async fn clear_faults(State(sim): State<Sim>) -> Json<BTreeMap<Target, Faults>> {
    sim.clear_faults();
    Json(sim.faults())
}

async fn stats(State(sim): State<Sim>) -> Json<Value> {
    let mut out = serde_json::Map::new();
    for t in Target::ALL {
        out.insert(t.name().to_owned(), json!(sim.stats(t)));
    }
    Json(Value::Object(out))
}

/// The answer to a request that drew an injected error.
pub(super) fn error_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": "injected by upstream-sim", "type": "server_error"}})),
    )
        .into_response()
}

/// llama.cpp's answer while its model loads.
pub(super) fn loading_response(left: Duration) -> Response {
    let seconds = left.as_secs_f64().ceil().max(1.0) as u64;
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(http::header::RETRY_AFTER, seconds.to_string())],
        Json(json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})),
    )
        .into_response()
}
