use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use mesh_core::route::{
    DirectResponse, Forward, HeaderMutation, PathMatch, PathRewrite, Redirect, Route as Entry,
    RouteAction, RouteMatch, StringMatch, VirtualHost,
};
use mesh_core::{Cluster, MeshConfig, RouteTable};

use tower::ServiceExt;

use super::*;
use crate::test_support::{self, config, routed};

fn named(mut route: Entry, name: &str) -> Entry {
    route.name = Some(name.into());
    route
}

async fn send(config: &SharedConfig, uri: &str) -> http::Response<ResponseBody> {
    routed(config.load(), false)
        .oneshot(Request::get(uri).body(()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn no_route_is_a_404_naming_the_request() {
    let config = config(vec![Entry::forward(Forward::to("v1")).when(RouteMatch {
        path: PathMatch {
            kind: StringMatch::Prefix("/reviews".into()),
            ignore_case: false,
        },
        ..Default::default()
    })]);
    let res = send(&config, "http://reviews:9080/other").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "no route for reviews:9080/other\n");
    let res = send(&config, "http://ratings:9080/reviews").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Passthrough forwards unknown authorities, not unmatched routes.
    let pass = routed(config.load(), true);
    let res = pass
        .clone()
        .oneshot(Request::get("http://ratings:9080/x").body(()).unwrap())
        .await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("x-route"));
    let res = pass
        .oneshot(Request::get("http://reviews:9080/x").body(()).unwrap())
        .await;
    assert_eq!(res.unwrap().status(), StatusCode::NOT_FOUND);

    // A request routed by a named table (a gateway's) is never passed
    // through: a host the table does not serve is no route.
    let gateway = ForListener::new(routed(config.load(), true), "http.8080");
    let res = gateway
        .oneshot(Request::get("http://ratings:9080/x").body(()).unwrap())
        .await;
    assert_eq!(res.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forwards_with_rewrites_headers_and_the_decision() {
    let mut forward = Forward::to("v1");
    forward.rewrite = Some(PathRewrite::Prefix("/v2/".into()));
    forward.host_rewrite = Some("reviews-internal".into());
    forward.timeout = Some(Some(Duration::from_secs(2)));
    let mut route = named(Entry::forward(forward), "rewritten").when(RouteMatch {
        path: PathMatch {
            kind: StringMatch::Prefix("/api/".into()),
            ignore_case: false,
        },
        ..Default::default()
    });
    route.request_headers = HeaderMutation {
        set: vec![(
            HeaderName::from_static("x-added"),
            HeaderValue::from_static("yes"),
        )],
        ..Default::default()
    };
    route.response_headers = HeaderMutation {
        add: vec![(
            HeaderName::from_static("x-served-by"),
            HeaderValue::from_static("mesh"),
        )],
        ..Default::default()
    };
    let config = config(vec![route]);
    let res = send(&config, "http://reviews:9080/api/reviews/1?x=1").await;
    let h = res.headers();
    assert_eq!(h["x-uri"], "http://reviews-internal/v2/reviews/1?x=1");
    assert_eq!(h["x-host"], "reviews-internal");
    assert_eq!(h["x-route"], "rewritten");
    assert_eq!(h["x-timeout"], "Some(2s)");
    assert_eq!(h["x-added"], "yes");
    assert_eq!(h["x-served-by"], "mesh");
}

#[tokio::test]
async fn answers_direct_responses_and_redirects() {
    let direct = Entry::new(RouteAction::Direct(DirectResponse {
        status: StatusCode::IM_A_TEAPOT,
        body: Some("short and stout".into()),
    }))
    .when(RouteMatch {
        path: PathMatch {
            kind: StringMatch::Exact("/tea".into()),
            ignore_case: false,
        },
        ..Default::default()
    });
    let redirect = Entry::new(RouteAction::Redirect(Redirect {
        scheme: None,
        host: None,
        port: None,
        path: Some("/new".into()),
        status: StatusCode::MOVED_PERMANENTLY,
    }));
    let config = config(vec![direct, redirect]);
    let res = send(&config, "http://reviews:9080/tea").await;
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        "short and stout"
    );
    let res = send(&config, "http://reviews:9080/old?q=1").await;
    assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(res.headers()["location"], "http://reviews:9080/new?q=1");
    let res = send(&config, "http://reviews/old").await;
    assert_eq!(res.headers()["location"], "http://reviews/new");
}

#[tokio::test]
async fn a_scheme_redirect_drops_the_old_default_port() {
    let to_https = |port| {
        Entry::new(RouteAction::Redirect(Redirect {
            scheme: Some("https".into()),
            host: None,
            port,
            path: None,
            status: StatusCode::PERMANENT_REDIRECT,
        }))
    };
    let config = config(vec![to_https(None)]);
    let location = |res: http::Response<ResponseBody>| res.headers()["location"].clone();
    assert_eq!(
        location(send(&config, "http://reviews/a?b").await),
        "https://reviews/a?b"
    );
    assert_eq!(
        location(send(&config, "http://reviews:80/a").await),
        "https://reviews/a"
    );
    assert_eq!(
        location(send(&config, "http://reviews:8080/a").await),
        "https://reviews:8080/a"
    );
    let config = test_support::config(vec![to_https(Some(8443))]);
    assert_eq!(
        location(send(&config, "http://reviews/a").await),
        "https://reviews:8443/a"
    );
}

#[tokio::test]
async fn a_new_config_applies_to_the_next_request() {
    let config = config(vec![named(Entry::forward(Forward::to("v1")), "first")]);
    assert_eq!(
        send(&config, "http://reviews/").await.headers()["x-route"],
        "first"
    );
    let table = RouteTable::new(vec![VirtualHost::new(
        "reviews",
        ["reviews"],
        vec![named(Entry::forward(Forward::to("v1")), "second")],
    )])
    .unwrap();
    let clusters = [Cluster {
        name: "v1".into(),
        ..Cluster::service(&"reviews:80".parse().unwrap())
    }];
    config.store(Arc::new(MeshConfig::new(table, clusters).unwrap()));
    assert_eq!(
        send(&config, "http://reviews/").await.headers()["x-route"],
        "second"
    );
}
