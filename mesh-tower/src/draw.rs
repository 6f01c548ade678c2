//! Uniform draws for splits, faults and mirrors. A layer given a seed runs
//! a shared counter through SplitMix64, so it makes the same choices in the
//! same order (tests check ratios exactly); one given none draws from the
//! thread's own generator, touching no shared memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug)]
pub(crate) struct Draws {
    /// The seed and the shared position in its sequence; `None` draws from
    /// the thread's generator.
    seeded: Option<(u64, Arc<AtomicU64>)>,
}

impl Draws {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        Self {
            seeded: seed.map(|s| (s, Arc::new(AtomicU64::new(0)))),
        }
    }

    pub(crate) fn draw(&self) -> u64 {
        let Some((seed, next)) = &self.seeded else {
            return rand::random();
        };
        let n = next.fetch_add(1, Ordering::Relaxed);
        splitmix64(seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    /// A draw for [`Percent::hit`](mesh_core::route::Percent::hit).
    pub(crate) fn draw_u32(&self) -> u32 {
        (self.draw() >> 32) as u32
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_draws_repeat_and_spread() {
        let a = Draws::new(Some(7));
        let b = Draws::new(Some(7));
        let xs: Vec<u64> = (0..5).map(|_| a.draw()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.draw()).collect();
        assert_eq!(xs, ys);
        for d in [Draws::new(Some(1)), Draws::new(None)] {
            let low = (0..10_000).filter(|_| d.draw() % 100 < 30).count();
            assert!((2_800..3_200).contains(&low), "{low}");
        }
    }
}
