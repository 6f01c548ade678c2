//! Route configurations as istiod writes them, routed end to end through
//! the converted table; every NACK names its resource and field.

use envoy_types::pb::envoy::config::route::v3::{self as rds, route, route_action, route_match};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use http::Request;
use mesh_core::Authority;
use mesh_core::policy::RetryOn;
use mesh_core::route::{Destination, Forward, Route, RouteTable};

use super::XdsRouteConfig;
use crate::resource::proto::build::*;

// Builders, shared with the other route tests.

pub(super) fn prefix(p: &str) -> rds::RouteMatch {
    rds::RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(p.into())),
        ..Default::default()
    }
}

pub(super) fn cluster(name: &str) -> rds::RouteAction {
    rds::RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(name.into())),
        ..Default::default()
    }
}

pub(super) fn split(clusters: &[(&str, u32)]) -> rds::RouteAction {
    let clusters = clusters
        .iter()
        .map(|(name, weight)| rds::weighted_cluster::ClusterWeight {
            name: name.to_string(),
            weight: u32v(*weight),
            ..Default::default()
        })
        .collect();
    rds::RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::WeightedClusters(
            rds::WeightedCluster {
                clusters,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

pub(super) fn route(m: rds::RouteMatch, action: rds::RouteAction) -> rds::Route {
    rds::Route {
        r#match: Some(m),
        action: Some(route::Action::Route(action)),
        ..Default::default()
    }
}

pub(super) fn vhost(name: &str, domains: &[&str], routes: Vec<rds::Route>) -> rds::VirtualHost {
    rds::VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes,
        ..Default::default()
    }
}

/// A route configuration named `9080`.
pub(super) fn config(virtual_hosts: Vec<rds::VirtualHost>) -> rds::RouteConfiguration {
    rds::RouteConfiguration {
        name: "9080".into(),
        virtual_hosts,
        ..Default::default()
    }
}

/// A route configuration with one virtual host, `reviews`, of `routes`.
pub(super) fn routes(routes: Vec<rds::Route>) -> rds::RouteConfiguration {
    config(vec![vhost("reviews", &["reviews"], routes)])
}

pub(super) fn convert(rc: &rds::RouteConfiguration) -> XdsRouteConfig {
    XdsRouteConfig::try_from(rc).unwrap_or_else(|e| panic!("{e}"))
}

/// The NACK text for `rc`.
pub(super) fn nack(rc: &rds::RouteConfiguration) -> String {
    XdsRouteConfig::try_from(rc).unwrap_err().to_string()
}

/// The first route of the first virtual host.
pub(super) fn first(rc: &rds::RouteConfiguration) -> Route {
    convert(rc).table.virtual_hosts()[0].routes[0].clone()
}

pub(super) fn forward(route: &Route) -> &Forward {
    route.forwarding().expect("a forwarding route")
}

/// The route `table` picks for a GET of `uri` with `headers`.
pub(super) fn pick<'t>(
    table: &'t RouteTable,
    uri: &str,
    headers: &[(&str, &str)],
) -> Option<&'t Route> {
    let mut req = Request::get(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(()).unwrap();
    let uri = req.uri();
    let authority = Authority::new(uri.host().unwrap(), uri.port_u16().unwrap_or(80)).unwrap();
    table.find(&authority, &req).map(|id| table.route(id))
}

fn exact_header(name: &str, value: &str) -> rds::HeaderMatcher {
    rds::HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(rds::header_matcher::HeaderMatchSpecifier::StringMatch(
            StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::Exact(value.into())),
                ignore_case: false,
            },
        )),
        ..Default::default()
    }
}

/// Istio's default retry policy, as istiod writes it on every route.
pub(super) fn istio_retries() -> rds::RetryPolicy {
    rds::RetryPolicy {
        retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
            .into(),
        num_retries: u32v(2),
        retry_host_predicate: vec![rds::retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".into(),
            config_type: None,
        }],
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: vec![503],
        ..Default::default()
    }
}

/// What istiod sends for port 9080 with the bookinfo VirtualService
/// `reviews`: jason to v2, everyone else 80/20 over v1 and v3.
fn bookinfo_9080() -> rds::RouteConfiguration {
    const HOST: &str = "reviews.default.svc.cluster.local";
    let subset = |s: &str| format!("outbound|9080|{s}|{HOST}");
    let istio = |mut action: rds::RouteAction| {
        action.timeout = Some(secs(0));
        action.retry_policy = Some(istio_retries());
        action.max_stream_duration = Some(route_action::MaxStreamDuration {
            max_stream_duration: Some(secs(0)),
            grpc_timeout_header_max: Some(secs(0)),
            grpc_timeout_header_offset: None,
        });
        action
    };
    let mut jason = route(prefix("/"), istio(cluster(&subset("v2"))));
    jason.name = "jason".into();
    let headers = vec![exact_header("end-user", "jason")];
    jason.r#match.as_mut().unwrap().headers = headers;
    jason.decorator = Some(rds::Decorator {
        operation: format!("{HOST}:9080/*"),
        propagate: None,
    });
    let split = istio(split(&[(&subset("v1"), 80), (&subset("v3"), 20)]));
    let reviews = vhost(
        &format!("{HOST}:9080"),
        &[
            HOST,
            "reviews",
            "reviews.default.svc",
            "reviews.default",
            "10.96.0.42",
        ],
        vec![jason, route(prefix("/"), split)],
    );
    let passthrough = vhost(
        "allow_any",
        &["*"],
        vec![route(prefix("/"), cluster("PassthroughCluster"))],
    );
    let mut rc = config(vec![reviews, passthrough]);
    rc.validate_clusters = Some(envoy_types::pb::google::protobuf::BoolValue { value: false });
    rc
}

#[test]
fn istiod_reviews_routes_jason_to_v2_and_splits_the_rest() {
    let routes = convert(&bookinfo_9080());
    assert_eq!(routes.name, "9080");
    assert!(routes.ignored.is_empty(), "{:?}", routes.ignored);
    let table = &routes.table;
    let uri = "http://reviews.default.svc.cluster.local:9080/reviews/0";

    let jason = pick(table, uri, &[("end-user", "jason")]).expect("jason's route");
    assert_eq!(jason.name.as_deref(), Some("jason"));
    let Destination::Cluster(c) = &forward(jason).destination else {
        panic!("one cluster");
    };
    assert_eq!(
        c.as_str(),
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );

    for short in [
        uri,
        "http://reviews:9080/reviews/0",
        "http://10.96.0.42:9080/",
    ] {
        let other = pick(table, short, &[("end-user", "bob")]).expect("the default route");
        let Destination::Weighted(w) = &forward(other).destination else {
            panic!("a split");
        };
        let split: Vec<_> = w.iter().map(|c| (c.name.as_str(), c.weight)).collect();
        assert_eq!(
            split,
            [
                ("outbound|9080|v1|reviews.default.svc.cluster.local", 80),
                ("outbound|9080|v3|reviews.default.svc.cluster.local", 20),
            ]
        );
        let f = forward(other);
        assert_eq!(f.timeout, Some(None), "a zero timeout disables it");
        let retry = f.retry.as_ref().expect("Istio's retries");
        assert_eq!(retry.num_retries, 2);
        assert_eq!(retry.retriable_status_codes, [503]);
        assert!(retry.retry_on.contains(RetryOn::RETRIABLE_STATUS_CODES));
    }

    let elsewhere = pick(table, "http://example.com/", &[]).expect("allow_any");
    let Destination::Cluster(c) = &forward(elsewhere).destination else {
        panic!("one cluster");
    };
    assert_eq!(c.as_str(), "PassthroughCluster");
}

#[test]
fn nacks_name_the_resource_and_the_field() {
    let regex = |r: &str| rds::RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::SafeRegex(RegexMatcher {
            regex: r.into(),
            engine_type: None,
        })),
        ..Default::default()
    };
    let with = |f: fn(&mut rds::RouteAction)| {
        let mut a = cluster("c");
        f(&mut a);
        routes(vec![route(prefix("/"), a)])
    };
    let cases: Vec<(rds::RouteConfiguration, &str)> = vec![
        (
            routes(vec![
                route(prefix("/"), cluster("c")),
                route(regex("/reviews/("), cluster("c")),
            ]),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[1].match.safe_regex.regex: invalid regex "/reviews/(": "#,
        ),
        (
            // Anchored unchecked, it would match "/x/reviews" too.
            routes(vec![route(regex("/a)|(.*/reviews"), cluster("c"))]),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].match.safe_regex.regex: invalid regex "/a)|(.*/reviews": "#,
        ),
        (
            routes(vec![route(prefix("/"), split(&[("a", 0), ("b", 0)]))]),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].route.weighted_clusters: weights sum to zero"#,
        ),
        (
            routes(vec![route(prefix("/"), cluster(""))]),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].route.cluster: empty cluster name"#,
        ),
        (
            routes(vec![route(prefix("/"), split(&[("a", 1), ("", 1)]))]),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].name: empty cluster name"#,
        ),
        (
            config(vec![
                vhost("a", &["x", "reviews"], vec![]),
                vhost("b", &["y", "Reviews"], vec![]),
            ]),
            r#"RouteConfiguration "9080": virtual_hosts[1].domains[1]: domain "reviews" is in both virtual hosts "a" and "b""#,
        ),
        (
            config(vec![vhost("a", &[], vec![])]),
            r#"RouteConfiguration "9080": virtual_hosts[0].domains: a virtual host needs a domain"#,
        ),
        (
            routes(vec![rds::Route {
                r#match: Some(prefix("/")),
                ..Default::default()
            }]),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0]: a route needs an action"#,
        ),
        (
            with(|a| {
                a.retry_policy = Some(rds::RetryPolicy {
                    retry_back_off: Some(rds::retry_policy::RetryBackOff {
                        base_interval: Some(millis(100)),
                        max_interval: Some(millis(10)),
                    }),
                    ..Default::default()
                })
            }),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].route.retry_policy.retry_back_off.max_interval: 10ms is less than base_interval 100ms"#,
        ),
        (
            with(|a| {
                a.prefix_rewrite = "/v2".into();
                a.regex_rewrite = Some(Default::default());
            }),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].route.regex_rewrite: prefix_rewrite and regex_rewrite are exclusive"#,
        ),
        (
            with(|a| a.timeout = Some(secs(-3))),
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].route.timeout: invalid duration"#,
        ),
    ];
    for (rc, want) in cases {
        let got = nack(&rc);
        assert!(got.starts_with(want), "got  {got}\nwant {want}…");
    }
}

#[test]
fn a_route_grpc_would_ignore_is_left_out_and_listed() {
    let by_header = rds::RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::ClusterHeader(
            "x-cluster".into(),
        )),
        ..Default::default()
    };
    let mut cookie = prefix("/");
    cookie.cookies = vec![rds::CookieMatcher {
        name: "session".into(),
        ..Default::default()
    }];
    let rc = routes(vec![
        route(prefix("/"), by_header),
        route(cookie, cluster("sticky")),
        route(prefix("/"), cluster("fallback")),
    ]);
    let routes = convert(&rc);
    let ignored: Vec<String> = routes.ignored.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        ignored,
        [
            "virtual_hosts[0].routes[0].route.cluster_header: clusters named by a request header are not supported",
            "virtual_hosts[0].routes[1].match.cookies: cookie matchers are not supported",
        ]
    );
    let table = &routes.table;
    let only = pick(table, "http://reviews/", &[]).unwrap();
    assert!(
        matches!(&forward(only).destination, Destination::Cluster(c) if c.as_str() == "fallback")
    );

    // A route left out is still checked: a malformed field is a NACK.
    let mut bad = prefix("/");
    bad.cookies = vec![Default::default()];
    bad.headers = vec![exact_header("bad header", "x")];
    let err = nack(&routes_of(route(bad, cluster("c"))));
    assert!(
        err.contains("routes[0].match.headers[0].name: invalid header name"),
        "{err}"
    );
}

pub(super) fn routes_of(r: rds::Route) -> rds::RouteConfiguration {
    routes(vec![r])
}

#[test]
#[allow(deprecated)] // `append`, as older control planes write it
fn header_changes_of_all_levels_apply_route_first() {
    use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
    let set = |value: &str| HeaderValueOption {
        header: Some(HeaderValue {
            key: "x-level".into(),
            value: value.into(),
            raw_value: Vec::new(),
        }),
        append: Some(envoy_types::pb::google::protobuf::BoolValue { value: false }),
        ..Default::default()
    };
    let mut r = route(prefix("/"), cluster("c"));
    r.request_headers_to_add = vec![set("route")];
    r.response_headers_to_remove = vec!["server".into()];
    let mut rc = routes_of(r);
    rc.virtual_hosts[0].request_headers_to_add = vec![set("vhost")];
    rc.request_headers_to_add = vec![set("config")];
    let values = |rc: &rds::RouteConfiguration| -> Vec<String> {
        let route = first(rc);
        assert_eq!(route.response_headers.remove, ["server"]);
        let set = route.request_headers.set;
        set.iter()
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        values(&rc),
        ["route", "vhost", "config"],
        "the last set wins"
    );
    rc.most_specific_header_mutations_wins = true;
    assert_eq!(values(&rc), ["config", "vhost", "route"]);
}
