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
    CompletionRequest, CompletionResponse, EmbeddingsRequest, EmbeddingsResponse, Input,
    SearchRequest, SearchResponse,
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
                let passages = store.keyword(&q.question, q.limit).await?;
                Ok::<_, BoxError>(Served::normal(Found::Keyword(passages)))
            }
        });
        let search = vector_store.fallback(search, backup::service(keyword))?;

        let llm = dependency("llm")?;
        let client = endpoints.llm.clone();
        let complete = llm.service(service_fn(move |prompt: Arc<str>| {
            let client = client.clone();
            async move {
                let request = CompletionRequest {
                    prompt: prompt.to_string(),
                    n_predict: Some(256),
                };
                let answer: CompletionResponse = client.post("/completion", &request).await?;
                Ok::<_, BoxError>(Served::normal(Some(answer.content)))
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
