//! Traffic management through MeshClient against real servers: Istio's
//! bookinfo routing rules (all to v1, `end-user: jason` to v2, 50/50 and
//! 80/20 splits), fault injection, mirroring and rate limiting.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderName, StatusCode};
use http_body_util::{BodyExt, Full};
use mesh_core::cluster::istio_cluster_name;
use mesh_core::policy::{Limit, LocalRateLimit};
use mesh_core::route::{
    AbortSource, ClusterName, DelaySource, FaultAbort, FaultDelay, FaultPolicy, Forward,
    HeaderMatch, HeaderMatcher, Mirror, Percent, Route, RouteMatch, StringMatch, VirtualHost,
};
use mesh_core::{Cluster, Discovery, EndpointSet, MeshConfig, RouteTable};
use mesh_tower::timeout::{RequestTimeout, Timeout};
use mesh_tower::{BoxError, MeshClient};
use support::Server;
use support::bookinfo::{Bookinfo, RATINGS, REVIEWS};
use tower::ServiceExt;

fn routed(bookinfo: &Bookinfo, routes: Vec<VirtualHost>) -> MeshClient<Full<Bytes>> {
    bookinfo.client(support::config(routes))
}

/// The cluster of `subset` of `host` (`None`: the whole service).
fn cluster(host: &str, subset: Option<&str>) -> ClusterName {
    istio_cluster_name(host, Some(9080), subset)
}

fn vhost(short: &str, host: &str, routes: Vec<Route>) -> VirtualHost {
    VirtualHost::new(host, [short, host], routes)
}

fn end_user_is(name: &str) -> RouteMatch {
    RouteMatch {
        headers: vec![HeaderMatcher {
            name: HeaderName::from_static("end-user"),
            kind: HeaderMatch::Value(StringMatch::Exact(name.into())),
            invert: false,
        }],
        ..Default::default()
    }
}

fn weighted(splits: &[(&str, u32)]) -> Route {
    Route::forward(Forward::split(
        splits.iter().map(|(v, w)| (cluster(REVIEWS, Some(v)), *w)),
    ))
}

async fn send(
    client: &MeshClient<Full<Bytes>>,
    uri: &str,
    user: Option<&str>,
) -> Result<(StatusCode, String), BoxError> {
    let mut req = http::Request::get(uri);
    if let Some(u) = user {
        req = req.header("end-user", u);
    }
    let res = client.clone().oneshot(req.body(Full::default())?).await?;
    let status = res.status();
    let server = res.headers().get("x-server").cloned();
    let body = res.into_body().collect().await?.to_bytes();
    let who = match server {
        Some(s) => s.to_str()?.to_owned(),
        None => String::from_utf8_lossy(&body).into_owned(),
    };
    Ok((status, who))
}

/// Sends `n` requests, 32 at a time, and counts the answers by server.
async fn tally(client: &MeshClient<Full<Bytes>>, uri: &str, n: usize) -> HashMap<String, usize> {
    let answers: Vec<_> = futures_util::stream::iter(0..n)
        .map(|_| send(client, uri, None))
        .buffer_unordered(32)
        .collect()
        .await;
    let mut counts = HashMap::new();
    for a in answers {
        let (status, who) = a.unwrap();
        let key = if status == 200 {
            who
        } else {
            status.as_str().to_owned()
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn share(counts: &HashMap<String, usize>, key: &str, n: usize) -> f64 {
    counts.get(key).copied().unwrap_or(0) as f64 * 100.0 / n as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookinfo_routing_rules() {
    let bookinfo = Bookinfo::start().await;
    let uri = "http://reviews:9080/reviews/0";

    // virtual-service-all-v1: everything to v1.
    let all_v1 = routed(
        &bookinfo,
        vec![vhost(
            "reviews",
            REVIEWS,
            vec![Route::forward(Forward::to(cluster(REVIEWS, Some("v1"))))],
        )],
    );
    let counts = tally(&all_v1, uri, 200).await;
    assert_eq!(counts, HashMap::from([("reviews-v1".to_string(), 200)]));

    // virtual-service-reviews-test-v2: jason to v2, the rest to v1.
    let jason_v2 = routed(
        &bookinfo,
        vec![vhost(
            "reviews",
            REVIEWS,
            vec![
                Route::forward(Forward::to(cluster(REVIEWS, Some("v2"))))
                    .when(end_user_is("jason")),
                Route::forward(Forward::to(cluster(REVIEWS, Some("v1")))),
            ],
        )],
    );
    for _ in 0..20 {
        let (_, who) = send(&jason_v2, uri, Some("jason")).await.unwrap();
        assert_eq!(who, "reviews-v2");
        let (_, who) = send(&jason_v2, uri, Some("bob")).await.unwrap();
        assert_eq!(who, "reviews-v1");
        let (_, who) = send(&jason_v2, uri, None).await.unwrap();
        assert_eq!(who, "reviews-v1");
    }

    // virtual-service-reviews-50-v3 and an 80/20 canary: measured over
    // 10,000 requests, within 3 points.
    for (splits, expect) in [
        (
            &[("v1", 50), ("v3", 50)][..],
            [("reviews-v1", 50.0), ("reviews-v3", 50.0)],
        ),
        (
            &[("v1", 80), ("v2", 20)][..],
            [("reviews-v1", 80.0), ("reviews-v2", 20.0)],
        ),
    ] {
        let client = routed(
            &bookinfo,
            vec![vhost("reviews", REVIEWS, vec![weighted(splits)])],
        );
        let counts = tally(&client, uri, 10_000).await;
        for (server, percent) in expect {
            let got = share(&counts, server, 10_000);
            assert!(
                (got - percent).abs() <= 3.0,
                "{server}: {got}% of {counts:?}"
            );
        }
        assert_eq!(counts.values().sum::<usize>(), 10_000, "{counts:?}");
    }
    let _ = &bookinfo.ratings;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_change_applies_to_the_next_requests() {
    let bookinfo = Bookinfo::start().await;
    let uri = "http://reviews:9080/reviews/0";
    let client = routed(
        &bookinfo,
        vec![vhost("reviews", REVIEWS, vec![weighted(&[("v1", 100)])])],
    );
    assert_eq!(tally(&client, uri, 50).await["reviews-v1"], 50);
    client.set_config(support::config(vec![vhost(
        "reviews",
        REVIEWS,
        vec![weighted(&[("v1", 0), ("v3", 100)])],
    )]));
    assert_eq!(tally(&client, uri, 50).await["reviews-v3"], 50);
    assert_eq!(bookinfo.reviews[0].hits(), 50);

    // A cluster whose definition changes under the same name is rebuilt.
    let table = RouteTable::new(vec![vhost(
        "reviews",
        REVIEWS,
        vec![Route::forward(Forward::to("reviews-canary"))],
    )])
    .unwrap();
    let canary = |version: &str| Cluster {
        name: "reviews-canary".into(),
        discovery: Discovery::Service {
            host: REVIEWS.into(),
            port: Some(9080),
        },
        subset: BTreeMap::from([("version".to_string(), version.to_string())]),
        policy: Default::default(),
        port_policies: BTreeMap::new(),
    };
    client.set_config(MeshConfig::new(table.clone(), [canary("v2")]).unwrap());
    assert_eq!(tally(&client, uri, 20).await["reviews-v2"], 20);
    client.set_config(MeshConfig::new(table, [canary("v1")]).unwrap());
    assert_eq!(tally(&client, uri, 20).await["reviews-v1"], 20);
}

fn ratings_fault(fault: FaultPolicy, only_jason: bool) -> Vec<VirtualHost> {
    let mut faulted = Route::forward(Forward::to(cluster(RATINGS, Some("v1"))));
    faulted.fault = Some(fault);
    let mut routes = vec![];
    if only_jason {
        routes.push(faulted.when(end_user_is("jason")));
        routes.push(Route::forward(Forward::to(cluster(RATINGS, Some("v1")))));
    } else {
        routes.push(faulted);
    }
    vec![vhost("ratings", RATINGS, routes)]
}

#[tokio::test(start_paused = true)]
async fn a_delay_for_jason_meets_the_callers_timeout() {
    // virtual-service-ratings-test-delay: 7 s for jason; the caller gives
    // up after 3 s, as productpage does.
    let bookinfo = Bookinfo::start().await;
    let fault = FaultPolicy {
        delay: Some(FaultDelay {
            delay: DelaySource::Fixed(Duration::from_secs(7)),
            percent: Percent::ALL,
        }),
        ..Default::default()
    };
    let client = routed(&bookinfo, ratings_fault(fault, true));
    let caller = Timeout::new(client, Some(Duration::from_secs(3)));
    let req = http::Request::get("http://ratings:9080/ratings/0")
        .header("end-user", "jason")
        .body(Full::default())
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = caller.oneshot(req).await.unwrap_err();
    assert!(err.is::<RequestTimeout>(), "{err}");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(bookinfo.ratings.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_for_jason_only_and_by_percentage() {
    let bookinfo = Bookinfo::start().await;
    let abort = |percent: f64| FaultPolicy {
        abort: Some(FaultAbort {
            abort: AbortSource::Http(StatusCode::INTERNAL_SERVER_ERROR),
            percent: Percent::new(percent).unwrap(),
        }),
        ..Default::default()
    };
    let uri = "http://ratings:9080/ratings/0";
    // virtual-service-ratings-test-abort: 500 for jason, 100 %.
    let client = routed(&bookinfo, ratings_fault(abort(100.0), true));
    for _ in 0..10 {
        let (status, body) = send(&client, uri, Some("jason")).await.unwrap();
        assert_eq!(
            (status.as_u16(), body.as_str()),
            (500, "fault filter abort")
        );
        let (status, who) = send(&client, uri, Some("bob")).await.unwrap();
        assert_eq!((status.as_u16(), who.as_str()), (200, "ratings-v1"));
    }
    // Half of all requests, measured over 10,000.
    let client = routed(&bookinfo, ratings_fault(abort(50.0), false));
    let counts = tally(&client, uri, 10_000).await;
    let aborted = share(&counts, "500", 10_000);
    assert!(
        (aborted - 50.0).abs() <= 3.0,
        "{aborted}% aborted: {counts:?}"
    );
    assert_eq!(share(&counts, "ratings-v1", 10_000) + aborted, 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_copies_reach_the_shadow_and_a_hanging_shadow_slows_nothing() {
    let bookinfo = Bookinfo::start().await;
    // The shadow (reviews v2 here) never answers.
    let shadow = Server::start("shadow", Duration::from_secs(3600)).await;
    let mut e = shadow.endpoint();
    e.labels.insert("version".into(), "v2".into());
    let resolve = bookinfo.resolve.clone();
    resolve.set(
        &format!("{REVIEWS}:9080").parse().unwrap(),
        EndpointSet::new([
            {
                let mut v1 = bookinfo.reviews[0].endpoint();
                v1.labels.insert("version".into(), "v1".into());
                v1
            },
            e,
        ]),
    );
    let mut forward = Forward::to(cluster(REVIEWS, Some("v1")));
    forward.mirrors.push(Mirror {
        cluster: cluster(REVIEWS, Some("v2")),
        percent: Percent::ALL,
    });
    let client = routed(
        &bookinfo,
        vec![vhost("reviews", REVIEWS, vec![Route::forward(forward)])],
    );
    for i in 0..20 {
        let body = Full::new(Bytes::from(vec![b'x'; i * 100]));
        let req = http::Request::post("http://reviews:9080/reviews/0")
            .body(body)
            .unwrap();
        let res = client.clone().oneshot(req).await.unwrap();
        assert_eq!(res.headers()["x-server"], "reviews-v1");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("reviews-v1:{}", i * 100));
    }
    // Every copy arrived, though none was answered.
    for _ in 0..500 {
        if shadow.hits() == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(shadow.hits(), 20);
    assert_eq!(bookinfo.reviews[0].hits(), 20);
    let hosts = shadow.hosts.lock().unwrap().clone();
    assert!(
        hosts.iter().all(|h| h == "reviews-shadow:9080"),
        "{hosts:?}"
    );
    let hosts = bookinfo.reviews[0].hosts.lock().unwrap().clone();
    assert!(hosts.iter().all(|h| h == "reviews:9080"), "{hosts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_rate_limit_answers_429_beyond_the_rate() {
    let bookinfo = Bookinfo::start().await;
    let mut route = Route::forward(Forward::to(cluster(REVIEWS, Some("v1"))));
    route.rate_limit = Some(LocalRateLimit {
        total: Some(Limit {
            requests_per_second: 5,
        }),
        ..Default::default()
    });
    let client = routed(&bookinfo, vec![vhost("reviews", REVIEWS, vec![route])]);
    let counts = tally(&client, "http://reviews:9080/", 20).await;
    // A token comes back every 200 ms; the burst takes far less.
    assert!((5..=6).contains(&counts["reviews-v1"]), "{counts:?}");
    assert_eq!(counts["reviews-v1"] + counts["429"], 20);
}

/// Each route's limit is its own, in the configuration's table and in a
/// listener's; a new configuration that keeps a route's policy keeps its
/// buckets, one that changes it starts them full. On paused time: no token
/// comes back while the test runs.
#[tokio::test(start_paused = true)]
async fn route_rate_limits_are_per_route_and_outlive_configurations_that_keep_them() {
    let bookinfo = Bookinfo::start().await;
    let limit = |n| LocalRateLimit {
        total: Some(Limit {
            requests_per_second: n,
        }),
        ..Default::default()
    };
    let v1 = cluster(REVIEWS, Some("v1"));
    let limited_route = |n, name: &str| {
        let mut route = Route::forward(Forward::to(v1.clone())).when(RouteMatch {
            path: mesh_core::route::PathMatch {
                kind: StringMatch::Prefix("/limited".into()),
                ignore_case: false,
            },
            ..Default::default()
        });
        route.rate_limit = Some(limit(n));
        route.name = Some(name.into());
        route
    };
    let other = Route::forward(Forward::to(v1.clone()));
    // The configuration's table, and a listener's with its own limited
    // route: both must get their limits.
    let make = |n: u32, name: &str| {
        let hosts = vec![vhost(
            "reviews",
            REVIEWS,
            vec![limited_route(n, name), other.clone()],
        )];
        let listener = RouteTable::new(vec![vhost(
            "ratings",
            RATINGS,
            vec![limited_route(1, "listener's"), other.clone()],
        )])
        .unwrap();
        let base = support::config(hosts);
        let clusters: Vec<Cluster> = base.clusters().cloned().collect();
        MeshConfig::with_listeners(
            base.routes().clone(),
            [("ratings:9080".into(), listener)],
            clusters,
        )
        .unwrap()
    };
    let client = bookinfo.client(make(2, "first"));
    let status = |path: &str| {
        let client = client.clone();
        let uri = format!("http://reviews:9080{path}");
        async move { send(&client, &uri, None).await.unwrap().0.as_u16() }
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status("/limited").await);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    for _ in 0..10 {
        assert_eq!(status("/other").await, 200);
    }
    let through_listener = || async {
        let uri = "http://ratings:9080/limited";
        send(&client, uri, None).await.unwrap().0.as_u16()
    };
    assert_eq!(through_listener().await, 200);
    assert_eq!(through_listener().await, 429);

    // The same policy under another name: the buckets stay (empty).
    client.set_config(make(2, "kept"));
    assert_eq!(status("/limited").await, 429);
    assert_eq!(through_listener().await, 429);
    // A raised limit starts full.
    let raised = make(3, "raised");
    client.set_config(raised.clone());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status("/limited").await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);

    // A configuration made after that one keeping the listener's table and
    // clusters keeps its stacks whole, and their buckets outlive it.
    let listener = raised.listener("ratings:9080").unwrap().clone();
    let shared = raised
        .clusters()
        .map(|c| raised.shared_cluster(&c.name).unwrap().clone());
    let same = MeshConfig::after(
        &raised,
        raised.routes().clone(),
        [("ratings:9080".into(), listener)],
        shared.collect::<Vec<_>>(),
    )
    .unwrap();
    client.set_config(same);
    assert_eq!(through_listener().await, 429);
    client.set_config(make(3, "again"));
    assert_eq!(through_listener().await, 429);
}

/// A cluster without a port of its own (an Istio destination written
/// without one) takes the policy of the port each request goes to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portless_cluster_uses_the_policy_of_the_requests_port() {
    let bookinfo = Bookinfo::start().await;
    let name = istio_cluster_name(REVIEWS, None, Some("v1"));
    let routes = vec![vhost(
        "reviews",
        REVIEWS,
        vec![Route::forward(Forward::to(name.clone()))],
    )];
    let mut cluster = Cluster {
        name,
        discovery: Discovery::Service {
            host: REVIEWS.into(),
            port: None,
        },
        subset: BTreeMap::from([("version".to_string(), "v1".to_string())]),
        policy: Default::default(),
        port_policies: BTreeMap::new(),
    };
    let mut limited = cluster.policy.clone();
    limited.rate_limit = Some(LocalRateLimit {
        total: Some(Limit {
            requests_per_second: 5,
        }),
        ..Default::default()
    });
    cluster.port_policies.insert(9080, limited);
    let table = RouteTable::new(routes).unwrap();
    let client = bookinfo.client(MeshConfig::new(table, [cluster]).unwrap());
    let counts = tally(&client, "http://reviews:9080/", 20).await;
    assert!((5..=6).contains(&counts["reviews-v1"]), "{counts:?}");
    assert_eq!(counts["reviews-v1"] + counts["429"], 20, "{counts:?}");
}

#[tokio::test]
async fn unknown_hosts_pass_through_unless_registry_only() {
    let bookinfo = Bookinfo::start().await;
    let routes = vec![vhost(
        "reviews",
        REVIEWS,
        vec![Route::forward(Forward::to(cluster(REVIEWS, Some("v1"))))],
    )];
    let client = routed(&bookinfo, routes.clone());
    let uri = format!("http://{RATINGS}:9080/");
    let (status, who) = send(&client, &uri, None).await.unwrap();
    assert_eq!((status.as_u16(), who.as_str()), (200, "ratings-v1"));
    let strict: MeshClient<Full<Bytes>> = MeshClient::builder(bookinfo.resolve.clone())
        .config(support::config(routes))
        .registry_only(true)
        .build();
    let (status, body) = send(&strict, &uri, None).await.unwrap();
    assert_eq!(status, 404);
    assert_eq!(body, format!("no route for {RATINGS}:9080/\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hashing_keeps_a_key_on_one_endpoint() {
    use mesh_core::policy::{LoadBalancer, Maglev, RingHash};
    use mesh_core::route::{HashKey, HashPolicy};

    let bookinfo = Bookinfo::start().await;
    for lb in [
        LoadBalancer::RingHash(RingHash::default()),
        LoadBalancer::Maglev(Maglev::default()),
    ] {
        let mut forward = Forward::to(cluster(REVIEWS, None));
        forward.hash_policy.push(HashPolicy {
            key: HashKey::Header(HeaderName::from_static("end-user")),
            terminal: false,
        });
        let mut config = support::config(vec![vhost(
            "reviews",
            REVIEWS,
            vec![Route::forward(forward)],
        )]);
        let mut clusters: Vec<Cluster> = config.clusters().cloned().collect();
        clusters[0].policy.load_balancer = lb;
        config = MeshConfig::new(config.routes().clone(), clusters).unwrap();
        let client: MeshClient<Full<Bytes>> = MeshClient::builder(bookinfo.resolve.clone())
            .config(config)
            .build();
        let mut homes: HashMap<String, String> = HashMap::new();
        for round in 0..5 {
            for user in 0..40 {
                let user = format!("user-{user}");
                let (_, who) = send(&client, "http://reviews:9080/", Some(&user))
                    .await
                    .unwrap();
                match homes.get(&user) {
                    Some(home) => assert_eq!(home, &who, "{lb:?}: {user} moved in round {round}"),
                    None => {
                        homes.insert(user, who);
                    }
                }
            }
        }
        let servers: std::collections::HashSet<_> = homes.values().collect();
        assert_eq!(servers.len(), 3, "{lb:?}: 40 keys spread over {servers:?}");
    }
}
