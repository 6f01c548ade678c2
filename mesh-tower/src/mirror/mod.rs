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
//! - A copy is sent once, never retried (its service, built with the
//!   route, sends it to the mirror cluster with one attempt), and given up
//!   after the route's timeout (15 s, Envoy's route default, when the route
//!   sets none); at most 1,024 copies are in flight per layer, and beyond
//!   that requests are not mirrored, so a hanging shadow cannot pile up
//!   tasks.
//!
//! The inner service and the mirrors take [`RequestBody`]s: the original's
//! teed body, or a copy's.

mod layer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority as UriAuthority;
use http_body::Body;
use mesh_core::route::Percent;
use tower::{Service, ServiceExt};

pub use layer::MirrorLayer;

use crate::draw::Draws;
use crate::{BoxError, RequestBody};

/// Frames a copy may fall behind the original before it is cut off.
const COPY_FRAMES: usize = 16;

/// Copies in flight at most, per layer.
pub const MAX_IN_FLIGHT: usize = 1024;

/// How long a copy may take when its route sets no timeout (Envoy's route
/// default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Copies a share of the requests through it to each of its mirrors: `M`
/// sends a copy to one mirror cluster, once.
#[derive(Debug)]
pub struct Mirror<S, M> {
    inner: S,
    mirrors: Arc<[(Percent, M)]>,
    timeout: Duration,
    draws: Draws,
    in_flight: Arc<AtomicUsize>,
}

impl<S: Clone, M> Clone for Mirror<S, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            mirrors: self.mirrors.clone(),
            timeout: self.timeout,
            draws: self.draws.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

impl<S, M> Mirror<S, M> {
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

impl<S, M, B> Service<http::Request<B>> for Mirror<S, M>
where
    S: Service<http::Request<RequestBody<B>>>,
    M: Service<http::Request<RequestBody<B>>> + Clone + Send + 'static,
    M::Future: Send,
    M::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> S::Future {
        let targets: Vec<&M> = self
            .mirrors
            .iter()
            .filter(|(percent, _)| percent.hit(self.draws.draw_u32()))
            .map(|(_, mirror)| mirror)
            .collect();
        if targets.is_empty() {
            return self.inner.call(req.map(RequestBody::new));
        }
        let (parts, body) = req.into_parts();
        let (body, copies) = RequestBody::tee_many(body, targets.len(), COPY_FRAMES);
        for (mirror, copy_body) in targets.into_iter().zip(copies) {
            self.send_copy(mirror.clone(), shadow(&parts, copy_body));
        }
        self.inner.call(http::Request::from_parts(parts, body))
    }
}

impl<S, M> Mirror<S, M> {
    fn send_copy<B>(&self, mirror: M, copy: http::Request<RequestBody<B>>)
    where
        M: Service<http::Request<RequestBody<B>>> + Send + 'static,
        M::Future: Send,
        M::Error: Into<BoxError>,
        B: Send + 'static,
    {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!("too many mirrored requests in flight; not mirroring");
            return;
        }
        let in_flight = InFlight(self.in_flight.clone());
        let timeout = self.timeout;
        tokio::spawn(async move {
            let _in_flight = in_flight;
            match tokio::time::timeout(timeout, mirror.oneshot(copy)).await {
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

/// The copy of a request with `parts`.
fn shadow<B>(parts: &http::request::Parts, body: RequestBody<B>) -> http::Request<RequestBody<B>> {
    let mut copy = http::Request::new(body);
    *copy.method_mut() = parts.method.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    *copy.extensions_mut() = parts.extensions.clone();
    *copy.uri_mut() = shadow_uri(&parts.uri);
    if let Some(host) = copy.uri().authority().map(|a| a.as_str().to_owned())
        && copy.headers().contains_key(http::header::HOST)
        && let Ok(v) = http::HeaderValue::try_from(host)
    {
        copy.headers_mut().insert(http::header::HOST, v);
    }
    copy
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tower::Layer;

    use super::*;
    use crate::ResponseBody;

    type Req = http::Request<RequestBody<http_body_util::Empty<Bytes>>>;

    /// Answers at once.
    fn original()
    -> impl Service<Req, Response = http::Response<ResponseBody>, Error = BoxError> + Clone {
        tower::service_fn(|_: Req| async {
            Ok::<_, BoxError>(http::Response::new(ResponseBody::empty()))
        })
    }

    /// Never answers; counts the copies it is sent.
    fn hanging_shadow(
        copies: Arc<AtomicUsize>,
    ) -> impl Service<Req, Response = http::Response<ResponseBody>, Error = BoxError, Future: Send>
    + Clone
    + Send
    + 'static {
        tower::service_fn(move |_: Req| {
            copies.fetch_add(1, Ordering::SeqCst);
            async move {
                std::future::pending::<()>().await;
                Ok::<_, BoxError>(http::Response::new(ResponseBody::empty()))
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn copies_are_bounded_and_end_with_their_timeout() {
        let copies = Arc::new(AtomicUsize::new(0));
        let layer = MirrorLayer::<()>::with_seed(1).mirrors(
            [(Percent::ALL, hanging_shadow(copies.clone()))],
            DEFAULT_TIMEOUT,
        );
        let svc = layer.layer(original());
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
