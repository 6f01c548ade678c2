//! The consistent-hash key of a request, from its route's hash policies
//! (Envoy's `RouteAction.hash_policy`, Istio's `consistentHash`): each
//! policy that finds its key contributes `xxHash64(key)`, combined as Envoy
//! combines them; a `terminal` policy that found a key ends the walk.

use std::net::SocketAddr;

use mesh_core::route::{HashKey, HashPolicy, query_param};

use crate::balance::RequestHash;

/// The address of the client a request came from, for `useSourceIp`
/// hashing; servers and the sidecar put it in the request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The request's hash, or `None` when no policy found its key (the
/// balancer then picks at random, as Envoy does).
pub(super) fn compute<B>(policies: &[HashPolicy], req: &http::Request<B>) -> Option<RequestHash> {
    let mut hash: Option<u64> = None;
    for policy in policies {
        let Some(h) = key_hash(&policy.key, req) else {
            continue;
        };
        hash = Some(hash.map_or(h, |prev| prev.rotate_left(1) ^ h));
        if policy.terminal {
            break;
        }
    }
    hash.map(RequestHash)
}

fn key_hash<B>(key: &HashKey, req: &http::Request<B>) -> Option<u64> {
    let xx = |bytes: &[u8]| xxhash_rust::xxh64::xxh64(bytes, 0);
    match key {
        HashKey::Header(name) => req.headers().get(name).map(|v| xx(v.as_bytes())),
        HashKey::Cookie(name) => cookie(req.headers(), name).map(|v| xx(v.as_bytes())),
        HashKey::QueryParameter(name) => {
            query_param(req.uri().query(), name).map(|v| xx(v.as_bytes()))
        }
        HashKey::SourceIp => req
            .extensions()
            .get::<ClientAddr>()
            .map(|a| xx(a.0.ip().to_string().as_bytes())),
    }
}

/// The value of cookie `name` in the request's `cookie` headers.
fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;

    fn policy(key: HashKey, terminal: bool) -> HashPolicy {
        HashPolicy { key, terminal }
    }

    #[test]
    fn keys_come_from_headers_cookies_queries_and_the_client() {
        let user = policy(HashKey::Header(HeaderName::from_static("x-user")), false);
        let session = policy(HashKey::Cookie("session".into()), false);
        let q = policy(HashKey::QueryParameter("id".into()), false);
        let req = http::Request::get("/?id=7")
            .header("x-user", "jason")
            .header("cookie", "a=1; session=abc")
            .body(())
            .unwrap();
        let h = |p: &[HashPolicy]| compute(p, &req).map(|h| h.0);
        assert_eq!(
            h(std::slice::from_ref(&user)),
            Some(xxhash_rust::xxh64::xxh64(b"jason", 0))
        );
        assert_eq!(
            h(std::slice::from_ref(&session)),
            Some(xxhash_rust::xxh64::xxh64(b"abc", 0))
        );
        assert_eq!(
            h(std::slice::from_ref(&q)),
            Some(xxhash_rust::xxh64::xxh64(b"7", 0))
        );
        let ip = policy(HashKey::SourceIp, false);
        assert_eq!(h(std::slice::from_ref(&ip)), None);
        let mut with_ip = http::Request::new(());
        with_ip
            .extensions_mut()
            .insert(ClientAddr("10.0.0.1:5000".parse().unwrap()));
        assert!(compute(&[ip], &with_ip).is_some());
        // Combined unless a terminal policy found its key.
        assert_ne!(
            h(&[user.clone(), q.clone()]),
            h(std::slice::from_ref(&user))
        );
        let terminal = policy(HashKey::Header(HeaderName::from_static("x-user")), true);
        assert_eq!(h(&[terminal, q]), h(&[user]));
    }
}
