//! How traffic is shared between priority levels and between localities,
//! as Envoy computes it: priority load with an overprovisioning factor of
//! 1.4 (Envoy's `recalculatePerPriorityState`), and the effective weight of
//! a locality (Envoy's locality-weighted load balancing). Pure arithmetic.

/// Envoy's default overprovisioning factor, 1.4, in percent.
const OVERPROVISIONING: u64 = 140;

/// The health of one priority level in percent: `min(100, 1.4 × 100 ×
/// healthy / total)`, rounded down, 0 for an empty level. A level with 72%
/// of its endpoints healthy counts as fully healthy.
pub(super) fn health(healthy: usize, total: usize) -> u32 {
    if total == 0 {
        return 0;
    }
    let h = OVERPROVISIONING * healthy as u64 / total as u64;
    h.min(100) as u32
}

/// The share of traffic, in percent, of each priority level (highest
/// first), from each level's [`health`]. Each level takes as much of what
/// is left as its health allows; when the levels' health adds up to less
/// than 100 it is scaled up so that all traffic is still placed, and what
/// rounding leaves goes to the first level with any health. With no health
/// anywhere the first level takes everything. Sums to 100.
pub(super) fn loads(health: &[u32]) -> Vec<u32> {
    let mut loads = vec![0; health.len()];
    let total: u64 = health.iter().map(|h| u64::from(*h)).sum::<u64>().min(100);
    if total == 0 {
        if let Some(first) = loads.first_mut() {
            *first = 100;
        }
        return loads;
    }
    let mut left = 100u64;
    for (load, h) in loads.iter_mut().zip(health) {
        let share = (u64::from(*h) * 100 / total).min(left);
        *load = share as u32;
        left -= share;
    }
    if let Some(first) = health.iter().position(|h| *h > 0) {
        loads[first] += left as u32;
    }
    loads
}

/// The effective weight of a locality: its weight scaled by its health,
/// `weight × min(1, 1.4 × healthy / total)`.
pub(super) fn locality_weight(weight: u32, healthy: usize, total: usize) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let ratio = OVERPROVISIONING as f64 / 100.0 * healthy as f64 / total as f64;
    f64::from(weight) * ratio.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn health_is_overprovisioned() {
        assert_eq!(health(2, 2), 100);
        assert_eq!(health(1, 2), 70);
        assert_eq!(health(8, 10), 100, "80% healthy × 1.4 is capped");
        assert_eq!(health(0, 2), 0);
        assert_eq!(health(0, 0), 0);
    }

    #[test]
    fn load_spills_to_lower_priorities() {
        assert_eq!(loads(&[100, 100]), [100, 0]);
        assert_eq!(loads(&[70, 100]), [70, 30]);
        assert_eq!(loads(&[0, 100]), [0, 100]);
        assert_eq!(loads(&[50, 20, 100]), [50, 20, 30]);
        // Less than 100 in all: scaled up so that everything is placed.
        assert_eq!(loads(&[10, 20, 10]), [25, 50, 25]);
        assert_eq!(loads(&[20, 30]), [40, 60]);
        // Rounding leftovers go to the first level with health.
        assert_eq!(loads(&[0, 33, 33, 33]), [0, 34, 33, 33]);
        // Nothing healthy: the first level.
        assert_eq!(loads(&[0, 0]), [100, 0]);
        assert_eq!(loads(&[]), Vec::<u32>::new());
    }

    #[test]
    fn locality_weight_follows_health() {
        assert_eq!(locality_weight(3, 2, 2), 3.0);
        assert!((locality_weight(3, 1, 2) - 2.1).abs() < 1e-9);
        assert_eq!(locality_weight(3, 0, 2), 0.0);
        assert_eq!(locality_weight(3, 0, 0), 0.0);
    }

    proptest! {
        #[test]
        fn loads_always_sum_to_100(health in proptest::collection::vec(0u32..=100, 1..6)) {
            let l = loads(&health);
            prop_assert_eq!(l.iter().sum::<u32>(), 100);
            for (load, h) in l.iter().zip(&health) {
                if *h == 0 && health.iter().any(|h| *h > 0) {
                    prop_assert_eq!(*load, 0);
                }
            }
        }
    }
}
