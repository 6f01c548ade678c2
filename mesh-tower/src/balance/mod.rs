//! Load balancing over a live endpoint set.
//!
//! [`Balance`] follows a [`Resolution`]: each update builds a new view of the
//! endpoints (reusing the services, connection pools and load of endpoints
//! that stay) and swaps it in whole; requests read the view without locks.
//! Endpoints that discovery reports unhealthy or draining, and endpoints the
//! [`OutlierDetector`] has ejected, are left out of the view; when every
//! endpoint is ejected, all are used (Envoy's panic routing).
//!
//! Picking is O(1) in the number of endpoints for every policy:
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
//!
//! A request carrying [`AttemptedEndpoints`] (the retry layer adds it) avoids
//! the endpoints it already tried when another is available, and records the
//! one it is sent to.

mod error;
mod future;
mod load;
mod picker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use mesh_core::policy::LoadBalancer;
use mesh_core::resolve::ResolveState;
use mesh_core::{Authority, Endpoint, Resolution, ResolveError};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tower::Service;

pub use error::NoEndpoints;
pub use future::ResponseFuture;

use crate::outlier::{EndpointHealth, OutlierDetector};
use crate::{BoxError, NewService};
use load::{EwmaParams, Load};
use picker::Sampler;

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

    fn contains(&self, addr: SocketAddr) -> bool {
        self.lock().contains(&addr)
    }

    fn push(&self, addr: SocketAddr) {
        self.lock().push(addr);
    }
}

/// A request's consistent-hash key, put in its extensions by the route
/// layer from the route's hash policy; ring-hash and maglev balancers pick
/// by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    target: Authority,
    policy: LoadBalancer,
    ewma: EwmaParams,
    detector: Option<Arc<OutlierDetector>>,
    epoch: Instant,
    view: ArcSwap<View<S>>,
    rebuild: Mutex<()>,
    updates: watch::Sender<u64>,
    rotation: AtomicUsize,
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
    Ready(Vec<Arc<Slot<S>>>),
}

/// What requests read: the members and the pickable subset.
struct View<S> {
    members: Arc<Members<S>>,
    active: Vec<Arc<Slot<S>>>,
    sampler: Sampler,
    schedule: Option<Vec<u32>>,
    generation: u64,
    next_change: Option<Instant>,
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
            )),
            rebuild: Mutex::new(()),
            updates: watch::Sender::new(0),
            rotation: AtomicUsize::new(0),
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
                        // The source is gone. A target that never resolved
                        // must not keep requests waiting for an answer that
                        // cannot come.
                        let error = ResolveError::source_stopped(&shared.target);
                        shared.apply(ResolveState::Failed(error), &new_endpoint);
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

impl<S> Shared<S> {
    fn apply<N: NewService<Endpoint, Service = S>>(&self, state: ResolveState, new_endpoint: &N)
    where
        S: Clone,
    {
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.view.load_full();
        let members = match state {
            ResolveState::Pending => return,
            ResolveState::Failed(e) => match &*old.members {
                // A target that resolved keeps its last good endpoints.
                Members::Ready(_) => return,
                _ => Members::Failed(e),
            },
            ResolveState::Ready(set) => {
                let previous: std::collections::HashMap<SocketAddr, &Arc<Slot<S>>> = match &*old
                    .members
                {
                    Members::Ready(slots) => slots.iter().map(|s| (s.endpoint.addr, s)).collect(),
                    _ => Default::default(),
                };
                let routable: Vec<&Endpoint> =
                    set.iter().filter(|e| e.health.is_routable()).collect();
                if let Some(d) = &self.detector {
                    d.retain(&routable.iter().map(|e| e.addr).collect::<Vec<_>>());
                }
                let slots = routable
                    .into_iter()
                    .map(|e| {
                        let health = self.detector.as_ref().map(|d| d.endpoint(e.addr));
                        match previous.get(&e.addr) {
                            Some(old) => Arc::new(Slot {
                                endpoint: e.clone(),
                                service: old.service.clone(),
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
                Members::Ready(slots)
            }
        };
        self.view.store(Arc::new(View::build(
            Arc::new(members),
            self.detector.as_deref(),
            Instant::now(),
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
            );
            self.view.store(Arc::new(fresh));
        }
        self.view.load()
    }

    fn pick(&self, view: &View<S>, attempted: Option<&AttemptedEndpoints>) -> Option<Arc<Slot<S>>> {
        let n = view.active.len();
        if n <= 1 {
            return view.active.first().cloned();
        }
        let avoid = |i: usize| attempted.is_some_and(|a| a.contains(view.active[i].endpoint.addr));
        let mut rng = rand::rng();
        let mut sample = |other: Option<usize>| {
            let mut i = match other {
                Some(o) => view.sampler.sample_other(o, &mut rng),
                None => view.sampler.sample(&mut rng),
            };
            for _ in 0..3 {
                if !avoid(i) {
                    break;
                }
                i = view.sampler.sample(&mut rng);
            }
            i
        };
        let index = match self.policy {
            LoadBalancer::Random => sample(None),
            LoadBalancer::RoundRobin => {
                let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
                let at = |t: usize| match &view.schedule {
                    Some(order) => order[t % order.len()] as usize,
                    None => t % n,
                };
                (turn..turn + n.min(4))
                    .map(at)
                    .find(|i| !avoid(*i))
                    .unwrap_or(at(turn))
            }
            LoadBalancer::LeastRequest | LoadBalancer::PeakEwma(_) => {
                let a = sample(None);
                let b = sample(Some(a));
                let now = Instant::now();
                let cost = |i: usize| {
                    let slot = &view.active[i];
                    let load = match self.policy {
                        LoadBalancer::LeastRequest => f64::from(slot.load.pending() + 1),
                        _ => slot.load.peak_ewma_cost(now, self.ewma),
                    };
                    load / f64::from(slot.endpoint.weight.max(1))
                };
                match (avoid(a), avoid(b)) {
                    (true, false) => b,
                    (false, true) => a,
                    _ if cost(b) < cost(a) => b,
                    _ => a,
                }
            }
        };
        Some(view.active[index].clone())
    }
}

impl<S> View<S> {
    fn build(members: Arc<Members<S>>, detector: Option<&OutlierDetector>, now: Instant) -> Self {
        let mut next_change: Option<Instant> = None;
        let active: Vec<Arc<Slot<S>>> = match &*members {
            Members::Ready(slots) => {
                let up: Vec<_> = slots
                    .iter()
                    .filter(|s| {
                        let until = detector
                            .zip(s.health.as_ref())
                            .and_then(|(d, h)| d.ejected_until(h, now));
                        if let Some(until) = until {
                            next_change = Some(next_change.map_or(until, |t| t.min(until)));
                        }
                        until.is_none()
                    })
                    .cloned()
                    .collect();
                if up.is_empty() { slots.clone() } else { up }
            }
            _ => Vec::new(),
        };
        let weights: Vec<u32> = active.iter().map(|s| s.endpoint.weight.max(1)).collect();
        Self {
            members,
            sampler: Sampler::new(&weights),
            schedule: picker::schedule(&weights),
            active,
            generation: detector.map_or(0, |d| d.generation()),
            next_change,
        }
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
        Members::Ready(slots) if slots.is_empty() => "discovery returned no healthy endpoints",
        Members::Ready(_) => "",
    };
    let attempted = req.extensions().get::<AttemptedEndpoints>();
    let Some(slot) = shared.pick(view, attempted) else {
        return Err(NoEndpoints {
            target: shared.target.to_string(),
            reason,
        }
        .into());
    };
    if let Some(a) = attempted {
        a.push(slot.endpoint.addr);
    }
    let in_flight = slot.load.start();
    Ok((
        tower::ServiceExt::oneshot(slot.service.clone(), req),
        in_flight,
    ))
}

#[cfg(test)]
mod tests;
