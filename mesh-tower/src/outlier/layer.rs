use std::sync::Arc;

use tower::Layer;

use super::{EndpointHealth, Outlier, OutlierDetector};

/// Applies [`Outlier`] to one endpoint's service.
#[derive(Clone, Debug)]
pub struct OutlierLayer {
    detector: Arc<OutlierDetector>,
    health: Arc<EndpointHealth>,
}

impl OutlierLayer {
    /// A layer reporting to `detector` for the endpoint at `addr`.
    pub fn new(detector: Arc<OutlierDetector>, addr: std::net::SocketAddr) -> Self {
        let health = detector.endpoint(addr);
        Self { detector, health }
    }
}

impl<S> Layer<S> for OutlierLayer {
    type Service = Outlier<S>;

    fn layer(&self, inner: S) -> Outlier<S> {
        Outlier::new(inner, self.detector.clone(), self.health.clone())
    }
}
