//! Retry policy: Envoy's `retry_on` conditions, attempts, per-try timeout,
//! backoff and the retry budget.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::outcome::{FailureKind, GrpcCode, Outcome};

/// The set of conditions under which an attempt is retried, written as
/// Envoy's `x-envoy-retry-on` / `retry_on` string (Istio's `retryOn`).
///
/// | condition | retries on |
/// |---|---|
/// | `5xx` | any 5xx response, connect failure, reset, refused stream, per-try timeout |
/// | `gateway-error` | 502, 503, 504, connect failure, reset, refused stream, per-try timeout |
/// | `reset` | no response: reset, connect failure, refused stream, per-try timeout |
/// | `connect-failure` | connect failure (and connect timeout) |
/// | `refused-stream` | HTTP/2 `REFUSED_STREAM` |
/// | `retriable-4xx` | 409 |
/// | `retriable-status-codes` | the statuses in [`RetryPolicy::retriable_status_codes`] |
/// | `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable` | that gRPC status in the response headers (trailers-only) |
///
/// ```
/// use mesh_core::policy::RetryOn;
/// let on: RetryOn = "5xx,unavailable".parse().unwrap();
/// assert!(on.contains(RetryOn::UNAVAILABLE));
/// assert_eq!(on.to_string(), "5xx,unavailable");
/// assert!("5xx,bogus".parse::<RetryOn>().unwrap_err().to_string().contains("bogus"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RetryOn(u32);

const NAMES: [(&str, RetryOn); 12] = [
    ("5xx", RetryOn::FIVE_XX),
    ("gateway-error", RetryOn::GATEWAY_ERROR),
    ("reset", RetryOn::RESET),
    ("connect-failure", RetryOn::CONNECT_FAILURE),
    ("refused-stream", RetryOn::REFUSED_STREAM),
    ("retriable-4xx", RetryOn::RETRIABLE_4XX),
    ("retriable-status-codes", RetryOn::RETRIABLE_STATUS_CODES),
    ("cancelled", RetryOn::CANCELLED),
    ("deadline-exceeded", RetryOn::DEADLINE_EXCEEDED),
    ("internal", RetryOn::INTERNAL),
    ("resource-exhausted", RetryOn::RESOURCE_EXHAUSTED),
    ("unavailable", RetryOn::UNAVAILABLE),
];

impl RetryOn {
    /// No condition: never retry.
    pub const NONE: RetryOn = RetryOn(0);
    /// `5xx`.
    pub const FIVE_XX: RetryOn = RetryOn(1);
    /// `gateway-error`.
    pub const GATEWAY_ERROR: RetryOn = RetryOn(1 << 1);
    /// `reset`.
    pub const RESET: RetryOn = RetryOn(1 << 2);
    /// `connect-failure`.
    pub const CONNECT_FAILURE: RetryOn = RetryOn(1 << 3);
    /// `refused-stream`.
    pub const REFUSED_STREAM: RetryOn = RetryOn(1 << 4);
    /// `retriable-4xx`.
    pub const RETRIABLE_4XX: RetryOn = RetryOn(1 << 5);
    /// `retriable-status-codes`.
    pub const RETRIABLE_STATUS_CODES: RetryOn = RetryOn(1 << 6);
    /// gRPC `cancelled`.
    pub const CANCELLED: RetryOn = RetryOn(1 << 7);
    /// gRPC `deadline-exceeded`.
    pub const DEADLINE_EXCEEDED: RetryOn = RetryOn(1 << 8);
    /// gRPC `internal`.
    pub const INTERNAL: RetryOn = RetryOn(1 << 9);
    /// gRPC `resource-exhausted`.
    pub const RESOURCE_EXHAUSTED: RetryOn = RetryOn(1 << 10);
    /// gRPC `unavailable`.
    pub const UNAVAILABLE: RetryOn = RetryOn(1 << 11);

    /// Whether every condition of `other` is in `self`.
    pub const fn contains(self, other: RetryOn) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any condition of `other` is in `self`.
    pub const fn intersects(self, other: RetryOn) -> bool {
        self.0 & other.0 != 0
    }

    /// The union of two sets.
    pub const fn union(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 | other.0)
    }

    /// Whether an attempt that ended with `outcome` may be retried, given
    /// the statuses listed for `retriable-status-codes`.
    pub fn matches(self, outcome: &Outcome, retriable_status_codes: &[u16]) -> bool {
        match *outcome {
            Outcome::Failure(kind) => {
                let no_response = RetryOn::FIVE_XX
                    .union(RetryOn::GATEWAY_ERROR)
                    .union(RetryOn::RESET);
                match kind {
                    FailureKind::ConnectFailure => {
                        self.intersects(no_response.union(RetryOn::CONNECT_FAILURE))
                    }
                    FailureKind::RefusedStream => {
                        self.intersects(no_response.union(RetryOn::REFUSED_STREAM))
                    }
                    FailureKind::Reset | FailureKind::Timeout => self.intersects(no_response),
                    FailureKind::Overflow | FailureKind::NoHealthyUpstream | FailureKind::Local => {
                        false
                    }
                }
            }
            Outcome::Response { status, grpc } => {
                let code = status.as_u16();
                (self.contains(RetryOn::FIVE_XX) && status.is_server_error())
                    || (self.contains(RetryOn::GATEWAY_ERROR) && matches!(code, 502..=504))
                    || (self.contains(RetryOn::RETRIABLE_4XX) && code == 409)
                    || (self.contains(RetryOn::RETRIABLE_STATUS_CODES)
                        && retriable_status_codes.contains(&code))
                    || grpc.is_some_and(|g| self.matches_grpc(g))
            }
        }
    }

    fn matches_grpc(self, code: GrpcCode) -> bool {
        let flag = match code {
            GrpcCode::CANCELLED => RetryOn::CANCELLED,
            GrpcCode::DEADLINE_EXCEEDED => RetryOn::DEADLINE_EXCEEDED,
            GrpcCode::INTERNAL => RetryOn::INTERNAL,
            GrpcCode::RESOURCE_EXHAUSTED => RetryOn::RESOURCE_EXHAUSTED,
            GrpcCode::UNAVAILABLE => RetryOn::UNAVAILABLE,
            _ => return false,
        };
        self.contains(flag)
    }
}

/// A `retry_on` string with a condition Envoy does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown retry condition {condition:?} in {input:?} (expected one of: {})",
    expected()
)]
pub struct InvalidRetryOn {
    input: String,
    condition: String,
}

fn expected() -> String {
    NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

impl FromStr for RetryOn {
    type Err = InvalidRetryOn;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut on = RetryOn::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let flag = NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(part))
                .map(|(_, f)| *f)
                .ok_or_else(|| InvalidRetryOn {
                    input: s.to_owned(),
                    condition: part.to_owned(),
                })?;
            on = on.union(flag);
        }
        Ok(on)
    }
}

impl fmt::Display for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = NAMES
            .iter()
            .filter(|(_, flag)| self.contains(*flag))
            .map(|(n, _)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RetryOn({self})")
    }
}

/// Exponential backoff with full jitter between attempts (Envoy's
/// `retry_back_off`): the n-th retry waits a random time in
/// `[0, min(base × 2ⁿ, max))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Base interval. Default 25 ms.
    pub base: Duration,
    /// Largest interval. Default 250 ms (10 × base).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

impl Backoff {
    /// The upper bound of the wait before retry number `retry` (1-based);
    /// the actual wait is this times a uniform random factor in `[0, 1)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// A retry budget (linkerd's and Finagle's): retries may add at most
/// `retry_ratio` of the requests seen in the last `ttl`, plus
/// `min_retries_per_second`, so retries cannot multiply an outage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    /// Retries allowed per original request. Default 0.2 (20 %).
    pub retry_ratio: f32,
    /// Retries always allowed per second. Default 10.
    pub min_retries_per_second: u32,
    /// The window requests are counted over. Default 10 s.
    pub ttl: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

/// How failed attempts are retried. The default is Istio's default retry
/// policy: 2 retries on `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`
/// with 503 retriable.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// When to retry.
    pub retry_on: RetryOn,
    /// Retries after the first attempt (Istio's `attempts`). Default 2.
    pub num_retries: u32,
    /// Time allowed to each attempt. Default none.
    pub per_try_timeout: Option<Duration>,
    /// Statuses retried under `retriable-status-codes`. Default `[503]`.
    pub retriable_status_codes: Vec<u16>,
    /// Wait between attempts.
    pub backoff: Backoff,
    /// Budget shared by all requests of the cluster.
    pub budget: RetryBudget,
    /// Largest request body kept to be replayed; a larger body is sent once
    /// and not retried. Default 64 KiB.
    pub max_replay_body_bytes: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retry_on: RetryOn::CONNECT_FAILURE
                .union(RetryOn::REFUSED_STREAM)
                .union(RetryOn::UNAVAILABLE)
                .union(RetryOn::CANCELLED)
                .union(RetryOn::RETRIABLE_STATUS_CODES),
            num_retries: 2,
            per_try_timeout: None,
            retriable_status_codes: vec![503],
            backoff: Backoff::default(),
            budget: RetryBudget::default(),
            max_replay_body_bytes: 64 * 1024,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn disabled() -> Self {
        Self {
            num_retries: 0,
            retry_on: RetryOn::NONE,
            ..Self::default()
        }
    }

    /// Whether an attempt that ended with `outcome` may be retried.
    pub fn should_retry(&self, outcome: &Outcome) -> bool {
        self.num_retries > 0 && self.retry_on.matches(outcome, &self.retriable_status_codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn resp(status: u16, grpc: Option<u32>) -> Outcome {
        Outcome::Response {
            status: StatusCode::from_u16(status).unwrap(),
            grpc: grpc.map(GrpcCode),
        }
    }

    fn on(s: &str) -> RetryOn {
        s.parse().unwrap()
    }

    #[test]
    fn envoy_conditions() {
        let fail = |k| Outcome::Failure(k);
        let cases: &[(&str, Outcome, bool)] = &[
            ("5xx", resp(500, None), true),
            ("5xx", resp(404, None), false),
            ("5xx", fail(FailureKind::Reset), true),
            ("5xx", fail(FailureKind::ConnectFailure), true),
            ("5xx", fail(FailureKind::Timeout), true),
            ("gateway-error", resp(500, None), false),
            ("gateway-error", resp(503, None), true),
            ("reset", resp(503, None), false),
            ("reset", fail(FailureKind::Reset), true),
            ("connect-failure", fail(FailureKind::ConnectFailure), true),
            ("connect-failure", fail(FailureKind::Reset), false),
            ("refused-stream", fail(FailureKind::RefusedStream), true),
            ("retriable-4xx", resp(409, None), true),
            ("retriable-4xx", resp(400, None), false),
            ("retriable-status-codes", resp(503, None), true),
            ("retriable-status-codes", resp(502, None), false),
            ("unavailable", resp(200, Some(14)), true),
            ("unavailable", resp(200, Some(13)), false),
            ("internal", resp(200, Some(13)), true),
            ("cancelled,deadline-exceeded", resp(200, Some(4)), true),
            ("resource-exhausted", resp(200, Some(8)), true),
            ("5xx,reset", fail(FailureKind::Overflow), false),
            ("5xx,reset", fail(FailureKind::Local), false),
        ];
        for (conditions, outcome, want) in cases {
            assert_eq!(
                on(conditions).matches(outcome, &[503]),
                *want,
                "{conditions} {outcome:?}"
            );
        }
    }

    #[test]
    fn parse_and_print_round_trip() {
        let all = expected().replace(", ", ",");
        assert_eq!(on(&all).to_string(), all);
        assert_eq!(on(" 5xx , reset ").to_string(), "5xx,reset");
        let err = "5xx,nope".parse::<RetryOn>().unwrap_err().to_string();
        assert!(
            err.contains("\"nope\"") && err.contains("\"5xx,nope\""),
            "{err}"
        );
    }

    #[test]
    fn istio_default_policy() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.retry_on.to_string(),
            "connect-failure,refused-stream,retriable-status-codes,cancelled,unavailable"
        );
        assert!(p.should_retry(&resp(503, None)));
        assert!(!p.should_retry(&resp(500, None)));
        assert!(!RetryPolicy::disabled().should_retry(&resp(503, None)));
    }

    #[test]
    fn backoff_grows_to_max() {
        let b = Backoff::default();
        let ms = |n| b.ceiling(n).as_millis();
        assert_eq!(
            (ms(1), ms(2), ms(3), ms(4), ms(5), ms(40)),
            (25, 50, 100, 200, 250, 250)
        );
    }
}
