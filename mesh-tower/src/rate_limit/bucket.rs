//! A token bucket refilled continuously, on tokio's clock (so tests can
//! pause time).

use std::sync::{Mutex, MutexGuard};

use mesh_core::policy::Limit;
use tokio::time::Instant;

use super::Limited;

#[derive(Debug)]
pub(super) struct Bucket {
    limit: u32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(super) fn new(limit: Limit, now: Instant) -> Self {
        Self {
            limit: limit.requests_per_second,
            state: Mutex::new(State {
                tokens: f64::from(limit.requests_per_second),
                at: now,
            }),
        }
    }

    fn lock(&self, now: Instant) -> MutexGuard<'_, State> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let rate = f64::from(self.limit);
        // A caller that read the clock before another took the lock must
        // not move it back and have the same interval refilled twice.
        let elapsed = now.saturating_duration_since(s.at).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(rate);
        s.at = s.at.max(now);
        s
    }

    pub(super) fn is_full(&self, now: Instant) -> bool {
        self.lock(now).tokens >= f64::from(self.limit)
    }

    /// Takes one token from each bucket, or none if one is empty. Buckets
    /// are always passed in the same order (identity, then total), so two
    /// requests cannot deadlock.
    pub(super) fn take_all<'a>(
        buckets: impl Iterator<Item = &'a Bucket>,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut held: Vec<(MutexGuard<'_, State>, u32)> =
            buckets.map(|b| (b.lock(now), b.limit)).collect();
        if let Some((s, limit)) = held.iter().find(|(s, _)| s.tokens < 1.0) {
            let wait = if *limit == 0 {
                u64::MAX
            } else {
                ((1.0 - s.tokens) / f64::from(*limit)).ceil() as u64
            };
            return Err(Limited {
                limit: *limit,
                reset_secs: wait,
            });
        }
        for (s, _) in &mut held {
            s.tokens -= 1.0;
        }
        Ok(())
    }
}
