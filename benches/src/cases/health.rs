//! The readiness gate's layer: what an open gate costs a request.

use buttress_health::{Readiness, ReadinessLayer};
use tower::Layer;

use crate::Routine;
use crate::cases::pressure::service;
use crate::noop;

/// A request through `ReadinessLayer` with the gate open: one atomic
/// load, then the inner service.
pub fn readiness_open() -> Routine {
    service(ReadinessLayer::new(Readiness::new()).layer(noop()))
}

/// The anchor: the bare no-op service, through the same loop.
pub fn bare_service() -> Routine {
    service(noop())
}
