//! Round trips: mesh values written as xDS and read back by
//! [`resource`](crate::resource) are the values written; what cannot be
//! written is refused by name.

mod bookinfo;
mod cluster;
mod endpoint;
mod gateway;
mod server;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use mesh_core::policy::{
    Backoff, CircuitBreakers, ClusterPolicy, LoadBalancer, Maglev, OutlierDetection, PeakEwma,
    Protocol, RetryPolicy, RingHash,
};
use mesh_core::route::{
    AbortSource, DelaySource, DirectResponse, FaultAbort, FaultDelay, FaultPolicy, Forward,
    HashKey, HashPolicy, HeaderMatch, HeaderMatcher, HeaderMutation, Mirror, PathMatch,
    PathRewrite, Percent, Redirect, Route, RouteAction, RouteMatch, RouteTable, StringMatch,
    VirtualHost,
};
use mesh_core::{
    Cluster, DropOverload, Endpoint, EndpointSet, GrpcCode, Health, Locality,
    policy::LocalRateLimit,
};

use super::*;
use crate::resource::{
    Discovery, FilterKind, RouteSource, XdsCluster, XdsListener, XdsLoadAssignment, XdsRouteConfig,
};

fn header(name: &'static str, kind: HeaderMatch, invert: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: HeaderName::from_static(name),
        kind,
        invert,
    }
}

fn regex(p: &str) -> StringMatch {
    StringMatch::regex(p).unwrap()
}

fn pair(name: &'static str, value: &'static str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

fn named(name: &str, matches: RouteMatch, action: RouteAction) -> Route {
    let mut r = Route::new(action).when(matches);
    r.name = Some(name.into());
    r
}

/// A route of every match kind and every action kind.
fn every_kind() -> Vec<VirtualHost> {
    let matches = RouteMatch {
        path: PathMatch {
            kind: StringMatch::Prefix("/Reviews".into()),
            ignore_case: true,
        },
        method: Some(StringMatch::Exact("GET".into())),
        authority: Some(regex("reviews(:9080)?")),
        headers: vec![
            header(
                "x-exact",
                HeaderMatch::Value(StringMatch::Exact("a".into())),
                false,
            ),
            header(
                "x-prefix",
                HeaderMatch::Value(StringMatch::Prefix("b".into())),
                true,
            ),
            header(
                "x-suffix",
                HeaderMatch::Value(StringMatch::Suffix("c".into())),
                false,
            ),
            header(
                "x-contains",
                HeaderMatch::Value(StringMatch::Contains("d".into())),
                false,
            ),
            header("x-regex", HeaderMatch::Value(regex("[0-9]+")), false),
            header("x-present", HeaderMatch::Present(true), false),
            header("x-absent", HeaderMatch::Present(false), false),
            header("x-range", HeaderMatch::Range { start: -5, end: 10 }, true),
        ],
        query: vec![
            mesh_core::route::QueryMatcher {
                name: "debug".into(),
                value: None,
            },
            mesh_core::route::QueryMatcher {
                name: "user".into(),
                value: Some(regex("j.*")),
            },
        ],
    };
    let retry = RetryPolicy {
        retry_on: "5xx,reset,retriable-status-codes,unavailable"
            .parse()
            .unwrap(),
        num_retries: 3,
        per_try_timeout: Some(Duration::from_millis(250)),
        retriable_status_codes: vec![409, 503],
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(90),
        },
        ..RetryPolicy::default()
    };
    let mut split = Forward::split([
        ("outbound|9080|v1|reviews".into(), 80),
        ("outbound|9080|v3|reviews".into(), 20),
    ]);
    split.rewrite = Some(PathRewrite::Prefix("/v2/".into()));
    split.host_rewrite = Some("reviews.internal".into());
    split.timeout = Some(Some(Duration::from_millis(1500)));
    split.retry = Some(Arc::new(retry));
    split.hash_policy = [
        HashKey::Header(HeaderName::from_static("x-user")),
        HashKey::Cookie("session".into()),
        HashKey::QueryParameter("id".into()),
        HashKey::SourceIp,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, key)| HashPolicy {
        key,
        terminal: i == 1,
    })
    .collect();
    split.mirrors = vec![
        Mirror {
            cluster: "outbound|9080|v2|reviews".into(),
            percent: Percent::ALL,
        },
        Mirror {
            cluster: "shadow:80".into(),
            percent: Percent::from_ppm(123_456),
        },
    ];
    let mut forward = named("split", matches, RouteAction::Forward(split));
    forward.request_headers = HeaderMutation {
        set: vec![pair("x-set", "1"), pair("x-percent", "100%")],
        add: vec![pair("x-add", "2"), pair("x-empty", "")],
        remove: vec![HeaderName::from_static("x-gone")],
    };
    forward.response_headers = HeaderMutation {
        add: vec![pair("x-served-by", "mesh")],
        ..HeaderMutation::default()
    };
    forward.fault = Some(FaultPolicy {
        delay: Some(FaultDelay {
            delay: DelaySource::Fixed(Duration::from_secs(7)),
            percent: Percent::new(12.5).unwrap(),
        }),
        abort: Some(FaultAbort {
            abort: AbortSource::Http(StatusCode::INTERNAL_SERVER_ERROR),
            percent: Percent::ALL,
        }),
        max_active_faults: Some(4),
    });
    let mut regex_rewrite = Forward::to("outbound|9080||reviews");
    regex_rewrite.rewrite =
        Some(PathRewrite::regex("^/service/([^/]+)(/.*)$", "\\2/instance/\\1").unwrap());
    regex_rewrite.timeout = Some(None);
    regex_rewrite.retry = Some(Arc::new(RetryPolicy::disabled()));
    let exact = RouteMatch {
        path: PathMatch {
            kind: StringMatch::Exact("/exact".into()),
            ignore_case: false,
        },
        ..RouteMatch::default()
    };
    let mut rewritten = named("regex", exact, RouteAction::Forward(regex_rewrite));
    rewritten.fault = Some(FaultPolicy {
        delay: Some(FaultDelay {
            delay: DelaySource::Header,
            percent: Percent::NONE,
        }),
        abort: Some(FaultAbort {
            abort: AbortSource::Grpc(GrpcCode::UNAVAILABLE),
            percent: Percent::new(50.0).unwrap(),
        }),
        max_active_faults: None,
    });
    let by_regex = |p: &str| RouteMatch {
        path: PathMatch {
            kind: regex(p),
            ignore_case: false,
        },
        ..RouteMatch::default()
    };
    let redirect = Redirect {
        scheme: Some("https".into()),
        host: Some("new.example.com".into()),
        port: Some(8443),
        path: Some("/new".into()),
        status: StatusCode::PERMANENT_REDIRECT,
    };
    let mut header_abort = Route::forward(Forward::to("outbound|9080|v1|reviews"));
    header_abort.fault = Some(FaultPolicy {
        abort: Some(FaultAbort {
            abort: AbortSource::Header,
            percent: Percent::ALL,
        }),
        ..FaultPolicy::default()
    });
    let big = Bytes::from(vec![b'x'; 5000]);
    vec![
        VirtualHost::new(
            "reviews",
            ["reviews", "reviews:9080", "*.reviews.example"],
            vec![
                forward,
                rewritten,
                named("old", by_regex("/old/.*"), RouteAction::Redirect(redirect)),
                named(
                    "redirect-defaults",
                    by_regex("/keep"),
                    RouteAction::Redirect(Redirect {
                        scheme: None,
                        host: None,
                        port: None,
                        path: None,
                        status: StatusCode::MOVED_PERMANENTLY,
                    }),
                ),
                header_abort,
            ],
        ),
        VirtualHost::new(
            "answers",
            ["*"],
            vec![
                named(
                    "big",
                    by_regex("/big"),
                    RouteAction::Direct(DirectResponse {
                        status: StatusCode::OK,
                        body: Some(big),
                    }),
                ),
                Route::new(RouteAction::Direct(DirectResponse {
                    status: StatusCode::NOT_FOUND,
                    body: None,
                })),
            ],
        ),
    ]
}

#[test]
fn every_match_and_action_round_trips() {
    let vhs = every_kind();
    RouteTable::new(vhs.clone()).expect("a valid table");
    let rc = route_configuration("9080", &vhs).unwrap();
    assert_eq!(
        rc.max_direct_response_body_size_bytes.map(|v| v.value),
        Some(5000)
    );
    let back = XdsRouteConfig::try_from(&rc).unwrap();
    assert!(back.ignored.is_empty(), "{:?}", back.ignored);
    assert_eq!(back.name, "9080");
    assert_eq!(back.table.virtual_hosts(), &vhs[..]);
}

#[test]
fn timeouts_are_written_as_istiod_writes_them() {
    let vhs = every_kind();
    let rc = route_configuration("9080", &vhs).unwrap();
    let Some(envoy_types::pb::envoy::config::route::v3::route::Action::Route(ra)) =
        &rc.virtual_hosts[0].routes[0].action
    else {
        panic!("a forwarding route");
    };
    let msd = ra
        .max_stream_duration
        .as_ref()
        .expect("max_stream_duration");
    let d = duration(Duration::from_millis(1500));
    assert_eq!(ra.timeout, Some(d));
    assert_eq!(msd.max_stream_duration, Some(d));
    assert_eq!(msd.grpc_timeout_header_max, Some(d));
    let fault = &rc.virtual_hosts[0].routes[0].typed_per_filter_config[FAULT_FILTER];
    assert!(
        fault
            .type_url
            .ends_with("envoy.extensions.filters.http.fault.v3.HTTPFault")
    );
}

#[test]
fn what_xds_cannot_say_is_refused_by_route_and_field() {
    let mut vhs = every_kind();
    vhs[0].routes[1].rate_limit = Some(LocalRateLimit::default());
    let err = route_configuration("9080", &vhs).unwrap_err();
    assert_eq!(
        (err.part.as_str(), err.field.as_str()),
        (
            "virtual host \"reviews\", route #1 (\"regex\")",
            "rate_limit"
        )
    );
    assert_eq!(
        err.to_string(),
        "RouteConfiguration \"9080\": virtual host \"reviews\", route #1 (\"regex\"): rate_limit: local rate limits are not expressed in xDS routes"
    );

    let refused = |r: Route| {
        let vh = VirtualHost::new("v", ["v"], vec![r]);
        let err = virtual_host(&vh).unwrap_err();
        assert_eq!((err.type_name, err.resource.as_str()), ("VirtualHost", "v"));
        err.field
    };
    let suffix = RouteMatch {
        path: PathMatch {
            kind: StringMatch::Suffix(".css".into()),
            ignore_case: false,
        },
        ..RouteMatch::default()
    };
    assert_eq!(
        refused(Route::forward(Forward::to("c")).when(suffix)),
        "matches.path.kind"
    );
    let mut budget = RetryPolicy::default();
    budget.budget.retry_ratio = 0.5;
    let mut f = Forward::to("c");
    f.retry = Some(Arc::new(budget));
    assert_eq!(refused(Route::forward(f)), "action.forward.retry.budget");
    let mut f = Forward::to("c");
    f.rewrite = Some(PathRewrite::Prefix(String::new()));
    assert_eq!(refused(Route::forward(f)), "action.forward.rewrite");
    let host = RouteMatch {
        headers: vec![header("host", HeaderMatch::Present(true), false)],
        ..RouteMatch::default()
    };
    assert_eq!(
        refused(Route::forward(Forward::to("c")).when(host)),
        "matches.headers[0].name"
    );
    let mut r = Route::forward(Forward::to("c"));
    r.request_headers.remove.push(http::header::HOST);
    assert_eq!(refused(r), "request_headers.remove[0]");
    let teapot = Redirect {
        scheme: None,
        host: None,
        port: None,
        path: None,
        status: StatusCode::IM_A_TEAPOT,
    };
    assert_eq!(
        refused(Route::new(RouteAction::Redirect(teapot))),
        "action.redirect.status"
    );
    let unanchored = StringMatch::Regex(regex::Regex::new("x").unwrap());
    let m = RouteMatch {
        method: Some(unanchored),
        ..RouteMatch::default()
    };
    assert_eq!(
        refused(Route::forward(Forward::to("c")).when(m)),
        "matches.method"
    );
}
