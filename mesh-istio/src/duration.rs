//! Istio's durations as its YAML writes them (`google.protobuf.Duration`
//! read the way Istio's Kubernetes client reads it, with Go's syntax):
//! `3s`, `100ms`, `1.5s`, `1m`, `1h30m`, `0`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A non-negative duration such as `3s` or `1.5s`.
///
/// ```
/// use mesh_istio::Duration;
/// let d: Duration = "1m30s".parse().unwrap();
/// assert_eq!(d.get().as_secs(), 90);
/// assert_eq!("1.5s".parse::<Duration>().unwrap().to_string(), "1.5s");
/// assert!("3".parse::<Duration>().unwrap_err().to_string().contains("unit"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(StdDuration);

impl Duration {
    /// The duration.
    pub fn new(d: StdDuration) -> Self {
        Self(d)
    }

    /// The duration as the standard library's type.
    pub fn get(self) -> StdDuration {
        self.0
    }
}

impl From<StdDuration> for Duration {
    fn from(d: StdDuration) -> Self {
        Self(d)
    }
}

/// A duration that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason}; expected numbers with units (ns, us, ms, s, m, h) such as 3s, 100ms, 1.5s, 1m"
)]
pub struct InvalidDuration {
    input: String,
    reason: &'static str,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

fn unit_nanos(unit: &str) -> Result<u128, &'static str> {
    Ok(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "" => return Err("a number without a unit"),
        _ => return Err("unknown unit"),
    })
}

/// `digits` (at most 18 of them are significant) as a fraction of `per`.
fn fraction(digits: &str, per: u128) -> u128 {
    let digits = &digits[..digits.len().min(18)];
    let value: u128 = digits.parse().unwrap_or(0);
    value * per / 10u128.pow(digits.len() as u32)
}

impl FromStr for Duration {
    type Err = InvalidDuration;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| InvalidDuration {
            input: s.to_owned(),
            reason,
        };
        if s.starts_with('-') {
            return Err(err("durations may not be negative"));
        }
        let body = s.strip_prefix('+').unwrap_or(s);
        if body == "0" {
            return Ok(Self(StdDuration::ZERO));
        }
        if body.is_empty() {
            return Err(err("empty"));
        }
        let not_digit = |c: char| !c.is_ascii_digit();
        let mut total: u128 = 0;
        let mut rest = body;
        while !rest.is_empty() {
            let end = rest.find(not_digit).unwrap_or(rest.len());
            let (whole, after) = rest.split_at(end);
            let (frac, after) = match after.strip_prefix('.') {
                Some(a) => a.split_at(a.find(not_digit).unwrap_or(a.len())),
                None => ("", after),
            };
            if whole.is_empty() && frac.is_empty() {
                return Err(err("expected a number"));
            }
            let end = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(end);
            let per = unit_nanos(unit).map_err(err)?;
            let whole: u128 = if whole.is_empty() {
                0
            } else if whole.len() > 20 {
                return Err(err("too large"));
            } else {
                whole.parse().map_err(|_| err("expected a number"))?
            };
            total = whole
                .checked_mul(per)
                .and_then(|n| n.checked_add(fraction(frac, per)))
                .and_then(|n| total.checked_add(n))
                .ok_or_else(|| err("too large"))?;
            rest = after;
        }
        let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| err("too large"))?;
        Ok(Self(StdDuration::new(secs, (total % NANOS_PER_SEC) as u32)))
    }
}

impl fmt::Display for Duration {
    /// Seconds with a fraction when needed: `3s`, `0.5s`, `1.000001s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.subsec_nanos();
        if nanos == 0 {
            return write!(f, "{}s", self.0.as_secs());
        }
        let frac = format!("{nanos:09}");
        write!(f, "{}.{}s", self.0.as_secs(), frac.trim_end_matches('0'))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 3s, 100ms, 1.5s or 1m")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                // A bare 0 needs no unit, in YAML as in Go.
                if v == 0 {
                    return Ok(Duration::default());
                }
                Err(E::custom(InvalidDuration {
                    input: v.to_string(),
                    reason: "a number without a unit",
                }))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> StdDuration {
        s.parse::<Duration>().unwrap().get()
    }

    #[test]
    fn reads_go_durations() {
        assert_eq!(d("3s"), StdDuration::from_secs(3));
        assert_eq!(d("100ms"), StdDuration::from_millis(100));
        assert_eq!(d("1.5s"), StdDuration::from_millis(1500));
        assert_eq!(d(".5s"), StdDuration::from_millis(500));
        assert_eq!(d("1m"), StdDuration::from_secs(60));
        assert_eq!(d("1h30m"), StdDuration::from_secs(5400));
        assert_eq!(d("2us"), StdDuration::from_micros(2));
        assert_eq!(d("7ns"), StdDuration::from_nanos(7));
        assert_eq!(d("0"), StdDuration::ZERO);
        assert_eq!(d("0s"), StdDuration::ZERO);
        assert_eq!(d("0.000000001s"), StdDuration::from_nanos(1));
    }

    #[test]
    fn rejects_with_a_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("3", "without a unit"),
            ("3 s", "unknown unit"),
            ("3d", "unknown unit"),
            ("-1s", "negative"),
            ("s", "expected a number"),
            ("1.s.", "expected a number"),
            ("99999999999999999999999h", "too large"),
            ("9999999999999999h", "too large"),
        ] {
            let e = input.parse::<Duration>().unwrap_err().to_string();
            assert!(e.contains(reason), "{input:?}: {e}");
            assert!(e.contains(&format!("{input:?}")), "{e}");
        }
    }

    #[test]
    fn prints_seconds() {
        let p = |s: &str| s.parse::<Duration>().unwrap().to_string();
        assert_eq!(p("3s"), "3s");
        assert_eq!(p("500ms"), "0.5s");
        assert_eq!(p("1m"), "60s");
        assert_eq!(p("1ns"), "0.000000001s");
    }

    proptest::proptest! {
        #[test]
        fn printing_then_reading_gives_the_same_duration(
            secs in 0u64..10_000_000_000,
            nanos in 0u32..1_000_000_000,
        ) {
            let d = Duration(StdDuration::new(secs, nanos));
            proptest::prop_assert_eq!(d.to_string().parse::<Duration>(), Ok(d));
        }

        #[test]
        fn units_add_up(h in 0u64..1000, m in 0u64..1000, s in 0u64..1000, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let want = StdDuration::from_secs(h * 3600 + m * 60 + s) + StdDuration::from_millis(ms);
            proptest::prop_assert_eq!(text.parse::<Duration>().map(Duration::get), Ok(want));
        }
    }
}
