//! What a matched route does: forward to a cluster or a weighted set of
//! clusters (with rewrites, timeout, retries, hashing and mirrors), redirect,
//! or answer directly — Envoy's `RouteAction`, `RedirectAction` and
//! `DirectResponseAction`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use regex::Regex;

use super::Percent;
use crate::policy::RetryPolicy;

/// The name of a cluster a route sends to: an Istio/Envoy cluster name such
/// as `outbound|9080|v1|reviews.default.svc.cluster.local`, or a plain
/// `host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(Arc<str>);

impl ClusterName {
    /// The name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ClusterName {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a route does with a request it matched.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteAction {
    /// Send it to a cluster.
    Forward(Forward),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    Direct(DirectResponse),
}

/// Forward to one cluster or split over several (Envoy's `RouteAction`).
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    /// Where requests go.
    pub destination: Destination,
    /// Path rewrite before forwarding.
    pub rewrite: Option<PathRewrite>,
    /// New `Host`/authority before forwarding (Istio's `rewrite.authority`).
    pub host_rewrite: Option<String>,
    /// Whole-request timeout, replacing the cluster's (Istio's `timeout`).
    /// `Some(None)` disables it.
    pub timeout: Option<Option<Duration>>,
    /// Retry policy, replacing the cluster's (Istio's `retries`).
    pub retry: Option<Arc<RetryPolicy>>,
    /// How the consistent-hash key is computed; tried in order.
    pub hash_policy: Vec<HashPolicy>,
    /// Clusters that get a copy of a share of the requests.
    pub mirrors: Vec<Mirror>,
}

impl Forward {
    /// Forward to `cluster` with nothing else set.
    pub fn to(cluster: impl Into<ClusterName>) -> Self {
        Self {
            destination: Destination::Cluster(cluster.into()),
            rewrite: None,
            host_rewrite: None,
            timeout: None,
            retry: None,
            hash_policy: Vec::new(),
            mirrors: Vec::new(),
        }
    }

    /// Split over weighted clusters (Istio's `route[].weight`).
    pub fn split(clusters: impl IntoIterator<Item = (ClusterName, u32)>) -> Self {
        Self {
            destination: Destination::Weighted(
                clusters
                    .into_iter()
                    .map(|(name, weight)| WeightedCluster { name, weight })
                    .collect(),
            ),
            ..Self::to("")
        }
    }
}

/// One cluster, or a weighted split.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    /// Every request goes to this cluster.
    Cluster(ClusterName),
    /// Each request goes to one cluster, with probability proportional to its
    /// weight (Envoy's `weighted_clusters`).
    Weighted(Vec<WeightedCluster>),
}

impl Destination {
    /// The cluster for a request whose draw is `draw` (any `u64`, uniformly
    /// random for a fair split).
    ///
    /// Panics on a split over no clusters, which [`RouteTable::new`]
    /// rejects, so a route from a table always has one.
    ///
    /// [`RouteTable::new`]: super::RouteTable::new
    pub fn pick(&self, draw: u64) -> &ClusterName {
        match self {
            Destination::Cluster(c) => c,
            Destination::Weighted(clusters) => {
                let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
                let mut at = draw % total.max(1);
                for c in clusters {
                    if at < u64::from(c.weight) {
                        return &c.name;
                    }
                    at -= u64::from(c.weight);
                }
                &clusters[clusters.len() - 1].name
            }
        }
    }

    /// Every cluster named.
    pub fn clusters(&self) -> impl Iterator<Item = &ClusterName> {
        let (one, many) = match self {
            Destination::Cluster(c) => (Some(c), &[][..]),
            Destination::Weighted(w) => (None, &w[..]),
        };
        one.into_iter().chain(many.iter().map(|w| &w.name))
    }
}

/// A cluster and its share of a split.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedCluster {
    /// The cluster.
    pub name: ClusterName,
    /// Its weight; 0 takes no traffic.
    pub weight: u32,
}

/// A path rewrite.
#[derive(Clone, Debug)]
pub enum PathRewrite {
    /// Replace the matched prefix (Envoy's `prefix_rewrite`, Istio's
    /// `rewrite.uri`). For a route that did not match on a prefix, the whole
    /// path is replaced.
    Prefix(String),
    /// Replace every match of a pattern (Envoy's `regex_rewrite`, Istio's
    /// `rewrite.uriRegexRewrite`); `\1` style groups in the substitution.
    Regex {
        /// The pattern, unanchored.
        pattern: Regex,
        /// The replacement, with `\N` capture references.
        substitution: String,
    },
}

impl PartialEq for PathRewrite {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathRewrite::Prefix(a), PathRewrite::Prefix(b)) => a == b,
            (
                PathRewrite::Regex {
                    pattern: a,
                    substitution: x,
                },
                PathRewrite::Regex {
                    pattern: b,
                    substitution: y,
                },
            ) => a.as_str() == b.as_str() && x == y,
            _ => false,
        }
    }
}

impl PathRewrite {
    /// A regex rewrite; an invalid pattern is an error naming it.
    pub fn regex(pattern: &str, substitution: &str) -> Result<Self, super::RouteError> {
        let pattern = super::matcher::compile_unanchored(pattern)?;
        // Envoy writes groups as `\1`; the regex crate as `${1}`.
        let mut out = String::with_capacity(substitution.len());
        let mut chars = substitution.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('\\', Some(d)) if d.is_ascii_digit() => {
                    out.push_str("${");
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        out.push(*d);
                        chars.next();
                    }
                    out.push('}');
                }
                ('$', _) => out.push_str("$$"),
                _ => out.push(c),
            }
        }
        Ok(PathRewrite::Regex {
            pattern,
            substitution: out,
        })
    }

    /// The rewritten path, given the path and the prefix the route matched
    /// (if it matched on one).
    pub fn apply(&self, path: &str, matched_prefix: Option<&str>) -> String {
        match self {
            PathRewrite::Prefix(new) => match matched_prefix {
                Some(p) if path.len() >= p.len() => format!("{new}{}", &path[p.len()..]),
                _ => new.clone(),
            },
            PathRewrite::Regex {
                pattern,
                substitution,
            } => pattern
                .replace_all(path, substitution.as_str())
                .into_owned(),
        }
    }
}

/// Header changes (Envoy's `request_headers_to_add`/`_remove`, Istio's
/// `headers.request`/`headers.response`): removals, then sets, then adds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeaderMutation {
    /// Set, replacing any value.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Added beside any existing values.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Removed.
    pub remove: Vec<HeaderName>,
}

impl HeaderMutation {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the changes to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// A redirect response (Envoy's `RedirectAction`, Istio's `redirect`); the
/// parts not set keep the request's.
#[derive(Clone, Debug, PartialEq)]
pub struct Redirect {
    /// New scheme.
    pub scheme: Option<String>,
    /// New host.
    pub host: Option<String>,
    /// New port.
    pub port: Option<u16>,
    /// New path (the query is kept).
    pub path: Option<String>,
    /// Status: 301 (default), 302, 303, 307 or 308.
    pub status: StatusCode,
}

/// A fixed response (Envoy's `DirectResponseAction`, Istio's
/// `directResponse`).
#[derive(Clone, Debug, PartialEq)]
pub struct DirectResponse {
    /// The status.
    pub status: StatusCode,
    /// The body, if any.
    pub body: Option<bytes::Bytes>,
}

/// One way of computing a consistent-hash key (Envoy's `HashPolicy`, Istio's
/// `consistentHash`).
#[derive(Clone, Debug, PartialEq)]
pub struct HashPolicy {
    /// What the key is.
    pub key: HashKey,
    /// Stop at this policy when it yields a key (Envoy's `terminal`).
    pub terminal: bool,
}

/// The source of a consistent-hash key.
#[derive(Clone, Debug, PartialEq)]
pub enum HashKey {
    /// A request header's value (Istio's `httpHeaderName`).
    Header(HeaderName),
    /// A cookie's value (Istio's `httpCookie`).
    Cookie(String),
    /// A query parameter's value (Istio's `httpQueryParameterName`).
    QueryParameter(String),
    /// The client's IP address (Istio's `useSourceIp`).
    SourceIp,
}

/// A share of requests copied to another cluster (Envoy's
/// `request_mirror_policies`, Istio's `mirror` and `mirrorPercentage`).
#[derive(Clone, Debug, PartialEq)]
pub struct Mirror {
    /// Where copies go.
    pub cluster: ClusterName,
    /// The share copied. Istio's default is 100 %.
    pub percent: Percent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_pick_follows_weights() {
        let d = Forward::split([("a".into(), 80), ("b".into(), 20)]).destination;
        let hits = (0..100u64).filter(|i| d.pick(*i).as_str() == "a").count();
        assert_eq!(hits, 80);
        let zero = Forward::split([("a".into(), 0), ("b".into(), 5)]).destination;
        assert!((0..100u64).all(|i| zero.pick(i).as_str() == "b"));
    }

    #[test]
    fn rewrites() {
        let p = PathRewrite::Prefix("/v2/".into());
        assert_eq!(p.apply("/api/reviews", Some("/api/")), "/v2/reviews");
        assert_eq!(p.apply("/api/reviews", None), "/v2/");
        let r = PathRewrite::regex("^/service/([^/]+)(/.*)$", "\\2/instance/\\1").unwrap();
        assert_eq!(r.apply("/service/foo/v1/api", None), "/v1/api/instance/foo");
        assert!(PathRewrite::regex("(", "x").is_err());
    }

    #[test]
    fn header_mutation_order() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("old"));
        h.insert("x-gone", HeaderValue::from_static("1"));
        let m = HeaderMutation {
            set: vec![(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("new"),
            )],
            add: vec![(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("more"),
            )],
            remove: vec![HeaderName::from_static("x-gone")],
        };
        m.apply(&mut h);
        let a: Vec<_> = h.get_all("x-a").iter().collect();
        assert_eq!(a, ["new", "more"]);
        assert!(!h.contains_key("x-gone"));
    }
}
