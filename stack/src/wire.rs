//! The upstreams' wire formats, as far as the stack uses them: the
//! OpenAI-compatible embeddings API, llama.cpp's `/completion`, the
//! OpenAI-compatible chat completions, and Qdrant's point search.

use serde::{Deserialize, Serialize};

/// `POST /v1/embeddings`: one text or many.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// The texts.
    pub input: Input,
    /// The model asked for (the service answers with its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One text or a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// One text.
    One(String),
    /// A batch.
    Many(Vec<String>),
}

impl Input {
    /// The texts, in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Input::One(s) => vec![s],
            Input::Many(v) => v,
        }
    }
}

/// The answer to `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// Always `"list"`.
    pub object: String,
    /// One embedding per input, in order.
    pub data: Vec<Embedding>,
    /// The model that made them.
    pub model: String,
    /// Token counts.
    pub usage: Usage,
}

/// One embedding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Embedding {
    /// Always `"embedding"`.
    pub object: String,
    /// The input's position.
    pub index: usize,
    /// The vector.
    pub embedding: Vec<f32>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read.
    pub prompt_tokens: usize,
    /// Tokens in all.
    pub total_tokens: usize,
}

impl EmbeddingsResponse {
    /// The answer for `vectors` made by `model`.
    pub fn new(model: &str, vectors: Vec<Vec<f32>>, tokens: usize) -> Self {
        EmbeddingsResponse {
            object: "list".to_owned(),
            data: vectors
                .into_iter()
                .enumerate()
                .map(|(index, embedding)| Embedding {
                    object: "embedding".to_owned(),
                    index,
                    embedding,
                })
                .collect(),
            model: model.to_owned(),
            usage: Usage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
        }
    }
}

/// llama.cpp's `POST /completion`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The prompt.
    pub prompt: String,
    /// The most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_predict: Option<u32>,
}

/// llama.cpp's answer to `POST /completion`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionResponse {
    /// The generated text.
    pub content: String,
    /// Whether generation stopped by itself.
    #[serde(default)]
    pub stop: bool,
}

/// The OpenAI-compatible `POST /v1/chat/completions` (the fields used).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// The model asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One message of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// The OpenAI-compatible answer to a chat completion (the fields used).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answers; the first is used.
    pub choices: Vec<ChatChoice>,
}

/// One answer of a chat completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChoice {
    /// The assistant's message.
    pub message: ChatMessage,
}

/// Qdrant's `POST /collections/{name}/points/search`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The query vector.
    pub vector: Vec<f32>,
    /// How many points to return.
    pub limit: usize,
    /// Whether to return each point's payload.
    #[serde(default)]
    pub with_payload: bool,
}

/// Qdrant's answer to a search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The points found, best first.
    pub result: Vec<ScoredPoint>,
    /// `"ok"`.
    pub status: String,
    /// Seconds the search took.
    pub time: f64,
}

/// One point found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoredPoint {
    /// The point's id (the document's).
    pub id: i64,
    /// Its cosine similarity to the query.
    pub score: f32,
    /// Its payload, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}
