//! An implementation of `tower::retry::Policy`, for code that already uses
//! tower's `Retry`.

use buttress_core::{Classification, Classify};

use crate::attempts::Decision;
use crate::classify::RetryClassifier;
use crate::policy::{RetryPolicy, Run};
use crate::request::{CloneAll, CloneRequest};

/// A [`RetryPolicy`] as a `tower::retry::Policy`: same backoff, limits,
/// `Retry-After` and budget, with tower's `Retry` driving the loop. The
/// attempt timeout does not apply here (tower's `Retry` has no place for
/// it); put a `Timeout` layer inside instead.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use buttress_retry::{RetryPolicy, TowerPolicy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let policy = TowerPolicy::new(RetryPolicy::builder("api").build().unwrap());
/// let svc = ServiceBuilder::new()
///     .retry(policy)
///     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.oneshot(3).await.unwrap(), 3);
/// # });
/// ```
#[derive(Debug)]
pub struct TowerPolicy<C = RetryClassifier, K = CloneAll> {
    policy: RetryPolicy,
    classifier: C,
    cloner: K,
    /// The request in progress. tower's `Retry` calls `clone_request`
    /// before the first attempt and then clones the policy into the
    /// response future, so the run must travel with the clone.
    run: Option<Run>,
    /// Whether `retry` granted a retry that has not been sent yet: the
    /// next `clone_request` is for it, not for a new request.
    retrying: bool,
}

impl TowerPolicy {
    /// Wraps `policy` with the default classifier and request cloning.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use buttress_retry::{RetryPolicy, TowerPolicy};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let calls = AtomicU32::new(0);
    /// let policy = TowerPolicy::new(RetryPolicy::builder("api").max_attempts(3).build().unwrap());
    /// let svc = ServiceBuilder::new().retry(policy).service(service_fn(|x: u32| {
    ///     let n = calls.fetch_add(1, Ordering::SeqCst);
    ///     async move { if n < 2 { Err(std::io::Error::other("reset")) } else { Ok(x) } }
    /// }));
    /// assert_eq!(svc.oneshot(5).await.unwrap(), 5);
    /// assert_eq!(calls.load(Ordering::SeqCst), 3); // two failures, retried
    /// # });
    /// ```
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            classifier: RetryClassifier,
            cloner: CloneAll,
            run: None,
            retrying: false,
        }
    }
}

impl<C, K> TowerPolicy<C, K> {
    /// Judges results with `classifier`.
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use buttress_core::{Classification, classify_fn};
    /// use buttress_retry::{RetryPolicy, TowerPolicy};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// // "Permission denied" will not change on a retry.
    /// let classifier = classify_fn(|r: &Result<u32, Error>| match r {
    ///     Ok(_) => Classification::SUCCESS,
    ///     Err(e) if e.kind() == ErrorKind::PermissionDenied => Classification::FATAL_FAILURE,
    ///     Err(_) => Classification::RETRYABLE_FAILURE,
    /// });
    /// let policy = TowerPolicy::new(RetryPolicy::builder("api").build().unwrap()).classifier(classifier);
    /// let calls = AtomicU32::new(0);
    /// let svc = ServiceBuilder::new().retry(policy).service(service_fn(|_: u32| {
    ///     calls.fetch_add(1, Ordering::SeqCst);
    ///     async { Err::<u32, _>(Error::from(ErrorKind::PermissionDenied)) }
    /// }));
    /// assert!(svc.oneshot(1).await.is_err());
    /// assert_eq!(calls.load(Ordering::SeqCst), 1); // not retried
    /// # });
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> TowerPolicy<C2, K> {
        TowerPolicy {
            policy: self.policy,
            classifier,
            cloner: self.cloner,
            run: None,
            retrying: false,
        }
    }

    /// Copies requests with `cloner`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use buttress_retry::{RetryPolicy, TowerPolicy, clone_with};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// // Odd requests must not be sent twice.
    /// let cloner = clone_with(|x: &u32| (x % 2 == 0).then_some(*x));
    /// let policy = TowerPolicy::new(RetryPolicy::builder("api").build().unwrap()).cloner(cloner);
    /// let calls = AtomicU32::new(0);
    /// let svc = ServiceBuilder::new().retry(policy).service(service_fn(|_: u32| {
    ///     calls.fetch_add(1, Ordering::SeqCst);
    ///     async { Err::<u32, _>(std::io::Error::other("down")) }
    /// }));
    /// assert!(svc.clone().oneshot(1).await.is_err());
    /// assert_eq!(calls.load(Ordering::SeqCst), 1); // sent once
    /// assert!(svc.oneshot(2).await.is_err());
    /// assert_eq!(calls.load(Ordering::SeqCst), 4); // 1 + 3 attempts
    /// # });
    /// ```
    pub fn cloner<K2>(self, cloner: K2) -> TowerPolicy<C, K2> {
        TowerPolicy {
            policy: self.policy,
            classifier: self.classifier,
            cloner,
            run: None,
            retrying: false,
        }
    }
}

impl<C: Clone, K: Clone> Clone for TowerPolicy<C, K> {
    /// tower's `Retry` clones the policy into each response future right
    /// after `clone_request` began the request: the clone shares the budget
    /// and carries the request's count of attempts.
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            classifier: self.classifier.clone(),
            cloner: self.cloner.clone(),
            run: self.run.clone(),
            retrying: self.retrying,
        }
    }
}

impl<Req, Res, E, C, K> tower::retry::Policy<Req, Res, E> for TowerPolicy<C, K>
where
    C: Classify<Res, E>,
    K: CloneRequest<Req>,
{
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _req: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        let policy = &self.policy;
        // `clone_request` began the run; begin here only if it was skipped.
        let run = self.run.get_or_insert_with(|| {
            let mut run = policy.begin();
            let _ = policy.start_attempt(&mut run);
            run
        });
        let c: Classification = self.classifier.classify(result);
        match policy.after_attempt(run, c, false) {
            Decision::Retry { delay, .. } => {
                let _ = policy.start_attempt(run);
                self.retrying = true;
                Some(tokio::time::sleep(delay))
            }
            Decision::Stop(_) => {
                self.retrying = false;
                None
            }
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        if !self.retrying {
            // A new request: deposit, start the clock and the count.
            let mut run = self.policy.begin();
            let _ = self.policy.start_attempt(&mut run);
            self.run = Some(run);
        }
        self.retrying = false;
        let copy = self.cloner.clone_request(req);
        if copy.is_none() {
            self.policy.not_cloneable();
        }
        copy
    }
}
