//! `DnsResolve` against a real DNS server on 127.0.0.1 (never the system
//! resolver or the outside network): A/AAAA with search domains, TTL-driven
//! refresh, failures, deleted names, SRV and IP literals. Time is paused:
//! the server runs on the test's runtime, and waits are the TTLs and
//! timeouts themselves, not the machine's speed.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mesh_core::resolve::ResolveState;
use mesh_core::{Authority, EndpointSet, Resolution, Resolve};
use mesh_dns::{DnsConfig, DnsResolve, Outage};
use support::TestDns;
use tokio::time::timeout;

/// A bound on waits for something that should happen within about 1 s
/// (paused time: the bound is never waited out unless the test fails).
const SOON: Duration = Duration::from_secs(5);

fn config(dns: &TestDns) -> DnsConfig {
    DnsConfig {
        name_servers: vec![dns.addr()],
        min_ttl: Duration::from_secs(1),
        failure_refresh: Duration::from_millis(500),
        query_timeout: Duration::from_millis(500),
        query_attempts: 0,
        hosts_file: false,
        ..DnsConfig::default()
    }
}

fn target(s: &str) -> Authority {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn addrs(set: &EndpointSet) -> Vec<SocketAddr> {
    set.iter().map(|e| e.addr).collect()
}

fn socket_addrs(list: &[&str]) -> Vec<SocketAddr> {
    let mut v: Vec<SocketAddr> = list.iter().map(|s| s.parse().unwrap()).collect();
    v.sort();
    v
}

/// Waits for the resolution to become ready with exactly `want`.
async fn until_ready_with(res: &mut Resolution, want: &[SocketAddr]) {
    let wait = async {
        loop {
            if let ResolveState::Ready(set) = res.current()
                && addrs(&set) == want
            {
                return;
            }
            res.changed().await.expect("the resolution stopped");
        }
    };
    if timeout(SOON, wait).await.is_err() {
        panic!("not {want:?} in time; now {:?}", res.current());
    }
}

#[tokio::test(start_paused = true)]
async fn resolves_a_and_aaaa_with_the_port_and_through_search_domains() {
    let dns = TestDns::start().await;
    dns.set_addresses("reviews", 30, &ips(&["10.0.0.1", "10.0.0.2", "fd00::1"]))
        .await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let want = socket_addrs(&["10.0.0.1:9080", "10.0.0.2:9080", "[fd00::1]:9080"]);

    let mut full = resolve.resolve(&target("reviews.default.svc.cluster.local:9080"));
    let set = timeout(SOON, full.ready()).await.unwrap().unwrap();
    assert_eq!(addrs(&set), want);
    assert!(set.iter().all(|e| e.weight == 1));

    let mut short = resolve.resolve(&target("reviews:9080"));
    let set = timeout(SOON, short.ready()).await.unwrap().unwrap();
    assert_eq!(addrs(&set), want);

    let mut other_port = resolve.resolve(&target("reviews:15000"));
    let set = timeout(SOON, other_port.ready()).await.unwrap().unwrap();
    assert!(set.iter().all(|e| e.addr.port() == 15000));
}

#[tokio::test(start_paused = true)]
async fn record_changes_arrive_when_the_ttl_runs_out() {
    let dns = TestDns::start().await;
    dns.set_addresses("ratings", 1, &ips(&["10.0.1.1", "10.0.1.2"]))
        .await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let mut res = resolve.resolve(&target("ratings:9080"));
    let set = timeout(SOON, res.ready()).await.unwrap().unwrap();
    assert_eq!(
        addrs(&set),
        socket_addrs(&["10.0.1.1:9080", "10.0.1.2:9080"])
    );

    // One address added, one removed; nobody sends a request.
    dns.set_addresses("ratings", 1, &ips(&["10.0.1.2", "10.0.1.3"]))
        .await;
    let started = tokio::time::Instant::now();
    until_ready_with(&mut res, &socket_addrs(&["10.0.1.2:9080", "10.0.1.3:9080"])).await;
    // At the refresh the TTL (1 s) called for.
    assert_eq!(started.elapsed(), Duration::from_secs(1));

    // Nothing changes in DNS: nothing is sent, although refreshes go on.
    assert!(
        timeout(Duration::from_secs(60), res.changed())
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_server_keeps_the_last_good_set() {
    let mut dns = TestDns::start().await;
    dns.set_addresses("details", 1, &ips(&["10.0.2.1", "10.0.2.2"]))
        .await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let mut res = resolve.resolve(&target("details:9080"));
    let first = timeout(SOON, res.ready()).await.unwrap().unwrap();

    dns.stop().await;
    dns.set_addresses("details", 1, &ips(&["10.0.2.1"])).await;

    // TTL 1 s, then failed refreshes every 0.5 s: no new state.
    assert!(
        timeout(Duration::from_secs(60), res.changed())
            .await
            .is_err()
    );
    match res.current() {
        ResolveState::Ready(set) => assert_eq!(set, first),
        other => panic!("expected the last good set, got {other:?}"),
    }
    // A new resolution of the same target joins it and sees the same set.
    let mut again = resolve.resolve(&target("details:9080"));
    assert_eq!(again.ready().await.unwrap(), first);
}

/// Waits for the resolution to fail, and returns why.
async fn until_failed(res: &mut Resolution) -> String {
    let wait = async {
        loop {
            if let ResolveState::Failed(e) = res.current() {
                return e.to_string();
            }
            res.changed().await.expect("the resolution stopped");
        }
    };
    match timeout(Duration::from_secs(60), wait).await {
        Ok(reason) => reason,
        Err(_) => panic!("still {:?}", res.current()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_deleted_name_stops_resolving() {
    let dns = TestDns::start().await;
    dns.set_addresses("details", 5, &ips(&["10.0.5.1"])).await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let mut short = resolve.resolve(&target("details:9080"));
    let mut full = resolve.resolve(&target("details.default.svc.cluster.local:9080"));
    timeout(SOON, short.ready()).await.unwrap().unwrap();
    timeout(SOON, full.ready()).await.unwrap().unwrap();

    // The Service is deleted: NXDOMAIN at the next refresh (the TTL, 5 s).
    dns.set_addresses("details", 5, &[]).await;
    let started = tokio::time::Instant::now();
    let reason = until_failed(&mut full).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert!(
        reason.starts_with(
            "cannot resolve details.default.svc.cluster.local:9080: \
             the name no longer resolves: no such name (NXDOMAIN)"
        ),
        "{reason}"
    );
    // Every search candidate of the short name is answered NXDOMAIN.
    let reason = until_failed(&mut short).await;
    assert!(
        reason.starts_with("cannot resolve details:9080: the name no longer resolves"),
        "{reason}"
    );
    // A new resolution joins the failed one; the name's return ends it.
    let mut again = resolve.resolve(&target("details:9080"));
    assert!(again.ready().await.is_err());
    dns.set_addresses("details", 5, &ips(&["10.0.5.2"])).await;
    until_ready_with(&mut short, &socket_addrs(&["10.0.5.2:9080"])).await;
}

#[tokio::test(start_paused = true)]
async fn a_name_left_without_addresses_stops_resolving() {
    let dns = TestDns::start().await;
    dns.set_addresses("ratings", 5, &ips(&["10.0.6.1"])).await;
    // The name keeps other records: its address query is answered with
    // NOERROR and no records.
    dns.set_srv("ratings", 5, &[(0, 1, 9080, "ratings")]).await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let mut res = resolve.resolve(&target("ratings.default.svc.cluster.local:9080"));
    timeout(SOON, res.ready()).await.unwrap().unwrap();
    dns.set_addresses("ratings", 5, &[]).await;
    let reason = until_failed(&mut res).await;
    assert!(
        reason.contains("the name no longer resolves: no A/AAAA records"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_fails_or_refuses_keeps_the_last_good_set() {
    let dns = TestDns::start().await;
    dns.set_addresses("reviews", 1, &ips(&["10.0.7.1", "10.0.7.2"]))
        .await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let mut res = resolve.resolve(&target("reviews:9080"));
    let first = timeout(SOON, res.ready()).await.unwrap().unwrap();
    for outage in [Outage::ServerFailure, Outage::Refused] {
        dns.set_outage(Some(outage));
        // Refreshes every 0.5 s get no answer: nothing is sent.
        assert!(
            timeout(Duration::from_secs(60), res.changed())
                .await
                .is_err()
        );
        match res.current() {
            ResolveState::Ready(set) => assert_eq!(set, first, "{outage:?}"),
            other => panic!("{outage:?}: expected the last good set, got {other:?}"),
        }
    }
    // Answers again: a change made meanwhile arrives.
    dns.set_addresses("reviews", 1, &ips(&["10.0.7.3"])).await;
    dns.set_outage(None);
    until_ready_with(&mut res, &socket_addrs(&["10.0.7.3:9080"])).await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_name_fails_naming_the_host_and_the_cause() {
    let dns = TestDns::start().await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();

    let mut res = resolve.resolve(&target("nope.default.svc.cluster.local:9080"));
    let err = timeout(SOON, res.ready()).await.unwrap().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("nope.default.svc.cluster.local:9080"),
        "{text}"
    );
    assert!(text.contains("NXDOMAIN"), "{text}");
    assert!(
        text.ends_with(&format!("(name servers: {})", dns.addr())),
        "{text}"
    );
    assert_eq!(err.target(), "nope.default.svc.cluster.local:9080");
}

#[tokio::test(start_paused = true)]
async fn a_name_with_no_addresses_fails_with_no_records() {
    let dns = TestDns::start().await;
    // The name exists (it has SRV records) but has no A/AAAA records.
    dns.set_srv("empty", 30, &[(10, 1, 80, "somewhere")]).await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let err = timeout(
        SOON,
        resolve
            .resolve(&target("empty.default.svc.cluster.local:80"))
            .ready(),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains("no A/AAAA records"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_name_that_appears_later_switches_to_ready() {
    let dns = TestDns::start().await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let mut res = resolve.resolve(&target("late:9080"));
    let err = timeout(SOON, res.ready()).await.unwrap().unwrap_err();
    assert!(err.to_string().contains("late:9080"), "{err}");

    dns.set_addresses("late", 1, &ips(&["10.0.3.1"])).await;
    until_ready_with(&mut res, &socket_addrs(&["10.0.3.1:9080"])).await;
}

#[tokio::test(start_paused = true)]
async fn srv_records_give_ports_and_weights() {
    let dns = TestDns::start().await;
    dns.set_srv(
        "_http._tcp.reviews",
        30,
        &[
            (10, 60, 9080, "reviews-v1"),
            (10, 20, 9081, "reviews-v2"),
            (20, 100, 9999, "reviews-backup"),
        ],
    )
    .await;
    dns.set_addresses("reviews-v1", 30, &ips(&["10.1.0.1"]))
        .await;
    dns.set_addresses("reviews-v2", 30, &ips(&["10.1.0.2", "10.1.0.3"]))
        .await;
    dns.set_addresses("reviews-backup", 30, &ips(&["10.9.9.9"]))
        .await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();

    // The authority's port is not used: SRV records carry the ports.
    let mut res = resolve.resolve(&target("_http._tcp.reviews.default.svc.cluster.local:80"));
    let set = timeout(SOON, res.ready()).await.unwrap().unwrap();
    let got: Vec<(SocketAddr, u32)> = set.iter().map(|e| (e.addr, e.weight)).collect();
    assert_eq!(
        got,
        [
            ("10.1.0.1:9080".parse().unwrap(), 60),
            ("10.1.0.2:9081".parse().unwrap(), 20),
            ("10.1.0.3:9081".parse().unwrap(), 20),
        ]
    );

    // The short form goes through the search domains too.
    let mut short = resolve.resolve(&target("_http._tcp.reviews:80"));
    assert_eq!(timeout(SOON, short.ready()).await.unwrap().unwrap(), set);
}

#[tokio::test(start_paused = true)]
async fn srv_falls_back_to_the_next_priority_without_addresses() {
    let dns = TestDns::start().await;
    dns.set_srv(
        "_grpc._tcp.ratings",
        30,
        &[(0, 5, 9090, "gone"), (1, 7, 9091, "ratings-backup")],
    )
    .await;
    dns.set_addresses("ratings-backup", 30, &ips(&["10.2.0.1"]))
        .await;
    let resolve = DnsResolve::new(config(&dns)).unwrap();
    let set = timeout(
        SOON,
        resolve
            .resolve(&target("_grpc._tcp.ratings.default.svc.cluster.local:1"))
            .ready(),
    )
    .await
    .unwrap()
    .unwrap();
    let got: Vec<(SocketAddr, u32)> = set.iter().map(|e| (e.addr, e.weight)).collect();
    assert_eq!(got, [("10.2.0.1:9091".parse().unwrap(), 7)]);
}

#[tokio::test(start_paused = true)]
async fn srv_can_be_turned_off() {
    let dns = TestDns::start().await;
    dns.set_srv("_http._tcp.web", 30, &[(0, 1, 8080, "web-1")])
        .await;
    dns.set_addresses("_http._tcp.web", 30, &ips(&["10.3.0.1"]))
        .await;
    let resolve = DnsResolve::new(DnsConfig {
        srv: false,
        ..config(&dns)
    })
    .unwrap();
    let set = timeout(
        SOON,
        resolve
            .resolve(&target("_http._tcp.web.default.svc.cluster.local:80"))
            .ready(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(addrs(&set), socket_addrs(&["10.3.0.1:80"]));
}

#[tokio::test(start_paused = true)]
async fn ip_literals_need_no_dns() {
    // A name server that would see any query: nothing may arrive.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let resolve = DnsResolve::new(DnsConfig {
        name_servers: vec![silent.local_addr().unwrap()],
        hosts_file: false,
        ..DnsConfig::default()
    })
    .unwrap();

    let set = resolve
        .resolve(&target("10.0.0.7:9080"))
        .ready()
        .await
        .unwrap();
    assert_eq!(addrs(&set), socket_addrs(&["10.0.0.7:9080"]));
    let set = resolve
        .resolve(&target("[fd00::7]:443"))
        .ready()
        .await
        .unwrap();
    assert_eq!(addrs(&set), socket_addrs(&["[fd00::7]:443"]));

    let mut buf = [0u8; 512];
    let got = timeout(Duration::from_secs(60), silent.recv_from(&mut buf)).await;
    assert!(got.is_err(), "a query was sent for an IP literal");
}

#[test]
fn invalid_configs_are_errors() {
    let err = DnsResolve::new(DnsConfig {
        name_servers: vec!["127.0.0.1:53".parse().unwrap()],
        min_ttl: Duration::from_secs(10),
        max_ttl: Duration::from_secs(1),
        ..DnsConfig::default()
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid DNS configuration: max_ttl must not be less than min_ttl"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_name_server_is_not_asked_every_search_name() {
    // A name server that never answers: after the first name times out, the
    // other search-domain candidates are not tried.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let resolve = DnsResolve::new(DnsConfig {
        name_servers: vec![silent.local_addr().unwrap()],
        query_timeout: Duration::from_millis(200),
        query_attempts: 0,
        hosts_file: false,
        ..DnsConfig::default()
    })
    .unwrap();
    let names: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>> =
        Default::default();
    let listener = tokio::spawn({
        let names = names.clone();
        async move {
            let mut buf = [0u8; 512];
            while let Ok((n, _)) = silent.recv_from(&mut buf).await {
                if let Ok(msg) = hickory_resolver::proto::op::Message::from_vec(&buf[..n]) {
                    let mut names = names.lock().unwrap();
                    names.extend(msg.queries.iter().map(|q| q.name().to_string()));
                }
            }
        }
    });
    let err = resolve
        .resolve(&target("reviews:9080"))
        .ready()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timeout"), "{err}");
    listener.abort();
    // Every query was sent, and so received, before the lookup timed out.
    let names = names.lock().unwrap().clone();
    assert!(!names.is_empty());
    assert!(
        names
            .iter()
            .all(|n| n == "reviews.default.svc.cluster.local."),
        "{names:?}"
    );
}
