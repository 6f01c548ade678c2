use http::{HeaderName, Request};

use super::*;

fn target(s: &str) -> Authority {
    s.parse().unwrap()
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn cluster(table: &RouteTable, authority: &str, req: &Request<()>) -> Option<String> {
    let id = table.find(&target(authority), req)?;
    match &table.route(id).action {
        RouteAction::Forward(f) => Some(f.destination.pick(0).to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn jason() -> RouteMatch {
    RouteMatch {
        headers: vec![HeaderMatcher {
            name: HeaderName::from_static("end-user"),
            kind: HeaderMatch::Value(StringMatch::Exact("jason".into())),
            invert: false,
        }],
        ..Default::default()
    }
}

#[test]
fn first_matching_route_wins() {
    let table = RouteTable::new(vec![VirtualHost::new(
        "reviews",
        ["reviews:9080"],
        vec![
            Route::forward(Forward::to("reviews-v2")).when(jason()),
            Route::forward(Forward::to("reviews-v1")),
        ],
    )])
    .unwrap();
    let r = |h: &[(&str, &str)]| cluster(&table, "reviews:9080", &get("/reviews/0", h));
    assert_eq!(r(&[("end-user", "jason")]).as_deref(), Some("reviews-v2"));
    assert_eq!(r(&[("end-user", "bob")]).as_deref(), Some("reviews-v1"));
    assert_eq!(r(&[]).as_deref(), Some("reviews-v1"));
    assert_eq!(cluster(&table, "ratings:9080", &get("/", &[])), None);
}

#[test]
fn matches_path_method_authority_and_query() {
    let m = RouteMatch {
        path: PathMatch {
            kind: StringMatch::Exact("/Login".into()),
            ignore_case: true,
        },
        method: Some(StringMatch::Exact("GET".into())),
        authority: Some(StringMatch::Prefix("productpage".into())),
        query: vec![QueryMatcher {
            name: "u".into(),
            value: Some(StringMatch::regex("[a-z]+").unwrap()),
        }],
        ..Default::default()
    };
    let pp = target("productpage:9080");
    assert!(m.matches(&pp, &get("/login?u=jason", &[])));
    assert!(!m.matches(&pp, &get("/login?u=J", &[])));
    assert!(!m.matches(&pp, &get("/login/x?u=jason", &[])));
    assert!(!m.matches(&target("details:9080"), &get("/login?u=jason", &[])));
    let post = Request::post("/login?u=jason").body(()).unwrap();
    assert!(!m.matches(&pp, &post));
}

#[test]
fn the_authority_is_matched_as_sent() {
    let m = RouteMatch {
        authority: Some(StringMatch::Exact("reviews".into())),
        ..Default::default()
    };
    let t = target("reviews:80");
    assert!(m.matches(&t, &get("http://reviews/", &[])));
    assert!(!m.matches(&t, &get("http://reviews:80/", &[])));
    assert!(m.matches(&t, &get("/", &[("host", "Reviews")])));
    assert!(!m.matches(&t, &get("/", &[("host", "ratings")])));
}

#[test]
fn repeated_headers_are_joined() {
    let m = RouteMatch {
        headers: vec![HeaderMatcher {
            name: HeaderName::from_static("x-tag"),
            kind: HeaderMatch::Value(StringMatch::Exact("a,b".into())),
            invert: false,
        }],
        ..Default::default()
    };
    let req = get("/", &[("x-tag", "a"), ("x-tag", "b")]);
    assert!(m.matches(&target("x:1"), &req));
}

#[test]
fn bad_routes_are_errors_at_build_time() {
    let table = |route: Route| RouteTable::new(vec![VirtualHost::new("vh", ["a"], vec![route])]);
    let err = table(Route::forward(Forward::to(""))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "route #0 of virtual host \"vh\": names no cluster"
    );
    let mut zero = Route::forward(Forward::split([("a".into(), 0), ("b".into(), 0)]));
    zero.name = Some("canary".into());
    let err = table(zero).unwrap_err();
    assert_eq!(
        err.to_string(),
        "route \"canary\" of virtual host \"vh\": weights sum to zero"
    );
    assert!(table(Route::forward(Forward::split([]))).is_err());
    let mut stopped = Route::forward(Forward::to("a"));
    stopped.rate_limit = Some(crate::policy::LocalRateLimit {
        total: Some(crate::policy::Limit {
            requests_per_second: 0,
        }),
        ..Default::default()
    });
    let err = table(stopped).unwrap_err();
    assert_eq!(
        err.to_string(),
        "route #0 of virtual host \"vh\": a rate limit must allow at least 1 request per second"
    );
    let mut mirror = Forward::to("a");
    mirror.mirrors.push(Mirror {
        cluster: "".into(),
        percent: Percent::ALL,
    });
    assert!(table(Route::forward(mirror)).is_err());
    let direct = Route::new(RouteAction::Direct(DirectResponse {
        status: http::StatusCode::OK,
        body: None,
    }));
    assert!(table(direct).is_ok());
}

#[test]
fn lists_clusters() {
    let mut f = Forward::split([("v1".into(), 50), ("v3".into(), 50)]);
    f.mirrors.push(Mirror {
        cluster: "shadow".into(),
        percent: Percent::ALL,
    });
    let table =
        RouteTable::new(vec![VirtualHost::new("r", ["r"], vec![Route::forward(f)])]).unwrap();
    let names: Vec<_> = table.clusters().map(|c| c.to_string()).collect();
    assert_eq!(names, ["v1", "v3", "shadow"]);
}

#[test]
fn many_virtual_hosts_route_by_domain() {
    let hosts = (0..1000)
        .map(|i| {
            VirtualHost::new(
                format!("svc{i}"),
                [format!("svc{i}.default.svc.cluster.local:80")],
                vec![Route::forward(Forward::to(format!("svc{i}").as_str()))],
            )
        })
        .collect();
    let table = RouteTable::new(hosts).unwrap();
    for i in [0, 500, 999] {
        let a = format!("svc{i}.default.svc.cluster.local:80");
        assert_eq!(cluster(&table, &a, &get("/", &[])), Some(format!("svc{i}")));
    }
}
