//! Times as the admin endpoint and access logs write them: RFC 3339, UTC
//! (`2026-12-07T12:00:00Z`, or with milliseconds, as Envoy's
//! `%START_TIME%`, `2026-12-07T12:00:00.123Z`).

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` to the second.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let (date, _) = civil(t);
    date
}

/// `t` to the millisecond.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let (date, millis) = civil(t);
    format!("{}.{millis:03}Z", date.trim_end_matches('Z'))
}

/// `t` to the second, and its milliseconds.
fn civil(t: SystemTime) -> (String, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    (date, since.subsec_millis())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_are_written_as_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_millis((1_796_601_600 + 3_723) * 1000 + 45);
        assert_eq!(rfc3339(t), "2026-12-07T01:02:03Z");
        assert_eq!(rfc3339_millis(t), "2026-12-07T01:02:03.045Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
