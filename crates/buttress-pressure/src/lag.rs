//! [`LagGauge`]: pending items and the age of the oldest, per kind.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress_core::sync::Mutex;
use buttress_core::{Name, NameError, SharedClock};
use hashbrown::HashMap;

/// For outbox-style queues: how many items of each kind are pending, and
/// how long the oldest has waited, exported as
/// `buttress_pressure_pending{name,kind}` and
/// `buttress_pressure_oldest_pending_seconds{name,kind}`.
///
/// Items complete in any order; the oldest is always known (each kind keeps
/// its pending items ordered by arrival).
///
/// ```
/// use buttress_pressure::LagGauge;
///
/// let outbox = LagGauge::new("outbox")?;
/// let a = outbox.enqueue("embedding");
/// let b = outbox.enqueue("embedding");
/// outbox.done(a);
/// let lag = outbox.snapshot();
/// assert_eq!(lag[0].pending, 1);
/// # outbox.done(b);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LagGauge {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    clock: SharedClock,
    kinds: Mutex<HashMap<String, Kind>>,
}

/// Kinds beyond this many are counted together as `"other"`, so that
/// hostile or unbounded kind strings cannot grow memory or metric series
/// without bound.
pub const MAX_KINDS: usize = 256;

struct Kind {
    next: u64,
    /// Arrival number → arrival time: the first entry is the oldest.
    pending: BTreeMap<u64, Instant>,
    pending_metric: metrics::Gauge,
    oldest_metric: metrics::Gauge,
}

impl fmt::Debug for LagGauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LagGauge")
            .field("name", &self.inner.name)
            .field("kinds", &self.snapshot())
            .finish()
    }
}

/// One pending item. It stops being pending when passed to
/// [`LagGauge::done`] or dropped, so a lost token cannot age forever.
#[must_use = "the item stops being pending as soon as this is dropped"]
pub struct Pending {
    gauge: Arc<Inner>,
    kind: String,
    seq: u64,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("kind", &self.kind)
            .field("seq", &self.seq)
            .finish()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let now = self.gauge.clock.now();
        let mut kinds = self.gauge.kinds.lock();
        if let Some(k) = kinds.get_mut(&self.kind) {
            k.pending.remove(&self.seq);
            k.pending_metric.set(k.pending.len() as f64);
            let oldest = k
                .pending
                .values()
                .next()
                .map_or(0.0, |t| now.saturating_duration_since(*t).as_secs_f64());
            k.oldest_metric.set(oldest);
        }
    }
}

/// The lag of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindLag {
    /// The kind.
    pub kind: String,
    /// Items pending.
    pub pending: u64,
    /// How long the oldest pending item has waited.
    pub oldest: Option<Duration>,
}

impl LagGauge {
    /// A lag gauge named `name` (the `name` label of its metrics), reading
    /// [`default_clock`](buttress_core::default_clock).
    ///
    /// ```
    /// use buttress_pressure::LagGauge;
    ///
    /// let outbox = LagGauge::new("outbox")?;
    /// assert!(outbox.snapshot().is_empty());
    /// assert!(LagGauge::new("").is_err());
    /// # Ok::<(), buttress_core::NameError>(())
    /// ```
    pub fn new(name: &str) -> Result<LagGauge, NameError> {
        Ok(LagGauge {
            inner: Arc::new(Inner {
                name: Name::new(name)?,
                clock: buttress_core::default_clock(),
                kinds: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A lag gauge named `name` that reads time from `clock`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use buttress_core::ManualClock;
    /// use buttress_pressure::LagGauge;
    ///
    /// let clock = ManualClock::new();
    /// let outbox = LagGauge::with_clock("outbox", Arc::new(clock.clone()))?;
    /// let item = outbox.enqueue("email");
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(outbox.snapshot()[0].oldest, Some(Duration::from_secs(30)));
    /// # outbox.done(item);
    /// # Ok::<(), buttress_core::NameError>(())
    /// ```
    pub fn with_clock(name: &str, clock: SharedClock) -> Result<LagGauge, NameError> {
        Ok(LagGauge {
            inner: Arc::new(Inner {
                name: Name::new(name)?,
                clock,
                kinds: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// An item of `kind` is now pending (counted as `"other"` once there
    /// are [`MAX_KINDS`] kinds). It stays pending until the returned token
    /// is passed to [`done`](LagGauge::done) or dropped.
    ///
    /// ```
    /// # use buttress_pressure::LagGauge;
    /// let outbox = LagGauge::new("outbox")?;
    /// let item = outbox.enqueue("embedding");
    /// assert_eq!(outbox.snapshot()[0].kind, "embedding");
    /// assert_eq!(outbox.snapshot()[0].pending, 1);
    /// # drop(item);
    /// # Ok::<(), buttress_core::NameError>(())
    /// ```
    pub fn enqueue(&self, kind: &str) -> Pending {
        let now = self.inner.clock.now();
        let mut kinds = self.inner.kinds.lock();
        let kind = if kinds.contains_key(kind) || kinds.len() < MAX_KINDS - 1 {
            kind
        } else {
            "other"
        };
        let entry = match kinds.get_mut(kind) {
            Some(k) => k,
            None => {
                let name = self.inner.name.as_str().to_owned();
                let k = Kind {
                    next: 0,
                    pending: BTreeMap::new(),
                    pending_metric: metrics::gauge!("buttress_pressure_pending", "name" => name.clone(), "kind" => kind.to_owned()),
                    oldest_metric: metrics::gauge!("buttress_pressure_oldest_pending_seconds", "name" => name, "kind" => kind.to_owned()),
                };
                kinds.entry(kind.to_owned()).or_insert(k)
            }
        };
        let seq = entry.next;
        entry.next += 1;
        entry.pending.insert(seq, now);
        entry.pending_metric.set(entry.pending.len() as f64);
        Pending {
            gauge: self.inner.clone(),
            kind: kind.to_owned(),
            seq,
        }
    }

    /// The item is no longer pending (the same as dropping it).
    ///
    /// ```
    /// # use buttress_pressure::LagGauge;
    /// let outbox = LagGauge::new("outbox")?;
    /// let item = outbox.enqueue("embedding");
    /// outbox.done(item);
    /// assert_eq!(outbox.snapshot()[0].pending, 0);
    /// # Ok::<(), buttress_core::NameError>(())
    /// ```
    pub fn done(&self, item: Pending) {
        drop(item);
    }

    /// Every kind's lag, sorted by kind; also refreshes the age metrics
    /// (call it from a periodic task to keep them current while nothing
    /// completes).
    ///
    /// ```
    /// # use buttress_pressure::LagGauge;
    /// let outbox = LagGauge::new("outbox")?;
    /// let a = outbox.enqueue("email");
    /// let b = outbox.enqueue("embedding");
    /// let kinds: Vec<_> = outbox.snapshot().into_iter().map(|k| (k.kind, k.pending)).collect();
    /// assert_eq!(kinds, [("email".to_owned(), 1), ("embedding".to_owned(), 1)]);
    /// # drop((a, b));
    /// # Ok::<(), buttress_core::NameError>(())
    /// ```
    pub fn snapshot(&self) -> Vec<KindLag> {
        let now = self.inner.clock.now();
        let kinds = self.inner.kinds.lock();
        let mut out: Vec<KindLag> = kinds
            .iter()
            .map(|(kind, k)| {
                let oldest = k
                    .pending
                    .values()
                    .next()
                    .map(|t| now.saturating_duration_since(*t));
                k.oldest_metric.set(oldest.map_or(0.0, |d| d.as_secs_f64()));
                KindLag {
                    kind: kind.clone(),
                    pending: k.pending.len() as u64,
                    oldest,
                }
            })
            .collect();
        out.sort_by(|a, b| a.kind.cmp(&b.kind));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use buttress_core::ManualClock;

    #[test]
    fn counts_and_ages_per_kind_in_any_completion_order() {
        let clock = ManualClock::new();
        let lag = LagGauge::with_clock("outbox", Arc::new(clock.clone())).expect("name");
        let a = lag.enqueue("embed");
        clock.advance(Duration::from_secs(2));
        let b = lag.enqueue("embed");
        let c = lag.enqueue("chat");
        clock.advance(Duration::from_secs(3));
        let snap = lag.snapshot();
        assert_eq!(
            snap[0],
            KindLag {
                kind: "chat".into(),
                pending: 1,
                oldest: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            snap[1],
            KindLag {
                kind: "embed".into(),
                pending: 2,
                oldest: Some(Duration::from_secs(5))
            }
        );
        lag.done(a);
        assert_eq!(lag.snapshot()[1].oldest, Some(Duration::from_secs(3)));
        lag.done(b);
        lag.done(c);
        assert!(
            lag.snapshot()
                .iter()
                .all(|k| k.pending == 0 && k.oldest.is_none())
        );
    }

    #[test]
    fn kinds_are_bounded_and_dropped_tokens_retire() {
        let lag = LagGauge::new("outbox").expect("name");
        let tokens: Vec<Pending> = (0..1000).map(|i| lag.enqueue(&format!("k{i}"))).collect();
        let snap = lag.snapshot();
        assert_eq!(snap.len(), MAX_KINDS);
        let other = snap
            .iter()
            .find(|k| k.kind == "other")
            .map_or(0, |k| k.pending);
        assert_eq!(other, 1000 - (MAX_KINDS as u64 - 1));
        drop(tokens);
        assert!(lag.snapshot().iter().all(|k| k.pending == 0));
    }
}
