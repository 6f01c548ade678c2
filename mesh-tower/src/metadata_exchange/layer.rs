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
