//! How DestinationRules become cluster policies: balancers, hashing on the
//! routes, pools, ejection, and Istio's merge of host, subset and port
//! policies.

use std::time::Duration;

use super::*;
use mesh_core::policy::{
    ClusterPolicy, LoadBalancer, Maglev, OutlierDetection, Protocol, RingHash,
};
use mesh_core::route::{HashKey, HashPolicy};

const RULE: &str = r#"---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 100, idleTimeout: 30s, h2UpgradePolicy: UPGRADE}
    outlierDetection: {consecutive5xxErrors: 0, consecutiveGatewayErrors: 3, baseEjectionTime: 1m, maxEjectionPercent: 50}
    retryBudget: {percent: {value: 30}}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 131}}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpCookie: {name: session}}
      portLevelSettings:
      - port: {number: 9080}
        connectionPool: {http: {http2MaxRequests: 7}}
"#;

#[test]
fn host_subset_and_port_policies_merge_as_in_istio() {
    let c = config(
        &(vs(
            "  http:\n  - match: [{uri: {prefix: /1}}]\n    route: [{destination: {host: reviews, subset: v1}}]\n  - match: [{uri: {prefix: /2}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match: [{uri: {prefix: /3}}]\n    route: [{destination: {host: reviews, subset: v3, port: {number: 9080}}}]\n  - route: [{destination: {host: reviews, port: {number: 9080}}}]\n",
        ) + RULE),
    );
    let v1 = cluster_of(&c, V1);
    assert_eq!(v1.port_for(1), Some(1));
    assert_eq!(v1.policy.load_balancer, LoadBalancer::RoundRobin);
    assert_eq!(
        v1.policy.connection.connect_timeout,
        Duration::from_millis(250)
    );
    assert_eq!(v1.policy.connection.idle_timeout, Duration::from_secs(30));
    assert_eq!(v1.policy.connection.protocol, Protocol::Http2);
    assert_eq!(v1.policy.circuit_breakers.max_pending_requests, 10);
    assert_eq!(v1.policy.circuit_breakers.max_requests, 100);
    assert_eq!(v1.policy.outlier.consecutive_5xx, None);
    assert_eq!(v1.policy.outlier.consecutive_gateway_errors, Some(3));
    assert_eq!(
        v1.policy.outlier.base_ejection_time,
        Duration::from_secs(60)
    );
    assert_eq!(v1.policy.outlier.max_ejection_percent, 50);
    assert!((v1.policy.retry.budget.retry_ratio - 0.3).abs() < 1e-6);
    // Requests to 9080 take that port's settings, which replace the
    // balancer, pool and ejection parts whole; the retry budget stays.
    let v1_9080 = v1.policy_for(9080);
    assert_eq!(v1.port_policies.keys().collect::<Vec<_>>(), [&9080]);
    assert_eq!(v1_9080.load_balancer, LoadBalancer::Random);
    assert_eq!(v1_9080.circuit_breakers.max_requests, u32::MAX);
    assert_eq!(v1_9080.outlier, OutlierDetection::disabled());
    assert!((v1_9080.retry.budget.retry_ratio - 0.3).abs() < 1e-6);
    assert_eq!(v1.policy_for(9081), &v1.policy);

    // The subset's balancer replaces the host's; the rest is inherited.
    let v2 = cluster_of(&c, V2);
    assert_eq!(
        v2.policy.load_balancer,
        LoadBalancer::Maglev(Maglev { table_size: 131 })
    );
    assert_eq!(v2.policy.circuit_breakers.max_requests, 100);
    assert_eq!(
        forward(&c, "http://reviews/2", &[]).hash_policy,
        [HashPolicy {
            key: HashKey::Header("x-user".parse().expect("name")),
            terminal: false
        }]
    );
    assert!(forward(&c, "http://reviews/1", &[]).hash_policy.is_empty());

    // A port's settings replace its policy whole: the subset's entry for
    // 9080 leaves nothing of the host's pool, nor of the subset's balancer.
    let v3 = cluster_of(&c, "outbound|9080|v3|reviews.default.svc.cluster.local");
    assert_eq!(v3.port_for(1), Some(9080));
    assert_eq!(v3.policy.circuit_breakers.max_requests, 7);
    assert_eq!(v3.policy.circuit_breakers.max_pending_requests, u32::MAX);
    assert_eq!(
        v3.policy.connection.connect_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(v3.policy.load_balancer, LoadBalancer::LeastRequest);
    assert!(forward(&c, "http://reviews/3", &[]).hash_policy.is_empty());
    let c3 =
        config(&(vs("  http:\n  - route: [{destination: {host: reviews, subset: v3}}]\n") + RULE));
    let v3 = cluster_of(&c3, "outbound||v3|reviews.default.svc.cluster.local");
    assert_eq!(
        v3.policy.load_balancer,
        LoadBalancer::RingHash(RingHash::default())
    );
    // The subset's own entry for 9080 replaces the policy whole there.
    let v3_9080 = v3.policy_for(9080);
    assert_eq!(v3_9080.load_balancer, LoadBalancer::LeastRequest);
    assert_eq!(v3_9080.circuit_breakers.max_requests, 7);
    assert_eq!(
        forward(&c3, "http://reviews/", &[]).hash_policy[0].key,
        HashKey::Cookie("session".into())
    );
    let whole = cluster_of(&c, "outbound|9080||reviews.default.svc.cluster.local");
    assert_eq!(whole.policy.load_balancer, LoadBalancer::Random);
    assert!(whole.subset.is_empty());
}

#[test]
fn port_settings_apply_to_destinations_without_a_port() {
    // Bookinfo's usual shape: routes name no port, the rule sets one port.
    let rule = DR.replace(
        "  host: reviews\n",
        "  host: reviews\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 9080}\n      loadBalancer: {simple: ROUND_ROBIN}\n      outlierDetection: {consecutive5xxErrors: 7}\n",
    );
    let c =
        config(&(vs("  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n") + &rule));
    let v1 = cluster_of(&c, V1);
    let p = v1.policy_for(9080);
    assert_eq!(p.load_balancer, LoadBalancer::RoundRobin);
    assert_eq!(p.outlier.consecutive_5xx, Some(7));
    // Other ports keep the host's (here Istio's default) policy.
    assert_eq!(
        v1.policy_for(8080).load_balancer,
        LoadBalancer::LeastRequest
    );
    assert_eq!(v1.policy_for(8080).outlier, OutlierDetection::disabled());

    // A port hashing on another key than the host: a route has one hash
    // policy for both, so it gets none.
    let hashing = DR.replace(
        "  host: reviews\n",
        "  host: reviews\n  trafficPolicy:\n    loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n    portLevelSettings:\n    - port: {number: 9080}\n      loadBalancer: {consistentHash: {useSourceIp: true}}\n",
    );
    let (c, warnings) = convert(
        &(vs("  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n") + &hashing),
    );
    assert!(forward(&c, "http://reviews/", &[]).hash_policy.is_empty());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .message
            .contains("(httpHeaderName x-user, useSourceIp)"),
        "{}",
        warnings[0]
    );

    // A port's entry needs a port.
    let e = error(
        &(vs("  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n")
            + &rule.replace("port: {number: 9080}", "port: {number: 0}")),
    );
    assert!(
        e.starts_with("test.yaml, document 2 (DestinationRule default/reviews), line 16, spec.trafficPolicy.portLevelSettings[0].port.number: port 0 is out of range"),
        "{e}"
    );
}

#[test]
fn what_no_policy_sets_takes_istios_defaults() {
    // No outlier detection and least requests, as istiod configures a
    // cluster nothing sets them for; not the library's defaults.
    let c = config(
        &(vs(
            "  http:\n  - match: [{uri: {prefix: /r}}]\n    route: [{destination: {host: ratings}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
        ) + DR),
    );
    for name in [V1, "outbound|||ratings.default.svc.cluster.local"] {
        let p = &cluster_of(&c, name).policy;
        assert_eq!(p.outlier, OutlierDetection::disabled(), "{name}");
        assert_eq!(p.load_balancer, LoadBalancer::LeastRequest, "{name}");
        assert_ne!(p, &ClusterPolicy::default(), "{name}");
    }
    // An outlierDetection block takes Envoy's defaults for what it leaves
    // out; UNSPECIFIED is Istio's default balancer.
    let rule = DR.replace(
        "  host: reviews\n",
        "  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: UNSPECIFIED}\n    outlierDetection: {baseEjectionTime: 1m}\n",
    );
    let c =
        config(&(vs("  http:\n  - route: [{destination: {host: reviews, subset: v1}}]\n") + &rule));
    let p = &cluster_of(&c, V1).policy;
    assert_eq!(p.outlier.consecutive_5xx, Some(5));
    assert_eq!(p.outlier.base_ejection_time, Duration::from_secs(60));
    assert_eq!(p.load_balancer, LoadBalancer::LeastRequest);
}

#[test]
fn hash_policies_go_on_every_route_to_the_host() {
    let rule = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 2048}}\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";
    let c = config(
        &(vs(
            "  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 90}\n    - {destination: {host: reviews, subset: v2}, weight: 10}\n",
        ) + rule),
    );
    let source_ip = HashPolicy {
        key: HashKey::SourceIp,
        terminal: false,
    };
    assert_eq!(
        forward(&c, "http://reviews/", &[]).hash_policy,
        std::slice::from_ref(&source_ip)
    );
    assert_eq!(
        cluster_of(&c, V1).policy.load_balancer,
        LoadBalancer::RingHash(RingHash {
            min_ring_size: 2048,
            ..RingHash::default()
        })
    );
    // A host with a DestinationRule and no VirtualService: its default
    // route carries the hash policy too.
    let c = config(&rule[4..].replace("reviews", "ratings"));
    assert_eq!(
        forward(&c, "http://ratings:9080/", &[]).hash_policy,
        [source_ip]
    );
}

#[test]
fn a_split_whose_clusters_hash_on_different_keys_gets_no_hash_policy() {
    let rule = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}\n  - name: v2\n    labels: {version: v2}\n    trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: session}}}}\n  - {name: v3, labels: {version: v3}}\n";
    let (c, warnings) = convert(
        &(vs(
            "  http:\n  - name: split\n    match: [{uri: {prefix: /split}}]\n    route:\n    - {destination: {host: reviews, subset: v1}, weight: 50}\n    - {destination: {host: reviews, subset: v2}, weight: 50}\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 50}\n    - {destination: {host: reviews, subset: v3}, weight: 50}\n",
        ) + rule),
    );
    // Hashing on both keys would put a request where neither cluster's
    // own key puts it.
    assert!(
        forward(&c, "http://reviews/split", &[])
            .hash_policy
            .is_empty()
    );
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (VirtualService default/reviews), line 10, spec.http[0].route: route \"split\" goes to clusters whose DestinationRules hash requests on different keys (httpHeaderName x-user, httpCookie session); a route has one hash policy, so it gets none and those clusters send each request to a random endpoint"
        ]
    );
    // v3 does not hash, so it does not mind v1's hash policy.
    assert_eq!(
        forward(&c, "http://reviews/", &[]).hash_policy,
        [HashPolicy {
            key: HashKey::Header("x-user".parse().expect("name")),
            terminal: false
        }]
    );
}

#[test]
fn bad_policies_name_their_field() {
    for (policy, want) in [
        (
            "loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 1000}}}",
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: invalid load balancer setting: maglev table size 1000 is not a prime number",
        ),
        (
            "loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}",
            "spec.trafficPolicy.loadBalancer: expected simple or consistentHash, not both",
        ),
        (
            "loadBalancer: {consistentHash: {minimumRingSize: 10}}",
            "spec.trafficPolicy.loadBalancer.consistentHash: expected one of httpHeaderName",
        ),
        (
            "outlierDetection: {maxEjectionPercent: 120}",
            "outlierDetection.maxEjectionPercent: 120 is not a percentage",
        ),
        (
            "connectionPool: {tcp: {connectTimeout: 0s}}",
            "connectionPool.tcp.connectTimeout: expected a duration of at least 1ms",
        ),
        (
            "loadBalancer: {simple: FASTEST}",
            "unknown variant `FASTEST`, expected one of",
        ),
        (
            "loadBalancer: {localityLbSetting: {distribute: [{from: r1/*, to: {r1: 100}}], failover: [{from: r1, to: r2}]}}",
            "spec.trafficPolicy.loadBalancer.localityLbSetting: expected distribute or failover, not both",
        ),
        (
            "loadBalancer: {localityLbSetting: {distribute: [{from: r1/*, to: {r1/a: 60, r1/b: 30}}]}}",
            "localityLbSetting.distribute[0].to: the shares add up to 90, not 100",
        ),
        (
            "loadBalancer: {localityLbSetting: {distribute: [{from: r1/*, to: {r1/*: 50, r1/a: 50}}]}}",
            "r1/a overlaps r1/*",
        ),
        (
            "loadBalancer: {localityLbSetting: {distribute: [{from: \"*/a\", to: {r1: 100}}]}}",
            "distribute[0].from: locality \"*/a\" has a wildcard before its end",
        ),
        (
            "loadBalancer: {localityLbSetting: {distribute: [{from: r1, to: {r1: 100}}, {from: r1/a, to: {r1: 100}}]}}",
            "distribute[1].from: r1/a overlaps r1, an earlier rule's",
        ),
        (
            "loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r1}]}}",
            "failover[0]: from and to must be different regions",
        ),
        (
            "loadBalancer: {localityLbSetting: {failover: [{from: r1/a, to: r2}]}}",
            "failover[0].from: \"r1/a\" is not a region",
        ),
        (
            "loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r2}], failoverPriority: [topology.kubernetes.io/zone]}}",
            "failoverPriority[0]: topology.kubernetes.io/zone cannot be used with failover",
        ),
    ] {
        let yaml = format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r}}\nspec:\n  host: r\n  trafficPolicy:\n    {policy}\n"
        );
        let e = error(&yaml);
        assert!(
            e.contains("test.yaml, document 1 (DestinationRule default/r), line 7"),
            "{e}"
        );
        assert!(e.contains(want), "{want}\n{e}");
    }
}

const REVIEWS: &str = "outbound|||reviews.default.svc.cluster.local";

#[test]
fn locality_settings_are_kept_on_the_policy() {
    let routes = vs(
        "  http:\n  - match: [{uri: {prefix: /1}}]\n    route: [{destination: {host: reviews, subset: v1}}]\n  - route: [{destination: {host: reviews}}]\n",
    );
    let c = config(
        &(routes
            + "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        distribute: [{from: us-east/a/*, to: {us-east/a: 80, us-west: 20}}]\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n      loadBalancer:\n        localityLbSetting:\n          enabled: true\n          failover: [{from: us-east, to: eu-west}]\n          failoverPriority: [topology.istio.io/network, \"env=prod\"]\n"),
    );
    let host = &cluster_of(&c, REVIEWS).policy.locality;
    let [rule] = host.distribute.as_slice() else {
        panic!("{host:?}")
    };
    assert_eq!(rule.from.to_string(), "us-east/a/*");
    let to: Vec<(String, u32)> = rule.to.iter().map(|(l, w)| (l.to_string(), *w)).collect();
    assert_eq!(to, [("us-east/a/*".into(), 80), ("us-west/*".into(), 20)]);
    // The subset's balancer replaces the host's whole, locality included.
    let v1 = &cluster_of(&c, V1).policy.locality;
    assert!(v1.enabled && v1.distribute.is_empty());
    assert_eq!(
        v1.failover,
        [mesh_core::policy::Failover {
            from: "us-east".into(),
            to: "eu-west".into()
        }]
    );
    let labels: Vec<(&str, Option<&str>)> = v1
        .failover_priority
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_deref()))
        .collect();
    assert_eq!(
        labels,
        [("topology.istio.io/network", None), ("env", Some("prod"))]
    );
    let off = config(
        &(vs("  http:\n  - route: [{destination: {host: reviews}}]\n")
            + "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy: {loadBalancer: {localityLbSetting: {enabled: false}}}\n"),
    );
    let p = &cluster_of(&off, REVIEWS).policy;
    assert!(!p.locality.enabled);
}

#[test]
fn unused_settings_are_warned_about() {
    let (_, warnings) = read(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n    loadBalancer: {simple: PASSTHROUGH, localityLbSetting: {enabled: true}}\n    connectionPool: {tcp: {maxConnections: 5}, http: {maxRetries: 3}}\n    outlierDetection: {interval: 10s}\n",
    );
    let paths: Vec<&str> = warnings.iter().map(|w| w.location.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.trafficPolicy.loadBalancer.simple",
            "spec.trafficPolicy.loadBalancer.localityLbSetting",
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "spec.trafficPolicy.connectionPool.http.maxRetries",
            "spec.trafficPolicy.outlierDetection.interval",
            "spec.trafficPolicy.tls",
        ]
    );
    assert_eq!(warnings[5].location.line, Some(7));
}

#[test]
fn a_wildcard_rule_covers_its_hosts() {
    let yaml = vs("  http:\n  - route: [{destination: {host: api.example.com, subset: blue}}]\n")
        + "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: all}\nspec:\n  host: \"*.example.com\"\n  trafficPolicy: {loadBalancer: {simple: LEAST_CONN}}\n  subsets: [{name: blue, labels: {color: blue}}]\n";
    let c = config(&yaml);
    let blue = cluster_of(&c, "outbound||blue|api.example.com");
    assert_eq!(blue.policy.load_balancer, LoadBalancer::LeastRequest);
    assert_eq!(blue.subset["color"], "blue");
    // A wildcard host gets no default route of its own.
    assert_eq!(c.routes().virtual_hosts().len(), 1);
}

#[test]
fn a_wildcard_virtual_service_covers_the_services_under_it() {
    let yaml = vs("  http:\n  - route: [{destination: {host: api.example.com, subset: blue}}]\n")
        .replace("[reviews]", "[\"*.example.com\"]")
        + "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api}\nspec:\n  host: api.example.com\n  subsets: [{name: blue, labels: {color: blue}}]\n";
    let c = config(&yaml);
    // No default route for api.example.com: the wildcard's routes apply.
    assert_eq!(
        cluster(&c, "http://api.example.com/", &[]).as_deref(),
        Some("outbound||blue|api.example.com")
    );
    assert_eq!(c.routes().virtual_hosts().len(), 1);
}

#[test]
fn istio_mutual_tls_is_kept_on_clusters_and_a_subset_may_turn_it_off() {
    let rule = r#"---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, sni: reviews.local, subjectAltNames: ['spiffe://cluster.local/ns/default/sa/reviews']}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: DISABLE}
"#;
    let c = config(
        &(vs(
            "  http:\n  - match: [{uri: {prefix: /2}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
        ) + rule),
    );
    let v1 = c
        .cluster(&ClusterName::new(
            "outbound||v1|reviews.default.svc.cluster.local",
        ))
        .unwrap();
    let tls = v1.policy.tls.as_ref().expect("mutual TLS");
    assert_eq!(tls.sni.as_deref(), Some("reviews.local"));
    assert_eq!(
        tls.subject_alt_names,
        ["spiffe://cluster.local/ns/default/sa/reviews".into()]
    );
    let v2 = c
        .cluster(&ClusterName::new(
            "outbound||v2|reviews.default.svc.cluster.local",
        ))
        .unwrap();
    assert_eq!(tls.files, None, "the mesh's own identities");
    assert_eq!(v2.policy.tls, None);
}

#[test]
fn simple_and_mutual_tls_name_the_clients_files() {
    let rule = r#"---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: SIMPLE, caCertificates: /ca.pem, sni: reviews.example.com}
  - name: v2
    labels: {version: v2}
"#;
    let c = config(
        &(vs(
            "  http:\n  - match: [{uri: {prefix: /2}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
        ) + rule),
    );
    let tls = |subset: &str| {
        let name = format!("outbound||{subset}|reviews.default.svc.cluster.local");
        let cluster = c.cluster(&ClusterName::new(name.as_str())).unwrap();
        cluster.policy.tls.clone().unwrap()
    };
    let simple = tls("v1");
    assert_eq!(simple.sni.as_deref(), Some("reviews.example.com"));
    let files = simple.files.unwrap();
    assert_eq!(files.ca_certificates.as_deref(), Some("/ca.pem"));
    assert_eq!(files.client_certificate, None);
    let mutual = tls("v2");
    // Neither sni nor subjectAltNames: the service's host is sent and
    // checked, as Istio's proxies send the request's host.
    assert_eq!(
        mutual.sni.as_deref(),
        Some("reviews.default.svc.cluster.local")
    );
    let mutual = mutual.files.unwrap();
    assert_eq!(mutual.client_certificate.as_deref(), Some("/c.pem"));
    assert_eq!(mutual.private_key.as_deref(), Some("/k.pem"));
}

#[test]
fn a_maglev_table_the_mesh_clients_refuse_is_warned_about() {
    let dr = DR.replace(
        "  host: reviews\n",
        "  host: reviews\n  trafficPolicy:\n    loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 5000011}}}\n",
    );
    let (_, warnings) = read(&dr);
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings.iter().any(|w| w.contains(
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: the mesh's xDS clients refuse a Maglev table above 131071 slots"
        )),
        "{warnings:?}"
    );
}
