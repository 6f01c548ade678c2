//! The retry budget: retries may add at most a ratio of recent requests plus
//! a floor per second, counted over a sliding window of one-second slots.
//! Lock-free: each slot is a few atomics; a slot from an old second is reset
//! by whoever touches it first.

use std::sync::atomic::{AtomicU64, Ordering};

use mesh_core::policy::RetryBudget;
use tokio::time::Instant;

/// A cluster's retry budget, shared by all its requests.
#[derive(Debug)]
pub struct Budget {
    policy: RetryBudget,
    epoch: Instant,
    slots: Box<[Slot]>,
    /// Retries taken, ever.
    taken: AtomicU64,
    /// Retries refused for want of budget, ever.
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Slot {
    second: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl Budget {
    /// A budget with the given policy.
    pub fn new(policy: RetryBudget) -> Self {
        let seconds = policy.ttl.as_secs().clamp(1, 3600) as usize;
        Self {
            policy,
            epoch: Instant::now(),
            slots: (0..seconds).map(|_| Slot::default()).collect(),
            taken: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Retries taken from the budget so far.
    pub fn retries(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Retries refused because the budget was spent, so far.
    pub fn exhausted(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn now(&self) -> u64 {
        // Seconds are counted from 1 so that a zeroed slot is never current.
        Instant::now()
            .saturating_duration_since(self.epoch)
            .as_secs()
            + 1
    }

    fn slot(&self, second: u64) -> &Slot {
        let slot = &self.slots[(second % self.slots.len() as u64) as usize];
        let seen = slot.second.load(Ordering::Acquire);
        if seen != second
            && slot
                .second
                .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.requests.store(0, Ordering::Release);
            slot.retries.store(0, Ordering::Release);
        }
        slot
    }

    /// Counts an original request.
    pub fn deposit(&self) {
        self.slot(self.now())
            .requests
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn withdraw(&self) -> bool {
        let now = self.now();
        let window = self.slots.len() as u64;
        let (mut requests, mut retries) = (0u64, 0u64);
        for slot in self.slots.iter() {
            let second = slot.second.load(Ordering::Acquire);
            if second + window > now && second <= now {
                requests += slot.requests.load(Ordering::Acquire);
                retries += slot.retries.load(Ordering::Acquire);
            }
        }
        let allowed = f64::from(self.policy.min_retries_per_second) * window as f64
            + f64::from(self.policy.retry_ratio) * requests as f64;
        if (retries as f64) < allowed.floor() {
            self.slot(now).retries.fetch_add(1, Ordering::AcqRel);
            self.taken.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn budget(ratio: f32, min: u32) -> Budget {
        Budget::new(RetryBudget {
            retry_ratio: ratio,
            min_retries_per_second: min,
            ttl: Duration::from_secs(10),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn allows_a_ratio_of_requests() {
        let b = budget(0.2, 0);
        for _ in 0..100 {
            b.deposit();
        }
        let allowed = (0..100).filter(|_| b.withdraw()).count();
        assert_eq!(allowed, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_retries_with_no_traffic() {
        let b = budget(0.2, 10);
        assert_eq!((0..1000).filter(|_| b.withdraw()).count(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn old_requests_leave_the_window() {
        let b = budget(0.5, 0);
        for _ in 0..10 {
            b.deposit();
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.withdraw());
        b.deposit();
        b.deposit();
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }
}
