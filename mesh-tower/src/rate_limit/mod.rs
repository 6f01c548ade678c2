//! Local rate limiting with token buckets, per route or per cluster, in
//! the shape of linkerd's `HTTPLocalRateLimitPolicy` and Envoy's
//! `local_ratelimit` filter: a [`LocalRateLimit`] may limit all requests
//! together (`total`), each client identity on its own (`identity`), and
//! named identities differently (`overrides`); a request must be admitted
//! by every limit that applies.
//!
//! A bucket holds `requests_per_second` tokens and refills continuously at
//! that rate. A request over the limit is answered `429 Too Many Requests`
//! with the body `local_rate_limited` and the headers `x-ratelimit-limit`,
//! `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds until a token is
//! back), as Envoy sends them.
//!
//! The client identity is the request's [`ClientIdentity`] extension (set
//! by [`MeshServer`](crate::server::MeshServer) from the peer's certificate); requests without one
//! share one bucket. At most [`MAX_IDENTITIES`] identities are tracked; full
//! buckets are forgotten first, and beyond that the unknown identities share
//! one bucket.

mod bucket;
mod layer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use http::{HeaderValue, StatusCode};
use mesh_core::policy::LocalRateLimit;
use tokio::time::Instant;
use tower::Service;

pub use layer::RateLimitLayer;

use crate::ResponseBody;
use crate::body::{flagged, local_response};
use crate::tls::ClientIdentity;
use bucket::Bucket;

/// Identities tracked at most by one limiter.
pub const MAX_IDENTITIES: usize = 10_000;

/// The buckets of one [`LocalRateLimit`].
#[derive(Debug)]
pub struct RateLimiter {
    policy: LocalRateLimit,
    total: Option<Bucket>,
    identities: Mutex<Identities>,
    /// Shared by identities beyond [`MAX_IDENTITIES`].
    overflow: Option<Arc<Bucket>>,
    /// Requests refused.
    limited: AtomicU64,
}

#[derive(Debug, Default)]
struct Identities {
    buckets: HashMap<Arc<str>, Arc<Bucket>>,
    /// When full buckets were last forgotten.
    swept: Option<Instant>,
}

/// A request over a limit: the limit and when a token is back.
#[derive(Debug, Clone, Copy)]
struct Limited {
    limit: u32,
    reset_secs: u64,
}

impl RateLimiter {
    /// Buckets for `policy`, all full.
    pub fn new(policy: LocalRateLimit) -> Self {
        let now = Instant::now();
        Self {
            total: policy.total.map(|l| Bucket::new(l, now)),
            overflow: policy.identity.map(|l| Arc::new(Bucket::new(l, now))),
            identities: Mutex::default(),
            limited: AtomicU64::new(0),
            policy,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &LocalRateLimit {
        &self.policy
    }

    /// `None` when `req` is admitted (a token taken from every bucket that
    /// applies to its [`ClientIdentity`]), else the `429` to answer.
    pub fn check<B>(&self, req: &http::Request<B>) -> Option<http::Response<ResponseBody>> {
        let identity = req.extensions().get::<ClientIdentity>().map(|i| &*i.0);
        let limited = self.admit(identity).err()?;
        self.limited.fetch_add(1, Ordering::Relaxed);
        Some(too_many(limited))
    }

    /// Requests refused with `429`.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Takes a token from every bucket that applies to `identity`, or none
    /// if one of them is empty.
    fn admit(&self, identity: Option<&str>) -> Result<(), Limited> {
        let now = Instant::now();
        let own = self.identity_bucket(identity.unwrap_or(""), now);
        let buckets = [own.as_deref(), self.total.as_ref()];
        Bucket::take_all(buckets.into_iter().flatten(), now)
    }

    fn identity_bucket(&self, identity: &str, now: Instant) -> Option<Arc<Bucket>> {
        let limit = self.policy.limit_for(identity)?;
        let mut ids = self.identities.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = ids.buckets.get(identity) {
            return Some(b.clone());
        }
        // Identities named by overrides are bounded by the policy itself
        // and always get a bucket of their own; the others are capped.
        let named = self
            .policy
            .overrides
            .iter()
            .any(|o| o.identities.iter().any(|i| &**i == identity));
        if !named && ids.buckets.len() >= MAX_IDENTITIES {
            // A full bucket is the same as a new one: forgetting it loses
            // nothing. At most once a second, so a flood of new identities
            // does not sweep on every request.
            if ids
                .swept
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
            {
                ids.swept = Some(now);
                ids.buckets.retain(|_, b| !b.is_full(now));
            }
            if ids.buckets.len() >= MAX_IDENTITIES {
                return self.overflow.clone();
            }
        }
        let bucket = Arc::new(Bucket::new(limit, now));
        ids.buckets.insert(identity.into(), bucket.clone());
        Some(bucket)
    }
}

/// Rejects requests over their limit with `429`.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
}

impl<S> RateLimit<S> {
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

impl<S, B> Service<http::Request<B>> for RateLimit<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResponseBody>>,
{
    type Response = http::Response<ResponseBody>;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match self.limiter.check(&req) {
            Some(refused) => Either::Right(std::future::ready(Ok(refused))),
            None => Either::Left(self.inner.call(req)),
        }
    }
}

fn too_many(limited: Limited) -> http::Response<ResponseBody> {
    let mut res = flagged(
        local_response(StatusCode::TOO_MANY_REQUESTS, "local_rate_limited"),
        "RL",
    );
    let h = res.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limited.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(0));
    h.insert("x-ratelimit-reset", HeaderValue::from(limited.reset_secs));
    res
}

#[cfg(test)]
mod tests;
