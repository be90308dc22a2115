//! The executor's metrics, registered once.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use crate::history::Status;

pub(crate) struct ExecutorMetrics {
    pub(crate) submitted: Counter,
    pub(crate) rejected: Counter,
    pub(crate) cancelled: Counter,
    completed: Counter,
    failed: Counter,
    timed_out: Counter,
    panicked: Counter,
    running: Gauge,
    wait_seconds: Histogram,
    run_seconds: Histogram,
}

impl ExecutorMetrics {
    pub(crate) fn new(name: &str) -> Self {
        let n = name.to_owned();
        ExecutorMetrics {
            submitted: counter!("buttress_executor_submitted_total", "name" => n.clone()),
            rejected: counter!("buttress_executor_rejected_total", "name" => n.clone()),
            cancelled: counter!("buttress_executor_cancelled_total", "name" => n.clone()),
            completed: counter!("buttress_executor_completed_total", "name" => n.clone()),
            failed: counter!("buttress_executor_failed_total", "name" => n.clone()),
            timed_out: counter!("buttress_executor_timed_out_total", "name" => n.clone()),
            panicked: counter!("buttress_executor_panicked_total", "name" => n.clone()),
            running: gauge!("buttress_executor_running", "name" => n.clone()),
            wait_seconds: histogram!("buttress_executor_wait_seconds", "name" => n.clone()),
            run_seconds: histogram!("buttress_executor_run_seconds", "name" => n),
        }
    }

    /// A task took a running slot after waiting `waited`.
    pub(crate) fn started(&self, waited: Duration) {
        self.running.increment(1.0);
        self.wait_seconds.record(waited.as_secs_f64());
    }

    /// A task that held a slot ended as `status`, after running `ran`
    /// (none: it was cancelled before it ever ran).
    pub(crate) fn finished(&self, status: Status, ran: Option<Duration>) {
        if let Some(ran) = ran {
            self.running.decrement(1.0);
            self.run_seconds.record(ran.as_secs_f64());
        }
        match status {
            Status::Ok => &self.completed,
            Status::Failed => &self.failed,
            Status::TimedOut => &self.timed_out,
            Status::Cancelled => &self.cancelled,
            Status::Panicked => &self.panicked,
        }
        .increment(1);
    }
}
