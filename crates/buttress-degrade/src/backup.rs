//! What answers instead: a value, a function of the request and the
//! failure, or another service.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::util::Oneshot;
use tower_service::Service;

use crate::fallback::Caught;

/// What a [`FallbackLayer`](crate::FallbackLayer) answers with when its
/// inner service fails: made by [`value`], [`from_fn`] or [`service`].
pub trait Backup<Req, Res, E> {
    /// What is kept of each request for the backup: nothing for a value,
    /// a clone of the request for a function or a service.
    type Saved;
    /// The backup's answer: `None` when it failed too.
    type Future: Future<Output = Option<Res>>;

    /// Keeps what the backup will need of `request`, before the inner
    /// service takes it.
    fn save(&self, request: &Req) -> Self::Saved;

    /// The answer for a failed request.
    fn answer(&self, saved: Self::Saved, caught: Caught<'_, E>) -> Self::Future;
}

/// A backup that answers with a clone of one value.
#[derive(Clone)]
pub struct Value<T>(T);

/// Answers every caught failure with a clone of `value`.
///
/// ```
/// use buttress_degrade::{Fallback, FallbackLayer, backup};
///
/// let layer = FallbackLayer::new(Fallback::new("llm").unwrap(), backup::value("try again later"));
/// # let _ = layer;
/// ```
pub fn value<T: Clone>(value: T) -> Value<T> {
    Value(value)
}

impl<Req, Res: Clone, E> Backup<Req, Res, E> for Value<Res> {
    type Saved = ();
    type Future = Ready<Option<Res>>;

    #[inline]
    fn save(&self, _: &Req) {}

    fn answer(&self, (): (), _: Caught<'_, E>) -> Self::Future {
        ready(Some(self.0.clone()))
    }
}

impl<T> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Value(..)")
    }
}

/// A backup made of a function of the request and the failure.
#[derive(Clone)]
pub struct FromFn<F>(F);

/// Answers with `f(request, caught)`; the request is cloned before each
/// call so the function can have it. A function that panics counts as a
/// failed backup: the caller gets the inner service's own error.
///
/// ```
/// use buttress_degrade::{Fallback, FallbackLayer, backup};
///
/// let layer = FallbackLayer::new(
///     Fallback::new("search").unwrap(),
///     backup::from_fn(|query: String, caught: buttress_degrade::Caught<'_, std::io::Error>| format!("no results for {query:?} ({})", caught.reason)),
/// );
/// # let _ = layer;
/// ```
pub fn from_fn<F>(f: F) -> FromFn<F> {
    FromFn(f)
}

impl<Req, Res, E, F> Backup<Req, Res, E> for FromFn<F>
where
    Req: Clone,
    F: Fn(Req, Caught<'_, E>) -> Res,
{
    type Saved = Req;
    type Future = Ready<Option<Res>>;

    #[inline]
    fn save(&self, request: &Req) -> Req {
        request.clone()
    }

    fn answer(&self, saved: Req, caught: Caught<'_, E>) -> Self::Future {
        ready(catch_unwind(AssertUnwindSafe(|| (self.0)(saved, caught))).ok())
    }
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn(..)")
    }
}

/// A backup that is another service: a cache, a simpler model.
#[derive(Clone, Debug)]
pub struct ServiceBackup<S>(S);

/// Answers with `service`'s response to the same request (cloned before
/// the inner service takes it). The service may be behind a breaker of its
/// own; when it fails, the caller gets the inner service's error.
///
/// ```
/// use buttress_degrade::{Fallback, FallbackLayer, backup};
/// use tower::service_fn;
///
/// let small_model = service_fn(|prompt: String| async move {
///     Ok::<_, std::io::Error>(format!("(short answer to {prompt:?})"))
/// });
/// let layer = FallbackLayer::new(Fallback::new("llm").unwrap(), backup::service(small_model));
/// # let _ = layer;
/// ```
pub fn service<S>(service: S) -> ServiceBackup<S> {
    ServiceBackup(service)
}

impl<Req, Res, E, S> Backup<Req, Res, E> for ServiceBackup<S>
where
    Req: Clone,
    S: Service<Req, Response = Res> + Clone,
{
    type Saved = Req;
    type Future = Backed<Oneshot<S, Req>>;

    #[inline]
    fn save(&self, request: &Req) -> Req {
        request.clone()
    }

    fn answer(&self, saved: Req, _: Caught<'_, E>) -> Self::Future {
        Backed {
            inner: Oneshot::new(self.0.clone(), saved),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`ServiceBackup`]: its response, or `None` when it
    /// failed.
    #[derive(Debug)]
    pub struct Backed<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T, X> Future for Backed<F>
where
    F: Future<Output = Result<T, X>>,
{
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.project().inner.poll(cx).map(Result::ok)
    }
}
