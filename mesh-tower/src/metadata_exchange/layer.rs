//! [`MetadataExchangeLayer`]: the [`Layer`] of [`MetadataExchange`].

use std::sync::Arc;

use http::HeaderValue;
use mesh_core::telemetry::WorkloadMetadata;
use tower::Layer;

use super::{Local, MetadataExchange, Side};

/// Wraps services in a [`MetadataExchange`]; clones share the peers'
/// metadata read so far.
#[derive(Clone, Debug)]
pub struct MetadataExchangeLayer {
    side: Side,
    local: Arc<Local>,
}

impl MetadataExchangeLayer {
    /// At `side`, as the workload `local`, whose metadata's id is `id`.
    pub fn new(side: Side, local: &WorkloadMetadata, id: HeaderValue) -> Self {
        Self {
            side,
            local: Arc::new(Local::new(local, id)),
        }
    }

    /// Client side, within a stack: adds this workload's headers.
    pub(crate) fn tell(&self, headers: &mut http::HeaderMap) {
        self.local.tell(headers);
    }

    /// Client side, within a stack: takes the server's headers off `res`,
    /// its metadata then a [`PeerMetadata`](super::PeerMetadata) extension.
    pub(crate) fn hear<B>(&self, res: &mut http::Response<B>) {
        self.local.hear_response(res);
    }

    pub(super) fn wrap<S>(&self, inner: S) -> MetadataExchange<S> {
        MetadataExchange {
            inner,
            side: self.side,
            local: self.local.clone(),
        }
    }
}

impl<S> Layer<S> for MetadataExchangeLayer {
    type Service = MetadataExchange<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.wrap(inner)
    }
}
