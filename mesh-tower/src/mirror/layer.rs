use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use mesh_core::route::Percent;
use tower::Layer;

use super::{DEFAULT_TIMEOUT, Mirror};
use crate::draw::Draws;

/// Applies [`Mirror`] with its mirrors; services made from it and from
/// its [`mirrors`](Self::mirrors) copies share draws and the in-flight
/// bound.
#[derive(Debug)]
pub struct MirrorLayer<M> {
    mirrors: Arc<[(Percent, M)]>,
    timeout: Duration,
    draws: Draws,
    pub(super) in_flight: Arc<AtomicUsize>,
}

impl<M> Clone for MirrorLayer<M> {
    fn clone(&self) -> Self {
        Self {
            mirrors: self.mirrors.clone(),
            timeout: self.timeout,
            draws: self.draws.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

impl<M> MirrorLayer<M> {
    /// No mirrors yet, drawing at random.
    pub fn new() -> Self {
        Self::seeded(None)
    }

    /// No mirrors yet, drawing from a sequence fixed by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::seeded(Some(seed))
    }

    /// Draws from `seed`'s sequence, or at random without one.
    pub(crate) fn seeded(seed: Option<u64>) -> Self {
        Self {
            mirrors: Arc::new([]),
            timeout: DEFAULT_TIMEOUT,
            draws: Draws::new(seed),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The same layer copying each mirror's share of requests to it, each
    /// copy given up after `timeout` (a route's own, else
    /// [`DEFAULT_TIMEOUT`]); draws and the in-flight bound stay shared.
    pub fn mirrors<N>(
        &self,
        mirrors: impl IntoIterator<Item = (Percent, N)>,
        timeout: Duration,
    ) -> MirrorLayer<N> {
        MirrorLayer {
            mirrors: mirrors.into_iter().collect(),
            timeout,
            draws: self.draws.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

impl<M> Default for MirrorLayer<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, M> Layer<S> for MirrorLayer<M> {
    type Service = Mirror<S, M>;

    fn layer(&self, inner: S) -> Mirror<S, M> {
        Mirror {
            inner,
            mirrors: self.mirrors.clone(),
            timeout: self.timeout,
            draws: self.draws.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}
