//! The three upstreams of a query, each behind the stack its policy
//! declares (fallback, timeout, retry, bulkhead, breaker, attempt timeout,
//! in that order), with the degraded answer of each as its fallback:
//!
//! | upstream | its fallback |
//! |---|---|
//! | embeddings | the cached embedding of the same question, if any |
//! | vector store | keyword search in the document store |
//! | LLM | no generated answer: the passages alone |

use std::sync::Arc;

use buttress::BoxError;
use buttress::degrade::{Served, backup};
use buttress::policy::{Policy, Stacked};
use tower::service_fn;

use super::cache::EmbeddingCache;
use super::store::{Passage, Store};
use crate::client::JsonClient;
use crate::wire::{
    ChatMessage, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse,
    EmbeddingsRequest, EmbeddingsResponse, Input, SearchRequest, SearchResponse,
};

/// The dependencies the policy must declare.
pub const DEPENDENCIES: [&str; 3] = ["embeddings", "vector_store", "llm"];

/// A question on its way to the embeddings service.
#[derive(Debug, Clone)]
pub struct EmbedQuery {
    /// The question.
    pub question: Arc<str>,
    /// The SHA-256 of its normalised text: the cache key.
    pub hash: Arc<str>,
}

/// A question and its vector on their way to the vector store.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// The question, for the keyword fallback.
    pub question: Arc<str>,
    /// Its embedding.
    pub vector: Arc<Vec<f32>>,
    /// How many passages to find.
    pub limit: usize,
}

/// What a search found.
#[derive(Debug, Clone)]
pub enum Found {
    /// Ids and scores from the vector store; the documents load next.
    Vector(Vec<(i64, f32)>),
    /// Whole passages from keyword search.
    Keyword(Vec<Passage>),
    /// The vector store failed and so did keyword search: the document
    /// store is down (what went wrong, for the log).
    StoreDown(String),
}

/// The embeddings client's answer: a vector, or (degraded) the cached one
/// or none.
pub type EmbedService = Stacked<EmbedQuery, Served<Option<Arc<Vec<f32>>>>>;
/// The vector store's answer, or (degraded) keyword search.
pub type SearchService = Stacked<SearchQuery, Served<Found>>;
/// The LLM's answer, or (degraded) none.
pub type CompleteService = Stacked<Arc<str>, Served<Option<String>>>;

/// The three upstream services.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// Embeddings.
    pub embed: EmbedService,
    /// Vector search.
    pub search: SearchService,
    /// Completion.
    pub complete: CompleteService,
}

/// A dependency the policy does not declare.
#[derive(Debug, thiserror::Error)]
#[error(
    "the policy declares no dependency {0:?}; the knowledge API needs embeddings, vector_store and llm"
)]
pub struct Undeclared(pub &'static str);

/// The base URLs and the collection.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The embeddings service.
    pub embeddings: JsonClient,
    /// Qdrant.
    pub qdrant: JsonClient,
    /// The collection searched.
    pub collection: String,
    /// The LLM server.
    pub llm: JsonClient,
    /// Which of its APIs to call.
    pub llm_api: LlmApi,
}

/// The LLM server's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LlmApi {
    /// llama.cpp's `POST /completion` (`LLM_API=completion`, the default).
    #[default]
    Completion,
    /// OpenAI-compatible `POST /v1/chat/completions` (`LLM_API=chat`).
    Chat,
}

impl std::str::FromStr for LlmApi {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "completion" => Ok(LlmApi::Completion),
            "chat" => Ok(LlmApi::Chat),
            other => Err(format!(
                "{other:?} is not an LLM API: completion (llama.cpp) or chat (OpenAI-compatible)"
            )),
        }
    }
}

impl Upstreams {
    /// Builds each upstream's stack from `policy`.
    pub fn new(
        policy: &Policy,
        endpoints: Endpoints,
        store: Store,
        cache: EmbeddingCache,
    ) -> Result<Self, BoxError> {
        let dependency = |name: &'static str| policy.dependency(name).ok_or(Undeclared(name));

        let embeddings = dependency("embeddings")?;
        let client = endpoints.embeddings.clone();
        let embed = embeddings.service(service_fn(move |q: EmbedQuery| {
            let client = client.clone();
            async move {
                let request = EmbeddingsRequest {
                    input: Input::One(q.question.to_string()),
                    model: None,
                };
                let mut answer: EmbeddingsResponse =
                    client.post("/v1/embeddings", &request).await?;
                let vector = answer.data.pop().map(|e| Arc::new(e.embedding));
                Ok::<_, BoxError>(Served::normal(vector))
            }
        }));
        let cached = service_fn(move |q: EmbedQuery| {
            let cache = cache.clone();
            async move { Ok::<_, BoxError>(Served::normal(cache.get(&q.hash).await)) }
        });
        let embed = embeddings.fallback(embed, backup::service(cached))?;

        let vector_store = dependency("vector_store")?;
        let client = endpoints.qdrant.clone();
        let path = format!("/collections/{}/points/search", endpoints.collection);
        let search = vector_store.service(service_fn(move |q: SearchQuery| {
            let (client, path) = (client.clone(), path.clone());
            async move {
                let request = SearchRequest {
                    vector: q.vector.to_vec(),
                    limit: q.limit,
                    with_payload: false,
                };
                let answer: SearchResponse = client.post(&path, &request).await?;
                let hits = answer.result.into_iter().map(|p| (p.id, p.score)).collect();
                Ok::<_, BoxError>(Served::normal(Found::Vector(hits)))
            }
        }));
        let keyword = service_fn(move |q: SearchQuery| {
            let store = store.clone();
            async move {
                // Never an error: a failed backup would hand the caller the
                // vector store's error, and the database's would be lost.
                let found = match store.keyword(&q.question, q.limit).await {
                    Ok(passages) => Found::Keyword(passages),
                    Err(e) => Found::StoreDown(e.to_string()),
                };
                Ok::<_, BoxError>(Served::normal(found))
            }
        });
        let search = vector_store.fallback(search, backup::service(keyword))?;

        let llm = dependency("llm")?;
        let client = endpoints.llm.clone();
        let api = endpoints.llm_api;
        let complete = llm.service(service_fn(move |prompt: Arc<str>| {
            let client = client.clone();
            async move {
                let text = complete(&client, api, &prompt).await?;
                Ok::<_, BoxError>(Served::normal(Some(text)))
            }
        }));
        let complete = llm.fallback(complete, backup::value(Served::normal(None)))?;

        Ok(Upstreams {
            embed,
            search,
            complete,
        })
    }
}

/// Asks the LLM server behind `client` (llama.cpp's `/completion`, or the
/// OpenAI-compatible chat API) to complete `prompt`; at most 256 tokens.
pub async fn complete(client: &JsonClient, api: LlmApi, prompt: &str) -> Result<String, BoxError> {
    match api {
        LlmApi::Completion => {
            let request = CompletionRequest {
                prompt: prompt.to_owned(),
                n_predict: Some(256),
            };
            let answer: CompletionResponse = client.post("/completion", &request).await?;
            Ok(answer.content)
        }
        LlmApi::Chat => {
            let request = ChatRequest {
                messages: vec![ChatMessage {
                    role: "user".to_owned(),
                    content: prompt.to_owned(),
                }],
                model: None,
            };
            let answer: ChatResponse = client.post("/v1/chat/completions", &request).await?;
            answer
                .choices
                .into_iter()
                .next()
                .map(|c| c.message.content)
                .ok_or_else(|| BoxError::from("the LLM answered with no choice"))
        }
    }
}
