//! Metrics, registered once per gauge or limit.

use std::time::Duration;

use metrics::{Counter, Gauge as MGauge, counter, gauge};

use crate::Priority;

#[derive(Clone)]
pub(crate) struct GaugeMetrics {
    pub(crate) level: MGauge,
    paused: [MGauge; 2],
    transitions: [Counter; 2],
    /// A gauge that only grows: metrics counters hold integers, and
    /// seconds need fractions.
    paused_seconds: [MGauge; 2],
    shed: [Counter; 2],
}

fn index(priority: Priority) -> usize {
    match priority {
        Priority::Normal => 0,
        Priority::Low => 1,
    }
}

impl GaugeMetrics {
    pub(crate) fn new(name: &str) -> Self {
        let n = name.to_owned();
        let per = |f: &dyn Fn(&'static str) -> Counter| [f("normal"), f("low")];
        GaugeMetrics {
            level: gauge!("buttress_pressure_level", "name" => n.clone()),
            paused: [
                gauge!("buttress_pressure_paused", "name" => n.clone(), "priority" => "normal"),
                gauge!("buttress_pressure_paused", "name" => n.clone(), "priority" => "low"),
            ],
            transitions: per(
                &|p| counter!("buttress_pressure_transitions_total", "name" => n.clone(), "priority" => p),
            ),
            paused_seconds: [
                gauge!("buttress_pressure_paused_seconds_total", "name" => n.clone(), "priority" => "normal"),
                gauge!("buttress_pressure_paused_seconds_total", "name" => n.clone(), "priority" => "low"),
            ],
            shed: per(
                &|p| counter!("buttress_pressure_shed_total", "name" => n.clone(), "priority" => p),
            ),
        }
    }

    pub(crate) fn transition(&self, priority: Priority, paused: bool) {
        let i = index(priority);
        self.transitions[i].increment(1);
        self.paused[i].set(if paused { 1.0 } else { 0.0 });
    }

    pub(crate) fn paused_seconds(&self, priority: Priority, d: Duration) {
        self.paused_seconds[index(priority)].increment(d.as_secs_f64());
    }

    pub(crate) fn shed(&self, priority: Priority) {
        self.shed[index(priority)].increment(1);
    }
}
