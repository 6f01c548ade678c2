//! Deciding one request by a server's [`Rbac`] filters, as Envoy's RBAC
//! filter and gRPC's authorization engine (gRFC A41) decide it: the
//! filters in order, each a gate the request must pass. A DENY filter
//! refuses a request one of its policies matches; an ALLOW filter lets
//! through only a request one of its policies matches (with no policy,
//! none). A policy matches when one of its permissions and one of its
//! principals do.
//!
//! What a condition reads is an [`AccessRequest`]: the request's method,
//! authority, path and headers, the port it came in on, and its peer: the
//! identity its certificate carries (the SPIFFE id; none over plain text,
//! where no `Authenticated` principal matches) and its addresses. A
//! header a condition names that the request lacks never matches; one
//! sent several times is matched as its values joined with `,`, as Envoy
//! joins them. Header names are matched as written (lower case, as HTTP/2
//! and the policies' conversion have them).
//!
//! The path is matched as given: a server must normalize it first (merge
//! slashes, resolve `.` and `..`, decode unreserved percent-escapes), as
//! Envoy does behind istiod, or `//admin` would pass a DENY of `/admin`.

use std::net::IpAddr;

use super::rbac::{Permission, Principal, Rbac, RbacAction, ValueMatch};

/// What authorization looks at of one request and its connection.
#[derive(Clone, Copy, Debug)]
pub struct AccessRequest<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The authority (`:authority`, or `Host`).
    pub authority: &'a str,
    /// The path and query, as `:path` carries them.
    pub path_and_query: &'a str,
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The port the connection came in on.
    pub destination_port: u16,
    /// The identity the peer's certificate carries (its SPIFFE id, else
    /// its subject); `None` without one (plain text).
    pub peer: Option<&'a str>,
    /// The address of the connection's peer.
    pub direct_remote_ip: IpAddr,
    /// The original client's address, as the server trusts it (its
    /// `X-Forwarded-For`, when it is behind a trusted proxy); else the
    /// peer's.
    pub remote_ip: IpAddr,
}

/// What the filters decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every filter let the request through.
    Allow,
    /// A filter refused it: a DENY filter's policy that matched, or an
    /// ALLOW filter none of whose policies did (`policy` is then `None`).
    Deny {
        /// The DENY policy that matched.
        policy: Option<String>,
    },
}

/// Decides `request` by `filters`, in order.
///
/// ```
/// use mesh_core::security::{authorize, AccessRequest, Decision, Principal, Permission, Rbac, RbacAction, RbacPolicy, ValueMatch};
///
/// let from_sleep = RbacPolicy {
///     permissions: vec![Permission::Any],
///     principals: vec![Principal::Authenticated(Some(ValueMatch::exact("spiffe://cluster.local/ns/default/sa/sleep")))],
/// };
/// let filters = [Rbac { action: RbacAction::Allow, policies: vec![("default-from-sleep-0".into(), from_sleep)] }];
/// let headers = http::HeaderMap::new();
/// let mut request = AccessRequest {
///     method: &http::Method::GET,
///     authority: "ratings:9080",
///     path_and_query: "/ratings/0",
///     headers: &headers,
///     destination_port: 9080,
///     peer: Some("spiffe://cluster.local/ns/default/sa/sleep"),
///     direct_remote_ip: [127, 0, 0, 1].into(),
///     remote_ip: [127, 0, 0, 1].into(),
/// };
/// assert_eq!(authorize(&filters, &request), Decision::Allow);
/// request.peer = None;
/// assert_eq!(authorize(&filters, &request), Decision::Deny { policy: None });
/// ```
pub fn authorize(filters: &[Rbac], request: &AccessRequest<'_>) -> Decision {
    for filter in filters {
        let matched = filter.policies.iter().find(|(_, p)| {
            p.permissions.iter().any(|x| permits(x, request))
                && p.principals.iter().any(|x| is(x, request))
        });
        match (filter.action, matched) {
            (RbacAction::Deny, Some((name, _))) => {
                return Decision::Deny {
                    policy: Some(name.clone()),
                };
            }
            (RbacAction::Allow, None) => return Decision::Deny { policy: None },
            (RbacAction::Deny, None) | (RbacAction::Allow, Some(_)) => {}
        }
    }
    Decision::Allow
}

fn permits(p: &Permission, r: &AccessRequest<'_>) -> bool {
    match p {
        Permission::Any => true,
        Permission::And(ps) => ps.iter().all(|p| permits(p, r)),
        Permission::Or(ps) => ps.iter().any(|p| permits(p, r)),
        Permission::Not(p) => !permits(p, r),
        Permission::Header { name, value } => header_matches(r, name, value),
        Permission::UrlPath(value) => {
            let path = r.path_and_query.split('?').next().unwrap_or_default();
            value.matches(path)
        }
        Permission::DestinationPort(port) => *port == r.destination_port,
    }
}

fn is(p: &Principal, r: &AccessRequest<'_>) -> bool {
    match p {
        Principal::Any => true,
        Principal::And(ps) => ps.iter().all(|p| is(p, r)),
        Principal::Or(ps) => ps.iter().any(|p| is(p, r)),
        Principal::Not(p) => !is(p, r),
        Principal::Authenticated(name) => match (r.peer, name) {
            (Some(peer), Some(name)) => name.matches(peer),
            (Some(_), None) => true,
            (None, _) => false,
        },
        Principal::DirectRemoteIp(block) => block.contains(r.direct_remote_ip),
        Principal::RemoteIp(block) => block.contains(r.remote_ip),
        Principal::Header { name, value } => header_matches(r, name, value),
    }
}

/// Whether the header `name` of `r` (pseudo-headers included) is present
/// and its value matches.
fn header_matches(r: &AccessRequest<'_>, name: &str, value: &ValueMatch) -> bool {
    match name {
        ":authority" | "host" => value.matches(r.authority),
        ":method" => value.matches(r.method.as_str()),
        ":path" => value.matches(r.path_and_query),
        _ => {
            let mut all = r.headers.get_all(name).iter();
            let Some(first) = all.next() else {
                return false;
            };
            let Ok(first) = first.to_str() else {
                return false;
            };
            let rest: Vec<&str> = all.filter_map(|v| v.to_str().ok()).collect();
            if rest.is_empty() {
                value.matches(first)
            } else {
                let joined = std::iter::once(first)
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .join(",");
                value.matches(&joined)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::StringMatch;
    use crate::security::{Cidr, RbacPolicy};

    struct Facts {
        method: http::Method,
        path: &'static str,
        headers: http::HeaderMap,
        peer: Option<&'static str>,
        ip: IpAddr,
    }

    impl Facts {
        fn new() -> Self {
            Self {
                method: http::Method::GET,
                path: "/api/items?page=2",
                headers: http::HeaderMap::new(),
                peer: Some("spiffe://cluster.local/ns/default/sa/productpage"),
                ip: [10, 1, 2, 3].into(),
            }
        }

        fn request(&self) -> AccessRequest<'_> {
            AccessRequest {
                method: &self.method,
                authority: "Reviews.default.svc.cluster.local:9080",
                path_and_query: self.path,
                headers: &self.headers,
                destination_port: 9080,
                peer: self.peer,
                direct_remote_ip: self.ip,
                remote_ip: self.ip,
            }
        }
    }

    fn filter(action: RbacAction, permission: Permission, principal: Principal) -> Rbac {
        let policy = RbacPolicy {
            permissions: vec![permission],
            principals: vec![principal],
        };
        Rbac {
            action,
            policies: vec![("p".into(), policy)],
        }
    }

    fn decide(filters: &[Rbac], facts: &Facts) -> Decision {
        authorize(filters, &facts.request())
    }

    const ALLOWED: Decision = Decision::Allow;

    fn denied_by(policy: Option<&str>) -> Decision {
        Decision::Deny {
            policy: policy.map(Into::into),
        }
    }

    #[test]
    fn deny_then_allow_and_no_filter_allows() {
        let facts = Facts::new();
        assert_eq!(decide(&[], &facts), ALLOWED);
        let deny_all = filter(RbacAction::Deny, Permission::Any, Principal::Any);
        let allow_all = filter(RbacAction::Allow, Permission::Any, Principal::Any);
        assert_eq!(
            decide(&[deny_all.clone(), allow_all.clone()], &facts),
            denied_by(Some("p"))
        );
        assert_eq!(decide(&[allow_all], &facts), ALLOWED);
        let nothing = Rbac {
            action: RbacAction::Allow,
            policies: Vec::new(),
        };
        assert_eq!(decide(&[nothing], &facts), denied_by(None));
    }

    #[test]
    fn permissions_read_the_request() {
        let mut facts = Facts::new();
        let allow = |p: Permission| [filter(RbacAction::Allow, p, Principal::Any)];
        let prefix = |s: &str| ValueMatch {
            kind: StringMatch::Prefix(s.into()),
            ignore_case: false,
        };
        // The path without its query.
        assert_eq!(
            decide(
                &allow(Permission::UrlPath(ValueMatch::exact("/api/items"))),
                &facts
            ),
            ALLOWED
        );
        assert_ne!(
            decide(&allow(Permission::UrlPath(prefix("/admin"))), &facts),
            ALLOWED
        );
        let host = ValueMatch {
            kind: StringMatch::Suffix(".default.svc.cluster.local:9080".into()),
            ignore_case: true,
        };
        let by_host = Permission::Header {
            name: ":authority".into(),
            value: host,
        };
        assert_eq!(decide(&allow(by_host), &facts), ALLOWED);
        let get = Permission::Header {
            name: ":method".into(),
            value: ValueMatch::exact("GET"),
        };
        let not_get = Permission::Not(Box::new(get.clone()));
        assert_eq!(decide(&allow(get.clone()), &facts), ALLOWED);
        assert_ne!(decide(&allow(not_get), &facts), ALLOWED);
        let port = |p| Permission::DestinationPort(p);
        assert_eq!(
            decide(&allow(Permission::Or(vec![port(80), port(9080)])), &facts),
            ALLOWED
        );
        assert_ne!(
            decide(&allow(Permission::And(vec![get, port(80)])), &facts),
            ALLOWED
        );
        // An absent header never matches, not even an empty prefix; one
        // sent twice is matched joined.
        let user = |v: ValueMatch| Permission::Header {
            name: "x-user".into(),
            value: v,
        };
        assert_ne!(decide(&allow(user(prefix(""))), &facts), ALLOWED);
        facts.headers.append("x-user", "a".parse().unwrap());
        facts.headers.append("x-user", "b".parse().unwrap());
        assert_eq!(
            decide(&allow(user(ValueMatch::exact("a,b"))), &facts),
            ALLOWED
        );
        facts.method = http::Method::POST;
        facts.path = "/api";
        assert_ne!(
            decide(
                &allow(Permission::UrlPath(ValueMatch::exact("/api/items"))),
                &facts
            ),
            ALLOWED
        );
    }

    #[test]
    fn principals_read_the_peer() {
        let mut facts = Facts::new();
        let allow = |p: Principal| [filter(RbacAction::Allow, Permission::Any, p)];
        let productpage = ValueMatch::exact("spiffe://cluster.local/ns/default/sa/productpage");
        let namespace = ValueMatch {
            kind: StringMatch::regex(".*/ns/default/.*").unwrap(),
            ignore_case: false,
        };
        assert_eq!(
            decide(
                &allow(Principal::Authenticated(Some(productpage.clone()))),
                &facts
            ),
            ALLOWED
        );
        assert_eq!(
            decide(&allow(Principal::Authenticated(Some(namespace))), &facts),
            ALLOWED
        );
        assert_eq!(
            decide(&allow(Principal::Authenticated(None)), &facts),
            ALLOWED
        );
        let block: Cidr = "10.1.0.0/16".parse().unwrap();
        assert_eq!(
            decide(&allow(Principal::DirectRemoteIp(block)), &facts),
            ALLOWED
        );
        assert_eq!(decide(&allow(Principal::RemoteIp(block)), &facts), ALLOWED);
        facts.ip = [192, 168, 0, 1].into();
        assert_ne!(decide(&allow(Principal::RemoteIp(block)), &facts), ALLOWED);
        // Plain text: no authenticated principal matches, a negated one
        // does.
        facts.peer = None;
        assert_ne!(
            decide(&allow(Principal::Authenticated(None)), &facts),
            ALLOWED
        );
        let not_productpage = Principal::Not(Box::new(Principal::Authenticated(Some(productpage))));
        assert_eq!(decide(&allow(not_productpage), &facts), ALLOWED);
    }
}
