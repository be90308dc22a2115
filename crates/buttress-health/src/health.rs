//! [`Health`]: the registry of checks, and the reports it makes of them.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures_util::future::join_all;

use crate::check::Check;
use crate::error::HealthError;
use crate::gate::Readiness;
use crate::options::CheckOptions;
use crate::probe::Entry;
use crate::report::{RESERVED, ReadyReport, Report};
use crate::status::{CheckStatus, aggregate, is_ready};

/// A service's health: its named checks, its readiness gate, its uptime
/// and version. Clones share one registry.
///
/// ```
/// use buttress_health::{CheckOptions, Health, Status, check_fn};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let health = Health::new().version("1.4.0");
/// health.register("postgres", check_fn(|| async { Ok::<_, std::io::Error>(()) }), CheckOptions::critical())?;
/// health.register(
///     "llm",
///     check_fn(|| async { Err::<(), _>(std::io::Error::other("connection refused")) }),
///     CheckOptions::non_critical(),
/// )?;
/// let report = health.report().await;
/// assert_eq!(report.status, Status::Degraded); // answers, without the LLM
/// assert_eq!(report.http_status(), 200);
/// assert_eq!(report.to_json()["llm"], "down");
/// # Ok::<(), buttress_health::HealthError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

/// Adds the checks a source has gained since it last ran (breakers added
/// to a registry after it was attached).
type Source = Box<dyn Fn(&Health) + Send + Sync>;

struct Inner {
    checks: RwLock<Vec<Arc<Entry>>>,
    sources: RwLock<Vec<Source>>,
    readiness: Readiness,
    started: Instant,
    version: RwLock<Option<Arc<str>>>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("checks", &self.names())
            .field("readiness", &self.inner.readiness)
            .finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// No checks yet, an open readiness gate of its own, uptime from now.
    pub fn new() -> Self {
        Self::with_readiness(Readiness::new())
    }

    /// Like [`new`](Health::new), reporting on an existing gate.
    pub fn with_readiness(readiness: Readiness) -> Self {
        Self {
            inner: Arc::new(Inner {
                checks: RwLock::new(Vec::new()),
                sources: RwLock::new(Vec::new()),
                readiness,
                started: Instant::now(),
                version: RwLock::new(None),
            }),
        }
    }

    /// Sets the version the report shows (for example
    /// `env!("CARGO_PKG_VERSION")`; clones share it).
    #[must_use]
    pub fn version(self, version: impl Into<String>) -> Self {
        *self
            .inner
            .version
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(version.into()));
        self
    }

    /// The readiness gate this registry reports on.
    pub fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }

    /// Adds a check. Names are what the report shows: letters, digits,
    /// `_`, `-`, `.` and `:`, unique, and none of the report's own keys
    /// (`status`, `checks`, `ready`, `startup`, `uptime_seconds`,
    /// `version`); the timeout must be more than zero.
    pub fn register(
        &self,
        name: impl Into<String>,
        check: impl Check,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        self.register_arc(name.into(), Arc::new(check), options)
    }

    pub(crate) fn register_arc(
        &self,
        name: String,
        check: Arc<dyn Check>,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        validate_name(&name)?;
        if options.timeout.is_zero() {
            return Err(HealthError::ZeroTimeout(name));
        }
        let mut checks = self.inner.checks.write().unwrap_or_else(|e| e.into_inner());
        if checks.iter().any(|c| *c.name == *name) {
            return Err(HealthError::Duplicate(name));
        }
        checks.push(Arc::new(Entry::new(Arc::from(name), check, options)));
        Ok(())
    }

    /// The names of the checks, in the order they were registered.
    pub fn names(&self) -> Vec<String> {
        self.entries().iter().map(|e| e.name.to_string()).collect()
    }

    /// The names registered so far, without running the sources.
    #[cfg(feature = "breaker")]
    pub(crate) fn names_unsynced(&self) -> Vec<String> {
        self.inner
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|e| e.name.to_string())
            .collect()
    }

    /// Runs `source` before every report, to register the checks it has
    /// gained since.
    #[cfg(feature = "breaker")]
    pub(crate) fn attach(&self, source: impl Fn(&Health) + Send + Sync + 'static) {
        source(self);
        self.inner
            .sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(source));
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        for source in self
            .inner
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            source(self);
        }
        self.inner
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs every check (each from its cache when fresh, all at once, each
    /// within its timeout) and adds up the results.
    pub async fn report(&self) -> Report {
        let entries = self.entries();
        let checks = join_all(entries.iter().map(|e| e.observe())).await;
        let gate = self.inner.readiness.snapshot();
        let status = aggregate(
            checks.iter().map(|c| (c.status, c.criticality)),
            gate.status,
        );
        Report {
            status,
            checks,
            gate,
            uptime: self.inner.started.elapsed(),
            version: self
                .inner
                .version
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Whether the service is ready: the gate is open and no critical
    /// check that gates readiness is down (only those run; see
    /// [`CheckOptions::readiness`]).
    pub async fn ready(&self) -> ReadyReport {
        let gate = self.inner.readiness.snapshot();
        let critical: Vec<_> = self
            .entries()
            .into_iter()
            .filter(|e| e.options.criticality.is_critical() && e.options.gates_readiness)
            .collect();
        let checks = join_all(critical.iter().map(|e| e.observe())).await;
        let ready = is_ready(
            checks.iter().map(|c| (c.status, c.criticality)),
            gate.status,
        );
        let mut reasons = gate.reasons();
        for c in checks.iter().filter(|c| c.status == CheckStatus::Down) {
            reasons.push(match &c.message {
                Some(m) => format!("{}: {m}", c.name),
                None => format!("{}: down", c.name),
            });
        }
        ReadyReport { ready, reasons }
    }
}

fn validate_name(name: &str) -> Result<(), HealthError> {
    let plain = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if !plain {
        return Err(HealthError::Name(name.to_owned()));
    }
    if RESERVED.contains(&name) {
        return Err(HealthError::Reserved(name.to_owned()));
    }
    Ok(())
}
