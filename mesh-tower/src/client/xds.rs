//! A [`MeshClient`] driven by xDS (feature `xds`): every authority a
//! request is sent to is a target, `xds:///AUTHORITY` as gRPC writes it.
//!
//! - The first request to a target subscribes to its listener (the
//!   bootstrap's template applied to the authority as written:
//!   `http://echo/x` asks for listener `echo`; a request carrying a
//!   [`RouteListener`](crate::route::RouteListener), that name, as a
//!   gateway asks for its servers' tables) and waits until the
//!   listener and its routes have arrived, at most [`TARGET_WAIT`]. A
//!   target the control plane says does not exist (it sent nothing for
//!   [`DOES_NOT_EXIST_TIMEOUT`](mesh_xds::ads::DOES_NOT_EXIST_TIMEOUT)), or whose listener or routes it sent only
//!   rejected copies of, fails with that reason; so does one asked for
//!   while the control plane cannot be reached (gRPC fails such calls).
//!   Such a target is unsubscribed, and asked for again by the next
//!   request to it.
//! - A target unused for the cluster idle timeout
//!   ([`MeshClientBuilder::cluster_idle_timeout`](super::MeshClientBuilder::cluster_idle_timeout),
//!   5 minutes by default) is unsubscribed and left out of the
//!   configuration, within a quarter of the timeout more; so is the least
//!   recently used beyond [`max_clusters`](super::MeshClientBuilder::max_clusters).
//!   The next request to it subscribes again and waits, as the first did.
//! - After each update of the ADS client a task rebuilds the
//!   configuration of every target ([`AdsView::mesh_config`]) and swaps it
//!   in with [`MeshClient::set_config`]: the next requests take it, and
//!   clusters whose definition did not change keep their connections.
//! - Clusters' endpoints come from [`XdsResolve`], which the builder puts
//!   in front of its resolver; that resolver still answers LOGICAL_DNS
//!   clusters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use mesh_xds::ads::{AdsHandle, AdsView};
use mesh_xds::{ConfigBuilder, TargetState};
use tokio::sync::watch;

use super::{MeshClient, Shared};
use crate::BoxError;
use crate::cluster::{CacheLimits, ClusterCache};

/// The longest a request waits for its target's configuration: the
/// does-not-exist timeout, which starts once the subscription is sent, and
/// time to reach the control plane.
pub const TARGET_WAIT: Duration = Duration::from_secs(20);

/// The xDS side of a client: its ADS client and the targets asked for.
pub(super) struct Xds {
    ads: AdsHandle,
    /// The targets requests were sent to, by when they were last: the
    /// authority as written, to the name of its listener resource.
    targets: ClusterCache<String, String>,
    /// Bumped when a target is added or dropped.
    targets_changed: AtomicU64,
    /// Bumped after each configuration is stored.
    applied: watch::Sender<u64>,
}

/// Why a request found no configuration for its target.
#[derive(Debug, thiserror::Error)]
pub enum XdsTargetError {
    /// The control plane says the target does not exist, or sent only
    /// copies of it that were rejected.
    #[error("xds:///{target}: {reason}")]
    Unusable {
        /// The target.
        target: String,
        /// What the control plane said, or what was wrong.
        reason: String,
    },
    /// Nothing came for the target in time.
    #[error(
        "xds:///{target}: no configuration for listener {listener:?} within {:?} \
         (control plane {})",
        TARGET_WAIT,
        if *.connected { "connected" } else { "not connected" }
    )]
    TimedOut {
        /// The target.
        target: String,
        /// The listener resource asked for.
        listener: String,
        /// Whether a stream to the control plane was up at the end.
        connected: bool,
    },
}

impl Xds {
    pub(super) fn new(ads: AdsHandle, limits: CacheLimits) -> Self {
        Self {
            ads,
            targets: ClusterCache::new(limits),
            targets_changed: AtomicU64::new(0),
            applied: watch::Sender::new(0),
        }
    }

    /// Whether `target` is known, marking it used.
    pub(super) fn touch(&self, target: &str) -> bool {
        self.targets.get(target).is_some()
    }

    /// Keeps `target` (whose listener resource is `listener`) among the
    /// targets, marking it used; subscribes to it if it was not.
    fn ensure(&self, target: &str, listener: &str) {
        let mut new = false;
        let (_, evicted) = self.targets.get_or_build_evicting(&target.to_owned(), || {
            new = true;
            listener.to_owned()
        });
        if new {
            self.ads.subscribe_listener(listener);
            self.targets_changed.fetch_add(1, Ordering::Release);
        }
        self.dropped(evicted);
    }

    /// Unsubscribes from the listeners of targets that are gone.
    fn dropped(&self, gone: Vec<(String, String)>) {
        if gone.is_empty() {
            return;
        }
        for (target, listener) in gone {
            tracing::debug!(target, listener, "xDS target unused; unsubscribed");
            self.ads.unsubscribe_listener(listener);
        }
        self.targets_changed.fetch_add(1, Ordering::Release);
    }

    /// Starts the task that turns every update into the client's
    /// configuration; it stops with the client.
    pub(super) fn follow<B>(shared: &Arc<Shared<B>>)
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(xds) = &shared.xds else { return };
        let updates = xds.ads.updates();
        let sweep = (xds.targets.idle_timeout() / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        tokio::spawn(follow(Arc::downgrade(shared), updates, sweep));
    }

    /// Waits until the configuration stored in `shared` routes `target`
    /// (an authority as written), subscribing to it first.
    pub(super) async fn ready<B>(shared: &Shared<B>, target: &str) -> Result<(), XdsTargetError> {
        let Some(xds) = &shared.xds else {
            return Ok(());
        };
        let listener = xds.ads.bootstrap().client_listener_name(target);
        let mut applied = xds.applied.subscribe();
        let mut updates = xds.ads.updates();
        let wait = async {
            loop {
                // Asked for again should the sweep or other new targets
                // have dropped it meanwhile.
                xds.ensure(target, &listener);
                if shared.config.has_listener(target) {
                    return Ok(());
                }
                let view = updates.borrow_and_update().clone();
                let unusable = match view.target_state(&listener) {
                    TargetState::DoesNotExist(reason) | TargetState::Rejected(reason) => {
                        Some(reason)
                    }
                    // Nothing can come while the control plane is out of
                    // reach: fail now, as gRPC fails such a call.
                    TargetState::Pending if !view.connected => view
                        .stream_error
                        .as_ref()
                        .map(|e| format!("the control plane cannot be reached: {e}")),
                    TargetState::Ready | TargetState::Pending => None,
                };
                if let Some(reason) = unusable {
                    // Forgotten, so that ever-new unusable authorities (typos,
                    // hosts outside the mesh) do not pile up; the next request
                    // asks again.
                    if let Some(listener) = xds.targets.remove(&target.to_owned()) {
                        xds.dropped(vec![(target.to_owned(), listener)]);
                    }
                    return Err(XdsTargetError::Unusable {
                        target: target.to_owned(),
                        reason,
                    });
                }
                tokio::select! {
                    _ = applied.changed() => {}
                    _ = updates.changed() => {}
                }
            }
        };
        match tokio::time::timeout(TARGET_WAIT, wait).await {
            Ok(result) => result,
            Err(_) => Err(XdsTargetError::TimedOut {
                target: target.to_owned(),
                listener,
                connected: xds.ads.updates().borrow().connected,
            }),
        }
    }
}

/// What a configuration was built from: the listeners, route
/// configurations and clusters of a view, and the targets then.
struct BuiltFrom {
    view: Arc<AdsView>,
    targets_changed: u64,
}

impl BuiltFrom {
    /// Whether `view` and the targets now would build the same
    /// configuration: an update of endpoints alone, say.
    fn same(&self, view: &AdsView, targets_changed: u64) -> bool {
        self.targets_changed == targets_changed
            && self.view.listeners.ptr_eq(&view.listeners)
            && self.view.route_configs.ptr_eq(&view.route_configs)
            && self.view.clusters.ptr_eq(&view.clusters)
    }
}

/// Rebuilds the configuration of `shared`'s client after every update
/// that changes what it is built from, and unsubscribes from targets
/// unused for the idle timeout, looking every `sweep`.
async fn follow<B>(
    shared: Weak<Shared<B>>,
    mut updates: watch::Receiver<Arc<AdsView>>,
    sweep: Duration,
) where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let mut built: Option<BuiltFrom> = None;
    let mut builder: Option<ConfigBuilder> = None;
    let mut sweeps = tokio::time::interval_at(tokio::time::Instant::now() + sweep, sweep);
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let swept = tokio::select! {
            changed = updates.changed() => match changed {
                Ok(()) => false,
                Err(_) => return,
            },
            _ = sweeps.tick() => true,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some(xds) = &shared.xds else { return };
        if swept {
            xds.dropped(xds.targets.take_idle());
        }
        let view = updates.borrow_and_update().clone();
        // Read before the targets, so a target added meanwhile rebuilds.
        let targets_changed = xds.targets_changed.load(Ordering::Acquire);
        if built
            .as_ref()
            .is_some_and(|b| b.same(&view, targets_changed))
        {
            if !swept {
                xds.applied.send_modify(|n| *n += 1);
            }
            continue;
        }
        let targets = xds.targets.entries();
        let targets = targets.iter().map(|(a, l)| (a.as_str(), l.as_str()));
        let builder =
            builder.get_or_insert_with(|| ConfigBuilder::after((*shared.config.load()).clone()));
        let config = builder.build(&view, targets);
        match config {
            Ok(config) => {
                MeshClient {
                    shared: shared.clone(),
                }
                .set_config(config);
                built = Some(BuiltFrom {
                    view,
                    targets_changed,
                });
            }
            // Conversion has checked what could be wrong: keep the last good.
            Err(e) => tracing::error!(error = %e, "xDS configuration not applied"),
        }
        xds.applied.send_modify(|n| *n += 1);
    }
}
