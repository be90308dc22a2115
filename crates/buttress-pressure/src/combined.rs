//! Several gauges as one, and what a shedding layer asks of a source of
//! pressure.

use std::future::Future;
use std::pin::Pin;

use crate::Priority;
use crate::error::Overloaded;
use crate::gauge::Gauge;

/// A source of pressure a [`ShedLayer`](crate::ShedLayer) consults: one
/// [`Gauge`], or [`AnyGauge`].
pub trait Pressure: Clone + Send + Sync + 'static {
    /// Whether work of `priority` should wait.
    fn is_paused_for(&self, priority: Priority) -> bool;
    /// Resolves once work of `priority` may go on.
    fn flowing_for(&self, priority: Priority) -> Pin<Box<dyn Future<Output = ()> + Send>>;
    /// The error for work refused at `priority`.
    fn overloaded(&self, priority: Priority) -> Overloaded;
    /// Counts work shed at `priority`.
    fn count_shed(&self, priority: Priority);
}

impl Pressure for Gauge {
    // Inlined into the shedding layer's `call` (generic, so compiled in
    // the user's crate): one load and a test per request, not a call.
    #[inline]
    fn is_paused_for(&self, priority: Priority) -> bool {
        Gauge::is_paused_for(self, priority)
    }
    fn flowing_for(&self, priority: Priority) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.wait_flowing_for(priority))
    }
    fn overloaded(&self, priority: Priority) -> Overloaded {
        Gauge::overloaded(self, priority)
    }
    fn count_shed(&self, priority: Priority) {
        self.metrics().shed(priority);
    }
}

/// Several gauges read as one: paused when any of them is (the telemetry
/// backlog *or* the memory in use *or* the outbox depth).
#[derive(Debug, Clone)]
pub struct AnyGauge {
    gauges: Vec<Gauge>,
}

impl AnyGauge {
    /// Paused when any of `gauges` is.
    ///
    /// ```
    /// use buttress_pressure::{AnyGauge, Gauge, Watermarks};
    ///
    /// let backlog = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
    /// let memory = Gauge::builder("memory", Watermarks::new(1 << 30, 1 << 29)?).build()?;
    /// let any = AnyGauge::new([backlog.clone(), memory]);
    /// backlog.set(100);
    /// assert!(any.is_paused());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(gauges: impl IntoIterator<Item = Gauge>) -> AnyGauge {
        AnyGauge {
            gauges: gauges.into_iter().collect(),
        }
    }

    /// Whether normal-priority work should wait.
    ///
    /// ```
    /// # use buttress_pressure::{AnyGauge, Gauge, Watermarks};
    /// let a = Gauge::builder("a", Watermarks::new(10, 5)?).build()?;
    /// let any = AnyGauge::new([a.clone()]);
    /// assert!(!any.is_paused());
    /// a.set(10);
    /// assert!(any.is_paused());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_paused(&self) -> bool {
        self.is_paused_for(Priority::Normal)
    }

    /// Whether work of `priority` should wait.
    ///
    /// ```
    /// # use buttress_pressure::{AnyGauge, Gauge, Priority, Watermarks};
    /// let a = Gauge::builder("a", Watermarks::new(10, 5)?)
    ///     .low_priority(Watermarks::new(8, 4)?)
    ///     .build()?;
    /// let any = AnyGauge::new([a.clone()]);
    /// a.set(8);
    /// assert!(any.is_paused_for(Priority::Low) && !any.is_paused_for(Priority::Normal));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_paused_for(&self, priority: Priority) -> bool {
        self.gauges.iter().any(|g| g.is_paused_for(priority))
    }

    /// `Err` naming the first paused gauge.
    ///
    /// ```
    /// # use buttress_pressure::{AnyGauge, Gauge, Priority, Watermarks};
    /// let a = Gauge::builder("a", Watermarks::new(10, 5)?).build()?;
    /// let b = Gauge::builder("b", Watermarks::new(10, 5)?).build()?;
    /// let any = AnyGauge::new([a, b.clone()]);
    /// b.set(10);
    /// assert_eq!(any.check(Priority::Normal).unwrap_err().name(), "b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, priority: Priority) -> Result<(), Overloaded> {
        self.gauges.iter().try_for_each(|g| g.check(priority))
    }

    /// Resolves once every gauge is flowing for `priority` at the same
    /// moment of checking.
    ///
    /// ```
    /// # use buttress_pressure::{AnyGauge, Gauge, Priority, Watermarks};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let a = Gauge::builder("a", Watermarks::new(10, 5)?).build()?;
    /// let b = Gauge::builder("b", Watermarks::new(10, 5)?).build()?;
    /// a.set(10);
    /// b.set(10);
    /// let (a2, b2) = (a.clone(), b.clone());
    /// tokio::spawn(async move {
    ///     a2.set(0);
    ///     b2.set(0);
    /// });
    /// AnyGauge::new([a, b]).wait_flowing_for(Priority::Normal).await;
    /// # Ok(()) }
    /// ```
    pub async fn wait_flowing_for(&self, priority: Priority) {
        loop {
            match self.gauges.iter().find(|g| g.is_paused_for(priority)) {
                Some(g) => g.wait_flowing_for(priority).await,
                None => return,
            }
        }
    }
}

impl Pressure for AnyGauge {
    fn is_paused_for(&self, priority: Priority) -> bool {
        AnyGauge::is_paused_for(self, priority)
    }
    fn flowing_for(&self, priority: Priority) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let me = self.clone();
        Box::pin(async move { me.wait_flowing_for(priority).await })
    }
    fn overloaded(&self, priority: Priority) -> Overloaded {
        match self.gauges.iter().find(|g| g.is_paused_for(priority)) {
            Some(g) => g.overloaded(priority),
            None => Overloaded::paused("any", priority, None),
        }
    }
    fn count_shed(&self, priority: Priority) {
        if let Some(g) = self.gauges.iter().find(|g| g.is_paused_for(priority)) {
            g.metrics().shed(priority);
        }
    }
}
