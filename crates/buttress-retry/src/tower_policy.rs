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
    run: Option<Run>,
}

impl TowerPolicy {
    /// Wraps `policy` with the default classifier and request cloning.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            classifier: RetryClassifier,
            cloner: CloneAll,
            run: None,
        }
    }
}

impl<C, K> TowerPolicy<C, K> {
    /// Judges results with `classifier`.
    pub fn classifier<C2>(self, classifier: C2) -> TowerPolicy<C2, K> {
        TowerPolicy {
            policy: self.policy,
            classifier,
            cloner: self.cloner,
            run: None,
        }
    }

    /// Copies requests with `cloner`.
    pub fn cloner<K2>(self, cloner: K2) -> TowerPolicy<C, K2> {
        TowerPolicy {
            policy: self.policy,
            classifier: self.classifier,
            cloner,
            run: None,
        }
    }
}

impl<C: Clone, K: Clone> Clone for TowerPolicy<C, K> {
    /// tower's `Retry` clones the policy for every request: the clone
    /// shares the budget and starts a fresh count of attempts.
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            classifier: self.classifier.clone(),
            cloner: self.cloner.clone(),
            run: None,
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
        let run = self.run.get_or_insert_with(|| {
            let mut run = self.policy.begin();
            let _ = self.policy.start_attempt(&mut run);
            run
        });
        let c: Classification = self.classifier.classify(result);
        match self.policy.after_attempt(run, c, false) {
            Decision::Retry { delay, .. } => {
                let _ = self.policy.start_attempt(run);
                Some(tokio::time::sleep(delay))
            }
            Decision::Stop(_) => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        if self.run.is_none() {
            let mut run = self.policy.begin();
            let _ = self.policy.start_attempt(&mut run);
            self.run = Some(run);
        }
        let copy = self.cloner.clone_request(req);
        if copy.is_none() {
            self.policy.not_cloneable();
        }
        copy
    }
}
