//! `POST /query {"question": ...}`: embed, search, load, generate, and
//! answer with the sources, degraded instead of failing where the policy
//! gives a fallback.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::{Extension, Json};
use buttress::degrade::{Invalid, Problem, RequestId, Served};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::KnowledgeApi;
use super::store::Passage;
use super::telemetry::{QueryRecord, now_ms, question_hash};
use super::upstreams::{EmbedQuery, Found, SearchQuery};

/// The longest question taken, in characters.
pub const MAX_QUESTION_CHARS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    question: String,
}

/// What went into one answer.
#[derive(Debug, Default)]
struct Trace {
    answered_by: Vec<&'static str>,
    degraded: Vec<String>,
}

impl Trace {
    fn degrade<T>(&mut self, served: &Served<T>, what: &str) -> bool {
        match &served.degraded {
            Some(d) => {
                self.degraded.push(what.to_owned());
                tracing::debug!(reason = %d.reason(), what, "degraded");
                true
            }
            None => false,
        }
    }
}

fn parse(body: &[u8]) -> Result<String, Invalid> {
    let mut invalid = Invalid::new();
    let query: Query = match serde_json::from_slice(body) {
        Ok(q) => q,
        Err(e) => {
            invalid.push("body", format!("must be {{\"question\": \"...\"}}: {e}"));
            return Err(invalid);
        }
    };
    let chars = query.question.chars().count();
    if query.question.trim().is_empty() {
        invalid.push("question", "must not be empty");
    } else if chars > MAX_QUESTION_CHARS {
        invalid.push(
            "question",
            format!("is {chars} characters; at most {MAX_QUESTION_CHARS} are taken"),
        );
    }
    invalid.into_result()?;
    Ok(query.question)
}

/// The handler.
pub(super) async fn query(
    State(app): State<KnowledgeApi>,
    Extension(id): Extension<RequestId>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let body = body.map_err(|r| crate::serving::body_problem(&r))?;
    let started = tokio::time::Instant::now();
    let request_id = id.header_value().to_str().unwrap_or_default().to_owned();
    let question = parse(&body).map_err(Problem::invalid)?;
    let hash = question_hash(&question);
    let question: Arc<str> = question.into();
    let app = &*app.inner;
    let mut trace = Trace::default();

    // 1. The question's embedding: fresh, cached, or none.
    let embedded = app
        .upstreams
        .embed
        .clone()
        .oneshot(EmbedQuery {
            question: question.clone(),
            hash: hash.clone().into(),
        })
        .await
        .map_err(|e| upstream_problem(&e))?;
    let vector = if trace.degrade(&embedded, "cached embedding") {
        if embedded.value.is_some() {
            trace.answered_by.push("embedding_cache");
        } else {
            trace.degraded.pop();
        }
        embedded.value
    } else {
        trace.answered_by.push("embeddings");
        if let Some(v) = &embedded.value {
            // Off the answer's path: a slow cache never slows a query.
            let (cache, hash, v) = (app.cache.clone(), hash.clone(), v.clone());
            tokio::spawn(async move { cache.put(&hash, v).await });
        }
        embedded.value
    };

    // 2. The passages: vector search, or keyword search.
    let limit = app.config.top_k;
    let found = match vector {
        Some(vector) => {
            let served = app
                .upstreams
                .search
                .clone()
                .oneshot(SearchQuery {
                    question: question.clone(),
                    vector,
                    limit,
                })
                .await
                .map_err(|e| upstream_problem(&e))?;
            trace.degrade(&served, "no vector search");
            served.value
        }
        None => {
            trace.degraded.push("no vector search".to_owned());
            let passages = app
                .store
                .keyword(&question, limit)
                .await
                .map_err(store_problem)?;
            Found::Keyword(passages)
        }
    };
    let passages: Vec<Passage> = match found {
        Found::Vector(mut hits) => {
            // A question of common words only has no direction: nothing
            // matches it, whatever the order the store returns.
            hits.retain(|&(_, score)| score > 0.0);
            trace.answered_by.push("vector_store");
            let passages = app.store.load(&hits).await.map_err(store_problem)?;
            trace.answered_by.push("documents");
            passages
        }
        Found::Keyword(passages) => {
            trace.answered_by.push("keyword_search");
            passages
        }
        Found::StoreDown(e) => {
            tracing::warn!(error = %e, "keyword search failed");
            return Err(unavailable());
        }
    };

    // 3. The answer: generated, or the passages alone.
    let prompt = prompt(&question, &passages);
    let generated = app
        .upstreams
        .complete
        .clone()
        .oneshot(prompt.into())
        .await
        .map_err(|e| upstream_problem(&e))?;
    if !trace.degrade(&generated, "no generated answer") {
        trace.answered_by.push("llm");
    }

    // 4. The record, on disk before the answer leaves.
    let latency_ms = started.elapsed().as_millis() as u64;
    let record = QueryRecord {
        at_ms: now_ms(),
        request_id: request_id.clone(),
        question_sha256: hash,
        latency_ms,
        answered_by: trace.answered_by.iter().map(|s| (*s).to_owned()).collect(),
        degraded: trace.degraded.clone(),
        passages: passages.len(),
    };
    app.journal.append(&record).await.map_err(|e| {
        tracing::error!(error = %e, request_id, "telemetry not recorded");
        Problem::for_status(http::StatusCode::SERVICE_UNAVAILABLE)
            .with_request_id(request_id.clone())
    })?;
    metrics::counter!("knowledge_queries_total", "degraded" => (!trace.degraded.is_empty()).to_string())
        .increment(1);

    let mut body = json!({
        "answer": generated.value,
        "sources": passages,
        "answered_by": trace.answered_by,
        "request_id": request_id,
    });
    if !trace.degraded.is_empty() {
        body["degraded"] = json!(trace.degraded.join(", "));
        body["degradations"] = json!(trace.degraded);
    }
    Ok(Json(body))
}

/// The database failed: it is critical, so the query cannot be answered.
fn store_problem(e: super::store::StoreError) -> Problem {
    tracing::warn!(error = %e, "document store failed");
    unavailable()
}

/// `503` with `Retry-After`: a dependency the answer needs failed.
fn unavailable() -> Problem {
    Problem::for_status(http::StatusCode::SERVICE_UNAVAILABLE)
        .with_retry_after(std::time::Duration::from_secs(1))
}

/// An upstream's failure that no fallback answered (the policy declares
/// none): a refusal keeps its own status (`503`, `429`, `504`); any other
/// failure is a `503`, logged, never a `500`.
fn upstream_problem(e: &buttress::BoxError) -> Problem {
    if buttress::degrade::refusal_in(&**e).is_some() {
        return Problem::from_error(&**e);
    }
    tracing::warn!(error = %e, "an upstream failed and the policy gives no fallback");
    unavailable()
}

/// The question first (the simulator echoes the first line), then the
/// passages to answer from.
fn prompt(question: &str, passages: &[Passage]) -> String {
    let mut prompt = format!("{}\n\nAnswer from these passages only:\n", question.trim());
    for p in passages {
        prompt.push_str(&format!("[{}] {}: {}\n", p.id, p.title, p.body));
    }
    prompt
}
