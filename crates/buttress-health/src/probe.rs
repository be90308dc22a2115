//! One registered check: its last result, and the probe in flight that
//! every caller shares.
//!
//! A flood of health requests must not become a flood of probes: a result
//! younger than the check's interval is answered from the cache, and
//! callers that find a probe running wait for that one. The probe runs on
//! its own task, so a caller that gives up (a client that disconnects)
//! does not cancel it for the others, and it ends at its timeout whatever
//! the dependency does.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use crate::check::{Check, Observation, probe_once};
use crate::options::CheckOptions;
use crate::report::CheckReport;
use crate::status::CheckStatus;

type InFlight = Shared<BoxFuture<'static, CheckReport>>;

pub(crate) struct Entry {
    pub(crate) name: Arc<str>,
    pub(crate) options: CheckOptions,
    check: Arc<dyn Check>,
    slot: Mutex<Slot>,
    status_gauge: metrics::Gauge,
    probe_seconds: metrics::Histogram,
}

#[derive(Default)]
struct Slot {
    /// The last result, and when its probe ended.
    last: Option<(Instant, CheckReport)>,
    in_flight: Option<InFlight>,
    /// The last status, and since when the check has had it.
    since: Option<(CheckStatus, SystemTime)>,
}

impl Entry {
    pub(crate) fn new(name: Arc<str>, check: Arc<dyn Check>, options: CheckOptions) -> Self {
        let label = name.to_string();
        Self {
            status_gauge: metrics::gauge!("buttress_health_status", "check" => label.clone()),
            probe_seconds: metrics::histogram!("buttress_health_probe_seconds", "check" => label),
            name,
            options,
            check,
            slot: Mutex::new(Slot::default()),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The check's result: the cached one while it is younger than the
    /// interval, else the probe in flight, else a new probe.
    pub(crate) async fn observe(self: &Arc<Self>) -> CheckReport {
        let in_flight = {
            let mut slot = self.slot();
            if let Some((at, report)) = &slot.last
                && at.elapsed() < self.options.interval
            {
                return report.clone();
            }
            match &slot.in_flight {
                Some(probe) => probe.clone(),
                None => {
                    let probe = self.start();
                    slot.in_flight = Some(probe.clone());
                    probe
                }
            }
        };
        in_flight.await
    }

    fn start(self: &Arc<Self>) -> InFlight {
        let entry = Arc::clone(self);
        let task = tokio::spawn(Arc::clone(self).probe());
        async move {
            match task.await {
                Ok(report) => report,
                // The runtime is shutting down: nothing was stored.
                Err(_) => entry.store(Observation::down("the probe was cancelled"), Duration::ZERO),
            }
        }
        .boxed()
        .shared()
    }

    async fn probe(self: Arc<Self>) -> CheckReport {
        let started = Instant::now();
        let observation = probe_once(&*self.check, self.options.timeout).await;
        let took = started.elapsed();
        self.probe_seconds.record(took.as_secs_f64());
        self.store(observation, took)
    }

    /// Keeps a probe's result as the check's last, and ends the probe in
    /// flight.
    fn store(&self, observation: Observation, took: Duration) -> CheckReport {
        self.status_gauge.set(observation.status.gauge_value());
        let now = SystemTime::now();
        let mut slot = self.slot();
        let since = match slot.since {
            Some((status, since)) if status == observation.status => since,
            _ => {
                if observation.status != CheckStatus::Up {
                    tracing::warn!(
                        check = %self.name,
                        status = %observation.status,
                        reason = observation.message.as_deref().unwrap_or(""),
                        "health check is not up"
                    );
                } else if slot.since.is_some() {
                    tracing::info!(check = %self.name, "health check is up again");
                }
                slot.since = Some((observation.status, now));
                now
            }
        };
        let report = CheckReport {
            name: Arc::clone(&self.name),
            status: observation.status,
            criticality: self.options.criticality,
            took,
            message: observation.message,
            detail: observation.detail,
            since,
            checked_at: now,
        };
        slot.last = Some((Instant::now(), report.clone()));
        slot.in_flight = None;
        report
    }
}
