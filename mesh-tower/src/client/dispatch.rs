//! The end of the route layers: a routed request goes to the cluster stack
//! of its [`SelectedCluster`], built on first use for the port the request
//! was sent to, and its response names that cluster with the same
//! extension; a request passed through unrouted goes to its authority's.

use std::sync::Weak;
use std::task::{Context, Poll};

use bytes::Bytes;
use mesh_core::{Authority, Discovery};
use tower::Service;

use super::subset::subset;
use super::{ClusterFuture, ClusterKey, MeshClient, Shared};
use crate::route::RouteDecision;
use crate::split::SelectedCluster;
use crate::{BoxError, RequestBody};

/// Sends each request to its cluster's stack. Holds the client weakly: the
/// client holds it.
pub(super) struct Dispatch<B> {
    pub(super) shared: Weak<Shared<B>>,
}

impl<B> Clone for Dispatch<B> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<B> Service<http::Request<RequestBody<B>>> for Dispatch<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<crate::ResponseBody>;
    type Error = BoxError;
    type Future = ClusterFuture<B>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<RequestBody<B>>) -> Self::Future {
        let Some(shared) = self.shared.upgrade() else {
            return ClusterFuture::failed("the mesh client was dropped".into());
        };
        let client = MeshClient { shared };
        let routed = req
            .extensions()
            .get::<SelectedCluster>()
            .zip(req.extensions().get::<RouteDecision>());
        let (cluster, name) = match routed {
            Some((SelectedCluster(name), decision)) => {
                (client.named_cluster(name, decision), Some(name.clone()))
            }
            None => {
                let cluster = Authority::from_uri(req.uri())
                    .map(|target| client.target_cluster(&target))
                    .map_err(Into::into);
                (cluster, None)
            }
        };
        match cluster {
            Ok(cluster) => ClusterFuture::new(cluster, req).naming(name),
            Err(e) => ClusterFuture::failed(e),
        }
    }
}

/// A route named a cluster the configuration does not define (an xDS
/// cluster the control plane deleted or rejected); nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster {cluster} is not defined: {reason}; nothing was sent")]
pub struct UndefinedCluster {
    /// The cluster.
    pub cluster: String,
    /// Why.
    pub reason: String,
}

impl<B> MeshClient<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    /// The stack of the configured cluster `name`, for a request routed by
    /// `decision`: built with the cluster's policy for the port the request
    /// goes to.
    fn named_cluster(
        &self,
        name: &mesh_core::route::ClusterName,
        decision: &RouteDecision,
    ) -> Result<super::ClusterService<B>, BoxError> {
        let undefined = |reason: &str| UndefinedCluster {
            cluster: name.to_string(),
            reason: reason.to_owned(),
        };
        let cluster = decision
            .config()
            .cluster(name)
            .ok_or_else(|| undefined("the configuration has no such cluster"))?;
        if let Discovery::Missing(reason) = &cluster.discovery {
            return Err(undefined(reason).into());
        }
        let request_port = decision.target().port();
        let key = ClusterKey::Named(name.clone(), cluster.port_for(request_port));
        // The common case: built already, with nothing to parse or allocate.
        if let Some(service) = self.shared.clusters.get(&key) {
            return Ok(service);
        }
        let target = cluster.target(request_port)?;
        Ok(self.shared.clusters.get_or_build(&key, || {
            // The definition current now, not the one the request was
            // routed by: `set_config` drops what was built before it.
            let current = self.shared.config.load();
            let cluster = current.cluster(name).unwrap_or(cluster);
            let resolution = subset(self.shared.resolve.resolve_target(&target), cluster);
            self.build_cluster(name.as_str(), resolution, cluster.policy_for(request_port))
        }))
    }
}
