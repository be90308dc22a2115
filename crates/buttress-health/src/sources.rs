//! The other buttress primitives as checks: circuit breakers, pressure
//! gauges and executors report what they already know, without a probe
//! of their own.

#[cfg(any(feature = "breaker", feature = "pressure", feature = "executor"))]
use std::sync::Arc;

#[cfg(any(feature = "breaker", feature = "pressure", feature = "executor"))]
use crate::{CheckOptions, Health, HealthError, Observation, check_fn};

#[cfg(feature = "breaker")]
impl Health {
    /// Adds a check named `breaker:<name>` that reports `breaker`'s state:
    /// closed (or disabled) is up, half-open (probing the dependency
    /// again) is degraded, open is down. With `options` critical, an open
    /// breaker makes the service unhealthy; non-critical, degraded.
    ///
    /// ```
    /// use buttress_breaker::CircuitBreaker;
    /// use buttress_health::{CheckOptions, Health, Status};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let llm = CircuitBreaker::builder("llm").build().unwrap();
    /// let health = Health::new();
    /// health.register_breaker(&llm, CheckOptions::non_critical()).unwrap();
    /// llm.force_open();
    /// let report = health.report().await;
    /// assert_eq!(report.status, Status::Degraded);
    /// assert_eq!(report.to_json()["breaker:llm"], "down");
    /// # });
    /// ```
    pub fn register_breaker(
        &self,
        breaker: &buttress_breaker::CircuitBreaker,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        let name = format!("breaker:{}", breaker.name());
        let breaker = breaker.clone();
        let check = check_fn(move || {
            let observation = breaker_observation(&breaker.snapshot());
            async move { Ok::<_, std::convert::Infallible>(observation) }
        });
        self.register_arc(name, Arc::new(check), options)
    }

    /// [`register_breaker`](Health::register_breaker) for every breaker in
    /// `registry`, now and as they are added: each report first registers
    /// the breakers it has not seen, critical or not as `options` says for
    /// each name.
    ///
    /// ```
    /// use buttress_breaker::{CircuitBreaker, Registry};
    /// use buttress_health::{CheckOptions, Health};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let registry = Registry::new();
    /// let health = Health::new();
    /// health.register_breakers(&registry, |name| match name {
    ///     "postgres" => CheckOptions::critical(),
    ///     _ => CheckOptions::non_critical(),
    /// });
    /// let llm = CircuitBreaker::builder("llm").registry(&registry).build().unwrap();
    /// assert_eq!(health.report().await.checks[0].name.as_ref(), "breaker:llm");
    /// # });
    /// ```
    pub fn register_breakers(
        &self,
        registry: &buttress_breaker::Registry,
        options: impl Fn(&str) -> CheckOptions + Send + Sync + 'static,
    ) {
        let registry = registry.clone();
        let skipped = std::sync::Mutex::new(std::collections::HashSet::new());
        self.attach(move |health| {
            let known = health.names_unsynced();
            let mut skipped = skipped.lock().unwrap_or_else(|e| e.into_inner());
            for name in registry.names() {
                let seen = known
                    .iter()
                    .any(|k| k.strip_prefix("breaker:") == Some(name.as_str()));
                if seen || skipped.contains(&name) {
                    continue;
                }
                if let Some(breaker) = registry.get(&name)
                    && let Err(e) = health.register_breaker(&breaker, options(&name))
                {
                    // Logged once: a name the report cannot show.
                    tracing::warn!(breaker = %name, error = %e, "breaker left out of the health report");
                    skipped.insert(name);
                }
            }
        });
    }
}

#[cfg(feature = "breaker")]
fn breaker_observation(s: &buttress_breaker::Snapshot) -> Observation {
    use buttress_breaker::State;

    let mut detail = serde_json::Map::new();
    detail.insert("state".into(), s.state.as_str().into());
    if let Some(rate) = s.failure_rate {
        detail.insert("failure_rate".into(), rate.into());
    }
    if let Some(wait) = s.time_until_half_open {
        detail.insert("next_probe_in_ms".into(), (wait.as_millis() as u64).into());
    }
    let observation = match s.state {
        State::Closed | State::Disabled => Observation::up(),
        State::HalfOpen => Observation::degraded("half-open: probing the dependency again"),
        // An open breaker turns half-open at its next call once the open
        // period is over; until that call it still reads open.
        State::Open if s.time_until_half_open == Some(std::time::Duration::ZERO) => {
            Observation::degraded("open period over: the next call probes the dependency")
        }
        State::Open => Observation::down("open: calls are refused"),
        State::ForcedOpen => Observation::down("forced open: calls are refused"),
    };
    observation.with_detail(serde_json::Value::Object(detail))
}

#[cfg(feature = "pressure")]
impl Health {
    /// Adds a check named `gauge:<name>` that reports `gauge`: flowing is
    /// up, paused is degraded (the service sheds or slows work), with the
    /// level. A paused gauge never makes the service unhealthy.
    pub fn register_gauge(&self, gauge: &buttress_pressure::Gauge) -> Result<(), HealthError> {
        let name = format!("gauge:{}", gauge.name());
        let gauge = gauge.clone();
        let check = check_fn(move || {
            let level = gauge.level();
            let observation = if gauge.is_paused() {
                Observation::degraded("paused: above its high watermark")
            } else {
                Observation::up()
            };
            let observation = observation.with_detail(serde_json::json!({
                "level": level,
                "paused": gauge.is_paused(),
            }));
            async move { Ok::<_, std::convert::Infallible>(observation) }
        });
        self.register_arc(name, Arc::new(check), CheckOptions::non_critical())
    }
}

#[cfg(feature = "executor")]
impl Health {
    /// Adds a check named `executor:<name>` that reports `executor`'s
    /// queue depth and running tasks: up while it accepts tasks, degraded
    /// once it has stopped (shutting down).
    pub fn register_executor(
        &self,
        executor: &buttress_executor::Executor,
    ) -> Result<(), HealthError> {
        let name = format!("executor:{}", executor.name());
        let executor = executor.clone();
        let check = check_fn(move || {
            let s = executor.snapshot();
            let observation = if s.accepting {
                Observation::up()
            } else {
                Observation::degraded("not accepting tasks: shutting down")
            };
            let observation = observation.with_detail(serde_json::json!({
                "queued": s.queued,
                "running": s.running,
                "accepting": s.accepting,
            }));
            async move { Ok::<_, std::convert::Infallible>(observation) }
        });
        self.register_arc(name, Arc::new(check), CheckOptions::non_critical())
    }
}
