use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use mesh_core::route::FaultPolicy;
use tower::Layer;

use super::Fault;
use crate::draw::Draws;

/// Applies [`Fault`] with its policy; services made from it and from its
/// [`policy`](Self::policy) copies share draws and the active count.
#[derive(Clone, Debug)]
pub struct FaultLayer {
    policy: Arc<FaultPolicy>,
    draws: Draws,
    active: Arc<AtomicU32>,
}

impl FaultLayer {
    /// Draws at random.
    pub fn new() -> Self {
        Self::seeded(None)
    }

    /// Draws from a sequence fixed by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::seeded(Some(seed))
    }

    /// Draws from `seed`'s sequence, or at random without one.
    pub(crate) fn seeded(seed: Option<u64>) -> Self {
        Self {
            policy: Arc::default(),
            draws: Draws::new(seed),
            active: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The same layer with `policy`: the draws and the count of active
    /// faults stay shared.
    pub fn policy(&self, policy: FaultPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            ..self.clone()
        }
    }
}

impl Default for FaultLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = Fault<S>;

    fn layer(&self, inner: S) -> Fault<S> {
        Fault {
            inner,
            policy: self.policy.clone(),
            draws: self.draws.clone(),
            active: self.active.clone(),
        }
    }
}
