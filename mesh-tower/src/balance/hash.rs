//! Consistent hashing in the balancer: the table a view builds for the
//! ring-hash and Maglev policies, and how a retry moves past the endpoints
//! it already tried (Envoy moves a retry along the ring, or to another
//! slot, as if the tried endpoint were not there).

use std::net::SocketAddr;

use mesh_core::policy::LoadBalancer;

use super::maglev::MaglevTable;
use super::ring::Ring;

/// The table of one consistent-hashing policy over one list of endpoints.
#[derive(Debug, Clone)]
pub(super) enum HashTable {
    Ring(Ring),
    Maglev(MaglevTable),
}

impl HashTable {
    /// The table `policy` uses over `endpoints` (address and weight), or
    /// `None` for a policy that does not hash.
    pub(super) fn new(policy: &LoadBalancer, endpoints: &[(SocketAddr, u32)]) -> Option<Self> {
        match policy {
            LoadBalancer::RingHash(r) => Some(HashTable::Ring(Ring::new(
                endpoints,
                r.min_ring_size,
                r.max_ring_size,
            ))),
            LoadBalancer::Maglev(m) => {
                Some(HashTable::Maglev(MaglevTable::new(endpoints, m.table_size)))
            }
            _ => None,
        }
    }

    fn owners(&self) -> &[u32] {
        match self {
            HashTable::Ring(r) => r.owners(),
            HashTable::Maglev(m) => m.owners(),
        }
    }

    /// The endpoint (an index into the endpoints the table was built from)
    /// for `hash`. When `skip` refuses it, the owners of the following
    /// entries are tried in order, once around the table, and the first one
    /// `skip` accepts is taken; when it accepts none, the first owner is.
    /// `None` only for an empty table.
    pub(super) fn pick(&self, hash: u64, skip: impl Fn(usize) -> bool) -> Option<usize> {
        let owners = self.owners();
        if owners.is_empty() {
            return None;
        }
        let start = match self {
            HashTable::Ring(r) => r.position(hash),
            HashTable::Maglev(m) => m.position(hash),
        };
        let first = owners[start] as usize;
        if !skip(first) {
            return Some(first);
        }
        let (before, after) = owners.split_at(start);
        Some(
            after
                .iter()
                .chain(before)
                .map(|o| *o as usize)
                .find(|o| !skip(*o))
                .unwrap_or(first),
        )
    }
}

/// Helpers shared by the ring and Maglev tests.
#[cfg(test)]
pub(super) mod testing {
    use std::net::SocketAddr;

    /// One endpoint per weight, on distinct addresses.
    pub(crate) fn endpoints(weights: &[u32]) -> Vec<(SocketAddr, u32)> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| (SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 80)), *w))
            .collect()
    }

    /// How many entries each of `n` endpoints owns.
    pub(crate) fn owner_counts(owners: &[u32], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for o in owners {
            c[*o as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_core::policy::{Maglev, RingHash};

    fn endpoints(n: u8) -> Vec<(SocketAddr, u32)> {
        (0..n)
            .map(|i| (SocketAddr::from(([10, 0, 0, i], 80)), 1))
            .collect()
    }

    #[test]
    fn only_hash_policies_have_tables() {
        assert!(HashTable::new(&LoadBalancer::RoundRobin, &endpoints(3)).is_none());
        let empty = HashTable::new(&LoadBalancer::RingHash(RingHash::default()), &[]).unwrap();
        assert_eq!(empty.pick(1, |_| false), None);
    }

    #[test]
    fn a_retry_walks_to_the_next_endpoint_not_tried() {
        for policy in [
            LoadBalancer::RingHash(RingHash::default()),
            LoadBalancer::Maglev(Maglev::default()),
        ] {
            let t = HashTable::new(&policy, &endpoints(5)).unwrap();
            for hash in [0, 1 << 20, u64::MAX / 3, u64::MAX] {
                let first = t.pick(hash, |_| false).unwrap();
                let second = t.pick(hash, |i| i == first).unwrap();
                assert_ne!(first, second);
                let third = t.pick(hash, |i| i == first || i == second).unwrap();
                assert!(third != first && third != second);
                // Deterministic: a retry of the same key goes the same way.
                assert_eq!(t.pick(hash, |i| i == first), Some(second));
                // Nothing left: the first owner.
                assert_eq!(t.pick(hash, |_| true), Some(first));
            }
        }
    }
}
