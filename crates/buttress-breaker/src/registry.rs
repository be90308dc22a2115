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
    ///
    /// ```
    /// use buttress_breaker::Registry;
    /// assert!(Registry::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CircuitBreaker>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `breaker`; a second breaker with the same name is refused.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, ConfigError, Registry};
    ///
    /// let registry = Registry::new();
    /// let db = CircuitBreaker::builder("db").build()?;
    /// registry.register(&db)?;
    /// assert_eq!(
    ///     registry.register(&db),
    ///     Err(ConfigError::DuplicateName("db".into()))
    /// );
    /// # Ok::<(), ConfigError>(())
    /// ```
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
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry, State};
    ///
    /// let registry = Registry::new();
    /// CircuitBreaker::builder("db").registry(&registry).build()?;
    /// registry.get("db").expect("registered").force_open();
    /// assert_eq!(registry.get("db").map(|b| b.state()), Some(State::ForcedOpen));
    /// assert!(registry.get("cache").is_none());
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        self.read().get(name).cloned()
    }

    /// Removes and returns the breaker called `name`.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry};
    ///
    /// let registry = Registry::new();
    /// CircuitBreaker::builder("db").registry(&registry).build()?;
    /// assert!(registry.remove("db").is_some());
    /// assert!(registry.remove("db").is_none());
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn remove(&self, name: &str) -> Option<CircuitBreaker> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
    }

    /// Every name, in order.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry};
    ///
    /// let registry = Registry::new();
    /// for name in ["llm", "embeddings"] {
    ///     CircuitBreaker::builder(name).registry(&registry).build()?;
    /// }
    /// assert_eq!(registry.names(), ["embeddings", "llm"]);
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// How many breakers are registered.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry};
    ///
    /// let registry = Registry::new();
    /// CircuitBreaker::builder("db").registry(&registry).build()?;
    /// assert_eq!(registry.len(), 1);
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether none is.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry};
    ///
    /// let registry = Registry::new();
    /// assert!(registry.is_empty());
    /// CircuitBreaker::builder("db").registry(&registry).build()?;
    /// assert!(!registry.is_empty());
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// A snapshot of every breaker, in name order.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry, State};
    ///
    /// let registry = Registry::new();
    /// for name in ["llm", "embeddings"] {
    ///     CircuitBreaker::builder(name).registry(&registry).build()?;
    /// }
    /// registry.get("llm").expect("registered").force_open();
    /// let states: Vec<_> = registry.snapshots().into_iter().map(|s| (s.name, s.state)).collect();
    /// assert_eq!(
    ///     states,
    ///     [("embeddings".to_string(), State::Closed), ("llm".to_string(), State::ForcedOpen)]
    /// );
    /// # Ok::<(), buttress_breaker::ConfigError>(())
    /// ```
    pub fn snapshots(&self) -> Vec<Snapshot> {
        // Clone the handles first so no breaker work runs under the lock.
        let breakers: Vec<CircuitBreaker> = self.read().values().cloned().collect();
        breakers.iter().map(CircuitBreaker::snapshot).collect()
    }
}
