//! Load balancing over a live endpoint set.
//!
//! [`Balance`] follows a [`Resolution`]: each update builds a new view of the
//! endpoints (reusing the services, connection pools and load of endpoints
//! that stay) and swaps it in whole; requests read the view without locks.
//! Endpoints that discovery reports unhealthy or draining, and endpoints the
//! [`OutlierDetector`] has ejected, are left out of the view; when every
//! endpoint is ejected, all those of the highest priority level are used
//! (Envoy's panic routing).
//!
//! Before any pick, the set's drop overloads
//! ([`EndpointSet::drops`](mesh_core::EndpointSet::drops), xDS
//! `drop_overloads`) shed their shares of requests, each drawn in turn; a
//! shed request fails with [`Dropped`], naming the category.
//!
//! A pick first draws a priority level, then (when endpoints carry locality
//! weights) a locality, then applies the policy among that locality's or
//! level's endpoints. Envoy's semantics, with its overprovisioning factor of
//! 1.4:
//!
//! - **Priority levels** ([`Endpoint::priority`], 0 highest): a level's
//!   health is `min(100%, 1.4 × healthy / all)` of its endpoints (those
//!   reported unhealthy or draining and those ejected count as not
//!   healthy). Level 0 takes its health's share of traffic, level 1 as much
//!   of the rest as its health allows, and so on; when the levels' health
//!   adds up to less than 100% the shares are scaled up so that all traffic
//!   is placed. A level with one of two endpoints healthy takes 70%; a level
//!   with none takes nothing, and traffic comes back as it recovers. The
//!   level is drawn at random by these shares, or, under the hash policies,
//!   by `hash mod 100` (as Envoy), so a key keeps its endpoint.
//! - **Locality weights** ([`Endpoint::locality_weight`]): within a level, a
//!   locality is drawn with probability proportional to `weight × min(1,
//!   1.4 × healthy / all)` of its endpoints. A locality without a weight
//!   takes no traffic while others have one. The hash policies ignore
//!   locality weights (as Envoy).
//!
//! The level is drawn among the few levels, the locality by alias sampling,
//! and the pick within is O(1) in the number of endpoints for every policy
//! but ring hash, which is O(log n):
//!
//! - **Peak-EWMA P2C** (the default, as linkerd): two endpoints are sampled
//!   by weight and the one with the lower `latency estimate × (in flight + 1)
//!   / weight` wins. A slower latency replaces the estimate at once; a faster
//!   one is blended in with decay time constant `decay` (10 s); an endpoint
//!   with no observation is assumed to take `default_rtt` (30 ms).
//!   Power of two choices is from Mitzenmacher, "The Power of Two Choices in
//!   Randomized Load Balancing" (2001); peak-EWMA from Finagle.
//! - **Least request**: P2C on `(in flight + 1) / weight`.
//! - **Round robin**: weighted, over a precomputed earliest-deadline-first
//!   order; one atomic increment per pick.
//! - **Random**: weighted, by Vose's alias method.
//! - **Ring hash** (Envoy's `RING_HASH`, gRPC's `ring_hash`, gRFC A42): the
//!   request's [`RequestHash`] is looked up by binary search on a ketama ring
//!   of xxHash64 entries per endpoint, in proportion to weight, built as
//!   Envoy builds it (between `min_ring_size`, 1024, and `max_ring_size`,
//!   8M, entries).
//! - **Maglev** (Envoy's `MAGLEV`): the hash indexes a weighted Maglev table
//!   of a prime size (65,537 by default).
//!
//! Under the hash policies a request without a [`RequestHash`] goes to a
//! random endpoint, as in gRPC.
//!
//! A request carrying [`AttemptedEndpoints`] (the retry layer adds it) avoids
//! the endpoints it already tried when another is available (drawing the
//! level and locality again, up to twice, if it lands on one), and records
//! the one it is sent to. Under the hash policies a retry takes the next endpoint
//! on the ring (or the next slot of the table) that it has not tried, so
//! retries of one key go the same way.

mod error;
mod future;
mod hash;
mod load;
mod maglev;
mod picker;
mod priority;
mod ring;
mod status;
mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use mesh_core::policy::LoadBalancer;
use mesh_core::resolve::ResolveState;
use mesh_core::{DropOverload, Endpoint, Resolution, ResolveError, ResolveTarget};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tower::Service;

pub use error::{Dropped, NoEndpoints};
pub use future::ResponseFuture;
pub use status::{EndpointState, EndpointStatus};

use crate::outlier::{EndpointHealth, OutlierDetector};
use crate::{BoxError, NewService};
use load::{EwmaParams, Load};
use view::{Pick, View};

/// The endpoints a request has been sent to, oldest first. The retry layer
/// puts one in the request's extensions; the balancer avoids and extends it.
#[derive(Debug, Clone, Default)]
pub struct AttemptedEndpoints(Arc<Mutex<Vec<SocketAddr>>>);

impl AttemptedEndpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SocketAddr>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoints tried so far.
    pub fn get(&self) -> Vec<SocketAddr> {
        self.lock().clone()
    }

    /// Runs `f` over the endpoints tried so far, under one lock.
    fn with<R>(&self, f: impl FnOnce(&[SocketAddr]) -> R) -> R {
        f(&self.lock())
    }

    /// Records `addr` as tried.
    pub(crate) fn record(&self, addr: SocketAddr) {
        let mut tried = self.lock();
        if !tried.contains(&addr) {
            tried.push(addr);
        }
    }
}

/// The hash of a request, for the ring-hash and Maglev policies. The route
/// layer computes it from the route's hash policy (a header, a cookie, a
/// query parameter or the source IP, hashed with xxHash64, seed 0, as Envoy
/// and gRPC do) and puts it in the request's extensions. Under a hash policy
/// a request without one goes to a random endpoint (as gRPC does).
///
/// ```
/// use mesh_tower::balance::RequestHash;
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(RequestHash(0x9e37_79b9_7f4a_7c15));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHash(pub u64);

/// Balances requests over the endpoints of one target.
pub struct Balance<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Balance<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Balance<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balance")
            .field("target", &self.shared.target)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

struct Shared<S> {
    target: ResolveTarget,
    policy: LoadBalancer,
    ewma: EwmaParams,
    detector: Option<Arc<OutlierDetector>>,
    epoch: Instant,
    view: ArcSwap<View<S>>,
    rebuild: Mutex<()>,
    updates: watch::Sender<u64>,
    /// Dropped with the balancer, which ends its discovery task.
    _stop: oneshot::Sender<()>,
}

/// One endpoint in the balancer.
struct Slot<S> {
    endpoint: Endpoint,
    service: S,
    load: Arc<Load>,
    health: Option<Arc<EndpointHealth>>,
}

enum Members<S> {
    Pending,
    Failed(ResolveError),
    /// The endpoints that may take traffic, those discovery reported
    /// unhealthy or draining (which count against their priority's and
    /// locality's health), and the shares of requests to drop.
    Ready(Vec<Arc<Slot<S>>>, Vec<Endpoint>, Vec<DropOverload>),
}

impl<S> Balance<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Balances over `resolution`, building each endpoint's service with
    /// `new_endpoint`. With a `detector`, ejected endpoints are skipped.
    ///
    /// Must be called within a tokio runtime: a task follows the resolution
    /// until the balancer is dropped.
    pub fn new<N>(
        mut resolution: Resolution,
        new_endpoint: N,
        policy: LoadBalancer,
        detector: Option<Arc<OutlierDetector>>,
    ) -> Self
    where
        N: NewService<Endpoint, Service = S> + Send + 'static,
    {
        if let Err(e) = policy.validate() {
            // The tables clamp or replace what they cannot use.
            tracing::warn!(target = %resolution.target(), error = %e, "load-balancing policy adjusted");
        }
        let ewma = match policy {
            LoadBalancer::PeakEwma(p) => p,
            _ => Default::default(),
        };
        let ewma = EwmaParams {
            default_rtt_ns: ewma.default_rtt.as_nanos() as f64,
            decay_ns: (ewma.decay.as_nanos() as f64).max(1.0),
        };
        let (stop, mut stopped) = oneshot::channel::<()>();
        let shared = Arc::new(Shared {
            target: resolution.target().clone(),
            policy,
            ewma,
            detector,
            epoch: Instant::now(),
            view: ArcSwap::from_pointee(View::build(
                Arc::new(Members::Pending),
                None,
                Instant::now(),
                &policy,
            )),
            rebuild: Mutex::new(()),
            updates: watch::Sender::new(0),
            _stop: stop,
        });
        shared.apply(resolution.current(), &new_endpoint);
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let state = tokio::select! {
                    state = resolution.changed() => state,
                    // The balancer is gone: stop watching, so the source can
                    // stop refreshing a target nobody uses.
                    _ = &mut stopped => return,
                };
                let Some(shared) = Weak::upgrade(&weak) else {
                    return;
                };
                match state {
                    Some(state) => shared.apply(state, &new_endpoint),
                    None => {
                        // The source is gone. A target that resolved keeps
                        // its last endpoints; one that never did must not
                        // keep requests waiting for an answer that cannot
                        // come.
                        if !matches!(*shared.view.load().members, Members::Ready(..)) {
                            let error = ResolveError::source_stopped(&shared.target);
                            shared.apply(ResolveState::Failed(error), &new_endpoint);
                        }
                        return;
                    }
                }
            }
        });
        Self { shared }
    }

    /// The addresses of the endpoints requests may go to now.
    pub fn active_endpoints(&self) -> Vec<SocketAddr> {
        self.shared
            .current()
            .active
            .iter()
            .map(|s| s.endpoint.addr)
            .collect()
    }

    /// Waits until discovery has answered (with endpoints or an error).
    pub async fn ready(&self) {
        let mut rx = self.shared.updates.subscribe();
        while matches!(*self.shared.view.load().members, Members::Pending) {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl<S> Balance<S> {
    /// Every endpoint discovery gave, with its state and load: those that
    /// take requests or are ejected, then those discovery reports down.
    /// Empty until discovery answers, or after it failed.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        let view = self.shared.view.load();
        let Members::Ready(slots, down, _) = &*view.members else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut out: Vec<EndpointStatus> = slots
            .iter()
            .map(|slot| {
                let health = slot.health.as_deref();
                let ejected = match (&self.shared.detector, health) {
                    (Some(d), Some(h)) => d.ejected_until(h, now).is_some(),
                    _ => false,
                };
                EndpointStatus {
                    endpoint: slot.endpoint.clone(),
                    state: EndpointState::of(slot.endpoint.health, ejected),
                    active: slot.load.pending(),
                    requests: slot.load.total(),
                    errors: health.map_or(0, EndpointHealth::errors),
                    times_ejected: health.map_or(0, EndpointHealth::times_ejected),
                }
            })
            .collect();
        out.extend(down.iter().map(|e| EndpointStatus {
            endpoint: e.clone(),
            state: EndpointState::of(e.health, false),
            active: 0,
            requests: 0,
            errors: 0,
            times_ejected: 0,
        }));
        out
    }

    /// Why discovery failed for the target, while it has.
    pub fn resolve_error(&self) -> Option<ResolveError> {
        match &*self.shared.view.load().members {
            Members::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Ejections outlier detection has made in this balancer.
    pub fn ejections(&self) -> u64 {
        self.shared.detector.as_ref().map_or(0, |d| d.ejections())
    }
}

impl<S> Shared<S> {
    fn apply<N: NewService<Endpoint, Service = S>>(&self, state: ResolveState, new_endpoint: &N)
    where
        S: Clone,
    {
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.view.load_full();
        let members = match state {
            ResolveState::Pending => return,
            // The source says the target is gone (a source keeps a target
            // that resolved by sending nothing when a refresh fails).
            ResolveState::Failed(e) => Members::Failed(e),
            ResolveState::Ready(set) => {
                let previous: std::collections::HashMap<SocketAddr, &Arc<Slot<S>>> =
                    match &*old.members {
                        Members::Ready(slots, ..) => {
                            slots.iter().map(|s| (s.endpoint.addr, s)).collect()
                        }
                        _ => Default::default(),
                    };
                let (routable, unroutable): (Vec<&Endpoint>, Vec<&Endpoint>) =
                    set.iter().partition(|e| e.health.is_routable());
                if let Some(d) = &self.detector {
                    d.retain(&routable.iter().map(|e| e.addr).collect::<Vec<_>>());
                }
                let slots = routable
                    .into_iter()
                    .map(|e| {
                        let health = self.detector.as_ref().map(|d| d.endpoint(e.addr));
                        match previous.get(&e.addr) {
                            // Its connections are kept while its labels, which
                            // choose how it is reached (its TLS), stay.
                            Some(old) => Arc::new(Slot {
                                endpoint: e.clone(),
                                service: if old.endpoint.labels == e.labels {
                                    old.service.clone()
                                } else {
                                    new_endpoint.new_service(e.clone())
                                },
                                load: old.load.clone(),
                                health,
                            }),
                            None => Arc::new(Slot {
                                endpoint: e.clone(),
                                service: new_endpoint.new_service(e.clone()),
                                load: Arc::new(Load::new(self.epoch, self.ewma)),
                                health,
                            }),
                        }
                    })
                    .collect();
                tracing::debug!(target = %self.target, endpoints = set.len(), "endpoints updated");
                let down = unroutable.into_iter().cloned().collect();
                Members::Ready(slots, down, set.drops().to_vec())
            }
        };
        self.view.store(Arc::new(View::build(
            Arc::new(members),
            self.detector.as_deref(),
            Instant::now(),
            &self.policy,
        )));
        self.updates.send_modify(|n| *n += 1);
    }

    /// The current view, rebuilt first if an ejection began or ended.
    fn current(&self) -> arc_swap::Guard<Arc<View<S>>> {
        let view = self.view.load();
        let stale = self.detector.as_ref().is_some_and(|d| {
            d.generation() != view.generation
                || view.next_change.is_some_and(|t| Instant::now() >= t)
        });
        if !stale {
            return view;
        }
        // One request rebuilds; the others keep using the current view.
        if let Ok(_guard) = self.rebuild.try_lock() {
            let fresh = View::build(
                view.members.clone(),
                self.detector.as_deref(),
                Instant::now(),
                &self.policy,
            );
            self.view.store(Arc::new(fresh));
        }
        self.view.load()
    }
}

impl<S, B> Service<http::Request<B>> for Balance<S>
where
    S: Service<http::Request<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, http::Request<B>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let view = self.shared.current();
        if let Members::Pending = &*view.members {
            let balance = self.clone();
            return ResponseFuture::waiting(Box::pin(async move {
                balance.ready().await;
                let mut balance = balance;
                balance.call(req).await
            }));
        }
        match dispatch(&self.shared, &view, req) {
            Ok((fut, in_flight)) => ResponseFuture::dispatched(fut, in_flight, self.shared.ewma),
            Err(e) => ResponseFuture::failed(e),
        }
    }
}

type Dispatched<S, R> = (tower::util::Oneshot<S, R>, load::InFlight);

fn dispatch<S, B>(
    shared: &Shared<S>,
    view: &View<S>,
    req: http::Request<B>,
) -> Result<Dispatched<S, http::Request<B>>, BoxError>
where
    S: Service<http::Request<B>> + Clone,
{
    let reason = match &*view.members {
        Members::Failed(e) => return Err(e.clone().into()),
        Members::Pending => "discovery has not answered",
        Members::Ready(slots, ..) if slots.is_empty() => "discovery returned no healthy endpoints",
        Members::Ready(_, _, drops) => {
            // Shed before any endpoint is picked, as gRPC's cluster_impl does.
            if let Some(d) = drops.iter().find(|d| d.percent.hit(rand::random())) {
                return Err(Dropped {
                    target: shared.target.to_string(),
                    category: d.category.clone(),
                }
                .into());
            }
            ""
        }
    };
    let attempted = req.extensions().get::<AttemptedEndpoints>();
    let pick = Pick {
        policy: &shared.policy,
        ewma: shared.ewma,
        hash: req.extensions().get::<RequestHash>().map(|h| h.0),
        attempted,
    };
    let Some(slot) = view.pick(&pick) else {
        return Err(NoEndpoints {
            target: shared.target.to_string(),
            reason,
        }
        .into());
    };
    if let Some(a) = attempted {
        a.record(slot.endpoint.addr);
    }
    let in_flight = slot.load.start();
    Ok((
        tower::ServiceExt::oneshot(slot.service.clone(), req),
        in_flight,
    ))
}

#[cfg(test)]
mod tests;
