//! Loading the corpus into the vector store: the collection is created
//! when missing (384 dimensions, cosine), and every document's embedding,
//! made by the embeddings service, is upserted by id, so running it again
//! changes nothing. The API runs it in the background at start, retried;
//! until it is done, queries fall back to keyword search.

use serde_json::{Value, json};

use crate::client::{JsonClient, UpstreamError};
use crate::corpus::DOCUMENTS;
use crate::model::DIMENSIONS;
use crate::wire::{EmbeddingsRequest, EmbeddingsResponse, Input};

/// Creates `collection` in `qdrant` if missing and upserts the corpus;
/// returns how many documents were written.
pub async fn ensure_index(
    embeddings: &JsonClient,
    qdrant: &JsonClient,
    collection: &str,
) -> Result<usize, UpstreamError> {
    let path = format!("/collections/{collection}");
    match qdrant.get::<Value>(&path).await {
        Ok(_) => {}
        Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => {
            qdrant
                .send_json::<Value>(
                    "PUT",
                    &path,
                    &json!({"vectors": {"size": DIMENSIONS, "distance": "Cosine"}}),
                )
                .await?;
        }
        Err(e) => return Err(e),
    }
    let texts = DOCUMENTS
        .iter()
        .map(|d| format!("{} {}", d.title, d.body))
        .collect();
    let embedded: EmbeddingsResponse = embeddings
        .post(
            "/v1/embeddings",
            &EmbeddingsRequest {
                input: Input::Many(texts),
                model: None,
            },
        )
        .await?;
    let points: Vec<Value> = DOCUMENTS
        .iter()
        .zip(embedded.data)
        .map(|(d, e)| json!({"id": d.id, "vector": e.embedding, "payload": {"title": d.title}}))
        .collect();
    let written = points.len();
    qdrant
        .send_json::<Value>(
            "PUT",
            &format!("{path}/points?wait=true"),
            &json!({ "points": points }),
        )
        .await?;
    Ok(written)
}
