//! How VirtualService routes become mesh routes: matches, the conditions on
//! the client, actions and their settings.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;

use super::*;
use mesh_core::GrpcCode;
use mesh_core::policy::RetryOn;
use mesh_core::route::{AbortSource, PathRewrite, Percent};

#[test]
fn header_presence_absence_and_values() {
    let c = config(
        &(vs(
            "  http:\n  - match:\n    - headers: {x-canary: {}}\n      withoutHeaders: {end-user: {exact: bob}}\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match:\n    - headers: {x-debug: {regex: \"*\"}}\n      withoutHeaders: {x-empty: {exact: \"\"}}\n    route: [{destination: {host: reviews, subset: v1}}]\n",
        ) + DR),
    );
    let r = |h: &[(&str, &str)]| cluster(&c, "http://reviews/", h);
    assert_eq!(r(&[("x-canary", "")]).as_deref(), Some(V2));
    assert_eq!(
        r(&[("x-canary", "1"), ("end-user", "jason")]).as_deref(),
        Some(V2)
    );
    assert_eq!(r(&[("x-canary", "1"), ("end-user", "bob")]), None);
    // A missing header counts as empty for `withoutHeaders`, as in Envoy.
    assert_eq!(r(&[("x-debug", "1")]), None);
    assert_eq!(r(&[("x-debug", "1"), ("x-empty", "")]), None);
    assert_eq!(
        r(&[("x-debug", "1"), ("x-empty", "y")]).as_deref(),
        Some(V1)
    );
}

#[test]
fn path_method_authority_and_query() {
    let c = config(
        &(vs(
            "  http:\n  - name: api\n    match:\n    - name: login\n      uri: {exact: /Login}\n      ignoreUriCase: true\n      method: {exact: POST}\n    - uri: {regex: \"/reviews/[0-9]+\"}\n      queryParams: {debug: {}, user: {exact: jason}}\n    - authority: {prefix: reviews.default}\n    route: [{destination: {host: reviews, subset: v2}}]\n  - name: rest\n    route: [{destination: {host: reviews, subset: v1}}]\n",
        ) + DR),
    );
    let post = |uri: &str| {
        let req = http::Request::post(uri).body(()).expect("request");
        let target = Authority::from_uri(req.uri()).expect("authority");
        let id = c.routes().find(&target, &req).expect("route");
        c.routes().route(id).name.clone()
    };
    assert_eq!(post("http://reviews/login").as_deref(), Some("api.login"));
    assert_eq!(
        cluster(&c, "http://reviews/login", &[]).as_deref(),
        Some(V1)
    );
    assert_eq!(
        cluster(&c, "http://reviews/reviews/7?debug&user=jason", &[]).as_deref(),
        Some(V2)
    );
    assert_eq!(
        cluster(&c, "http://reviews/reviews/7?user=jason", &[]).as_deref(),
        Some(V1)
    );
    assert_eq!(
        cluster(&c, "http://reviews.default:9080/x", &[]).as_deref(),
        Some(V2)
    );
    let names: Vec<_> = c.routes().virtual_hosts()[0]
        .routes
        .iter()
        .map(|r| r.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [Some("api.login"), Some("api"), Some("api"), Some("rest")]
    );
}

#[test]
fn conditions_on_the_client_are_decided_for_it() {
    let yaml = vs(
        "  http:\n  - match:\n    - sourceLabels: {app: productpage}\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match:\n    - sourceNamespace: prod\n    - gateways: [mesh]\n      sourceLabels: {app: nobody}\n      uri: {prefix: /mesh}\n    - gateways: [ingress]\n      uri: {prefix: /ingress}\n    route: [{destination: {host: reviews, subset: v1}}]\n",
    ) + DR;
    // The match for the gateway `ingress` is for gateway proxies: nothing
    // to warn about when reading.
    let (_, warnings) = read(&yaml);
    assert!(warnings.is_empty(), "{warnings:?}");
    let (c, warnings) = convert(&yaml);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cluster(&c, "http://reviews/", &[]), None);
    assert_eq!(cluster(&c, "http://reviews/mesh", &[]).as_deref(), Some(V1));
    assert_eq!(cluster(&c, "http://reviews/ingress", &[]), None);
    let productpage = Workload {
        labels: BTreeMap::from([("app".into(), "productpage".into())]),
        ..Workload::default()
    };
    let c = config_for(&yaml, &productpage);
    assert_eq!(cluster(&c, "http://reviews/", &[]).as_deref(), Some(V2));
    let prod = Workload {
        namespace: "prod".into(),
        ..Workload::default()
    };
    let c = config_for(&yaml, &prod);
    assert_eq!(
        cluster(&c, "http://reviews.default/", &[]).as_deref(),
        Some(V1)
    );
    // `reviews` alone names prod's reviews for a client in prod.
    assert_eq!(cluster(&c, "http://reviews/", &[]), None);
}

#[test]
fn a_port_match_gets_its_own_virtual_host() {
    let c = config(
        &(vs(
            "  http:\n  - match: [{port: 9080, uri: {prefix: /v2}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n",
        ) + DR),
    );
    assert_eq!(
        cluster(&c, "http://reviews:9080/v2/x", &[]).as_deref(),
        Some(V2)
    );
    // Another port has no VirtualService route: the DestinationRule's
    // default applies there, as for a host without a VirtualService.
    let whole = "outbound|||reviews.default.svc.cluster.local";
    assert_eq!(
        cluster(&c, "http://reviews:8080/v2/x", &[]).as_deref(),
        Some(whole)
    );
    assert_eq!(cluster(&c, "http://reviews:9080/v1", &[]), None);
    let hosts: Vec<&str> = c
        .routes()
        .virtual_hosts()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        hosts,
        [
            "reviews.default.svc.cluster.local:9080",
            "reviews.default.svc.cluster.local"
        ]
    );
}

#[test]
fn namespaces_and_external_hosts() {
    let yaml = vs("  http:\n  - route: [{destination: {host: ratings}}]\n")
        .replace("{name: reviews}", "{name: reviews, namespace: prod}")
        .replace("[reviews]", "[reviews, api.example.com, \"*.example.org\"]");
    let c = config(&yaml);
    let ratings = "outbound|||ratings.prod.svc.cluster.local";
    for uri in [
        "http://reviews.prod/",
        "http://reviews.prod.svc:9080/",
        "http://reviews.prod.svc.cluster.local/",
        "http://api.example.com/",
        "http://a.example.org/",
    ] {
        assert_eq!(cluster(&c, uri, &[]).as_deref(), Some(ratings), "{uri}");
    }
    assert_eq!(cluster(&c, "http://reviews/", &[]), None);
}

#[test]
fn forward_settings() {
    let c = config(
        &(vs(
            "  http:\n  - match: [{uri: {prefix: /old}}]\n    rewrite: {uri: /new, authority: reviews-v2}\n    timeout: 0s\n    retries: {attempts: 3, perTryTimeout: 2s, retryOn: \"gateway-error,503,409\", backoff: 50ms}\n    headers:\n      request: {set: {x-a: \"1\", host: ignored}, add: {x-b: true}, remove: [x-c]}\n      response: {remove: [server]}\n    mirror: {host: reviews, subset: v2}\n    mirrorPercentage: {value: 12.5}\n    route: [{destination: {host: reviews, subset: v1}, headers: {response: {set: {x-d: v1}}}}]\n  - match: [{uri: {prefix: /re}}]\n    rewrite:\n      uriRegexRewrite: {match: \"^/re/(.*)$\", rewrite: \"/\\\\1\"}\n    retries: {attempts: 0}\n    mirrors:\n    - destination: {host: reviews, subset: v1}\n    - destination: {host: reviews, subset: v2}\n      percentage: {value: 0}\n    route: [{destination: {host: reviews, subset: v2}}]\n",
        ) + DR),
    );
    let r = route(&c, "http://reviews/old/x", &[]).expect("route");
    let RouteAction::Forward(f) = &r.action else {
        panic!("{r:?}")
    };
    assert_eq!(f.rewrite, Some(PathRewrite::Prefix("/new".into())));
    assert_eq!(f.host_rewrite.as_deref(), Some("reviews-v2"));
    assert_eq!(f.timeout, Some(None));
    let retry = f.retry.as_deref().expect("retry");
    assert_eq!(retry.num_retries, 3);
    assert_eq!(retry.per_try_timeout, Some(Duration::from_secs(2)));
    assert_eq!(retry.retriable_status_codes, [503, 409]);
    assert_eq!(
        retry.retry_on,
        RetryOn::GATEWAY_ERROR.union(RetryOn::RETRIABLE_STATUS_CODES)
    );
    assert_eq!(retry.backoff.base, Duration::from_millis(50));
    assert_eq!(retry.backoff.max, Duration::from_millis(500));
    let mirrors: Vec<_> = f
        .mirrors
        .iter()
        .map(|m| (m.cluster.as_str(), m.percent))
        .collect();
    assert_eq!(mirrors, [(V2, Percent::new(12.5).expect("percent"))]);
    let names = |m: &[(http::HeaderName, http::HeaderValue)]| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("?")))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&r.request_headers.set), ["x-a=1"]);
    assert_eq!(names(&r.request_headers.add), ["x-b=true"]);
    assert_eq!(r.request_headers.remove, ["x-c"]);
    assert_eq!(r.response_headers.remove, ["server"]);
    assert_eq!(names(&r.response_headers.set), ["x-d=v1"]);

    let f = forward(&c, "http://reviews/re/a", &[]);
    assert_eq!(
        f.rewrite,
        Some(PathRewrite::regex("^/re/(.*)$", "/\\1").expect("rewrite"))
    );
    assert_eq!(f.retry.as_deref().map(|r| r.num_retries), Some(0));
    let mirrors: Vec<_> = f
        .mirrors
        .iter()
        .map(|m| (m.cluster.as_str(), m.percent))
        .collect();
    assert_eq!(mirrors, [(V1, Percent::ALL)]);
}

#[test]
fn a_request_host_header_rewrites_the_authority() {
    let c = config(&vs(
        "  http:\n  - headers: {request: {add: {host: added}}}\n    route: [{destination: {host: reviews}, headers: {request: {set: {host: dest}}}}]\n",
    ));
    assert_eq!(
        forward(&c, "http://reviews/", &[]).host_rewrite.as_deref(),
        Some("added")
    );
}

#[test]
fn redirects_and_direct_responses() {
    let c = config(&vs(
        "  http:\n  - match: [{uri: {exact: /a}}]\n    redirect: {uri: /b, authority: new, scheme: https, derivePort: FROM_PROTOCOL_DEFAULT, redirectCode: 308}\n  - match: [{uri: {exact: /c}}]\n    redirect: {uri: /d}\n  - match: [{uri: {exact: /e}}]\n    directResponse: {status: 503, body: {string: down}}\n  - directResponse: {status: 200, body: {bytes: aGVsbG8=}}\n",
    ));
    let action = |uri| route(&c, uri, &[]).expect("route").action.clone();
    let RouteAction::Redirect(r) = action("http://reviews/a") else {
        panic!()
    };
    assert_eq!(
        (
            r.scheme.as_deref(),
            r.host.as_deref(),
            r.port,
            r.path.as_deref(),
            r.status
        ),
        (
            Some("https"),
            Some("new"),
            Some(443),
            Some("/b"),
            StatusCode::PERMANENT_REDIRECT
        )
    );
    let RouteAction::Redirect(r) = action("http://reviews/c") else {
        panic!()
    };
    assert_eq!((r.port, r.status), (None, StatusCode::MOVED_PERMANENTLY));
    let RouteAction::Direct(d) = action("http://reviews/e") else {
        panic!()
    };
    assert_eq!(
        (d.status, d.body.as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some(&b"down"[..]))
    );
    let RouteAction::Direct(d) = action("http://reviews/x") else {
        panic!()
    };
    assert_eq!(d.body.as_deref(), Some(&b"hello"[..]));
}

#[test]
fn faults_follow_istio_defaults() {
    let yaml = vs(
        "  http:\n  - fault:\n      delay: {fixedDelay: 1.5s, percent: 10}\n      abort: {grpcStatus: UNAVAILABLE}\n    route: [{destination: {host: reviews}}]\n",
    );
    let (_, warnings) = read(&yaml);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].to_string().ends_with(
            "line 9, spec.http[0].fault.abort: no percentage: as in Istio, no request is aborted; set percentage.value: 100 for all"
        ),
        "{}",
        warnings[0]
    );
    let c = config(&yaml);
    let fault = route(&c, "http://reviews/", &[])
        .and_then(|r| r.fault.clone())
        .expect("fault");
    let delay = fault.delay.expect("delay");
    assert_eq!(delay.percent, Percent::new(10.0).expect("percent"));
    let abort = fault.abort.expect("abort");
    assert_eq!(abort.abort, AbortSource::Grpc(GrpcCode::UNAVAILABLE));
    assert_eq!(abort.percent, Percent::NONE);
}

#[test]
fn settings_that_only_forwarding_uses_are_warned_about() {
    let (_, warnings) = read(&vs(
        "  http:\n  - directResponse: {status: 200}\n    timeout: 1s\n    mirrorPercentage: {value: 5}\n",
    ));
    let text: Vec<String> = warnings
        .iter()
        .map(|w| format!("{} {}", w.location.path, w.message))
        .collect();
    assert_eq!(
        text,
        [
            "spec.http[0].timeout applies only to forwarded requests; ignored with redirect or directResponse",
            "spec.http[0].mirrorPercentage applies only with mirror; ignored",
        ]
    );
}
