//! Load-balancing policy: which algorithm picks an endpoint, and the
//! parameters of the consistent-hashing ones (Envoy's `ring_hash_lb_config`
//! and `maglev_lb_config`, gRPC's `ring_hash_experimental`).

use std::time::Duration;

/// How the balancer picks an endpoint. Endpoint weights are honoured by all.
///
/// Values that come from configuration should be checked with
/// [`LoadBalancer::validate`] (or built with [`RingHash::new`] and
/// [`Maglev::new`]) when the configuration is read, so that a bad value is
/// rejected there rather than noticed while serving requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadBalancer {
    /// Power of two choices on peak-EWMA latency × outstanding requests
    /// (linkerd's default). The default, with [`PeakEwma::default`].
    PeakEwma(PeakEwma),
    /// Power of two choices on outstanding requests (Envoy's
    /// `LEAST_REQUEST` with `choice_count: 2`).
    LeastRequest,
    /// Weighted round robin (Envoy's `ROUND_ROBIN`).
    RoundRobin,
    /// Weighted random (Envoy's `RANDOM`).
    Random,
    /// Consistent hashing on a ketama ring (Envoy's `RING_HASH`, gRPC's
    /// `ring_hash`): a request goes to the first endpoint clockwise of its
    /// hash.
    RingHash(RingHash),
    /// Consistent hashing through a Maglev lookup table (Envoy's `MAGLEV`).
    Maglev(Maglev),
}

impl Default for LoadBalancer {
    fn default() -> Self {
        LoadBalancer::PeakEwma(PeakEwma::default())
    }
}

impl LoadBalancer {
    /// Checks the policy's parameters; only the consistent-hashing policies
    /// have any that can be wrong.
    ///
    /// ```
    /// use mesh_core::policy::{LoadBalancer, Maglev};
    /// assert!(LoadBalancer::RoundRobin.validate().is_ok());
    /// let bad = LoadBalancer::Maglev(Maglev { table_size: 65536 });
    /// assert_eq!(bad.validate().unwrap_err().to_string(), "maglev table size 65536 is not a prime number");
    /// ```
    pub fn validate(&self) -> Result<(), InvalidLoadBalancer> {
        match self {
            LoadBalancer::RingHash(r) => r.validate(),
            LoadBalancer::Maglev(m) => m.validate(),
            _ => Ok(()),
        }
    }

    /// Whether the policy picks by the request's hash.
    pub fn is_consistent_hash(&self) -> bool {
        matches!(self, LoadBalancer::RingHash(_) | LoadBalancer::Maglev(_))
    }

    /// The policy with a ring hash's sizes capped at `cap` (see
    /// [`RingHash::capped`]); other policies as they are.
    pub fn with_ring_size_cap(self, cap: u64) -> Self {
        match self {
            LoadBalancer::RingHash(r) => LoadBalancer::RingHash(r.capped(cap)),
            other => other,
        }
    }
}

/// Peak-EWMA parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeakEwma {
    /// The latency assumed for an endpoint with no observations. Default
    /// 30 ms (linkerd).
    pub default_rtt: Duration,
    /// How fast old observations fade: the time constant of the moving
    /// average. Default 10 s (linkerd).
    pub decay: Duration,
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self {
            default_rtt: Duration::from_millis(30),
            decay: Duration::from_secs(10),
        }
    }
}

/// Ring-hash parameters (Envoy's `RingHashLbConfig`): how many entries the
/// ring has. Each endpoint gets entries in proportion to its weight, at least
/// one for the lightest; the ring has at least `min_ring_size` entries unless
/// that would exceed `max_ring_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingHash {
    /// The smallest ring. Default 1024 (Envoy, gRPC).
    pub min_ring_size: u64,
    /// The largest ring. Default 8,388,608 (8M, Envoy), which is also the
    /// most either bound may be.
    pub max_ring_size: u64,
}

impl RingHash {
    /// The most entries a ring may have (Envoy's and gRPC's limit).
    pub const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;

    /// The most entries a client builds by default, whatever the policy
    /// asks (gRPC's `ring_size_cap`, gRFC A42).
    pub const DEFAULT_SIZE_CAP: u64 = 4096;

    /// These sizes, each at most `cap` (itself at least 1 and at most
    /// [`Self::MAX_RING_SIZE`]), as gRPC caps the rings it builds: a
    /// control plane, or endpoint weights far apart, would otherwise make
    /// a client build rings of millions of entries per cluster.
    ///
    /// ```
    /// use mesh_core::policy::RingHash;
    /// let asked = RingHash::new(1024, RingHash::MAX_RING_SIZE).unwrap();
    /// let built = asked.capped(RingHash::DEFAULT_SIZE_CAP);
    /// assert_eq!((built.min_ring_size, built.max_ring_size), (1024, 4096));
    /// ```
    pub fn capped(self, cap: u64) -> Self {
        let cap = cap.clamp(1, Self::MAX_RING_SIZE);
        Self {
            min_ring_size: self.min_ring_size.min(cap),
            max_ring_size: self.max_ring_size.min(cap),
        }
    }

    /// Ring-hash parameters, checked.
    ///
    /// ```
    /// use mesh_core::policy::RingHash;
    /// assert_eq!(RingHash::new(1024, 4096).unwrap().max_ring_size, 4096);
    /// assert!(RingHash::new(4096, 1024).is_err());
    /// ```
    pub fn new(min_ring_size: u64, max_ring_size: u64) -> Result<Self, InvalidLoadBalancer> {
        let r = Self {
            min_ring_size,
            max_ring_size,
        };
        r.validate()?;
        Ok(r)
    }

    /// Checks that both sizes are between 1 and [`Self::MAX_RING_SIZE`] and
    /// that the minimum is not above the maximum.
    pub fn validate(&self) -> Result<(), InvalidLoadBalancer> {
        for size in [self.min_ring_size, self.max_ring_size] {
            if size == 0 || size > Self::MAX_RING_SIZE {
                return Err(InvalidLoadBalancer::RingSize(size));
            }
        }
        if self.min_ring_size > self.max_ring_size {
            return Err(InvalidLoadBalancer::RingSizeOrder {
                min: self.min_ring_size,
                max: self.max_ring_size,
            });
        }
        Ok(())
    }
}

impl Default for RingHash {
    fn default() -> Self {
        Self {
            min_ring_size: 1024,
            max_ring_size: Self::MAX_RING_SIZE,
        }
    }
}

/// Maglev parameters (Envoy's `MaglevLbConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Maglev {
    /// Entries in the lookup table; a prime, at most 5,000,011 (Envoy's
    /// limit). Default 65,537. A table much larger than the number of
    /// endpoints (Envoy suggests 100×) spreads weights more exactly.
    pub table_size: u64,
}

impl Maglev {
    /// The largest table (Envoy's limit).
    pub const MAX_TABLE_SIZE: u64 = 5_000_011;

    /// The largest table the mesh's own clients take from a control
    /// plane: about twice the default (a Mersenne prime). Each cluster
    /// holds its own table at 4 bytes a slot, rebuilt on every endpoint
    /// change; Envoy's limit would let a control plane demand 20 MB per
    /// cluster.
    pub const MAX_CLIENT_TABLE_SIZE: u64 = 131_071;

    /// Maglev parameters, checked.
    ///
    /// ```
    /// use mesh_core::policy::Maglev;
    /// assert!(Maglev::new(65537).is_ok());
    /// assert!(Maglev::new(65536).is_err());
    /// ```
    pub fn new(table_size: u64) -> Result<Self, InvalidLoadBalancer> {
        let m = Self { table_size };
        m.validate()?;
        Ok(m)
    }

    /// Checks that the table size is a prime no larger than
    /// [`Self::MAX_TABLE_SIZE`].
    pub fn validate(&self) -> Result<(), InvalidLoadBalancer> {
        if self.table_size > Self::MAX_TABLE_SIZE {
            return Err(InvalidLoadBalancer::TableSize(self.table_size));
        }
        if !is_prime(self.table_size) {
            return Err(InvalidLoadBalancer::TableSizeNotPrime(self.table_size));
        }
        Ok(())
    }
}

impl Default for Maglev {
    fn default() -> Self {
        Self { table_size: 65_537 }
    }
}

/// A load-balancing parameter that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLoadBalancer {
    /// A ring size of zero or above [`RingHash::MAX_RING_SIZE`].
    #[error("ring hash ring size {0} is out of range (1 to 8388608)")]
    RingSize(u64),
    /// A minimum ring size above the maximum.
    #[error("ring hash minimum ring size {min} is greater than the maximum {max}")]
    RingSizeOrder {
        /// The minimum ring size given.
        min: u64,
        /// The maximum ring size given.
        max: u64,
    },
    /// A Maglev table size that is not prime (0 and 1 included).
    #[error("maglev table size {0} is not a prime number")]
    TableSizeNotPrime(u64),
    /// A Maglev table size above [`Maglev::MAX_TABLE_SIZE`].
    #[error("maglev table size {0} is out of range (at most 5000011)")]
    TableSize(u64),
}

/// Trial division; table sizes are at most a few million.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3;
    while d <= n / d {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..30).filter(|n| is_prime(*n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65_537));
        assert!(is_prime(Maglev::MAX_TABLE_SIZE));
        assert!(!is_prime(65_535));
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(
            LoadBalancer::RingHash(RingHash::default()).validate(),
            Ok(())
        );
        assert_eq!(LoadBalancer::Maglev(Maglev::default()).validate(), Ok(()));
        assert_eq!(RingHash::default().max_ring_size, 8 * 1024 * 1024);
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            RingHash::new(10, 5).unwrap_err().to_string(),
            "ring hash minimum ring size 10 is greater than the maximum 5"
        );
        assert_eq!(
            RingHash::new(0, 5).unwrap_err(),
            InvalidLoadBalancer::RingSize(0)
        );
        assert_eq!(
            RingHash::new(1, RingHash::MAX_RING_SIZE + 1).unwrap_err(),
            InvalidLoadBalancer::RingSize(RingHash::MAX_RING_SIZE + 1)
        );
        assert_eq!(
            Maglev::new(0).unwrap_err(),
            InvalidLoadBalancer::TableSizeNotPrime(0)
        );
        assert_eq!(
            Maglev::new(5_000_101).unwrap_err(),
            InvalidLoadBalancer::TableSize(5_000_101)
        );
    }
}
