//! A gauge fed by reading a value on an interval.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::gauge::Gauge;

/// Sets a gauge from a closure read every `interval` (for example the
/// journal reader's unprocessed bytes), on a task of the current tokio
/// runtime. Dropping it stops the task.
///
/// ```
/// use std::time::Duration;
/// use buttress_pressure::{Gauge, PolledGauge, Watermarks};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backlog = Gauge::builder("backlog", Watermarks::new(100, 50)?).build()?;
/// let _poll = PolledGauge::spawn(backlog.clone(), Duration::from_secs(1), || 120);
/// tokio::time::sleep(Duration::from_millis(10)).await;
/// assert!(backlog.is_paused());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PolledGauge {
    task: JoinHandle<()>,
}

impl PolledGauge {
    /// Reads `read` now and then every `interval`, setting `gauge`. A
    /// `None` keeps the last level (a failed read).
    ///
    /// ```
    /// use std::time::Duration;
    /// use buttress_pressure::{Gauge, PolledGauge, Watermarks};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let memory = Gauge::builder("memory", Watermarks::new(100, 50)?).build()?;
    /// let mut readings = vec![Some(120), None].into_iter(); // then a failed read
    /// let poll = PolledGauge::spawn(memory.clone(), Duration::from_secs(1), move || readings.next().flatten());
    /// tokio::time::sleep(Duration::from_secs(2)).await; // paused time: no real wait
    /// assert_eq!(memory.level(), 120); // the failed read kept it
    /// drop(poll); // stops polling
    /// # Ok(()) }
    /// ```
    pub fn spawn<F, V>(gauge: Gauge, interval: Duration, mut read: F) -> PolledGauge
    where
        F: FnMut() -> V + Send + 'static,
        V: Into<Option<u64>>,
    {
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Some(level) = read().into() {
                    gauge.set(level);
                }
            }
        });
        PolledGauge { task }
    }
}

impl Drop for PolledGauge {
    fn drop(&mut self) {
        self.task.abort();
    }
}
