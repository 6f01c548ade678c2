//! Certificate lifetimes written as Go/Istio durations: `24h`, `90m`,
//! `3600s`, `1h30m`, `2000ms` (whole seconds in all).

use std::time::Duration;

/// Parses a duration the way Istio's flags write one: one or more
/// `NUMBER UNIT` pairs with units `h`, `m`, `s` or `ms`, whole numbers only,
/// summed. Zero is rejected: a certificate must live for some time.
///
/// ```
/// use std::time::Duration;
/// use mesh_control::ca::parse_ttl;
///
/// assert_eq!(parse_ttl("1h30m").unwrap(), Duration::from_secs(5400));
/// assert!(parse_ttl("1d").is_err());
/// ```
pub fn parse_ttl(input: &str) -> Result<Duration, InvalidTtl> {
    let fail = |reason| InvalidTtl {
        input: input.to_owned(),
        reason,
    };
    if input.is_empty() {
        return Err(fail("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(fail("expected a whole number before each unit"));
        }
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| fail("a number is too large"))?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let part = match unit {
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "s" => Some(Duration::from_secs(number)),
            "ms" => Some(Duration::from_millis(number)),
            "" => return Err(fail("a number has no unit (use h, m, s or ms)")),
            _ => return Err(fail("unknown unit (use h, m, s or ms)")),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| fail("it is too long"))?;
        rest = tail;
    }
    if total.is_zero() {
        return Err(fail("it is zero"));
    }
    if total.subsec_nanos() != 0 {
        return Err(fail("certificates are valid for whole seconds"));
    }
    Ok(total)
}

/// Why a string is not a certificate lifetime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a lifetime like 24h, 90m, 3600s or 1h30m: {reason}")]
pub struct InvalidTtl {
    input: String,
    reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_forms() {
        assert_eq!(parse_ttl("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_ttl("90m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_ttl("3600s").unwrap(), Duration::from_secs(3_600));
        assert_eq!(parse_ttl("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_ttl("1h0m30s").unwrap(), Duration::from_secs(3_630));
        assert_eq!(parse_ttl("2000ms").unwrap(), Duration::from_secs(2));
        assert!(parse_ttl("1500ms").is_err(), "not whole seconds");
        assert_eq!(parse_ttl("0h5m").unwrap(), Duration::from_secs(300));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "24",
            "h",
            "1d",
            "1.5h",
            "-1h",
            "1h 30m",
            " 1h",
            "1H",
            "0s",
            "0h0m",
            "1hm",
            "99999999999999999999h",
            "18446744073709551615h",
        ] {
            let err = parse_ttl(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("{bad:?} is not a lifetime")),
                "{err}"
            );
        }
    }
}
