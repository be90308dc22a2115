//! A registry of named breakers, for health endpoints.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::breaker::CircuitBreaker;
use crate::config::ConfigError;
use crate::snapshot::Snapshot;

/// Named breakers, listed in name order. Cheap to clone; clones share one
/// list.
///
/// ```
/// use buttress_breaker::{BreakerConfig, CircuitBreaker, Registry};
///
/// let registry = Registry::new();
/// for (name, cfg) in [("embeddings", BreakerConfig::embeddings()), ("llm", BreakerConfig::llm())] {
///     CircuitBreaker::builder(name).config(cfg).registry(&registry).build().unwrap();
/// }
/// let states: Vec<_> = registry.snapshots().into_iter().map(|s| (s.name, s.state)).collect();
/// assert_eq!(states.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<BTreeMap<String, CircuitBreaker>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CircuitBreaker>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `breaker`; a second breaker with the same name is refused.
    pub fn register(&self, breaker: &CircuitBreaker) -> Result<(), ConfigError> {
        let mut map = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = breaker.name().to_string();
        if map.contains_key(&name) {
            return Err(ConfigError::DuplicateName(name));
        }
        map.insert(name, breaker.clone());
        Ok(())
    }

    /// The breaker called `name`.
    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        self.read().get(name).cloned()
    }

    /// Removes and returns the breaker called `name`.
    pub fn remove(&self, name: &str) -> Option<CircuitBreaker> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
    }

    /// Every name, in order.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// How many breakers are registered.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// A snapshot of every breaker, in name order.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        // Clone the handles first so no breaker work runs under the lock.
        let breakers: Vec<CircuitBreaker> = self.read().values().cloned().collect();
        breakers.iter().map(CircuitBreaker::snapshot).collect()
    }
}
