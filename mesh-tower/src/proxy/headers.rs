//! Hop-by-hop headers: what belongs to one connection and is not passed
//! on (RFC 9110 §7.6.1), and the `Upgrade` a tunnel keeps.

use http::header::{CONNECTION, HeaderMap, HeaderName, TE, TRANSFER_ENCODING, UPGRADE};

/// The hop-by-hop headers every proxy drops besides those `Connection`
/// names.
const HOP_BY_HOP: [&str; 4] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Whether a request or response with `headers` asks to switch protocols
/// (`Connection: upgrade` with an `Upgrade`).
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && connection_names(headers).any(|n| n.eq_ignore_ascii_case("upgrade"))
}

/// The names `Connection` lists.
fn connection_names(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// Drops the hop-by-hop headers of `headers`; with `upgrade`, keeps
/// `Connection: upgrade` and `Upgrade` for the next hop to switch too.
/// `TE: trailers` stays (gRPC sends it end to end).
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most clients name only what is dropped anyway (`keep-alive`,
    // `close`, `upgrade`): the others are collected only when there are
    // some.
    let dropped_anyway = |n: &str| {
        ["close", "upgrade", "transfer-encoding"]
            .iter()
            .chain(&HOP_BY_HOP)
            .any(|h| n.eq_ignore_ascii_case(h))
    };
    if connection_names(headers).any(|n| !dropped_anyway(n)) {
        let named: Vec<HeaderName> = connection_names(headers)
            .filter(|n| !dropped_anyway(n))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(TRANSFER_ENCODING);
    if headers
        .get(TE)
        .is_some_and(|te| !te.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(TE);
    }
    if upgrade {
        headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(CONNECTION);
        headers.remove(UPGRADE);
    }
}
