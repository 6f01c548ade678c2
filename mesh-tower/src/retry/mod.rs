//! Retries, as Envoy's route `retry_policy` and Istio's VirtualService
//! `retries`:
//!
//! - an attempt is retried when its outcome matches the policy's
//!   [`RetryOn`](mesh_core::policy::RetryOn) conditions (`5xx`,
//!   `gateway-error`, `reset`, `connect-failure`, `refused-stream`,
//!   `retriable-4xx`, `retriable-status-codes`, and the gRPC statuses
//!   `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`,
//!   `unavailable` read from trailers-only responses), up to `num_retries`
//!   times;
//! - each attempt may have a per-try timeout, distinct from the
//!   whole-request [`timeout`](crate::timeout);
//! - retries wait an exponential backoff with full jitter (25 ms base,
//!   250 ms max by default);
//! - a retry [`Budget`] shared by the cluster caps retries at 20 % of
//!   requests plus 10 per second (linkerd's and Finagle's defaults), so
//!   retries cannot multiply an outage;
//! - a retry goes to an endpoint not tried yet where one exists (a retry
//!   carries the [`AttemptedEndpoints`] to the balancer, learnt from the
//!   outcomes before it);
//! - request bodies up to 64 KiB are kept to be replayed ([`ReplayBody`]);
//!   a larger body is sent once, and a failure that would have been retried
//!   is reported as [`BodyNotReplayable`].
//!
//! A route's `retries` replace its cluster's policy, under the cluster's
//! budget (see [`cluster`](crate::cluster)).
//!
//! Istio's default policy retries twice on
//! `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` (503).

mod budget;
mod error;
mod layer;
mod replay;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use mesh_core::Outcome;
use mesh_core::policy::RetryPolicy;
use tower::{Service, ServiceExt};

pub use budget::Budget;
pub use error::{BodyNotReplayable, PerTryTimeout};
pub use layer::RetryLayer;
pub use replay::ReplayBody;

use crate::BoxError;
use crate::balance::AttemptedEndpoints;
use crate::endpoint::UpstreamHost;

/// The response future of [`Retry`].
pub type ResponseFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// Retries failed attempts according to a [`RetryPolicy`].
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<RetryPolicy>,
    budget: Arc<Budget>,
}

impl<S> Retry<S> {
    /// Wraps `inner` with `policy` and a budget of its own.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        tower::Layer::layer(&RetryLayer::new(policy), inner)
    }

    /// Wraps `inner` with `policy`, withdrawing retries from `budget`
    /// (one budget can serve every route to a cluster).
    pub fn with_budget(inner: S, policy: Arc<RetryPolicy>, budget: Arc<Budget>) -> Self {
        Self {
            inner,
            policy,
            budget,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, Rb> Service<http::Request<B>> for Retry<S>
where
    S: Service<http::Request<ReplayBody<B>>, Response = http::Response<Rb>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
    Rb: Send + 'static,
{
    type Response = http::Response<Rb>;
    type Error = BoxError;
    type Future = ResponseFuture<http::Response<Rb>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        Box::pin(retry(inner, self.policy.clone(), self.budget.clone(), req))
    }
}

/// Sends `req` through `inner`, retrying as `policy` says under `budget`.
pub(crate) async fn retry<S, B, Rb>(
    inner: S,
    policy: Arc<RetryPolicy>,
    budget: Arc<Budget>,
    req: http::Request<B>,
) -> Result<http::Response<Rb>, BoxError>
where
    S: Service<http::Request<ReplayBody<B>>, Response = http::Response<Rb>> + Clone,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
{
    budget.deposit();
    let (parts, body) = req.into_parts();
    let limit = policy.max_replay_body_bytes;
    if policy.num_retries == 0 || body.size_hint().lower() > limit as u64 {
        let req = http::Request::from_parts(parts, ReplayBody::once(body));
        return attempt(inner, req, policy.per_try_timeout)
            .await
            .map_err(|e| {
                if policy.should_retry(&Outcome::Failure(crate::classify(&*e))) {
                    BodyNotReplayable { limit, source: e }.into()
                } else {
                    e
                }
            });
    }
    let body = ReplayBody::new(body, limit);
    // The endpoints tried, for retries to go elsewhere: learnt from each
    // attempt's outcome, so the first attempt carries nothing; only an
    // attempt that a per-try timeout may cut short, and whose outcome then
    // names no endpoint, has the balancer record its pick.
    let mut attempted = policy
        .per_try_timeout
        .is_some()
        .then(AttemptedEndpoints::default);
    let mut retries = 0;
    loop {
        // Only a body that outgrew its copy or failed cannot be replayed,
        // and neither is retried.
        let replay = body.replay().ok_or("the request body cannot be replayed")?;
        let mut req = http::Request::from_parts(parts.clone(), replay);
        if let Some(attempted) = &attempted {
            req.extensions_mut().insert(attempted.clone());
        }
        let result = attempt(inner.clone(), req, policy.per_try_timeout).await;
        let outcome = match &result {
            Ok(res) => Outcome::from_response(res),
            Err(e) => Outcome::Failure(crate::classify(&**e)),
        };
        if !policy.should_retry(&outcome) {
            return result;
        }
        if retries >= policy.num_retries {
            // A response it would have retried, the retries spent:
            // Envoy's `URX`.
            return result.map(|mut res| {
                if retries > 0 {
                    res.extensions_mut()
                        .get_or_insert(crate::body::ResponseFlag("URX"));
                }
                res
            });
        }
        if !body.is_replayable() {
            return result.map_err(|source| BodyNotReplayable { limit, source }.into());
        }
        if !budget.withdraw() {
            tracing::debug!(?outcome, "retry budget exhausted");
            return result;
        }
        retries += 1;
        if let Some(addr) = served_by(&result) {
            attempted.get_or_insert_with(Default::default).record(addr);
        }
        drop(result);
        let ceiling = policy.backoff.ceiling(retries);
        let wait = Duration::try_from_secs_f64(ceiling.as_secs_f64() * rand::random::<f64>())
            .unwrap_or(ceiling);
        tracing::debug!(?outcome, retries, ?wait, "retrying");
        tokio::time::sleep(wait).await;
    }
}

/// The endpoint an attempt reached, as its response or error names it.
fn served_by<Rb>(result: &Result<http::Response<Rb>, BoxError>) -> Option<std::net::SocketAddr> {
    match result {
        Ok(res) => res.extensions().get::<UpstreamHost>().map(|h| h.0),
        Err(e) => {
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**e);
            while let Some(e) = next {
                if let Some(upstream) = e.downcast_ref::<mesh_core::UpstreamError>() {
                    return Some(upstream.endpoint());
                }
                next = e.source();
            }
            None
        }
    }
}

/// One attempt, within the per-try timeout if there is one.
async fn attempt<S, Req>(
    inner: S,
    req: Req,
    per_try_timeout: Option<Duration>,
) -> Result<S::Response, BoxError>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    let attempt = inner.oneshot(req);
    match per_try_timeout {
        None => attempt.await.map_err(Into::into),
        Some(d) => match tokio::time::timeout(d, attempt).await {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(PerTryTimeout(d).into()),
        },
    }
}

#[cfg(test)]
mod tests;
