//! The running policy: the primitives a document declares, changed in
//! place by each new document, with the versions applied.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use buttress_limit::{KeyedRateLimiter, Networks, Quota};
use buttress_pressure::Gauge;
use tokio::sync::watch;

use crate::dependency::{Dependency, Problems, RESTART, as_declared};
use crate::document::{InboundPolicy, PolicyDocument};
use crate::error::{DocumentError, Path, Problem};
use crate::events::{self, PolicyEvent};
use crate::format::{self, Format};

/// How many applied versions a policy keeps by default.
pub const DEFAULT_VERSIONS_KEPT: usize = 20;

/// One applied version of the policy: the document, when, and by whom.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Applied {
    /// 1 for the first document, then one more for each applied change.
    pub version: u64,
    /// The document.
    pub document: PolicyDocument,
    /// When it was applied.
    pub at: SystemTime,
    /// Who or what applied it: `"startup"`, `"file /etc/app/policy.toml"`,
    /// `"admin"`, or what the caller of [`Policy::apply`] said.
    pub by: String,
}

/// A service's running resilience policy.
///
/// Built from a [`PolicyDocument`]; every primitive the document declares
/// runs here, and [`apply`](Self::apply) changes them in place: limits,
/// thresholds, open periods, watermarks, retry settings, bulkhead bounds
/// and timeouts. A document the running primitives cannot take (a layer
/// added or removed, a dependency removed, a breaker's window reshaped) is
/// refused whole with its problems, and nothing changes.
///
/// Cheap to clone; clones share everything.
///
/// ```
/// use std::time::Duration;
/// use buttress_policy::{Format, Policy, PolicyDocument};
///
/// let policy = Policy::from_text(r#"
/// [dependencies.llm]
/// timeout = "30s"
/// breaker = { consecutive_failures = 3, open = { kind = "fixed", duration = "120s" } }
/// "#, Format::Toml)?;
/// let llm = policy.dependency("llm").expect("declared");
///
/// let mut next = policy.document();
/// next.dependencies.get_mut("llm").unwrap().timeout = Some(Duration::from_secs(10));
/// policy.apply(next, "an operator")?;
/// assert_eq!(llm.timeout(), Some(Duration::from_secs(10))); // the running stack sees it
/// assert_eq!(policy.current().version, 2);
/// # Ok::<(), buttress_policy::DocumentError>(())
/// ```
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    dependencies: ArcSwap<BTreeMap<String, Dependency>>,
    inbound: Option<Inbound>,
    backpressure: Option<Gauge>,
    /// The versions applied, oldest first; the last is the current one.
    history: Mutex<VecDeque<Arc<Applied>>>,
    keep: usize,
    changes: watch::Sender<Arc<Applied>>,
    events: events::Sender,
}

/// The per-client limiter and its exempt networks, which change live.
struct Inbound {
    limiter: KeyedRateLimiter<IpAddr>,
    exempt: Arc<ArcSwap<Networks>>,
    declared: ArcSwap<InboundPolicy>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("version", &self.current().version)
            .field("dependencies", &self.inner.dependencies.load().keys())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Builds the primitives `document` declares, as version 1, applied
    /// by `"startup"`. A dependency with `concurrency` needs a tokio
    /// runtime: build the policy inside one.
    pub fn new(document: PolicyDocument) -> Result<Policy, DocumentError> {
        Policy::build(document, None, "startup", DEFAULT_VERSIONS_KEPT)
    }

    /// Reads, checks and builds a document (see [`PolicyDocument::parse`]).
    pub fn from_text(text: &str, format: Format) -> Result<Policy, DocumentError> {
        let document = PolicyDocument::parse(text, format)?;
        Policy::build(
            document,
            Some((text, format)),
            "startup",
            DEFAULT_VERSIONS_KEPT,
        )
    }

    /// Like [`new`](Self::new), keeping the last `versions` applied
    /// versions (at least 1) for [`history`](Self::history) and
    /// [`rollback`](Self::rollback).
    pub fn with_history(
        document: PolicyDocument,
        versions: usize,
    ) -> Result<Policy, DocumentError> {
        Policy::build(document, None, "startup", versions.max(1))
    }

    pub(crate) fn build(
        document: PolicyDocument,
        text: Option<(&str, Format)>,
        by: &str,
        keep: usize,
    ) -> Result<Policy, DocumentError> {
        // A document read from text was checked, with lines, as it was read.
        document.validate()?;
        let lines = |path: &Path| text.and_then(|(t, f)| format::locate(t, f, path));
        let mut problems: Problems = Vec::new();
        let mut dependencies = BTreeMap::new();
        let events = events::channel();
        for (name, section) in &document.dependencies {
            let at = Path::root().key("dependencies").key(name.clone());
            match Dependency::build(name, section, &at, &events) {
                Ok(d) => {
                    dependencies.insert(name.clone(), d);
                }
                Err(p) => problems.extend(p),
            }
        }
        let service_name = document.service.name.as_deref().unwrap_or("service");
        let inbound =
            document
                .service
                .inbound
                .as_ref()
                .and_then(|p| match Inbound::build(service_name, p) {
                    Ok(i) => Some(i),
                    Err(e) => {
                        problems.push((Path::root().key("service").key("inbound"), e));
                        None
                    }
                });
        let backpressure = document.service.backpressure.and_then(|c| {
            Gauge::builder(service_name, c)
                .build()
                .map_err(|e| {
                    problems.push((
                        Path::root().key("service").key("backpressure"),
                        e.to_string(),
                    ))
                })
                .ok()
        });
        if !problems.is_empty() {
            return Err(located(problems, &lines));
        }
        let applied = Arc::new(Applied {
            version: 1,
            document,
            at: SystemTime::now(),
            by: by.to_owned(),
        });
        let (changes, _) = watch::channel(applied.clone());
        Ok(Policy {
            inner: Arc::new(Inner {
                dependencies: ArcSwap::from_pointee(dependencies),
                inbound,
                backpressure,
                history: Mutex::new(VecDeque::from([applied])),
                keep,
                changes,
                events,
            }),
        })
    }

    /// The version in force.
    pub fn current(&self) -> Arc<Applied> {
        let last = self.lock_history().back().cloned();
        last.unwrap_or_else(|| self.inner.changes.borrow().clone())
    }

    /// The document in force, as the running primitives have it (each
    /// section read back from its primitive).
    ///
    /// ```
    /// use buttress_policy::{Format, Policy};
    ///
    /// let text = "[dependencies.db]\ntimeout = \"5s\"\nretry = { max_attempts = 4 }\n";
    /// let policy = Policy::from_text(text, Format::Toml)?;
    /// assert_eq!(policy.document(), policy.current().document);
    /// # Ok::<(), buttress_policy::DocumentError>(())
    /// ```
    pub fn document(&self) -> PolicyDocument {
        let mut doc = self.current().document.clone();
        for (name, dep) in self.inner.dependencies.load().iter() {
            doc.dependencies.insert(name.clone(), dep.policy());
        }
        if let Some(i) = &self.inner.inbound {
            let mut declared = (**i.declared.load()).clone();
            declared.exempt = i
                .exempt
                .load()
                .networks()
                .iter()
                .map(ToString::to_string)
                .collect();
            declared.rate = as_declared(i.limiter.quota(), declared.rate);
            doc.service.inbound = Some(declared);
        }
        if let Some(g) = &self.inner.backpressure {
            doc.service.backpressure = Some(g.config());
        }
        doc
    }

    /// A dependency's running primitives, by name.
    pub fn dependency(&self, name: &str) -> Option<Dependency> {
        self.inner.dependencies.load().get(name).cloned()
    }

    /// Every dependency, by name.
    pub fn dependencies(&self) -> Vec<Dependency> {
        self.inner.dependencies.load().values().cloned().collect()
    }

    /// The per-client-IP limiter of `service.inbound`, if declared; its
    /// exempt networks are never limited, and both change live.
    pub fn inbound(&self) -> Option<&KeyedRateLimiter<IpAddr>> {
        self.inner.inbound.as_ref().map(|i| &i.limiter)
    }

    /// The backpressure gauge of `service.backpressure`, if declared.
    pub fn backpressure(&self) -> Option<&Gauge> {
        self.inner.backpressure.as_ref()
    }

    /// The versions applied, oldest first, the current one last; at most
    /// the number the policy keeps.
    pub fn history(&self) -> Vec<Arc<Applied>> {
        self.lock_history().iter().cloned().collect()
    }

    /// A receiver of the policy's events as they happen: each breaker's
    /// changes of state, each version applied. A receiver that falls more
    /// than [`EVENTS_BUFFERED`](crate::EVENTS_BUFFERED) events behind loses
    /// the oldest and is told how many (`RecvError::Lagged`); the breakers
    /// never wait for it.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<PolicyEvent> {
        self.inner.events.subscribe()
    }

    /// A receiver that sees each version as it is applied: for the parts
    /// of a policy a program applies itself (the checkpoint interval, a
    /// dependency's criticality).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Applied>> {
        self.inner.changes.subscribe()
    }

    /// Checks `document` against the running primitives and puts it in
    /// force, or refuses it whole with every problem found. `by` says who
    /// or what applied it, for [`history`](Self::history).
    pub fn apply(
        &self,
        document: PolicyDocument,
        by: impl Into<String>,
    ) -> Result<Arc<Applied>, DocumentError> {
        self.apply_located(document, None, by.into())
    }

    /// Reads `text` and applies it: problems name their lines.
    pub fn apply_text(
        &self,
        text: &str,
        format: Format,
        by: impl Into<String>,
    ) -> Result<Arc<Applied>, DocumentError> {
        let document = PolicyDocument::parse(text, format)?;
        self.apply_located(document, Some((text, format)), by.into())
    }

    /// Applies an earlier version's document again, as a new version.
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_policy::{Format, Policy};
    ///
    /// let policy = Policy::from_text("[dependencies.db]\ntimeout = \"5s\"\n", Format::Toml)?;
    /// policy.apply_text("[dependencies.db]\ntimeout = \"1s\"\n", Format::Toml, "a typo")?;
    /// let back = policy.rollback(1, "on call")?;
    /// assert_eq!(back.version, 3);
    /// assert_eq!(back.by, "on call (rollback to version 1)");
    /// assert_eq!(policy.dependency("db").unwrap().timeout(), Some(Duration::from_secs(5)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback(
        &self,
        version: u64,
        by: impl Into<String>,
    ) -> Result<Arc<Applied>, RollbackError> {
        let old = self
            .history()
            .into_iter()
            .find(|a| a.version == version)
            .ok_or(RollbackError::NotKept(version))?;
        let by = format!("{} (rollback to version {version})", by.into());
        self.apply_located(old.document.clone(), None, by)
            .map_err(RollbackError::Refused)
    }

    fn apply_located(
        &self,
        document: PolicyDocument,
        text: Option<(&str, Format)>,
        by: String,
    ) -> Result<Arc<Applied>, DocumentError> {
        document.validate()?;
        let lines = |path: &Path| text.and_then(|(t, f)| format::locate(t, f, path));
        // One change at a time: the check and the switch see one state.
        let mut history = self.lock_history();
        let current = history.back().cloned().ok_or_else(|| {
            DocumentError::one(Path::root(), None, "the policy has no version in force")
        })?;
        let (plan, problems) = self.plan(&current.document, &document);
        if !problems.is_empty() {
            return Err(located(problems, &lines));
        }
        self.commit(&document, plan);
        let applied = Arc::new(Applied {
            version: current.version + 1,
            document,
            at: SystemTime::now(),
            by,
        });
        history.push_back(applied.clone());
        while history.len() > self.inner.keep {
            history.pop_front();
        }
        drop(history);
        tracing::info!(version = applied.version, by = %applied.by, "policy applied");
        self.inner.changes.send_replace(applied.clone());
        let _ = self.inner.events.send(PolicyEvent::Applied {
            version: applied.version,
            by: applied.by.clone(),
        });
        Ok(applied)
    }

    /// What `new` needs built, and what in it the running primitives
    /// cannot take.
    fn plan(
        &self,
        old: &PolicyDocument,
        new: &PolicyDocument,
    ) -> (BTreeMap<String, Dependency>, Problems) {
        let mut problems = Vec::new();
        let mut added = BTreeMap::new();
        let running = self.inner.dependencies.load();
        for name in old.dependencies.keys() {
            if !new.dependencies.contains_key(name) {
                problems.push((
                    Path::root().key("dependencies").key(name.clone()),
                    format!("removing a dependency {RESTART}: its stacks are in use"),
                ));
            }
        }
        for (name, section) in &new.dependencies {
            let at = Path::root().key("dependencies").key(name.clone());
            match (old.dependencies.get(name), running.get(name)) {
                (Some(before), Some(_)) => {
                    problems.extend(Dependency::unchangeable(before, section, &at));
                }
                _ => match Dependency::build(name, section, &at, &self.inner.events) {
                    Ok(d) => {
                        added.insert(name.clone(), d);
                    }
                    Err(p) => problems.extend(p),
                },
            }
        }
        let service = Path::root().key("service");
        if old.service.inbound.is_some() != new.service.inbound.is_some() {
            problems.push((
                service.clone().key("inbound"),
                format!("adding or removing this section {RESTART}"),
            ));
        }
        if old.service.backpressure.is_some() != new.service.backpressure.is_some() {
            problems.push((
                service.key("backpressure"),
                format!("adding or removing this section {RESTART}"),
            ));
        }
        (added, problems)
    }

    /// Puts a checked document in force: each primitive switches whole.
    fn commit(&self, document: &PolicyDocument, added: BTreeMap<String, Dependency>) {
        let running = self.inner.dependencies.load();
        for (name, section) in &document.dependencies {
            if let Some(d) = running.get(name) {
                d.reconfigure(section);
            }
        }
        if !added.is_empty() {
            let mut all = (**running).clone();
            all.extend(added);
            self.inner.dependencies.store(Arc::new(all));
        }
        if let (Some(i), Some(p)) = (&self.inner.inbound, &document.service.inbound) {
            i.reconfigure(p);
        }
        if let (Some(g), Some(c)) = (&self.inner.backpressure, document.service.backpressure)
            && let Err(e) = g.reconfigure(c)
        {
            tracing::error!("the backpressure gauge refused a checked change: {e}");
        }
    }

    fn lock_history(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Applied>>> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inbound {
    fn build(service: &str, p: &InboundPolicy) -> Result<Inbound, String> {
        let quota = Quota::try_from(p.rate).map_err(|e| e.to_string())?;
        let exempt = Arc::new(ArcSwap::from_pointee(
            Networks::parse(&p.exempt).map_err(|e| e.to_string())?,
        ));
        let allow = exempt.clone();
        let limiter = KeyedRateLimiter::builder(format!("{service}-inbound"), quota)
            .allow(move |ip: &IpAddr| allow.load().contains(ip))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Inbound {
            limiter,
            exempt,
            declared: ArcSwap::from_pointee(p.clone()),
        })
    }

    fn reconfigure(&self, p: &InboundPolicy) {
        match (Quota::try_from(p.rate), Networks::parse(&p.exempt)) {
            (Ok(quota), Ok(networks)) => {
                self.limiter.set_quota(quota);
                self.exempt.store(Arc::new(networks));
                self.declared.store(Arc::new(p.clone()));
            }
            _ => tracing::error!("the inbound limit refused a checked change"),
        }
    }
}

fn located(problems: Problems, lines: &impl Fn(&Path) -> Option<usize>) -> DocumentError {
    DocumentError::new(
        problems
            .into_iter()
            .map(|(path, message)| Problem {
                line: lines(&path),
                path,
                message,
            })
            .collect(),
    )
}

/// Why a rollback did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// No kept version has this number.
    #[error("version {0} is not among the versions kept")]
    NotKept(u64),
    /// The old document cannot be applied to what runs now (for example
    /// a dependency added since).
    #[error("the old version cannot be applied now")]
    Refused(#[source] DocumentError),
}
