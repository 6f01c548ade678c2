//! `/certs`: the workload certificate in use, in the shape of Envoy's
//! admin `/certs` (`certificates[].cert_chain[]` with `serial_number`,
//! `subject_alt_names`, `valid_from`, `expiration_time`,
//! `days_until_expiration`), with when it was last read and the last
//! read's error. Never a key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::time::rfc3339;
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
