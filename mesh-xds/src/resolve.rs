//! [`XdsResolve`]: the endpoints of xDS clusters, by cluster name, for a
//! client's balancers; any other target is asked of a fallback resolver.
//!
//! A cluster's endpoints come from where its CDS resource says:
//!
//! - EDS: the accepted `ClusterLoadAssignment` of its service name;
//! - STATIC: the endpoints listed in the cluster;
//! - LOGICAL_DNS: its host and port, resolved by the fallback (DNS).
//!
//! Until the cluster (or its load assignment) arrives the resolution is
//! pending, so requests wait for it. One the control plane rejected with no
//! earlier copy, or says does not exist, fails with that reason; a cluster
//! that had endpoints keeps them (the balancer holds the last good set).
//! Answers change only when what they are made of does: an update that
//! leaves a cluster's endpoints alone sends its watchers nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use mesh_core::resolve::{ResolveState, ResolveTarget};
use mesh_core::{Authority, Resolution, Resolve, ResolveError};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::TargetState;
use crate::ads::{AdsHandle, AdsView, ResourceType};
use crate::resource::{Discovery, XdsCluster, XdsLoadAssignment};

/// Resolves xDS clusters by name from an ADS client's accepted resources,
/// and authorities through `fallback`. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use mesh_core::{Resolve, StaticResolve};
/// use mesh_xds::{Bootstrap, XdsResolve};
/// use mesh_xds::ads::AdsClient;
///
/// let ads = AdsClient::start(&Bootstrap::from_env()?)?;
/// let resolve = XdsResolve::new(&ads, StaticResolve::default());
/// let endpoints = resolve
///     .resolve_named("outbound|9080|v1|reviews.default.svc.cluster.local")
///     .ready()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct XdsResolve {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for XdsResolve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<Arc<str>> = self.shared.lock().keys().cloned().collect();
        f.debug_struct("XdsResolve")
            .field("clusters", &names)
            .finish_non_exhaustive()
    }
}

struct Shared {
    fallback: Arc<dyn Resolve>,
    view: watch::Receiver<Arc<AdsView>>,
    clusters: Mutex<HashMap<Arc<str>, Watched>>,
}

/// One cluster someone watches.
struct Watched {
    tx: watch::Sender<ResolveState>,
    /// For a LOGICAL_DNS cluster: the authority resolved, and the task
    /// relaying its answers, stopped when replaced or dropped.
    dns: Option<(Authority, Relay)>,
    /// The cluster and load assignment the endpoints sent were made of.
    made_of: Option<(Arc<XdsCluster>, Option<Arc<XdsLoadAssignment>>)>,
}

/// A task relaying DNS answers; it stops when this is dropped.
struct Relay(AbortHandle);

impl Drop for Relay {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl XdsResolve {
    /// Resolves the clusters `ads` accepts, and authorities through
    /// `fallback`. Must be called within a Tokio runtime: a task follows
    /// the client's updates while the resolver lives (its resolutions
    /// keep their last answer after that).
    pub fn new(ads: &AdsHandle, fallback: impl Resolve) -> Self {
        let shared = Arc::new(Shared {
            fallback: Arc::new(fallback),
            view: ads.updates(),
            clusters: Mutex::new(HashMap::new()),
        });
        tokio::spawn(follow(Arc::downgrade(&shared), ads.updates()));
        Self { shared }
    }
}

impl Resolve for XdsResolve {
    fn resolve(&self, target: &Authority) -> Resolution {
        self.shared.fallback.resolve(target)
    }

    fn resolve_named(&self, name: &str) -> Resolution {
        let mut clusters = self.shared.lock();
        if let Some(w) = clusters.get(name) {
            return Resolution::new(ResolveTarget::Named(name.into()), w.tx.subscribe());
        }
        let name: Arc<str> = name.into();
        let (tx, rx) = watch::channel(ResolveState::Pending);
        let mut watched = Watched {
            tx,
            dns: None,
            made_of: None,
        };
        let view = self.shared.view.borrow().clone();
        self.shared.update(&name, &mut watched, &view);
        clusters.insert(name.clone(), watched);
        Resolution::new(ResolveTarget::Named(name), rx)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Watched>> {
        // The map holds no invariant a panic elsewhere could break.
        self.clusters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings `w`, the watch of cluster `name`, up to date with `view`.
    /// A cluster whose resources are the very ones its endpoints were made
    /// of costs two pointer comparisons.
    fn update(&self, name: &str, w: &mut Watched, view: &AdsView) {
        let Some(cluster) = view.clusters.get(name) else {
            w.dns = None;
            w.made_of = None;
            return send(&w.tx, missing(view, ResourceType::Cluster, name, name));
        };
        let assignment = match &cluster.discovery {
            Discovery::Eds { service_name } => view.load_assignments.get(service_name),
            Discovery::Static(_) | Discovery::LogicalDns { .. } => None,
        };
        if let Some((c, a)) = &w.made_of
            && Arc::ptr_eq(c, cluster)
            && match (a, assignment) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        {
            return;
        }
        let state = match &cluster.discovery {
            Discovery::Eds { service_name } => match assignment {
                Some(a) => ResolveState::Ready(a.endpoints.clone()),
                None => {
                    // Pending or failed may change with no new resource.
                    w.made_of = None;
                    w.dns = None;
                    let state = missing(view, ResourceType::LoadAssignment, service_name, name);
                    return send(&w.tx, state);
                }
            },
            Discovery::Static(a) => ResolveState::Ready(a.endpoints.clone()),
            Discovery::LogicalDns { host, port } => {
                w.made_of = Some((cluster.clone(), None));
                return self.relay_dns(name, w, host, *port);
            }
        };
        w.dns = None;
        w.made_of = Some((cluster.clone(), assignment.cloned()));
        send(&w.tx, state);
    }

    /// Makes `w` follow the DNS answers for `host:port`.
    fn relay_dns(&self, name: &str, w: &mut Watched, host: &str, port: u16) {
        let authority = match Authority::new(host, port) {
            Ok(a) => a,
            Err(e) => {
                w.dns = None;
                let error = ResolveError::new(name, format!("LOGICAL_DNS address: {e}"));
                return send(&w.tx, ResolveState::Failed(error));
            }
        };
        if w.dns.as_ref().is_some_and(|(a, _)| *a == authority) {
            return;
        }
        let mut resolution = self.fallback.resolve(&authority);
        let tx = w.tx.clone();
        send(&tx, resolution.current());
        let relay = tokio::spawn(async move {
            while let Some(state) = resolution.changed().await {
                send(&tx, state);
            }
        });
        w.dns = Some((authority, Relay(relay.abort_handle())));
    }
}

/// Sends `state` unless the watchers have it already.
fn send(tx: &watch::Sender<ResolveState>, state: ResolveState) {
    tx.send_if_modified(|current| {
        if *current == state {
            return false;
        }
        *current = state;
        true
    });
}

/// The state of cluster `cluster` while `name` of `kind` has no accepted
/// copy: failed when the control plane rejected it or says it does not
/// exist, else pending.
fn missing(view: &AdsView, kind: ResourceType, name: &str, cluster: &str) -> ResolveState {
    match view.unavailable(kind, name) {
        Some(TargetState::Rejected(reason) | TargetState::DoesNotExist(reason)) => {
            ResolveState::Failed(ResolveError::new(cluster, reason))
        }
        _ => ResolveState::Pending,
    }
}

/// Brings every watched cluster up to date after each update, and forgets
/// those nobody watches any more.
async fn follow(shared: Weak<Shared>, mut updates: watch::Receiver<Arc<AdsView>>) {
    while updates.changed().await.is_ok() {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut clusters = shared.lock();
        // Read under the lock: a cluster watched since was brought up to
        // date with a view at least this new.
        let view = updates.borrow_and_update().clone();
        clusters.retain(|_, w| !w.tx.is_closed());
        for (name, w) in clusters.iter_mut() {
            shared.update(name, w, &view);
        }
    }
}
