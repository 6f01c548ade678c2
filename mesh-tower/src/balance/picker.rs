//! O(1) endpoint sampling: uniform, weighted (Vose's alias method) and a
//! precomputed weighted round-robin schedule.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::Rng;

/// Samples an index in `0..n` with probability proportional to a weight.
#[derive(Debug, Clone)]
pub(super) enum Sampler {
    /// Every index equally likely.
    Uniform(usize),
    /// Vose's alias table: one random index and one coin flip per sample.
    Alias { prob: Vec<f64>, alias: Vec<u32> },
}

impl Sampler {
    /// A sampler over `weights` (positive, at least one); uniform when they
    /// are all equal.
    pub(super) fn new<W: Copy + PartialEq + Into<f64>>(weights: &[W]) -> Self {
        let n = weights.len();
        if weights.windows(2).all(|w| w[0] == w[1]) {
            return Sampler::Uniform(n);
        }
        let total: f64 = weights.iter().map(|w| (*w).into()).sum();
        let mut scaled: Vec<f64> = weights
            .iter()
            .map(|w| (*w).into() * n as f64 / total)
            .collect();
        let mut prob = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|i| scaled[*i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            prob[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Sampler::Alias { prob, alias }
    }

    /// A sample other than `other` where one is likely: exact for uniform
    /// weights, a few tries for the alias table.
    pub(super) fn sample_other<R: Rng + ?Sized>(&self, other: usize, rng: &mut R) -> usize {
        match self {
            Sampler::Uniform(n) if *n > 1 => (other + rng.random_range(1..*n)) % n,
            _ => {
                let mut i = self.sample(rng);
                for _ in 0..3 {
                    if i != other {
                        break;
                    }
                    i = self.sample(rng);
                }
                i
            }
        }
    }

    /// One sample; the sampler must be over at least one weight.
    pub(super) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match self {
            Sampler::Uniform(n) => rng.random_range(0..*n),
            Sampler::Alias { prob, alias } => {
                let i = rng.random_range(0..prob.len());
                if rng.random::<f64>() < prob[i] {
                    i
                } else {
                    alias[i] as usize
                }
            }
        }
    }
}

/// The longest weighted round-robin schedule built; larger weight sums are
/// scaled down to fit.
const MAX_SCHEDULE: u64 = 1 << 16;

/// A weighted round-robin order, precomputed by earliest-deadline-first
/// (as Envoy's weighted round robin) so that a pick is one counter increment
/// and one index: endpoint `i`'s `k`-th turn falls at `(k + ½) / wᵢ`, which
/// interleaves heavy and light endpoints. `None` when all weights are equal
/// (plain rotation).
pub(super) fn schedule(weights: &[u32]) -> Option<Vec<u32>> {
    if weights.windows(2).all(|w| w[0] == w[1]) {
        return None;
    }
    let gcd = weights.iter().fold(0u32, |g, w| gcd(g, *w)).max(1);
    let mut w: Vec<u64> = weights.iter().map(|w| u64::from(*w / gcd)).collect();
    let limit = MAX_SCHEDULE.max(w.len() as u64);
    let total: u64 = w.iter().sum();
    if total > limit {
        let scale = total as f64 / limit as f64;
        for x in &mut w {
            *x = ((*x as f64 / scale).round() as u64).max(1);
        }
    }
    let total: u64 = w.iter().sum();
    let deadline = |i: usize, k: u64| (k as f64 + 0.5) / w[i] as f64;
    let mut heap: BinaryHeap<Reverse<Turn>> = (0..w.len())
        .map(|i| {
            Reverse(Turn {
                at: deadline(i, 0),
                index: i,
                k: 0,
            })
        })
        .collect();
    let mut order = Vec::with_capacity(total as usize);
    while let Some(Reverse(turn)) = heap.pop() {
        order.push(turn.index as u32);
        if turn.k + 1 < w[turn.index] {
            let k = turn.k + 1;
            heap.push(Reverse(Turn {
                at: deadline(turn.index, k),
                index: turn.index,
                k,
            }));
        }
    }
    Some(order)
}

#[derive(Debug, PartialEq)]
struct Turn {
    at: f64,
    index: usize,
    k: u64,
}

impl Eq for Turn {}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Turn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at
            .total_cmp(&other.at)
            .then(self.index.cmp(&other.index))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn weighted_round_robin_interleaves() {
        assert_eq!(schedule(&[1, 1, 1]), None);
        assert_eq!(schedule(&[5, 1, 1]).unwrap(), vec![0, 0, 0, 1, 2, 0, 0]);
        assert_eq!(schedule(&[2, 4]).unwrap(), vec![1, 0, 1]);
    }

    proptest! {
        #[test]
        fn schedule_counts_follow_weights(weights in proptest::collection::vec(1u32..50, 1..20)) {
            if let Some(order) = schedule(&weights) {
                let g = weights.iter().fold(0, |g, w| gcd(g, *w));
                for (i, w) in weights.iter().enumerate() {
                    let n = order.iter().filter(|x| **x as usize == i).count();
                    prop_assert_eq!(n as u32, w / g);
                }
            }
        }

        #[test]
        fn alias_sampling_follows_weights(weights in proptest::collection::vec(1u32..10, 2..8), seed: u64) {
            let s = Sampler::new(&weights);
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let n = 40_000;
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..n {
                counts[s.sample(&mut rng)] += 1;
            }
            let total: u32 = weights.iter().sum();
            for (i, w) in weights.iter().enumerate() {
                let want = f64::from(*w) / f64::from(total);
                let got = f64::from(counts[i]) / f64::from(n);
                prop_assert!((want - got).abs() < 0.02, "{i}: want {want} got {got}");
            }
        }
    }
}
