//! Sidecars: which one applies to a workload, and their listeners.

use std::collections::BTreeMap;

use super::*;

fn sidecar(name: &str, namespace: &str, selector: Option<&str>, body: &str) -> String {
    let selector = selector
        .map(|s| format!("  workloadSelector: {{labels: {{app: {s}}}}}\n"))
        .unwrap_or_default();
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{selector}{body}"
    )
}

fn workload(namespace: &str, app: &str) -> Workload {
    Workload {
        namespace: namespace.into(),
        labels: BTreeMap::from([("app".to_owned(), app.to_owned())]),
        ..Workload::default()
    }
}

/// The port of the first ingress listener of the Sidecar for `w`.
fn ingress_port(resources: &Resources, w: &Workload) -> Option<u16> {
    let listeners = resources.sidecar_listeners(w).unwrap()?;
    listeners.ingress.first().map(|i| i.port)
}

#[test]
fn the_most_specific_sidecar_applies() {
    let ingress = |port: u16| {
        format!(
            "  ingress:\n  - port: {{number: {port}, protocol: HTTP, name: http}}\n    defaultEndpoint: 127.0.0.1:8080\n"
        )
    };
    let yaml = [
        sidecar("reviews", "default", Some("reviews"), &ingress(1)),
        sidecar("default", "default", None, &ingress(2)),
        sidecar("mesh", "istio-system", None, &ingress(3)),
    ]
    .concat();
    let (resources, warnings) = read(&yaml);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        ingress_port(&resources, &workload("default", "reviews")),
        Some(1)
    );
    assert_eq!(
        ingress_port(&resources, &workload("default", "ratings")),
        Some(2)
    );
    assert_eq!(
        ingress_port(&resources, &workload("prod", "reviews")),
        Some(3)
    );
    // A selector without labels selects every workload, as istiod has it.
    let everyone = sidecar("everyone", "default", None, &ingress(4))
        .replace("spec:\n", "spec:\n  workloadSelector: {}\n");
    let (resources, warnings) = read(&[everyone, yaml].concat());
    assert_eq!(
        ingress_port(&resources, &workload("default", "ratings")),
        Some(4)
    );
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (Sidecar default/everyone), line 6, spec.workloadSelector: selects by no labels: it applies to every workload in the namespace, ahead of the namespace's Sidecar without a selector"
        ]
    );
    let (none, _) = read(&sidecar("reviews", "default", Some("reviews"), &ingress(1)));
    assert_eq!(
        none.sidecar_listeners(&workload("default", "ratings"))
            .unwrap(),
        None
    );
}

#[test]
fn listeners_are_read_as_istio_writes_them() {
    let body = "  ingress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    bind: 10.0.0.2\n    defaultEndpoint: 0.0.0.0:8080\n    captureMode: NONE\n  egress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    bind: 127.0.0.1\n    hosts: [./reviews.default.svc.cluster.local]\n  - hosts: [./*, istio-system/*, '*/*.example.com', ~/*]\n";
    let (resources, _) = read(&sidecar("s", "default", None, body));
    let l = resources
        .sidecar_listeners(&Workload::default())
        .unwrap()
        .unwrap();
    let i = &l.ingress[0];
    assert_eq!((i.port, i.name.as_str()), (9080, "http"));
    assert_eq!(i.bind, Some("10.0.0.2".parse().unwrap()));
    // The workload's own address is reached on loopback.
    assert_eq!(i.endpoint, "127.0.0.1:8080".parse().unwrap());
    let [named, rest] = l.egress.as_slice() else {
        panic!("{l:?}")
    };
    assert_eq!(
        (named.port, named.bind),
        (Some(9080), Some("127.0.0.1".parse().unwrap()))
    );
    assert!(named.selects("default", "reviews.default.svc.cluster.local"));
    assert!(!named.selects("default", "ratings.default.svc.cluster.local"));
    assert_eq!(rest.port, None);
    assert!(rest.selects("default", "ratings.default.svc.cluster.local"));
    assert!(rest.selects("istio-system", "istiod.istio-system.svc.cluster.local"));
    assert!(rest.selects("web", "api.example.com"));
    assert!(!rest.selects("prod", "ratings.prod.svc.cluster.local"));
}

#[test]
fn bad_sidecars_name_their_field() {
    for (body, want) in [
        (
            "  ingress:\n  - port: {number: 9080, name: http}\n    defaultEndpoint: 10.1.1.1:8080\n",
            "spec.ingress[0].defaultEndpoint: \"10.1.1.1:8080\" is not the workload's address",
        ),
        (
            "  ingress:\n  - port: {number: 9080, name: http}\n    defaultEndpoint: unix:///var/run/app.sock\n",
            "spec.ingress[0].defaultEndpoint: Unix socket endpoints are not supported",
        ),
        (
            "  ingress:\n  - defaultEndpoint: 127.0.0.1:8080\n",
            "spec.ingress[0].port: expected a port",
        ),
        (
            "  egress:\n  - hosts: [reviews]\n",
            "spec.egress[0].hosts[0]: \"reviews\" is not namespace/dnsName",
        ),
        (
            "  egress:\n  - hosts: [./*]\n  - hosts: [istio-system/*]\n",
            "spec.egress[1].port: only one egress listener may leave out its port",
        ),
        (
            "  egress:\n  - port: {number: 80}\n    bind: localhost\n    hosts: [./*]\n",
            "spec.egress[0].bind: \"localhost\" is not an IP address",
        ),
        (
            "  egress:\n  - port: {number: 80}\n    hosts: [./*]\n  - port: {number: 80}\n    bind: 127.0.0.1\n    hosts: [./*]\n",
            "spec.egress[1].port.number: port 80 has an egress listener already",
        ),
        (
            "  ingress:\n  - port: {number: 9080, name: http}\n    defaultEndpoint: 127.0.0.1:8080\n  egress:\n  - port: {number: 9080}\n    hosts: [./*]\n",
            "spec.egress[0].port.number: port 9080 has an ingress listener on the same address",
        ),
    ] {
        let (resources, _) = read(&sidecar("s", "default", None, body));
        let e = resources
            .sidecar_listeners(&Workload::default())
            .expect_err("an error");
        let text = chain(&e);
        assert!(text.contains("Sidecar default/s"), "{text}");
        assert!(text.contains(want), "{want}\n{text}");
    }
    let two = [
        sidecar("a", "default", None, "  egress:\n  - hosts: [./*]\n"),
        sidecar("b", "default", None, "  egress:\n  - hosts: [./*]\n"),
    ]
    .concat();
    let (resources, _) = read(&two);
    let e = chain(
        &resources
            .sidecar_listeners(&Workload::default())
            .expect_err("two defaults"),
    );
    assert!(
        e.contains("a namespace has at most one Sidecar without one"),
        "{e}"
    );
}

#[test]
fn what_a_sidecar_does_not_use_is_warned_about() {
    let body = "  ingress:\n  - port: {number: 9080, name: http}\n    defaultEndpoint: 127.0.0.1:8080\n    captureMode: IPTABLES\n    tls: {mode: SIMPLE}\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n";
    let (_, warnings) = read(&sidecar("s", "default", None, body));
    let paths: Vec<&str> = warnings.iter().map(|w| w.location.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.ingress[0].captureMode",
            "spec.ingress[0].tls",
            "spec.outboundTrafficPolicy"
        ]
    );
}
