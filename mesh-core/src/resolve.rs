//! Discovery: the [`Resolve`] trait every discovery source implements, and
//! [`StaticResolve`], a source fed from code.
//!
//! A target is a service authority (`reviews:9080`, asked of DNS or a
//! static list) or the name of an endpoint set the source keeps itself (an
//! xDS cluster): a [`ResolveTarget`]. A resolution is a watch of
//! [`ResolveState`] per target. A source sends a new [`EndpointSet`]
//! whenever the target's endpoints change. A failed refresh is not a
//! failure: a source that has answered keeps its last good set by sending
//! nothing. [`ResolveState::Failed`], with an error naming the target and
//! the cause, means the target has no endpoints to use: it never resolved
//! (DNS, static lists), or its source says it is gone (an xDS cluster the
//! control plane deleted, a DNS name answered with NXDOMAIN); a balancer
//! stops using what it had.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::{Authority, EndpointSet};

/// Why a target could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve {target}: {reason}")]
pub struct ResolveError {
    target: String,
    reason: String,
}

impl ResolveError {
    /// An error for `target` with a reason in words.
    pub fn new(target: impl ToString, reason: impl ToString) -> Self {
        Self {
            target: target.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The error for a target whose discovery source went away before it
    /// ever answered.
    pub fn source_stopped(target: impl ToString) -> Self {
        Self::new(target, "the discovery source stopped before answering")
    }

    /// The target that failed.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Why it failed.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Where a resolution stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveState {
    /// No answer yet.
    Pending,
    /// The current endpoints (possibly empty).
    Ready(EndpointSet),
    /// The target has no endpoints to use: it never resolved, or its
    /// source says it is gone.
    Failed(ResolveError),
}

/// What a resolution is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResolveTarget {
    /// A service at an authority: `reviews.default.svc.cluster.local:9080`.
    Authority(Authority),
    /// An endpoint set the source knows by name, such as an xDS cluster
    /// (`outbound|9080|v1|reviews.default.svc.cluster.local`), whose
    /// endpoints come from EDS, the cluster itself, or DNS.
    Named(Arc<str>),
}

impl From<Authority> for ResolveTarget {
    fn from(authority: Authority) -> Self {
        ResolveTarget::Authority(authority)
    }
}

impl fmt::Display for ResolveTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveTarget::Authority(a) => a.fmt(f),
            ResolveTarget::Named(name) => f.write_str(name),
        }
    }
}

/// A discovery source: turns a target into a live view of its endpoints.
///
/// Implementations: [`StaticResolve`] here, `mesh_dns::DnsResolve`, and
/// `mesh_xds::XdsResolve`. A call starts (or joins) the discovery of a
/// target and returns at once; the answer arrives on the returned
/// [`Resolution`].
pub trait Resolve: Send + Sync + 'static {
    /// Starts or joins the discovery of the service at `target`.
    fn resolve(&self, target: &Authority) -> Resolution;

    /// Starts or joins the discovery of the endpoint set called `name`.
    /// Sources that keep no named sets (DNS, static lists) answer with a
    /// failed resolution, which is the default.
    fn resolve_named(&self, name: &str) -> Resolution {
        Resolution::failed(
            ResolveTarget::Named(name.into()),
            "this discovery source knows no endpoint sets by name",
        )
    }

    /// Starts or joins the discovery of `target`, whichever kind it is.
    fn resolve_target(&self, target: &ResolveTarget) -> Resolution {
        match target {
            ResolveTarget::Authority(a) => self.resolve(a),
            ResolveTarget::Named(name) => self.resolve_named(name),
        }
    }
}

impl<R: Resolve + ?Sized> Resolve for Arc<R> {
    fn resolve(&self, target: &Authority) -> Resolution {
        (**self).resolve(target)
    }

    fn resolve_named(&self, name: &str) -> Resolution {
        (**self).resolve_named(name)
    }
}

/// A live view of one target's endpoints.
#[derive(Debug, Clone)]
pub struct Resolution {
    target: ResolveTarget,
    rx: watch::Receiver<ResolveState>,
}

impl Resolution {
    /// A resolution of `target` fed by `rx`.
    pub fn new(target: impl Into<ResolveTarget>, rx: watch::Receiver<ResolveState>) -> Self {
        Self {
            target: target.into(),
            rx,
        }
    }

    /// A resolution of `target` that is already ready and never changes.
    pub fn fixed(target: impl Into<ResolveTarget>, endpoints: EndpointSet) -> Self {
        // A closed sender leaves the last value readable.
        let (_, rx) = watch::channel(ResolveState::Ready(endpoints));
        Self::new(target, rx)
    }

    /// A resolution of `target` that has failed for good, for `reason`.
    pub fn failed(target: impl Into<ResolveTarget>, reason: impl ToString) -> Self {
        let target = target.into();
        let error = ResolveError::new(&target, reason);
        let (_, rx) = watch::channel(ResolveState::Failed(error));
        Self::new(target, rx)
    }

    /// The target resolved.
    pub fn target(&self) -> &ResolveTarget {
        &self.target
    }

    /// The state now.
    pub fn current(&self) -> ResolveState {
        self.rx.borrow().clone()
    }

    /// Waits for the first answer: the endpoints, or why there are none.
    /// A source that goes away before answering is an error.
    pub async fn ready(&mut self) -> Result<EndpointSet, ResolveError> {
        loop {
            match &*self.rx.borrow_and_update() {
                ResolveState::Ready(set) => return Ok(set.clone()),
                ResolveState::Failed(e) => return Err(e.clone()),
                ResolveState::Pending => {}
            }
            if self.rx.changed().await.is_err() {
                return Err(ResolveError::source_stopped(&self.target));
            }
        }
    }

    /// Waits for the next change and returns the new state; `None` when the
    /// source has stopped (the last state stays valid).
    pub async fn changed(&mut self) -> Option<ResolveState> {
        self.rx.changed().await.ok()?;
        Some(self.rx.borrow_and_update().clone())
    }
}

/// A discovery source whose endpoints are set from code: for static
/// configuration, tests, and launchers that register services they start.
///
/// ```
/// # tokio_test_block(async {
/// use mesh_core::{Endpoint, EndpointSet, Resolve, StaticResolve};
/// let resolve = StaticResolve::default();
/// let target = "reviews:9080".parse().unwrap();
/// resolve.set(&target, EndpointSet::new([Endpoint::new("127.0.0.1:9080".parse().unwrap())]));
/// let set = resolve.resolve(&target).ready().await.unwrap();
/// assert_eq!(set.len(), 1);
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticResolve {
    targets: Arc<Mutex<HashMap<Authority, watch::Sender<ResolveState>>>>,
}

impl StaticResolve {
    /// Sets (or replaces) the endpoints of `target`; watchers see the change.
    pub fn set(&self, target: &Authority, endpoints: EndpointSet) {
        self.sender(target)
            .send_replace(ResolveState::Ready(endpoints));
    }

    /// Removes `target`: new resolutions fail; existing ones keep the last set.
    pub fn remove(&self, target: &Authority) {
        self.lock().remove(target);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Authority, watch::Sender<ResolveState>>> {
        // The map holds no invariant a panic elsewhere could break.
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sender(&self, target: &Authority) -> watch::Sender<ResolveState> {
        self.lock()
            .entry(target.clone())
            .or_insert_with(|| watch::channel(ResolveState::Pending).0)
            .clone()
    }
}

impl Resolve for StaticResolve {
    fn resolve(&self, target: &Authority) -> Resolution {
        match self.lock().get(target) {
            Some(tx) => Resolution::new(target.clone(), tx.subscribe()),
            None => Resolution::failed(target.clone(), "no endpoints are configured for it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;

    fn set(ports: &[u16]) -> EndpointSet {
        ports
            .iter()
            .map(|p| Endpoint::new(([127, 0, 0, 1], *p).into()))
            .collect()
    }

    #[tokio::test]
    async fn static_updates_reach_watchers() {
        let r = StaticResolve::default();
        let t: Authority = "a:80".parse().unwrap();
        r.set(&t, set(&[1]));
        let mut res = r.resolve(&t);
        assert_eq!(res.ready().await.unwrap().len(), 1);
        r.set(&t, set(&[1, 2]));
        match res.changed().await {
            Some(ResolveState::Ready(s)) => assert_eq!(s.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn unknown_target_names_itself() {
        let r = StaticResolve::default();
        let err = r
            .resolve(&"nope:80".parse().unwrap())
            .ready()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot resolve nope:80: no endpoints are configured for it"
        );
    }
}
