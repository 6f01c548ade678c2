//! Priority failover and locality weighting through a real [`Balance`].

use super::*;

fn zoned(port: u16, zone: &str, priority: u32) -> Endpoint {
    Endpoint::new(([127, 0, 0, 1], port).into())
        .with_locality(mesh_core::Locality {
            zone: zone.into(),
            ..Default::default()
        })
        .with_priority(priority)
}

fn with_health(mut e: Endpoint, health: mesh_core::Health) -> Endpoint {
    e.health = health;
    e
}

async fn settle() {
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
}

/// The share of `n` requests that went to `ports`.
async fn share(b: &Balance<Svc>, n: usize, ports: &[u16]) -> f64 {
    let c = counts(b, n, false).await;
    let hits: usize = ports.iter().filter_map(|p| c.get(p)).sum();
    hits as f64 / n as f64
}

#[tokio::test(start_paused = true)]
async fn lower_priorities_take_what_higher_ones_cannot() {
    use mesh_core::Health::{Draining, Unhealthy};
    let resolve = StaticResolve::default();
    let a = |p| zoned(p, "a", 0);
    let b_ = |p| zoned(p, "b", 1);
    resolve.set(&target(), EndpointSet::new([a(1), a(2), b_(3), b_(4)]));
    let b = over(resolve.resolve(&target()));
    b.ready().await;
    assert_eq!(share(&b, 1000, &[1, 2]).await, 1.0, "all to priority 0");
    assert_eq!(b.active_endpoints().len(), 2);

    // One of two draining: priority 0 is 70% healthy (50% × 1.4).
    resolve.set(
        &target(),
        EndpointSet::new([a(1), with_health(a(2), Draining), b_(3), b_(4)]),
    );
    settle().await;
    let p0 = share(&b, 10_000, &[1]).await;
    assert!((p0 - 0.70).abs() < 0.03, "{p0}");

    // None left: everything to priority 1.
    resolve.set(
        &target(),
        EndpointSet::new([
            with_health(a(1), Unhealthy),
            with_health(a(2), Draining),
            b_(3),
            b_(4),
        ]),
    );
    settle().await;
    assert_eq!(share(&b, 1000, &[3, 4]).await, 1.0);

    // Recovered: back to priority 0.
    resolve.set(&target(), EndpointSet::new([a(1), a(2), b_(3), b_(4)]));
    settle().await;
    assert_eq!(share(&b, 1000, &[1, 2]).await, 1.0);
}

#[tokio::test(start_paused = true)]
async fn ejections_count_against_their_priority() {
    let resolve = StaticResolve::default();
    resolve.set(
        &target(),
        EndpointSet::new([
            zoned(1, "a", 0),
            zoned(2, "a", 0),
            zoned(3, "b", 1),
            zoned(4, "b", 1),
        ]),
    );
    let detector = OutlierDetector::new(OutlierDetection {
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    });
    let b = Balance::new(
        resolve.resolve(&target()),
        endpoint(Default::default()),
        LoadBalancer::RoundRobin,
        Some(detector.clone()),
    );
    b.ready().await;
    let eject = |port: u16| {
        let health = detector.endpoint(([127, 0, 0, 1], port).into());
        for _ in 0..5 {
            detector.record(
                &health,
                &mesh_core::Outcome::Failure(mesh_core::FailureKind::ConnectFailure),
            );
        }
    };
    eject(1);
    let p0 = share(&b, 10_000, &[2]).await;
    assert!((p0 - 0.70).abs() < 0.03, "{p0}");
    eject(2);
    assert_eq!(share(&b, 1000, &[3, 4]).await, 1.0);
    // The ejections end; priority 0 takes everything again.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(share(&b, 1000, &[1, 2]).await, 1.0);
}

#[tokio::test(start_paused = true)]
async fn localities_share_by_weight_and_health() {
    let resolve = StaticResolve::default();
    let a = |p| zoned(p, "a", 0).with_locality_weight(1);
    let b_ = |p| zoned(p, "b", 0).with_locality_weight(3);
    resolve.set(&target(), EndpointSet::new([a(1), a(2), b_(3), b_(4)]));
    for policy in [LoadBalancer::default(), LoadBalancer::RoundRobin] {
        let b = Balance::new(
            resolve.resolve(&target()),
            endpoint(Default::default()),
            policy,
            None,
        );
        b.ready().await;
        let zone_b = share(&b, 10_000, &[3, 4]).await;
        assert!((zone_b - 0.75).abs() < 0.03, "{policy:?}: {zone_b}");
    }
    // Half of zone b down: its weight becomes 3 × min(1, 1.4 × ½) = 2.1.
    resolve.set(
        &target(),
        EndpointSet::new([
            a(1),
            a(2),
            b_(3),
            with_health(b_(4), mesh_core::Health::Unhealthy),
        ]),
    );
    let b = over(resolve.resolve(&target()));
    b.ready().await;
    let zone_b = share(&b, 10_000, &[3]).await;
    assert!((zone_b - 2.1 / 3.1).abs() < 0.03, "{zone_b}");
}

#[tokio::test(start_paused = true)]
async fn hash_policies_ignore_locality_weights() {
    use mesh_core::policy::RingHash;
    let resolve = StaticResolve::default();
    let a = |p| zoned(p, "a", 0).with_locality_weight(1);
    let b_ = |p| zoned(p, "b", 0).with_locality_weight(100);
    resolve.set(&target(), EndpointSet::new([a(1), a(2), b_(3), b_(4)]));
    let mut b = Balance::new(
        resolve.resolve(&target()),
        endpoint(Default::default()),
        LoadBalancer::RingHash(RingHash::default()),
        None,
    );
    b.ready().await;
    let mut zone_a = 0;
    for key in 0..1000u64 {
        let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if b.call(hashed(hash)).await.unwrap().port() <= 2 {
            zone_a += 1;
        }
    }
    // Equal endpoint weights: about half the keys, not 1%.
    assert!((400..600).contains(&zone_a), "{zone_a}");
}

#[tokio::test(start_paused = true)]
async fn a_key_keeps_its_endpoint_while_priorities_share_traffic() {
    use mesh_core::policy::Maglev;
    let resolve = StaticResolve::default();
    let mut down = zoned(2, "a", 0);
    down.health = mesh_core::Health::Draining;
    resolve.set(
        &target(),
        EndpointSet::new([zoned(1, "a", 0), down, zoned(3, "b", 1), zoned(4, "b", 1)]),
    );
    let mut b = Balance::new(
        resolve.resolve(&target()),
        endpoint(Default::default()),
        LoadBalancer::Maglev(Maglev::default()),
        None,
    );
    b.ready().await;
    let mut p0 = 0;
    for key in 0..10_000u64 {
        let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let first = b.call(hashed(hash)).await.unwrap();
        assert_eq!(b.call(hashed(hash)).await.unwrap(), first);
        p0 += usize::from(first.port() == 1);
    }
    // The keys still split 70/30 between the levels.
    let p0 = p0 as f64 / 10_000.0;
    assert!((p0 - 0.70).abs() < 0.03, "{p0}");
}
