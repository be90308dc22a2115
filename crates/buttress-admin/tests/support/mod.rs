//! What the admin tests share: the policy of a knowledge API.

/// A knowledge API's policy: an inbound limit, backpressure, and three
/// dependencies with breakers (the LLM also with a rate limit and a
/// bulkhead).
pub(crate) const POLICY: &str = r#"
[service]
name = "knowledge-api"
inbound = { rate = { count = 150, per = "1m" } }
backpressure = { watermarks = { high = "100MB", low = "50MB" } }

[dependencies.llm]
timeout = "30s"
rate_limit = { count = 10, per = "1s" }
shed = { algorithm = "gradient2", initial = 8, max = 64 }
concurrency = { max_running = 4, max_queued = 50 }
breaker = { consecutive_failures = 3, failure_rate_threshold = "off", open = { kind = "fixed", duration = "120s" } }

[dependencies.embeddings]
critical = false
timeout = "5s"
breaker = { consecutive_failures = 5, failure_rate_threshold = "off", open = { kind = "fixed", duration = "60s" } }

[dependencies.vector-store]
critical = false
timeout = "5s"
breaker = { consecutive_failures = 5, failure_rate_threshold = "off", open = { kind = "fixed", duration = "60s" } }
"#;
