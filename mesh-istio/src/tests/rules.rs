//! Which DestinationRules apply to the client and how those of one host
//! combine: merging, namespaces and workload selectors.

use super::*;
use mesh_core::policy::LoadBalancer;

/// A DestinationRule `name` for `reviews` in `namespace` with `body` under
/// `spec` after `host`.
fn rule(name: &str, namespace: &str, body: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  host: reviews.default.svc.cluster.local\n{body}"
    )
}

const TO_V2: &str = "  http:\n  - match: [{uri: {prefix: /2}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v3}}]\n";

#[test]
fn rules_of_one_host_are_merged_as_istiod_merges_them() {
    let first = rule(
        "reviews",
        "default",
        "  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n",
    );
    let second = rule(
        "reviews-more",
        "default",
        "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets:\n  - {name: v2, labels: {version: other}}\n  - {name: v3, labels: {version: v3}}\n",
    );
    let third = rule(
        "reviews-late",
        "default",
        "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n",
    );
    let (c, warnings) = convert(&(vs(TO_V2) + &first + &second + &third));
    // Subsets are joined; the first definition of a name is kept.
    assert_eq!(cluster_of(&c, V2).subset["version"], "v2");
    let v3 = cluster_of(&c, "outbound||v3|reviews.default.svc.cluster.local");
    assert_eq!(v3.subset["version"], "v3");
    // The first top-level trafficPolicy is the host's, here the second
    // rule's: the first has none.
    assert_eq!(v3.policy.load_balancer, LoadBalancer::Random);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 3 (DestinationRule default/reviews-more), line 27, spec.subsets[0].name: subset \"v2\" of reviews.default.svc.cluster.local is also defined by DestinationRule default/reviews (test.yaml, document 2); istiod keeps the first definition, so this one is not used",
            "test.yaml, document 4 (DestinationRule default/reviews-late), line 35, spec.trafficPolicy: the trafficPolicy of reviews.default.svc.cluster.local is that of DestinationRule default/reviews-more (test.yaml, document 3), the first rule of the host that has one, as istiod merges them; this one is not used",
        ]
    );
}

#[test]
fn the_rules_of_the_clients_namespace_come_first_then_the_services() {
    let own = rule(
        "reviews",
        "default",
        "  subsets: [{name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]\n",
    );
    let client = rule(
        "reviews",
        "prod",
        "  subsets: [{name: v2, labels: {version: prod}}, {name: v3, labels: {version: v3}}]\n",
    );
    let yaml = vs(TO_V2) + &own + &client;
    let (c, warnings) = convert(&yaml);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cluster_of(&c, V2).subset["version"], "v2");
    let prod = Workload {
        namespace: "prod".into(),
        ..Workload::default()
    };
    let c = config_for(&yaml, &prod);
    assert_eq!(cluster_of(&c, V2).subset["version"], "prod");

    // Rules in two namespaces that are neither the client's nor the
    // service's: which one istiod applies depends on its root namespace.
    let e = error(
        &(vs(TO_V2) + &client + &own.replace("namespace: default", "namespace: istio-system")),
    );
    assert_eq!(
        e,
        "test.yaml, document 3 (DestinationRule istio-system/reviews), line 22, spec.host: host reviews.default.svc.cluster.local also has DestinationRule prod/reviews (test.yaml, document 2) in namespace prod; istiod applies the rules of the client's namespace, else of the service's, else of its root namespace, which the client does not know: keep the rules of one host in one namespace"
    );
}

#[test]
fn rules_that_select_workloads() {
    let general = DR.to_owned();
    let selective = DR
        .replace("name: reviews}", "name: reviews-canary}")
        .replace(
            "  host: reviews\n",
            "  host: reviews\n  workloadSelector: {matchLabels: {app: productpage}}\n",
        )
        .replace("version: v2}", "version: canary}");
    let yaml = vs("  http:\n  - route: [{destination: {host: reviews, subset: v2}}]\n")
        + &general
        + &selective;
    let c = config(&yaml);
    assert_eq!(cluster_of(&c, V2).subset["version"], "v2");
    let productpage = Workload {
        labels: [("app".to_owned(), "productpage".to_owned())].into(),
        ..Workload::default()
    };
    let c = config_for(&yaml, &productpage);
    assert_eq!(cluster_of(&c, V2).subset["version"], "canary");

    // A selector applies only to the workloads of its rule's namespace.
    let elsewhere = Workload {
        namespace: "prod".into(),
        ..productpage.clone()
    };
    let c = config_for(&yaml, &elsewhere);
    let v2 = "outbound||v2|reviews.default.svc.cluster.local";
    assert_eq!(cluster_of(&c, v2).subset["version"], "v2");

    // Of two rules selecting the client with different selectors, the
    // first applies.
    let other = selective
        .replace("name: reviews-canary}", "name: reviews-other}")
        .replace("{app: productpage}", "{app: productpage, tier: web}")
        .replace("version: canary}", "version: other}");
    let web = Workload {
        labels: [("app", "productpage"), ("tier", "web")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        ..Workload::default()
    };
    let (resources, _) = read(&(yaml + &other));
    let (c, warnings) = resources.convert(&web).expect("config");
    assert_eq!(cluster_of(&c, V2).subset["version"], "canary");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].to_string().starts_with(
            "test.yaml, document 4 (DestinationRule default/reviews-other), line 33, spec.workloadSelector: DestinationRule default/reviews-canary (test.yaml, document 3) also selects this client"
        ),
        "{}",
        warnings[0]
    );
}

#[test]
fn the_longest_wildcard_covers_a_host() {
    let wildcard = |name: &str, host: &str, color: &str| {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n  host: \"{host}\"\n  subsets: [{{name: blue, labels: {{color: {color}}}}}]\n"
        )
    };
    let yaml = vs(
        "  http:\n  - match: [{uri: {prefix: /a}}]\n    route: [{destination: {host: a.api.example.com, subset: blue}}]\n  - match: [{uri: {prefix: /b}}]\n    route: [{destination: {host: b.example.com, subset: blue}}]\n  - route: [{destination: {host: example.org, subset: blue}}]\n",
    ) + &wildcard("all", "*", "any")
        + &wildcard("com", "*.example.com", "com")
        + &wildcard("api", "*.api.example.com", "api");
    let c = config(&yaml);
    for (host, color) in [
        ("a.api.example.com", "api"),
        ("b.example.com", "com"),
        ("example.org", "any"),
    ] {
        let blue = cluster_of(&c, &format!("outbound||blue|{host}"));
        assert_eq!(blue.subset["color"], color, "{host}");
    }
}

#[test]
fn resources_are_used_only_where_they_are_exported() {
    let prod = Workload {
        namespace: "prod".into(),
        ..Workload::default()
    };
    let staging = Workload {
        namespace: "staging".into(),
        ..Workload::default()
    };
    // A VirtualService in prod, kept to its own namespace.
    let route = vs("  http:\n  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}}]\n  exportTo: [.]\n")
        .replace("{name: reviews}", "{name: reviews, namespace: prod}")
        .replace("[reviews]", "[reviews.default.svc.cluster.local]");
    let yaml = route.clone() + DR;
    let whole = "outbound|||reviews.default.svc.cluster.local";
    let uri = "http://reviews.default/";
    assert_eq!(
        cluster(&config_for(&yaml, &prod), uri, &[]).as_deref(),
        Some(V1)
    );
    // Elsewhere only the DestinationRule's default route applies.
    assert_eq!(cluster(&config(&yaml), uri, &[]).as_deref(), Some(whole));
    for (export_to, in_staging) in [("[\"*\"]", true), ("[staging, qa]", true), ("[qa]", false)] {
        let yaml = route.replace("exportTo: [.]", &format!("exportTo: {export_to}")) + DR;
        let want = if in_staging { V1 } else { whole };
        let c = config_for(&yaml, &staging);
        assert_eq!(cluster(&c, uri, &[]).as_deref(), Some(want), "{export_to}");
    }

    // A DestinationRule kept to its own namespace defines no subset for
    // clients elsewhere.
    let rule = DR.replace("  host: reviews\n", "  host: reviews\n  exportTo: [.]\n");
    let yaml = route.replace("exportTo: [.]", "exportTo: [\"*\"]") + &rule;
    assert_eq!(cluster(&config(&yaml), uri, &[]).as_deref(), Some(V1));
    let (resources, _) = read(&yaml);
    let e = resources.convert(&prod).expect_err("no subset v1 in prod");
    assert!(
        e.to_string().ends_with("subset \"v1\" of reviews.default.svc.cluster.local is not defined: no DestinationRule has host reviews.default.svc.cluster.local"),
        "{e}"
    );
}
