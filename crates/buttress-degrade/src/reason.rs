//! Why a call failed, read from its error: the one place that knows every
//! buttress refusal and every timeout, so the fallback, the cache and the
//! HTTP mapping agree.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::time::Duration;

use buttress_core::{BoxError, RateLimitPolicy, Rejection, RejectionKind};

/// Why a call did not give its normal answer.
///
/// ```
/// use buttress_degrade::Reason;
/// use buttress_core::RejectionKind;
///
/// assert_eq!(Reason::Error.as_str(), "error");
/// assert_eq!(Reason::Refused(RejectionKind::CircuitOpen).as_str(), "circuit_open");
/// assert_eq!(Reason::TIMED_OUT.as_str(), "timed_out");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The call failed: an error of its own, or a response the classifier
    /// calls a failure (a `503` from the upstream).
    Error,
    /// A buttress layer refused the call (an open breaker, a spent rate
    /// limit, a shed, a full queue) or a timeout cut it short.
    Refused(RejectionKind),
}

impl Reason {
    /// A timeout cut the call short (tower's `Timeout`, tokio's `timeout`,
    /// an executor's task deadline).
    pub const TIMED_OUT: Reason = Reason::Refused(RejectionKind::TimedOut);

    /// A short snake_case name: the `reason` label of metrics, the value
    /// of the `x-degraded` header, the `reason` of a degraded JSON body.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Error => "error",
            Reason::Refused(kind) => kind.as_str(),
        }
    }

    /// The bit this reason holds in a [`Reasons`] set.
    const fn bit(self) -> u16 {
        let index = match self {
            Reason::Error => 0,
            Reason::Refused(kind) => match kind {
                RejectionKind::CircuitOpen => 1,
                RejectionKind::RateLimited => 2,
                RejectionKind::Overloaded => 3,
                RejectionKind::QueueFull => 4,
                RejectionKind::ShuttingDown => 5,
                RejectionKind::NotReady => 6,
                RejectionKind::TimedOut => 7,
                RejectionKind::Failed => 8,
                // A kind added to buttress-core after this crate: it
                // shares the last bit.
                _ => 15,
            },
        };
        1 << index
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Reason`]s: the failures a fallback or a stale cache answers
/// for. Copy, one word.
///
/// ```
/// use buttress_degrade::{Reason, Reasons};
/// use buttress_core::RejectionKind;
///
/// let only_refusals = Reasons::ALL.without(Reason::Error);
/// assert!(only_refusals.contains(Reason::TIMED_OUT));
/// assert!(!only_refusals.contains(Reason::Error));
/// let some = Reasons::NONE.with(Reason::Refused(RejectionKind::CircuitOpen));
/// assert!(!some.contains(Reason::Refused(RejectionKind::RateLimited)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reasons(u16);

impl Reasons {
    /// Every failure: errors, timeouts and every refusal.
    pub const ALL: Reasons = Reasons(u16::MAX);
    /// No failure at all.
    pub const NONE: Reasons = Reasons(0);

    /// This set and `reason`.
    #[must_use]
    pub const fn with(self, reason: Reason) -> Reasons {
        Reasons(self.0 | reason.bit())
    }

    /// This set without `reason`.
    #[must_use]
    pub const fn without(self, reason: Reason) -> Reasons {
        Reasons(self.0 & !reason.bit())
    }

    /// Whether `reason` is in the set.
    #[inline]
    pub const fn contains(self, reason: Reason) -> bool {
        self.0 & reason.bit() != 0
    }
}

impl Default for Reasons {
    fn default() -> Self {
        Reasons::ALL
    }
}

impl<const N: usize> From<[Reason; N]> for Reasons {
    fn from(reasons: [Reason; N]) -> Self {
        reasons.into_iter().fold(Reasons::NONE, Reasons::with)
    }
}

impl fmt::Debug for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reasons({:#06x})", self.0)
    }
}

/// A refusal found in an error: a buttress [`Rejection`], or a timeout of
/// tower or tokio (which cannot implement buttress's trait).
#[derive(Clone, Copy)]
pub enum Refused<'a> {
    /// A buttress refusal.
    Rejection(&'a dyn Rejection),
    /// tower's `timeout::error::Elapsed` or tokio's `time::error::Elapsed`.
    Elapsed,
}

impl Refused<'_> {
    /// What kind of refusal it is: a timeout is
    /// [`RejectionKind::TimedOut`].
    pub fn kind(&self) -> RejectionKind {
        match self {
            Refused::Rejection(r) => r.kind(),
            Refused::Elapsed => RejectionKind::TimedOut,
        }
    }

    /// When to come back, if the refusing layer knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Refused::Rejection(r) => r.retry_after(),
            Refused::Elapsed => None,
        }
    }

    /// For a rate-limit refusal: its quota.
    pub fn rate_limit_policy(&self) -> Option<RateLimitPolicy> {
        match self {
            Refused::Rejection(r) => r.rate_limit_policy(),
            Refused::Elapsed => None,
        }
    }

    /// The name of the instance that refused, if known.
    pub fn instance_name(&self) -> Option<&str> {
        match self {
            Refused::Rejection(r) => r.instance_name(),
            Refused::Elapsed => None,
        }
    }
}

impl fmt::Debug for Refused<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Refused").field(&self.kind()).finish()
    }
}

/// The refusal in `error` or in its `source()` chain, if there is one.
///
/// Recognised: tower's and tokio's timeout errors, and, under this crate's
/// features of the same names, the refusals of `buttress-breaker`,
/// `buttress-limit`, `buttress-pressure`, `buttress-executor` and
/// `buttress-health`.
///
/// ```
/// use std::time::Duration;
/// use buttress_core::RejectionKind;
/// use buttress_degrade::refusal_in;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let elapsed = tokio::time::timeout(Duration::from_secs(1), std::future::pending::<()>())
///     .await
///     .unwrap_err();
/// assert_eq!(refusal_in(&elapsed).unwrap().kind(), RejectionKind::TimedOut);
/// assert!(refusal_in(&std::io::Error::other("down")).is_none());
/// # });
/// ```
pub fn refusal_in<'a>(error: &'a (dyn Error + 'static)) -> Option<Refused<'a>> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = known(e) {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Why a call failed with `error`, of any type: a [`BoxError`], one of
/// the refusal types [`refusal_in`] knows, or anything else (a plain
/// [`Reason::Error`]).
///
/// ```
/// use std::time::Duration;
/// use buttress_core::BoxError;
/// use buttress_degrade::Reason;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let elapsed = tokio::time::timeout(Duration::from_secs(1), std::future::pending::<()>())
///     .await
///     .unwrap_err();
/// let boxed: BoxError = Box::new(elapsed);
/// assert_eq!(buttress_degrade::reason_of(&boxed), Reason::TIMED_OUT);
/// assert_eq!(buttress_degrade::reason_of(&std::io::Error::other("down")), Reason::Error);
/// # });
/// ```
pub fn reason_of<E: 'static>(error: &E) -> Reason {
    match as_error(error) {
        Some(e) => refusal_in(e).map_or(Reason::Error, |r| Reason::Refused(r.kind())),
        None => Reason::Error,
    }
}

/// Calls `$apply!(Type)` for each buttress refusal type whose feature is
/// on: the one list that [`as_error`] and [`refusal_in`] both read.
macro_rules! for_each_rejection_type {
    ($apply:ident) => {
        #[cfg(feature = "breaker")]
        $apply!(buttress_breaker::error::Rejected);
        #[cfg(feature = "limit")]
        $apply!(buttress_limit::RateLimited);
        #[cfg(feature = "pressure")]
        $apply!(buttress_pressure::Overloaded);
        #[cfg(feature = "executor")]
        $apply!(buttress_executor::ExecutorError);
        #[cfg(feature = "health")]
        $apply!(buttress_health::NotReady);
    };
}

/// `error` as a `dyn Error`, when its type is one that can be seen as
/// one: a [`BoxError`] or a known refusal type.
pub fn as_error<E: 'static>(error: &E) -> Option<&(dyn Error + 'static)> {
    let any = error as &dyn Any;
    if let Some(boxed) = any.downcast_ref::<BoxError>() {
        return Some(&**boxed);
    }
    if let Some(boxed) = any.downcast_ref::<Box<dyn Error + Send + 'static>>() {
        return Some(&**boxed);
    }
    if let Some(boxed) = any.downcast_ref::<Box<dyn Error + 'static>>() {
        return Some(&**boxed);
    }
    macro_rules! concrete {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = any.downcast_ref::<$t>() {
                return Some(e);
            })*
        };
    }
    concrete!(
        tower::timeout::error::Elapsed,
        tokio::time::error::Elapsed,
        std::io::Error,
    );
    for_each_rejection_type!(concrete);
    None
}

/// The refusal `e` itself is, without looking at its sources.
fn known<'a>(e: &'a (dyn Error + 'static)) -> Option<Refused<'a>> {
    if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
        return Some(Refused::Elapsed);
    }
    // Unused when no refusal feature is on.
    #[allow(unused_macros)]
    macro_rules! rejection {
        ($($t:ty),* $(,)?) => {
            $(if let Some(r) = e.downcast_ref::<$t>() {
                return Some(Refused::Rejection(r));
            })*
        };
    }
    for_each_rejection_type!(rejection);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_bit() {
        let kinds = [
            RejectionKind::CircuitOpen,
            RejectionKind::RateLimited,
            RejectionKind::Overloaded,
            RejectionKind::QueueFull,
            RejectionKind::ShuttingDown,
            RejectionKind::NotReady,
            RejectionKind::TimedOut,
            RejectionKind::Failed,
        ];
        let mut seen = Reasons::NONE.with(Reason::Error);
        for kind in kinds {
            let r = Reason::Refused(kind);
            assert!(!seen.contains(r), "{kind:?} shares a bit");
            seen = seen.with(r);
            assert!(Reasons::ALL.contains(r));
            assert!(!Reasons::ALL.without(r).contains(r));
            assert!(Reasons::ALL.without(r).contains(Reason::Error));
        }
        assert!(!Reasons::NONE.contains(Reason::Error));
        // Adding a reason twice keeps it.
        let twice = Reasons::NONE
            .with(Reason::TIMED_OUT)
            .with(Reason::TIMED_OUT);
        assert!(twice.contains(Reason::TIMED_OUT));
        assert!(Reasons::ALL.with(Reason::Error).contains(Reason::Error));
        assert_eq!(Reasons::default(), Reasons::ALL);
        assert_eq!(
            Reasons::from([Reason::Error, Reason::TIMED_OUT]),
            Reasons::NONE.with(Reason::TIMED_OUT).with(Reason::Error)
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] BoxError);

    #[tokio::test(start_paused = true)]
    async fn timeouts_are_found_under_wrappers() {
        use tower::{Service, ServiceExt};
        let mut slow = tower::timeout::Timeout::new(
            tower::service_fn(|()| std::future::pending::<Result<(), BoxError>>()),
            Duration::from_secs(1),
        );
        let err = slow
            .ready()
            .await
            .expect("ready")
            .call(())
            .await
            .expect_err("times out");
        assert_eq!(reason_of(&err), Reason::TIMED_OUT);
        let wrapped = Wrapped(err);
        assert_eq!(
            refusal_in(&wrapped).map(|r| r.kind()),
            Some(RejectionKind::TimedOut)
        );
        let refused = refusal_in(&wrapped).expect("found");
        assert_eq!(refused.retry_after(), None);
        assert_eq!(refused.rate_limit_policy(), None);
        assert_eq!(refused.instance_name(), None);
        assert_eq!(format!("{refused:?}"), "Refused(TimedOut)");
        let plain: BoxError = "down".into();
        assert_eq!(reason_of(&plain), Reason::Error);
        assert_eq!(reason_of(&7_u32), Reason::Error);
    }
}
