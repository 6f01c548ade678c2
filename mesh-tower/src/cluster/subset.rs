//! A cluster's view of its service's endpoints: only those its subset's
//! labels select (Istio's DestinationRule `subsets`).

use mesh_core::resolve::ResolveState;
use mesh_core::{Cluster, EndpointSet, Resolution};
use tokio::sync::watch;

/// `resolution` narrowed to the endpoints `cluster` selects. A task follows
/// the service's answers until nobody watches the narrowed one.
pub(crate) fn subset(mut resolution: Resolution, cluster: &Cluster) -> Resolution {
    if cluster.subset.is_empty() {
        return resolution;
    }
    let cluster = cluster.clone();
    let narrow = move |state: ResolveState| match state {
        ResolveState::Ready(set) => ResolveState::Ready(EndpointSet::new(
            set.iter().filter(|e| cluster.selects(e)).cloned(),
        )),
        other => other,
    };
    let (tx, rx) = watch::channel(narrow(resolution.current()));
    let target = resolution.target().clone();
    tokio::spawn(async move {
        loop {
            let state = tokio::select! {
                state = resolution.changed() => state,
                _ = tx.closed() => return,
            };
            match state {
                Some(state) => {
                    if tx.send(narrow(state)).is_err() {
                        return;
                    }
                }
                // The source is gone; dropping `tx` tells the balancer.
                None => return,
            }
        }
    });
    Resolution::new(target, rx)
}
