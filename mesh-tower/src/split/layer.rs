use std::sync::Arc;

use super::Split;
use crate::draw::Draws;

/// Makes [`Split`]s; those it makes share one draw sequence.
#[derive(Clone, Debug)]
pub struct SplitLayer {
    draws: Draws,
}

impl SplitLayer {
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
            draws: Draws::new(seed),
        }
    }

    /// A split over `branches` with their weights, drawing from this
    /// layer's sequence. Panics on no branches, which a route table
    /// rejects.
    pub fn split<S>(&self, branches: impl IntoIterator<Item = (u32, S)>) -> Split<S> {
        let branches: Arc<[(u32, S)]> = branches.into_iter().collect();
        assert!(!branches.is_empty(), "a split over no branches");
        Split {
            total: branches.iter().map(|(w, _)| u64::from(*w)).sum(),
            branches,
            draws: self.draws.clone(),
        }
    }
}

impl Default for SplitLayer {
    fn default() -> Self {
        Self::new()
    }
}
