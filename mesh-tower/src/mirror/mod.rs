//! Traffic mirroring (shadowing), as Envoy's `request_mirror_policies` and
//! Istio's `mirror`/`mirrorPercentage`/`mirrors`: a share of a route's
//! requests is copied to another cluster, fire and forget.
//!
//! - The copy goes out on a task of its own; its response is discarded and
//!   its failure is only logged, so the original is never failed by it.
//! - The original's body is teed to the copy frame by frame as it is sent
//!   ([`RequestBody::tee_many`]); a copy that falls more than 16 frames behind is
//!   cut off rather than slowing the original.
//! - The copy's authority gets `-shadow` appended to its host
//!   (`reviews:9080` → `reviews-shadow:9080`), as Envoy does, so the shadow
//!   service can tell copies apart.
//! - A copy is sent once, never retried, and given up after the route's
//!   timeout (15 s, Envoy's route default, when the route sets none); at
//!   most 1,024 copies are in flight per layer, and beyond that requests are
//!   not mirrored, so a hanging shadow cannot pile up tasks.
//!
//! The inner service takes [`RequestBody`]s: the original's teed body, or
//! a copy's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority as UriAuthority;
use http_body::Body;
use mesh_core::policy::RetryPolicy;
use mesh_core::route::ClusterName;
use tower::{Layer, Service, ServiceExt};

use crate::draw::Draws;
use crate::retry::RetryOverride;
use crate::route::RouteDecision;
use crate::split::SelectedCluster;
use crate::timeout::TimeoutOverride;
use crate::{BoxError, RequestBody};

/// Frames a copy may fall behind the original before it is cut off.
const COPY_FRAMES: usize = 16;

/// Copies in flight at most, per layer.
pub const MAX_IN_FLIGHT: usize = 1024;

/// How long a copy may take when its route sets no timeout (Envoy's route
/// default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Copies a share of each route's requests to its mirror clusters.
#[derive(Clone, Debug)]
pub struct Mirror<S> {
    inner: S,
    draws: Draws,
    in_flight: Arc<AtomicUsize>,
}

impl<S> Mirror<S> {
    /// Wraps `inner`, drawing at random.
    pub fn new(inner: S) -> Self {
        MirrorLayer::new().layer(inner)
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

impl<S, B> Service<http::Request<B>> for Mirror<S>
where
    S: Service<http::Request<RequestBody<B>>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> S::Future {
        let targets = self.targets(&req);
        if targets.is_empty() {
            return self.inner.call(req.map(RequestBody::new));
        }
        let timeout = match req.extensions().get::<TimeoutOverride>() {
            Some(TimeoutOverride(Some(t))) => *t,
            _ => DEFAULT_TIMEOUT,
        };
        let (parts, body) = req.into_parts();
        let (body, copies) = RequestBody::tee_many(body, targets.len(), COPY_FRAMES);
        for (cluster, copy_body) in targets.into_iter().zip(copies) {
            let copy = shadow(&parts, cluster, copy_body, timeout);
            self.send_copy(copy, timeout);
        }
        self.inner.call(http::Request::from_parts(parts, body))
    }
}

impl<S> Mirror<S> {
    /// The mirror clusters this request is copied to.
    fn targets<B>(&self, req: &http::Request<B>) -> Vec<ClusterName> {
        let Some(forward) = req
            .extensions()
            .get::<RouteDecision>()
            .and_then(|d| d.route().forwarding())
        else {
            return Vec::new();
        };
        forward
            .mirrors
            .iter()
            .filter(|m| m.percent.hit(self.draws.draw_u32()))
            .map(|m| m.cluster.clone())
            .collect()
    }

    fn send_copy<B>(&self, copy: http::Request<RequestBody<B>>, timeout: Duration)
    where
        S: Service<http::Request<RequestBody<B>>> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        B: Send + 'static,
    {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!("too many mirrored requests in flight; not mirroring");
            return;
        }
        let in_flight = InFlight(self.in_flight.clone());
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let _in_flight = in_flight;
            match tokio::time::timeout(timeout, inner.oneshot(copy)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e.into(), "mirrored request failed"),
                Err(_) => tracing::debug!(?timeout, "mirrored request timed out"),
            }
        });
    }
}

/// Counts a copy as in flight until dropped, however its task ends.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The copy of a request with `parts`, for `cluster`: sent once, within
/// `timeout`.
fn shadow<B>(
    parts: &http::request::Parts,
    cluster: ClusterName,
    body: RequestBody<B>,
    timeout: Duration,
) -> http::Request<RequestBody<B>> {
    let mut copy = http::Request::new(body);
    *copy.method_mut() = parts.method.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    *copy.extensions_mut() = parts.extensions.clone();
    let ext = copy.extensions_mut();
    ext.insert(SelectedCluster(cluster));
    ext.insert(TimeoutOverride(Some(timeout)));
    ext.insert(RetryOverride(no_retries()));
    *copy.uri_mut() = shadow_uri(&parts.uri);
    if let Some(host) = copy.uri().authority().map(|a| a.as_str().to_owned())
        && copy.headers().contains_key(http::header::HOST)
        && let Ok(v) = http::HeaderValue::try_from(host)
    {
        copy.headers_mut().insert(http::header::HOST, v);
    }
    copy
}

/// The policy of a copy: one attempt.
fn no_retries() -> Arc<RetryPolicy> {
    static ONCE: std::sync::OnceLock<Arc<RetryPolicy>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        Arc::new(RetryPolicy {
            num_retries: 0,
            ..RetryPolicy::default()
        })
    })
    .clone()
}

/// `uri` with `-shadow` appended to its host. An IP literal host is kept as
/// it is (`[::1]-shadow` is no authority).
fn shadow_uri(uri: &http::Uri) -> http::Uri {
    let Some(authority) = uri.authority() else {
        return uri.clone();
    };
    let shadowed = match authority.port() {
        Some(port) => format!("{}-shadow:{port}", authority.host()),
        None => format!("{}-shadow", authority.host()),
    };
    let mut parts = uri.clone().into_parts();
    parts.authority = UriAuthority::try_from(shadowed).ok().or(parts.authority);
    http::Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// Applies [`Mirror`]; services it makes share draws and the in-flight
/// bound.
#[derive(Clone, Debug)]
pub struct MirrorLayer {
    draws: Draws,
    in_flight: Arc<AtomicUsize>,
}

impl MirrorLayer {
    /// Draws at random.
    pub fn new() -> Self {
        Self::seeded(None)
    }

    /// Draws from a sequence fixed by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::seeded(Some(seed))
    }

    /// Draws from `seed`'s sequence, or at random without one.
    pub(crate) fn seeded(seed: Option<u64>) -> Self {
        Self {
            draws: Draws::new(seed),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Default for MirrorLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for MirrorLayer {
    type Service = Mirror<S>;

    fn layer(&self, inner: S) -> Mirror<S> {
        Mirror {
            inner,
            draws: self.draws.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use mesh_core::route::{Forward, Mirror as MirrorPolicy, Percent, Route};
    use tower::ServiceBuilder;

    use super::*;
    use crate::ResponseBody;
    use crate::route::RouteLayer;
    use crate::test_support::config;

    /// Copies (to `shadow`) never answer; originals answer at once. Counts
    /// the copies and checks they are sent once.
    fn hanging_shadow(
        copies: Arc<AtomicUsize>,
    ) -> impl Service<
        http::Request<RequestBody<http_body_util::Empty<Bytes>>>,
        Response = http::Response<ResponseBody>,
        Error = BoxError,
        Future: Send,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |req: http::Request<RequestBody<_>>| {
            let copy = req
                .extensions()
                .get::<SelectedCluster>()
                .map(|c| c.0.as_str() == "shadow");
            if copy == Some(true) {
                copies.fetch_add(1, Ordering::SeqCst);
                let RetryOverride(policy) = req.extensions().get().unwrap();
                assert_eq!(policy.num_retries, 0);
            }
            async move {
                if copy == Some(true) {
                    std::future::pending::<()>().await;
                }
                Ok::<_, BoxError>(http::Response::new(ResponseBody::empty()))
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn copies_are_bounded_and_end_with_their_timeout() {
        let mut forward = Forward::to("reviews");
        forward.mirrors.push(MirrorPolicy {
            cluster: "shadow".into(),
            percent: Percent::ALL,
        });
        let copies = Arc::new(AtomicUsize::new(0));
        let layer = MirrorLayer::with_seed(1);
        let svc = ServiceBuilder::new()
            .layer(RouteLayer::new(config(vec![Route::forward(forward)])))
            .layer(layer.clone())
            .service(hanging_shadow(copies.clone()));
        let get = || {
            http::Request::get("http://reviews:9080/")
                .body(http_body_util::Empty::new())
                .unwrap()
        };
        for _ in 0..MAX_IN_FLIGHT + 10 {
            svc.clone().oneshot(get()).await.unwrap();
        }
        // Let the copies' tasks run.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(copies.load(Ordering::SeqCst), MAX_IN_FLIGHT);
        assert_eq!(layer.in_flight.load(Ordering::SeqCst), MAX_IN_FLIGHT);
        tokio::time::sleep(DEFAULT_TIMEOUT + Duration::from_millis(1)).await;
        assert_eq!(layer.in_flight.load(Ordering::SeqCst), 0, "copies gave up");
        svc.oneshot(get()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(copies.load(Ordering::SeqCst), MAX_IN_FLIGHT + 1);
    }

    #[test]
    fn shadow_hosts() {
        let u = |s: &str| shadow_uri(&s.parse().unwrap()).to_string();
        assert_eq!(
            u("http://reviews:9080/a?b=1"),
            "http://reviews-shadow:9080/a?b=1"
        );
        assert_eq!(u("http://reviews/a"), "http://reviews-shadow/a");
        assert_eq!(u("/a"), "/a");
    }
}
