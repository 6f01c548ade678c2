//! `/certs`: the workload certificate in use, in the shape of Envoy's
//! admin `/certs` (`certificates[].cert_chain[]` with `serial_number`,
//! `subject_alt_names`, `valid_from`, `expiration_time`,
//! `days_until_expiration`), with when it was last read and the last
//! read's error. Never a key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::tls::IdentitySource;

/// The certificates of `identity`, if any.
pub(super) fn certs(identity: Option<&IdentitySource>) -> Value {
    let Some(source) = identity else {
        return json!({ "certificates": [] });
    };
    let chain: Vec<Value> = source
        .current()
        .map(|identity| {
            identity
                .certified_key()
                .cert
                .iter()
                .filter_map(|der| certificate(der))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "certificates": [{
            "cert_chain": chain,
            "last_reload": source.reloaded_at().map(rfc3339),
            "last_error": source.last_error(),
        }]
    })
}

/// One certificate, as Envoy describes it.
fn certificate(der: &[u8]) -> Option<Value> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let validity = cert.validity();
    let at = |t: &x509_parser::time::ASN1Time| {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
    };
    let (from, until) = (at(&validity.not_before), at(&validity.not_after));
    let days = until
        .duration_since(SystemTime::now())
        .map_or(0, |left| left.as_secs() / 86_400);
    let sans: Vec<Value> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(json!({ "uri": u })),
                    GeneralName::DNSName(d) => Some(json!({ "dns": d })),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(json!({
        "serial_number": cert.raw_serial_as_string().replace(':', ""),
        "subject_alt_names": sans,
        "valid_from": rfc3339(from),
        "expiration_time": rfc3339(until),
        "days_until_expiration": days.to_string(),
    }))
}

/// `t` as RFC 3339, UTC, to the second (`2026-12-07T12:00:00Z`).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
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
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_601_600 + 3_723);
        assert_eq!(rfc3339(t), "2026-12-07T01:02:03Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
