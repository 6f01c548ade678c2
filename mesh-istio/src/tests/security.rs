//! AuthorizationPolicy as RBAC filters and PeerAuthentication as the mode
//! of a port: which policies apply, how values read, what is refused.

use std::collections::BTreeMap;

use mesh_core::route::StringMatch;
use mesh_core::security::{MtlsMode, Permission, Principal, RbacAction};

use super::{chain, read};
use crate::Workload;

fn workload(namespace: &str, app: Option<&str>) -> Workload {
    Workload {
        namespace: namespace.into(),
        labels: app
            .map(|a| BTreeMap::from([("app".to_owned(), a.to_owned())]))
            .unwrap_or_default(),
        ..Workload::default()
    }
}

const DENY_HEADER: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
    metadata: {name: no-blocked, namespace: default}\n\
    spec:\n  selector: {matchLabels: {app: ratings}}\n  action: DENY\n\
    \x20 rules:\n  - when: [{key: 'request.headers[x-user]', values: [blocked]}]\n";

const ALLOW_READS: &str = "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
    metadata: {name: reads, namespace: istio-system}\n\
    spec:\n  rules:\n  - to: [{operation: {methods: [GET], paths: ['/api/*']}}]\n";

#[test]
fn deny_comes_before_allow_and_selectors_choose_workloads() {
    let (resources, _) = read(&format!("{DENY_HEADER}{ALLOW_READS}"));
    let filters = resources
        .authorization(&workload("default", Some("ratings")))
        .unwrap();
    let actions: Vec<RbacAction> = filters.iter().map(|f| f.action).collect();
    assert_eq!(actions, [RbacAction::Deny, RbacAction::Allow]);
    assert_eq!(filters[0].policies[0].0, "default-no-blocked-0");
    let Principal::Header { name, value } = &filters[0].policies[0].1.principals[0] else {
        panic!("{:?}", filters[0])
    };
    assert_eq!(
        (name.as_str(), value.kind.clone()),
        ("x-user", StringMatch::Exact("blocked".into()))
    );
    // Another workload: only the root namespace's policy.
    let filters = resources.authorization(&workload("default", None)).unwrap();
    assert_eq!(filters.len(), 1);
    assert_eq!(filters[0].policies[0].0, "istio-system-reads-0");
    // Another namespace's workloads: the same.
    let other = resources.authorization(&workload("shop", Some("ratings")));
    assert_eq!(other.unwrap().len(), 1);
}

#[test]
fn values_are_read_as_istio_reads_them() {
    let (resources, _) = read(ALLOW_READS);
    let filters = resources.authorization(&Workload::default()).unwrap();
    let Permission::And(parts) = &filters[0].policies[0].1.permissions[0] else {
        panic!("{:?}", filters[0])
    };
    let [
        Permission::Header {
            name,
            value: method,
        },
        Permission::UrlPath(path),
    ] = parts.as_slice()
    else {
        panic!("{parts:?}")
    };
    assert_eq!(name, ":method");
    assert_eq!(method.kind, StringMatch::Exact("GET".into()));
    assert_eq!(path.kind, StringMatch::Prefix("/api/".into()));
    let yaml = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: peers}\nspec:\n  rules:\n  - from:\n    - source:\n\
        \x20       principals: [cluster.local/ns/default/sa/sleep, '*-admin']\n\
        \x20       notNamespaces: [istio-system]\n    to: [{operation: {hosts: ['*.example.com']}}]\n";
    let (resources, _) = read(yaml);
    let filters = resources.authorization(&Workload::default()).unwrap();
    let policy = &filters[0].policies[0].1;
    let Principal::And(parts) = &policy.principals[0] else {
        panic!("{policy:?}")
    };
    let [Principal::Or(peers), Principal::Not(not)] = parts.as_slice() else {
        panic!("{parts:?}")
    };
    let ids: Vec<_> = peers
        .iter()
        .map(|p| match p {
            Principal::Authenticated(Some(m)) => m.kind.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        [
            StringMatch::Exact("spiffe://cluster.local/ns/default/sa/sleep".into()),
            StringMatch::Suffix("-admin".into())
        ]
    );
    let Principal::Authenticated(Some(ns)) = not.as_ref() else {
        panic!("{not:?}")
    };
    assert!(ns.matches("spiffe://cluster.local/ns/istio-system/sa/ingress"));
    assert!(!ns.matches("spiffe://cluster.local/ns/istio-systems/sa/x"));
    let Permission::Header { name, value } = &policy.permissions[0] else {
        panic!("{policy:?}")
    };
    assert_eq!(name, ":authority");
    assert!(value.matches("API.Example.COM"), "hosts ignore case");
}

#[test]
fn wildcards_stand_for_any_characters_and_a_lone_star_for_any_value() {
    let yaml = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: w}\nspec:\n  action: DENY\n  rules:\n\
        \x20 - from: [{source: {namespaces: [untrusted-*]}}]\n\
        \x20   to: [{operation: {hosts: ['*']}}]\n";
    let (resources, _) = read(yaml);
    let filters = resources.authorization(&Workload::default()).unwrap();
    let policy = &filters[0].policies[0].1;
    let Principal::Authenticated(Some(ns)) = &policy.principals[0] else {
        panic!("{policy:?}")
    };
    assert!(ns.matches("spiffe://cluster.local/ns/untrusted-a/sa/x"));
    assert!(!ns.matches("spiffe://cluster.local/ns/trusted/sa/x"));
    let Permission::Header { value: any, .. } = &policy.permissions[0] else {
        panic!("{policy:?}")
    };
    // Any value present, never the empty prefix Envoy refuses.
    assert!(any.matches("ratings:9080") && !any.matches(""));
    assert!(matches!(any.kind, StringMatch::Regex(_)), "{any:?}");
}

#[test]
fn an_unknown_field_in_a_policy_is_an_error_not_a_wider_rule() {
    // `serviceAccounts` alone would read as a source matching everyone.
    let yaml = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: sa}\nspec:\n  rules:\n  - from: [{source: {serviceAccounts: [default/sleep]}}]\n";
    let e = chain(&crate::parse("authz.yaml", yaml).unwrap_err());
    assert!(
        e.contains("spec.rules[0].from[0].source.serviceAccounts"),
        "{e}"
    );
    assert!(
        e.contains("unknown field: a security policy is enforced whole or refused"),
        "{e}"
    );
    let peer = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
        metadata: {name: p}\nspec: {mtls: {mode: STRICT, strict: true}}\n";
    let e = chain(&crate::parse("peer.yaml", peer).unwrap_err());
    assert!(e.contains("spec.mtls.strict"), "{e}");
    // Elsewhere than the spec, unknown fields stay warnings.
    let labelled = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: ok, uid: '1234'}\nspec: {}\n";
    assert!(crate::parse("authz.yaml", labelled).is_ok());
}

#[test]
fn what_cannot_be_checked_is_refused_by_field() {
    let jwt = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: jwt}\nspec:\n  rules:\n  - when: [{key: 'request.auth.claims[iss]', values: [me]}]\n";
    let e = chain(&read(jwt).0.check_authorization().unwrap_err());
    assert!(e.contains("AuthorizationPolicy default/jwt"), "{e}");
    assert!(e.contains("spec.rules[0].when[0].key"), "{e}");
    assert!(e.contains("request.auth.claims[iss] is not checked"), "{e}");
    let bad_ip = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: ip}\nspec:\n  rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/8, 10.0.0.0/33]}}]\n";
    let e = chain(&read(bad_ip).0.check_authorization().unwrap_err());
    assert!(e.contains("from[0].source.ipBlocks[1]"), "{e}");
    assert!(
        e.contains("\"10.0.0.0/33\" is not an IP address or CIDR block"),
        "{e}"
    );
    let request_principals = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: rp}\nspec:\n  rules:\n  - from: [{source: {requestPrincipals: ['*']}}]\n";
    let (resources, _) = read(request_principals);
    let e = chain(&resources.authorization(&Workload::default()).unwrap_err());
    assert!(e.contains("from[0].source.requestPrincipals"), "{e}");
}

#[test]
fn audit_is_left_out_with_a_warning_and_custom_refused() {
    let audit = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: audit}\nspec:\n  action: AUDIT\n  rules: [{}]\n";
    let (resources, _) = read(audit);
    assert!(
        resources
            .authorization(&Workload::default())
            .unwrap()
            .is_empty()
    );
    let warnings = resources.check_authorization().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].to_string().contains("spec.action"),
        "{}",
        warnings[0]
    );
    let custom = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: ext}\nspec:\n  action: CUSTOM\n  provider: {name: opa}\n  rules: [{}]\n";
    let (resources, _) = read(custom);
    for e in [
        resources.check_authorization().unwrap_err(),
        resources.authorization(&Workload::default()).unwrap_err(),
    ] {
        let e = chain(&e);
        assert!(e.contains("AuthorizationPolicy default/ext"), "{e}");
        assert!(e.contains("spec.action"), "{e}");
        assert!(
            e.contains("CUSTOM hands decisions to an external authorizer"),
            "{e}"
        );
    }
}

#[test]
fn an_allow_policy_without_rules_allows_nothing() {
    let none = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
        metadata: {name: nothing}\nspec: {}\n";
    let filters = read(none).0.authorization(&Workload::default()).unwrap();
    assert_eq!(filters.len(), 1);
    assert_eq!(filters[0].action, RbacAction::Allow);
    assert!(filters[0].policies.is_empty());
}

const MESH_STRICT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
    metadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n";

#[test]
fn the_most_specific_peer_authentication_sets_the_mode() {
    let ratings = workload("default", Some("ratings"));
    assert_eq!(read("").0.mtls_mode(&ratings, 80), MtlsMode::Permissive);
    let (r, _) = read(MESH_STRICT);
    assert_eq!(r.mtls_mode(&ratings, 80), MtlsMode::Strict);
    let own = "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
        metadata: {name: ratings, namespace: default}\n\
        spec:\n  selector: {matchLabels: {app: ratings}}\n  mtls: {mode: UNSET}\n\
        \x20 portLevelMtls: {8080: {mode: DISABLE}}\n";
    let namespace = "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
        metadata: {name: default, namespace: shop}\nspec: {mtls: {mode: PERMISSIVE}}\n";
    let (r, _) = read(&format!("{MESH_STRICT}{own}{namespace}"));
    assert_eq!(r.mtls_mode(&ratings, 8080), MtlsMode::Disable);
    // UNSET inherits.
    assert_eq!(r.mtls_mode(&ratings, 9080), MtlsMode::Strict);
    assert_eq!(
        r.mtls_mode(&workload("shop", None), 9080),
        MtlsMode::Permissive
    );
}

/// Bookinfo locked down: nothing is allowed in the namespace unless a
/// policy says so; the ingress gateway may call productpage, productpage
/// details and reviews, reviews ratings.
const BOOKINFO_POLICIES: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
    metadata: {name: allow-nothing}\nspec: {}\n---\n\
    apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: productpage}\n\
    spec:\n  selector: {matchLabels: {app: productpage}}\n  rules:\n\
    \x20 - from: [{source: {principals: [cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account]}}]\n\
    \x20   to: [{operation: {methods: [GET]}}]\n---\n\
    apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: details}\n\
    spec:\n  selector: {matchLabels: {app: details}}\n  rules:\n\
    \x20 - from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}]\n\
    \x20   to: [{operation: {methods: [GET], paths: ['/details/*']}}]\n---\n\
    apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: reviews}\n\
    spec:\n  selector: {matchLabels: {app: reviews}}\n  rules:\n\
    \x20 - from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}]\n---\n\
    apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ratings}\n\
    spec:\n  selector: {matchLabels: {app: ratings}}\n  rules:\n\
    \x20 - from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-reviews]}}]\n\
    \x20   when: [{key: destination.port, values: ['9080']}]\n";

#[test]
fn bookinfo_locked_down_allows_exactly_its_call_graph() {
    use mesh_core::security::{AccessRequest, Decision, authorize};
    let (resources, _) = read(BOOKINFO_POLICIES);
    let callers = [
        (
            "gateway",
            Some("spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"),
        ),
        (
            "productpage",
            Some("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"),
        ),
        (
            "reviews",
            Some("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"),
        ),
        (
            "ratings",
            Some("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"),
        ),
        ("plain text", None),
    ];
    let callees = [
        ("productpage", "/productpage"),
        ("details", "/details/0"),
        ("reviews", "/reviews/0"),
        ("ratings", "/ratings/0"),
    ];
    let headers = http::HeaderMap::new();
    let mut allowed = Vec::new();
    for (callee, path) in callees {
        let filters = resources
            .authorization(&workload("default", Some(callee)))
            .unwrap();
        for (caller, peer) in callers {
            let request = AccessRequest {
                method: &http::Method::GET,
                authority: "bookinfo:9080",
                path_and_query: path,
                headers: &headers,
                destination_port: 9080,
                peer,
                direct_remote_ip: [10, 0, 0, 1].into(),
                remote_ip: [10, 0, 0, 1].into(),
            };
            match authorize(&filters, &request) {
                Decision::Allow => allowed.push((caller, callee)),
                Decision::Deny { policy } => assert_eq!(policy, None, "{caller} → {callee}"),
            }
        }
    }
    assert_eq!(
        allowed,
        [
            ("gateway", "productpage"),
            ("productpage", "details"),
            ("productpage", "reviews"),
            ("reviews", "ratings"),
        ]
    );
}
