//! The fallback itself: which failures it answers for, and the plain API.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use buttress_core::{Classify, DefaultClassifier, Name, NameError, Outcome};

use crate::degraded::{Degraded, Served, Source};
use crate::reason::{Reason, Reasons, reason_of};

/// A fallback: a name (the `name` label of its metrics and the `by` of its
/// [`Degraded`] marks) and the failures it answers for.
///
/// The plain API is [`Fallback::run`]; the tower layer is
/// [`FallbackLayer`](crate::FallbackLayer). Clones share one name.
///
/// ```
/// use buttress_degrade::{Fallback, Reason};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let fallback = Fallback::new("llm")?;
/// let served = fallback
///     .run(
///         async { Err::<String, _>(std::io::Error::other("connection refused")) },
///         |caught| async move { Ok::<_, std::convert::Infallible>(format!("canned ({})", caught.reason)) },
///     )
///     .await?;
/// assert_eq!(served.value, "canned (error)");
/// assert_eq!(served.degraded.unwrap().reason(), Reason::Error);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Fallback {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    reasons: Reasons,
}

/// A failure the fallback caught: why, and the error when there was one
/// (a response the classifier called a failure has none).
#[derive(Debug)]
#[non_exhaustive]
pub struct Caught<'a, E> {
    /// Why the call failed.
    pub reason: Reason,
    /// The call's error, when it returned one.
    pub error: Option<&'a E>,
}

impl Fallback {
    /// A fallback named `name` that answers for every failure: errors,
    /// timeouts and every refusal ([`Reasons::ALL`]).
    pub fn new(name: impl AsRef<str>) -> Result<Self, NameError> {
        Ok(Fallback {
            inner: Arc::new(Inner {
                name: Name::new(name)?,
                reasons: Reasons::ALL,
            }),
        })
    }

    /// Answers only for `reasons`; any other failure is returned as it
    /// is.
    ///
    /// ```
    /// use buttress_core::RejectionKind;
    /// use buttress_degrade::{Fallback, Reason};
    ///
    /// let f = Fallback::new("llm").unwrap().on([Reason::TIMED_OUT, Reason::Refused(RejectionKind::CircuitOpen)]);
    /// assert!(!f.reasons().contains(Reason::Error));
    /// ```
    #[must_use]
    pub fn on(self, reasons: impl Into<Reasons>) -> Self {
        Fallback {
            inner: Arc::new(Inner {
                name: self.inner.name.clone(),
                reasons: reasons.into(),
            }),
        }
    }

    /// The fallback's name.
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// The failures it answers for.
    pub fn reasons(&self) -> Reasons {
        self.inner.reasons
    }

    /// Whether this fallback answers for `result` as `classifier` sees it,
    /// and why: `None` for a success, an ignored result, or a failure
    /// whose reason is not in [`reasons`](Self::reasons).
    #[inline]
    pub fn catches<T, E: 'static, C: Classify<T, E>>(
        &self,
        classifier: &C,
        result: &Result<T, E>,
    ) -> Option<Reason> {
        if classifier.classify(result).outcome != Outcome::Failure {
            return None;
        }
        let reason = match result {
            Ok(_) => Reason::Error,
            Err(e) => reason_of(e),
        };
        self.inner.reasons.contains(reason).then_some(reason)
    }

    /// Runs `work`; when it fails for a reason this fallback answers for,
    /// runs `fallback` and returns its value, marked degraded. Every `Err`
    /// is a failure; see [`run_classified`](Self::run_classified) to
    /// decide otherwise.
    ///
    /// A fallback that fails returns `work`'s own error.
    pub async fn run<T, E, W, F, FF, X>(&self, work: W, fallback: F) -> Result<Served<T>, E>
    where
        E: 'static,
        W: Future<Output = Result<T, E>>,
        F: FnOnce(Caught<'_, E>) -> FF,
        FF: Future<Output = Result<T, X>>,
    {
        self.run_classified(&DefaultClassifier, work, fallback)
            .await
    }

    /// [`run`](Self::run), with `classifier` deciding which results are
    /// failures: an `Ok` it calls a failure is answered by the fallback
    /// too (with no error), and an `Err` it ignores is returned as it is.
    ///
    /// ```
    /// use buttress_core::{Classification, classify_fn};
    /// use buttress_degrade::Fallback;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// // An empty answer is a failure too.
    /// let empty_is_failure = classify_fn(|r: &Result<String, std::io::Error>| match r {
    ///     Ok(s) if !s.is_empty() => Classification::SUCCESS,
    ///     _ => Classification::RETRYABLE_FAILURE,
    /// });
    /// let fallback = Fallback::new("summary")?;
    /// let served = fallback
    ///     .run_classified(&empty_is_failure, async { Ok(String::new()) }, |_| async {
    ///         Ok::<_, ()>("no summary yet".to_owned())
    ///     })
    ///     .await?;
    /// assert!(served.is_degraded());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn run_classified<T, E, C, W, F, FF, X>(
        &self,
        classifier: &C,
        work: W,
        fallback: F,
    ) -> Result<Served<T>, E>
    where
        E: 'static,
        C: Classify<T, E>,
        W: Future<Output = Result<T, E>>,
        F: FnOnce(Caught<'_, E>) -> FF,
        FF: Future<Output = Result<T, X>>,
    {
        let result = work.await;
        let Some(reason) = self.catches(classifier, &result) else {
            return result.map(Served::normal);
        };
        let answer = fallback(Caught {
            reason,
            error: result.as_ref().err(),
        });
        match answer.await {
            Ok(value) => Ok(Served {
                value,
                degraded: Some(self.answered(reason)),
            }),
            Err(_) => {
                self.failed(reason);
                result.map(Served::normal)
            }
        }
    }

    /// Counts a fallback answer and makes its mark.
    pub(crate) fn answered(&self, reason: Reason) -> Degraded {
        metrics::counter!(
            "buttress_fallback_total",
            "name" => self.inner.name.to_string(),
            "reason" => reason.as_str()
        )
        .increment(1);
        tracing::debug!(fallback = %self.inner.name, %reason, "answered by the fallback");
        Degraded::new(reason, self.inner.name.clone(), Source::Fallback)
    }

    /// Counts a fallback that failed too.
    pub(crate) fn failed(&self, reason: Reason) {
        metrics::counter!(
            "buttress_fallback_failed_total",
            "name" => self.inner.name.to_string(),
            "reason" => reason.as_str()
        )
        .increment(1);
        tracing::warn!(fallback = %self.inner.name, %reason, "the fallback failed too; returning the original error");
    }
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("name", &self.inner.name)
            .field("reasons", &self.inner.reasons)
            .finish()
    }
}
