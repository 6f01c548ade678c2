//! How long the ADS client waits between connection attempts.

use std::time::Duration;

use rand::Rng;

/// The delays between connection attempts: exponential, with full jitter.
///
/// The n-th retry in a row waits a random time between zero and
/// `min(max, initial × 2ⁿ)`. The defaults are gRPC's connection backoff
/// bounds, 1 s and 30 s (the ones `grpc-go`'s xDS client uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The bound of the first delay.
    pub initial: Duration,
    /// The largest bound.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The bound of the delay before retry `attempt` (0 for the first).
    pub fn bound(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A random delay before retry `attempt`, up to [`Backoff::bound`].
    pub fn delay(&self, attempt: u32) -> Duration {
        let bound = self.bound(attempt);
        bound.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_max() {
        let backoff = Backoff::default();
        let bounds: Vec<u64> = (0..7).map(|n| backoff.bound(n).as_secs()).collect();
        assert_eq!(bounds, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff.bound(u32::MAX), Duration::from_secs(30));
        for attempt in 0..10 {
            assert!(backoff.delay(attempt) <= backoff.bound(attempt));
        }
    }
}
