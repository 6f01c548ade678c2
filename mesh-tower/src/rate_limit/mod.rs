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
//! by the server side from the peer's certificate); requests without one
//! share one bucket. At most [`MAX_IDENTITIES`] identities are tracked; full
//! buckets are forgotten first, and beyond that the unknown identities share
//! one bucket.

mod bucket;
mod layer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwapOption;
use futures_util::future::Either;
use http::{HeaderValue, StatusCode};
use mesh_core::MeshConfig;
use mesh_core::policy::LocalRateLimit;
use mesh_core::route::RouteId;
use tokio::time::Instant;
use tower::Service;

pub use layer::RateLimitLayer;

use crate::ResponseBody;
use crate::body::local_response;
use crate::route::RouteDecision;
use bucket::Bucket;

/// Identities tracked at most by one limiter.
pub const MAX_IDENTITIES: usize = 10_000;

/// The identity of the client a request came from (a SPIFFE ID); a
/// request extension.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIdentity(pub Arc<str>);

/// The buckets of one [`LocalRateLimit`].
#[derive(Debug)]
pub struct RateLimiter {
    policy: LocalRateLimit,
    total: Option<Bucket>,
    identities: Mutex<HashMap<Arc<str>, Arc<Bucket>>>,
    /// Shared by identities beyond [`MAX_IDENTITIES`].
    overflow: Option<Arc<Bucket>>,
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
            identities: Mutex::new(HashMap::new()),
            policy,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &LocalRateLimit {
        &self.policy
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
        let mut map = self.identities.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = map.get(identity) {
            return Some(b.clone());
        }
        if map.len() >= MAX_IDENTITIES {
            // A full bucket is the same as a new one: forgetting it loses
            // nothing.
            map.retain(|_, b| !b.is_full(now));
            if map.len() >= MAX_IDENTITIES {
                return self.overflow.clone();
            }
        }
        let bucket = Arc::new(Bucket::new(limit, now));
        map.insert(identity.into(), bucket.clone());
        Some(bucket)
    }
}

/// Where a [`RateLimit`] finds its limiter.
#[derive(Clone, Debug)]
enum Source {
    /// One limiter for every request (a cluster's).
    Fixed(Arc<RateLimiter>),
    /// The limiter of each request's route.
    PerRoute(Arc<RouteLimiters>),
}

type Limiters = HashMap<RouteId, Arc<RateLimiter>>;

/// The limiters of the routes of one configuration; rebuilt when the
/// configuration changes, keeping the buckets of routes whose policy did
/// not.
#[derive(Debug, Default)]
struct RouteLimiters {
    current: ArcSwapOption<(Arc<MeshConfig>, Limiters)>,
    rebuild: Mutex<()>,
}

impl RouteLimiters {
    fn get(&self, decision: &RouteDecision) -> Option<Arc<RateLimiter>> {
        decision.route().rate_limit.as_ref()?;
        let config = decision.config();
        if let Some(cur) = &*self.current.load()
            && std::ptr::eq(&*cur.0, config)
        {
            return cur.1.get(&decision.id()).cloned();
        }
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current.load_full();
        let mut limiters = HashMap::new();
        for (v, vh) in config.routes().virtual_hosts().iter().enumerate() {
            for (r, route) in vh.routes.iter().enumerate() {
                let Some(policy) = &route.rate_limit else {
                    continue;
                };
                let id = RouteId {
                    virtual_host: v as u32,
                    route: r as u32,
                };
                let kept = old
                    .as_ref()
                    .and_then(|o| o.1.get(&id))
                    .filter(|l| l.policy == *policy)
                    .cloned();
                limiters.insert(
                    id,
                    kept.unwrap_or_else(|| Arc::new(RateLimiter::new(policy.clone()))),
                );
            }
        }
        let found = limiters.get(&decision.id()).cloned();
        self.current
            .store(Some(Arc::new((decision.config_arc(), limiters))));
        found
    }
}

/// Rejects requests over their limit with `429`.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    source: Source,
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
        let limiter = match &self.source {
            Source::Fixed(l) => Some(l.clone()),
            Source::PerRoute(routes) => req
                .extensions()
                .get::<RouteDecision>()
                .and_then(|d| routes.get(d)),
        };
        let identity = req.extensions().get::<ClientIdentity>().map(|i| &*i.0);
        match limiter.map(|l| l.admit(identity)) {
            Some(Err(limited)) => Either::Right(std::future::ready(Ok(too_many(limited)))),
            _ => Either::Left(self.inner.call(req)),
        }
    }
}

fn too_many(limited: Limited) -> http::Response<ResponseBody> {
    let mut res = local_response(StatusCode::TOO_MANY_REQUESTS, "local_rate_limited");
    let h = res.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limited.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(0));
    h.insert("x-ratelimit-reset", HeaderValue::from(limited.reset_secs));
    res
}

#[cfg(test)]
mod tests;
