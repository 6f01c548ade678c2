//! Each kind of condition, routed through a converted table.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::r#type::v3::Int64Range;

use super::super::tests::{cluster, convert, forward, nack, pick, prefix, route, routes};
use super::*;
use crate::resource::proto::build::percent;

/// Whether a GET of `uri` with `headers` takes the route matching `m`
/// (a catch-all follows it).
fn hits(m: &rds::RouteMatch, uri: &str, headers: &[(&str, &str)]) -> bool {
    let rc = routes(vec![
        route(m.clone(), cluster("hit")),
        route(prefix("/"), cluster("miss")),
    ]);
    let routes = convert(&rc);
    assert!(routes.ignored.is_empty(), "{:?}", routes.ignored);
    let route = pick(&routes.table, uri, headers).unwrap();
    forward(route)
        .destination
        .clusters()
        .next()
        .unwrap()
        .as_str()
        == "hit"
}

fn with_header(name: &str, spec: Spec, invert: bool) -> rds::RouteMatch {
    let mut m = prefix("/");
    m.headers = vec![rds::HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(spec),
        invert_match: invert,
        ..Default::default()
    }];
    m
}

fn string(pattern: MatchPattern, ignore_case: bool) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(pattern),
        ignore_case,
    }
}

/// Why the route matching `m` was left out.
fn left_out(m: rds::RouteMatch) -> String {
    let routes = convert(&routes(vec![route(m, cluster("c"))]));
    assert!(routes.table.virtual_hosts()[0].routes.is_empty());
    routes.ignored[0].to_string()
}

#[test]
fn paths() {
    let mut m = prefix("/API");
    assert!(!hits(&m, "http://reviews/api/1", &[]));
    m.case_sensitive = Some(envoy_types::pb::google::protobuf::BoolValue { value: false });
    assert!(hits(&m, "http://reviews/api/1", &[]));
    let exact = rds::RouteMatch {
        path_specifier: Some(PathSpecifier::Path("/api".into())),
        ..Default::default()
    };
    assert!(hits(&exact, "http://reviews/api?x=1", &[]));
    assert!(!hits(&exact, "http://reviews/api/", &[]));
    let segments = rds::RouteMatch {
        path_specifier: Some(PathSpecifier::PathSeparatedPrefix("/api".into())),
        ..Default::default()
    };
    for (uri, want) in [
        ("/api", true),
        ("/api/x", true),
        ("/api?q", true),
        ("/apix", false),
    ] {
        assert_eq!(
            hits(&segments, &format!("http://reviews{uri}"), &[]),
            want,
            "{uri}"
        );
    }
    let mut action = cluster("c");
    action.prefix_rewrite = "/v2".into();
    let converted = convert(&routes(vec![route(segments, action)]));
    let rewrite = forward(&converted.table.virtual_hosts()[0].routes[0])
        .rewrite
        .clone();
    assert_eq!(rewrite.unwrap().apply("/api/reviews", None), "/v2/reviews");
}

#[allow(deprecated)]
#[test]
fn headers() {
    let exact = |v: &str| Spec::ExactMatch(v.into());
    let jason = [("end-user", "jason")];
    assert!(hits(
        &with_header("end-user", exact("jason"), false),
        "http://reviews/",
        &jason
    ));
    assert!(!hits(
        &with_header("end-user", exact("jason"), true),
        "http://reviews/",
        &jason
    ));
    assert!(hits(
        &with_header("end-user", exact("jason"), true),
        "http://reviews/",
        &[]
    ));
    let caseless = Spec::StringMatch(string(MatchPattern::Exact("JASON".into()), true));
    assert!(hits(
        &with_header("End-User", caseless, false),
        "http://reviews/",
        &jason
    ));
    let prefix_any_case = Spec::StringMatch(string(MatchPattern::Prefix("JA".into()), true));
    assert!(hits(
        &with_header("end-user", prefix_any_case, false),
        "http://reviews/",
        &jason
    ));
    let suffix = Spec::StringMatch(string(MatchPattern::Suffix("son".into()), false));
    assert!(hits(
        &with_header("end-user", suffix, false),
        "http://reviews/",
        &jason
    ));
    let range = Spec::RangeMatch(Int64Range { start: 1, end: 10 });
    assert!(hits(
        &with_header("x-n", range, false),
        "http://reviews/",
        &[("x-n", "9")]
    ));
    let absent = Spec::PresentMatch(false);
    assert!(!hits(
        &with_header("end-user", absent, false),
        "http://reviews/",
        &jason
    ));
    assert!(hits(
        &with_header(":method", exact("GET"), false),
        "http://reviews/",
        &[]
    ));
    assert!(!hits(
        &with_header(":method", exact("POST"), false),
        "http://reviews/",
        &[]
    ));
    let authority = with_header(":authority", exact("reviews"), false);
    assert!(hits(&authority, "http://reviews/", &[]));
    let mut grpc = prefix("/");
    grpc.grpc = Some(Default::default());
    assert!(hits(
        &grpc,
        "http://reviews/",
        &[("content-type", "application/grpc+proto")]
    ));
    assert!(!hits(
        &grpc,
        "http://reviews/",
        &[("content-type", "application/json")]
    ));
}

#[test]
fn query_parameters() {
    let mut m = prefix("/");
    m.query_parameters = vec![rds::QueryParameterMatcher {
        name: "user".into(),
        query_parameter_match_specifier: Some(QuerySpec::StringMatch(string(
            MatchPattern::Exact("jason".into()),
            false,
        ))),
    }];
    assert!(hits(&m, "http://reviews/?user=jason", &[]));
    assert!(!hits(&m, "http://reviews/?user=bob", &[]));
    m.query_parameters[0].query_parameter_match_specifier = None;
    assert!(hits(&m, "http://reviews/?user", &[]));
}

#[test]
fn fractions_are_all_or_nothing() {
    let share = |n| {
        let mut m = prefix("/");
        m.runtime_fraction = Some(RuntimeFractionalPercent {
            default_value: Some(percent(n)),
            runtime_key: "routing.reviews".into(),
        });
        m
    };
    assert!(hits(&share(100), "http://reviews/", &[]));
    assert_eq!(
        left_out(share(0)),
        "virtual_hosts[0].routes[0].match.runtime_fraction: matches no request (0%)"
    );
    let err = nack(&routes(vec![route(share(30), cluster("c"))]));
    assert!(
        err.ends_with("runtime_fraction: matching a share of requests (30%) is not supported"),
        "{err}"
    );
}

#[test]
fn what_cannot_be_evaluated_leaves_the_route_out() {
    let mut tls = prefix("/");
    tls.tls_context = Some(rds::route_match::TlsContextMatchOptions {
        presented: Some(envoy_types::pb::google::protobuf::BoolValue { value: true }),
        validated: None,
    });
    assert!(left_out(tls).ends_with(
        "match.tls_context: requests reach the mesh from the application, not over TLS"
    ));
    let path = with_header(":path", Spec::PresentMatch(true), false);
    assert!(left_out(path).contains("match.headers[0]: pseudo-headers"));
    let mut never = prefix("/");
    never.query_parameters = vec![rds::QueryParameterMatcher {
        name: "debug".into(),
        query_parameter_match_specifier: Some(QuerySpec::PresentMatch(false)),
    }];
    assert!(
        left_out(never)
            .ends_with("query_parameters[0].present_match: false never matches (as in Envoy)")
    );
    let no_path = rds::RouteMatch::default();
    let err = nack(&routes(vec![route(no_path, cluster("c"))]));
    assert!(err.contains("routes[0].match: no path specifier"), "{err}");
}
