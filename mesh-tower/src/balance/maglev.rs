//! The lookup table of the Maglev policy, built as in Eisenbud et al.,
//! "Maglev: A Fast and Reliable Software Network Load Balancer" (NSDI 2016)
//! with the weighting of Envoy's `MaglevTable`.
//!
//! Each endpoint has a preference list over the table's slots: a permutation
//! `offset + j × skip (mod M)` with `offset` = xxHash64(address, seed 0)
//! mod `M` and `skip` = xxHash64(address, seed 1) mod `(M − 1)` + 1, which
//! visits every slot because the table size `M` is prime. Endpoints take
//! turns claiming their next free preferred slot until the table is full; an
//! endpoint of weight `w` takes a turn in `w / max weight` of the rounds, so
//! slots follow weights. A hash is served by slot `hash mod M`: O(1).
//!
//! When an endpoint leaves, its slots go to others, and a few more slots
//! change hands as the claiming order shifts: with ten equal endpoints and
//! the default table, removing one moves its 10% of keys and typically 0.2%
//! more (under 1% for 400 random sets of addresses).

use std::net::SocketAddr;

use xxhash_rust::xxh64::xxh64;

const FREE: u32 = u32::MAX;

/// A full lookup table: each slot owned by an endpoint (an index into the
/// endpoints it was built from).
#[derive(Debug, Clone, Default)]
pub(super) struct MaglevTable {
    owners: Vec<u32>,
}

/// One endpoint while the table is built.
struct Claimant {
    /// The next slot of its permutation.
    next: u64,
    skip: u64,
    weight: u64,
    /// Claims so far × the largest weight: it claims in a round `r` only
    /// when `r × weight ≥ claimed`.
    claimed: u64,
}

impl MaglevTable {
    /// A table of `table_size` slots over `endpoints` (address and weight).
    /// `table_size` must be prime for every slot to be reachable; a size that
    /// is not (the policy is checked when it is configured) is replaced by
    /// the default, 65,537.
    pub(super) fn new(endpoints: &[(SocketAddr, u32)], table_size: u64) -> Self {
        if endpoints.is_empty() {
            return Self::default();
        }
        let size = match mesh_core::policy::Maglev::new(table_size) {
            Ok(m) => m.table_size,
            Err(_) => mesh_core::policy::Maglev::default().table_size,
        };
        let mut key = String::new();
        let mut claimants: Vec<Claimant> = endpoints
            .iter()
            .map(|(addr, weight)| {
                key.clear();
                // Writing into a String cannot fail.
                let _ = std::fmt::Write::write_fmt(&mut key, format_args!("{addr}"));
                Claimant {
                    next: xxh64(key.as_bytes(), 0) % size,
                    skip: xxh64(key.as_bytes(), 1) % (size - 1) + 1,
                    weight: u64::from((*weight).max(1)),
                    claimed: 0,
                }
            })
            .collect();
        let heaviest = claimants.iter().map(|c| c.weight).max().unwrap_or(1);
        let mut owners = vec![FREE; size as usize];
        let mut filled = 0u64;
        let mut round = 0u64;
        while filled < size {
            for (i, c) in claimants.iter_mut().enumerate() {
                if filled == size {
                    break;
                }
                if round * c.weight < c.claimed {
                    continue;
                }
                c.claimed += heaviest;
                // A prime size makes the permutation visit every slot, so a
                // free one is found while the table is not full.
                while owners[c.next as usize] != FREE {
                    c.next = (c.next + c.skip) % size;
                }
                owners[c.next as usize] = i as u32;
                c.next = (c.next + c.skip) % size;
                filled += 1;
            }
            round += 1;
        }
        Self { owners }
    }

    /// The owner of each slot.
    pub(super) fn owners(&self) -> &[u32] {
        &self.owners
    }

    /// The slot that serves `hash`. The table must not be empty.
    pub(super) fn position(&self, hash: u64) -> usize {
        (hash % self.owners.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    use crate::balance::hash::testing::{endpoints, owner_counts};

    fn counts(t: &MaglevTable, n: usize) -> Vec<usize> {
        owner_counts(t.owners(), n)
    }

    fn owner(t: &MaglevTable, hash: u64) -> u32 {
        t.owners()[t.position(hash)]
    }

    #[test]
    fn the_table_is_full_and_even() {
        let t = MaglevTable::new(&endpoints(&[1; 10]), 65_537);
        assert_eq!(t.owners().len(), 65_537);
        assert!(t.owners().iter().all(|o| *o < 10));
        // Equal weights take turns: counts differ by at most one.
        let c = counts(&t, 10);
        assert!(
            c.iter().max().unwrap() - c.iter().min().unwrap() <= 1,
            "{c:?}"
        );
        // More endpoints than slots still fill the table.
        let t = MaglevTable::new(&endpoints(&[1; 20]), 13);
        assert!(t.owners().iter().all(|o| *o < 20));
        assert_eq!(MaglevTable::new(&[], 13).owners().len(), 0);
    }

    #[test]
    fn slots_follow_weights() {
        let t = MaglevTable::new(&endpoints(&[1, 2, 3]), 65_537);
        let c = counts(&t, 3);
        for (i, want) in [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0].iter().enumerate() {
            let got = c[i] as f64 / 65_537.0;
            assert!((got - want).abs() < 0.001, "{c:?}");
        }
    }

    #[test]
    fn a_size_that_is_not_prime_falls_back_to_the_default() {
        let t = MaglevTable::new(&endpoints(&[1, 1]), 65_536);
        assert_eq!(t.owners().len(), 65_537);
        assert!(t.owners().iter().all(|o| *o < 2));
    }

    fn ten() -> impl Strategy<Value = Vec<(SocketAddr, u32)>> {
        proptest::collection::btree_set(any::<u32>(), 10).prop_map(|ips| {
            ips.into_iter()
                .map(|ip| (SocketAddr::from((ip.to_be_bytes(), 80)), 1))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn a_key_keeps_its_endpoint(eps in ten(), keys in proptest::collection::vec(any::<u64>(), 100)) {
            let a = MaglevTable::new(&eps, 65_537);
            let b = MaglevTable::new(&eps, 65_537);
            for k in keys {
                prop_assert_eq!(owner(&a, k), owner(&b, k));
            }
        }

        #[test]
        fn removing_one_of_ten_moves_few_keys(eps in ten(), gone in 0usize..10, seed: u64) {
            let before = MaglevTable::new(&eps, 65_537);
            let rest: Vec<_> = eps.iter().enumerate().filter(|(i, _)| *i != gone).map(|(_, e)| *e).collect();
            let after = MaglevTable::new(&rest, 65_537);
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let (mut moved, mut from_gone) = (0u32, 0u32);
            for _ in 0..10_000 {
                let key: u64 = rng.random();
                let was = eps[owner(&before, key) as usize].0;
                let now = rest[owner(&after, key) as usize].0;
                if was != now {
                    moved += 1;
                    from_gone += u32::from(was == eps[gone].0);
                }
            }
            let moved = f64::from(moved) / 10_000.0;
            let others = moved - f64::from(from_gone) / 10_000.0;
            // About 10% move, and nearly all of them were the removed
            // endpoint's. Between endpoints that stay, 0.2% of keys move in
            // a typical set and under 1% in 400 random ones; sets that
            // proptest searches out reach 1.6%, so allow 3%.
            prop_assert!(moved <= 0.10 + 0.03, "{moved}");
            prop_assert!(others <= 0.03, "{others}");
        }
    }
}
