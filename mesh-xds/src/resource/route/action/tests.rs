//! Forwarding: timeouts, retries, hash policies, mirrors and rewrites.

use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::{self as rds, route_action};
use mesh_core::route::{HashKey, Percent};

use super::super::tests::{
    cluster, convert, first, forward, istio_retries, prefix, route, routes_of,
};
use crate::resource::proto::build::*;

#[test]
fn timeouts_follow_grpc_a31() {
    let timeout = |msd: Option<i64>, timeout: Option<i64>| {
        let mut a = cluster("c");
        a.max_stream_duration = msd.map(|s| route_action::MaxStreamDuration {
            max_stream_duration: Some(secs(s)),
            ..Default::default()
        });
        a.timeout = timeout.map(secs);
        forward(&first(&routes_of(route(prefix("/"), a)))).timeout
    };
    let s = |n| Some(Some(Duration::from_secs(n)));
    assert_eq!(timeout(Some(5), Some(15)), s(5), "max_stream_duration wins");
    assert_eq!(timeout(None, Some(15)), s(15));
    assert_eq!(timeout(Some(0), Some(15)), Some(None), "zero disables");
    assert_eq!(timeout(None, None), None, "the cluster's");
}

#[test]
fn retries_follow_grpc_a44() {
    let mut a = cluster("c");
    a.retry_policy = Some(rds::RetryPolicy {
        retry_on: "5xx,unavailable,retriable-headers,envoy-ratelimited".into(),
        per_try_timeout: Some(millis(250)),
        retry_back_off: Some(rds::retry_policy::RetryBackOff {
            base_interval: Some(millis(40)),
            max_interval: None,
        }),
        ..Default::default()
    });
    let converted = first(&routes_of(route(prefix("/"), a)));
    let retry = forward(&converted).retry.clone().unwrap();
    assert_eq!(
        retry.retry_on.to_string(),
        "5xx,unavailable",
        "unknown ones are ignored"
    );
    assert_eq!(retry.num_retries, 1, "Envoy's default");
    assert_eq!(retry.per_try_timeout, Some(Duration::from_millis(250)));
    assert_eq!(retry.backoff.max, Duration::from_millis(400), "10 × base");
    assert!(retry.retriable_status_codes.is_empty());

    // A route without a policy takes its virtual host's.
    let mut rc = routes_of(route(prefix("/"), cluster("c")));
    rc.virtual_hosts[0].retry_policy = Some(istio_retries());
    let inherited = first(&rc);
    assert_eq!(forward(&inherited).retry.as_ref().unwrap().num_retries, 2);
}

#[test]
fn hash_policies_mirrors_and_rewrites() {
    use route_action::hash_policy::{self, PolicySpecifier};
    let policy = |p, terminal| route_action::HashPolicy {
        policy_specifier: Some(p),
        terminal,
    };
    let mut a = cluster("c");
    a.hash_policy = vec![
        policy(
            PolicySpecifier::Header(hash_policy::Header {
                header_name: "x-user".into(),
                regex_rewrite: None,
            }),
            true,
        ),
        policy(
            PolicySpecifier::FilterState(hash_policy::FilterState {
                key: "io.grpc.channel_id".into(),
            }),
            false,
        ),
        policy(
            PolicySpecifier::Cookie(hash_policy::Cookie {
                name: "session".into(),
                ..Default::default()
            }),
            false,
        ),
        policy(
            PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
                source_ip: true,
            }),
            false,
        ),
    ];
    a.request_mirror_policies = vec![route_action::RequestMirrorPolicy {
        cluster: "shadow".into(),
        runtime_fraction: Some(
            envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent {
                default_value: Some(percent(25)),
                runtime_key: String::new(),
            },
        ),
        ..Default::default()
    }];
    a.prefix_rewrite = "/v2/".into();
    a.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(
        "reviews.internal".into(),
    ));
    let routes = convert(&routes_of(route(prefix("/api/"), a)));
    assert_eq!(
        routes.ignored.len(),
        1,
        "filter state: {:?}",
        routes.ignored
    );
    let f = forward(&routes.table.virtual_hosts()[0].routes[0]).clone();
    let keys: Vec<_> = f
        .hash_policy
        .iter()
        .map(|h| (h.key.clone(), h.terminal))
        .collect();
    assert_eq!(
        keys,
        [
            (
                HashKey::Header(http::HeaderName::from_static("x-user")),
                true
            ),
            (HashKey::Cookie("session".into()), false),
            (HashKey::SourceIp, false),
        ]
    );
    assert_eq!(f.mirrors.len(), 1);
    assert_eq!(f.mirrors[0].percent, Percent::new(25.0).unwrap());
    assert_eq!(f.host_rewrite.as_deref(), Some("reviews.internal"));
    let rewrite = f.rewrite.unwrap();
    assert_eq!(
        rewrite.apply("/api/reviews/1", Some("/api/")),
        "/v2/reviews/1"
    );
}
