//! Gateways: which proxies implement them, and the routes a gateway proxy
//! gets from the VirtualServices bound to them.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::{ServerTLSMode, TLSProtocol};
use mesh_core::policy::Pem;

/// The Gateway `ingress` of `default` for the proxies labelled
/// `istio: ingressgateway`, serving every host on port 8080 and
/// `*.example.com` with TLS on 8443.
const INGRESS: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ingress}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['*']\n  - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: ['*.example.com']\n    tls: {mode: SIMPLE, serverCertificate: /certs/example.pem, privateKey: /certs/example.key}\n";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A gateway proxy in `default` implementing `gateways`.
fn gateway(gateways: &[&str]) -> Workload {
    Workload {
        labels: labels(&[("istio", "ingressgateway")]),
        gateways: gateways.iter().map(|g| (*g).to_owned()).collect(),
        ..Workload::default()
    }
}

/// The configuration of `yaml` for `workload` and the warnings of
/// converting it.
fn convert_for(yaml: &str, workload: &Workload) -> (MeshConfig, Vec<String>) {
    let (resources, _) = read(yaml);
    let (c, warnings) = resources
        .convert(workload)
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    (c, warnings.iter().map(ToString::to_string).collect())
}

/// A VirtualService `name` of `default` with `hosts` and `gateways`
/// sending everything to `subset` of reviews.
fn bound_vs(name: &str, hosts: &str, gateways: &str, subset: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: {hosts}\n  gateways: {gateways}\n  http:\n  - route: [{{destination: {{host: reviews, subset: {subset}}}}}]\n"
    )
}

#[test]
fn a_gateway_is_read_whole() {
    let (resources, warnings) = read(&format!(
        "{INGRESS}  - port: {{number: 80, name: redirect, protocol: HTTP, targetPort: 8081}}\n    name: plain\n    bind: 0.0.0.0\n    hosts: [prod/app.example.com]\n    tls: {{httpsRedirect: true, minProtocolVersion: TLSV1_2}}\n    colour: blue\n"
    ));
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (Gateway default/ingress), line 17, spec.servers[2].colour: unknown field; ignored",
            "test.yaml, document 1 (Gateway default/ingress), line 14, spec.servers[2].bind: the gateway's listeners bind the proxy's own address; ignored",
        ]
    );
    let gw = &resources.gateways[0].resource;
    assert_eq!(gw.qualified_name(), "default/ingress");
    assert_eq!(gw.spec.selector, labels(&[("istio", "ingressgateway")]));
    let servers = &gw.spec.servers;
    assert_eq!(servers.len(), 3);
    let port = servers[0].port.as_ref().expect("a port");
    assert_eq!((port.number, port.name.as_str()), (8080, "http"));
    assert_eq!(port.protocol, "HTTP");
    let tls = servers[1].tls.as_ref().expect("TLS");
    assert_eq!(tls.mode, Some(ServerTLSMode::Simple));
    assert_eq!(tls.server_certificate, "/certs/example.pem");
    let plain = &servers[2];
    assert_eq!(plain.port.as_ref().unwrap().target_port, 8081);
    assert_eq!(
        (plain.name.as_str(), plain.bind.as_str()),
        ("plain", "0.0.0.0")
    );
    assert_eq!(plain.hosts, ["prod/app.example.com"]);
    let tls = plain.tls.as_ref().unwrap();
    assert!(tls.https_redirect);
    assert_eq!(tls.min_protocol_version, Some(TLSProtocol::V1_2));
    // The Kubernetes Gateway API's Gateway is another kind.
    let (resources, warnings) = read(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: k8s}\nspec: {}\n",
    );
    assert!(resources.gateways.is_empty());
    assert!(
        warnings[0].message.contains("is not Istio's"),
        "{warnings:?}"
    );
}

#[test]
fn a_proxy_implements_the_gateways_its_labels_select() {
    let (resources, _) = read(&format!(
        "{INGRESS}---\napiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {{name: egress, namespace: istio-system}}\nspec:\n  selector: {{istio: egressgateway}}\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['*']}}]\n---\napiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {{name: everywhere, namespace: edge}}\nspec:\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['*']}}]\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: canary}}\nspec:\n  selector: {{istio: ingressgateway, track: canary}}\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['*']}}]\n"
    ));
    let names = |pairs: &[(&str, &str)]| -> Vec<String> {
        resources
            .gateways_for(&labels(pairs))
            .iter()
            .map(|g| g.resource.qualified_name())
            .collect()
    };
    // In any namespace; one without a selector is every gateway's.
    assert_eq!(
        names(&[("istio", "ingressgateway"), ("app", "x")]),
        ["default/ingress", "edge/everywhere"]
    );
    assert_eq!(
        names(&[("istio", "ingressgateway"), ("track", "canary")]),
        ["default/ingress", "edge/everywhere", "default/canary"]
    );
    assert_eq!(
        names(&[("istio", "egressgateway")]),
        ["istio-system/egress", "edge/everywhere"]
    );
    assert_eq!(names(&[]), ["edge/everywhere"]);
}

#[test]
fn a_virtual_service_bound_to_a_gateway_applies_only_to_its_proxies() {
    let yaml = format!(
        "{INGRESS}{}{}{}{DR}",
        bound_vs("edge", "[reviews]", "[ingress]", "v2"),
        bound_vs(
            "both",
            "[both.example.com]",
            "[mesh, default/ingress]",
            "v1"
        ),
        bound_vs("sidecars", "[sidecars.example.com]", "[]", "v1"),
    );
    let url = "http://reviews.default.svc.cluster.local:8080/";
    let (c, warnings) = convert_for(&yaml, &gateway(&["default/ingress"]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cluster(&c, url, &[]).as_deref(), Some(V2));
    assert_eq!(
        cluster(&c, "http://both.example.com/", &[]).as_deref(),
        Some(V1)
    );
    // Neither the mesh's VirtualServices nor default routes.
    assert_eq!(cluster(&c, "http://sidecars.example.com/", &[]), None);
    let names: Vec<&str> = c
        .routes()
        .virtual_hosts()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["reviews.default.svc.cluster.local", "both.example.com"]
    );
    // Only the host itself is a domain: kube-dns' short forms are the
    // mesh's.
    assert_eq!(cluster(&c, "http://reviews:8080/", &[]), None);
    let clusters: BTreeSet<String> = c.clusters().map(|c| c.name.to_string()).collect();
    assert_eq!(clusters, BTreeSet::from([V1.to_owned(), V2.to_owned()]));

    // A sidecar does not take the gateway's; it gets the default route.
    let c = config(&yaml);
    assert_eq!(
        cluster(&c, url, &[]).as_deref(),
        Some("outbound|||reviews.default.svc.cluster.local")
    );
    assert_eq!(
        cluster(&c, "http://both.example.com/", &[]).as_deref(),
        Some(V1)
    );
    // Nor does a gateway implementing another Gateway, which is warned
    // about when no resource defines it.
    let (c, warnings) = convert_for(&yaml, &gateway(&["istio-system/ingress"]));
    assert_eq!(c.routes().virtual_hosts().len(), 0);
    assert_eq!(
        warnings,
        [
            "<istio resources>: the workload implements Gateway istio-system/ingress, which no resource defines; no routes are bound to it"
        ]
    );
    // A name alone is in the workload's namespace.
    let (c, _) = convert_for(&yaml, &gateway(&["ingress"]));
    assert_eq!(cluster(&c, url, &[]).as_deref(), Some(V2));
}

#[test]
fn the_host_star_is_every_host_on_a_gateway() {
    let yaml = format!(
        "{INGRESS}{}{DR}",
        bound_vs("all", "['*']", "[ingress]", "v1")
    );
    let (c, warnings) = convert_for(&yaml, &gateway(&["default/ingress"]));
    assert!(warnings.is_empty(), "{warnings:?}");
    // The server `*` serves `*`, the server `*.example.com` its part of it.
    let hosts: Vec<(&str, Vec<&str>)> = c
        .routes()
        .virtual_hosts()
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.domains.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [("*", vec!["*"]), ("*.example.com", vec!["*.example.com"])]
    );
    for url in [
        "http://anything:8080/",
        "http://10.0.0.1/",
        "http://a.example.com:8443/",
    ] {
        assert_eq!(cluster(&c, url, &[]).as_deref(), Some(V1), "{url}");
    }
    // Still an error for the mesh.
    let (resources, _) = read(&yaml.replace("[ingress]", "[mesh]"));
    let e = resources.to_mesh_config().unwrap_err().to_string();
    assert!(
        e.ends_with("the host `*` is allowed only on gateways; name the hosts the rules are for"),
        "{e}"
    );
}

#[test]
fn virtual_services_of_one_host_are_merged_on_a_gateway() {
    let yaml = format!(
        "{INGRESS}{}{}{DR}",
        vs_with(
            "first",
            "[ingress]",
            "  - match: [{uri: {prefix: /v2}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n"
        ),
        vs_with(
            "second",
            "[ingress]",
            "  - route: [{destination: {host: reviews, subset: v1}}]\n"
        ),
    );
    let (c, warnings) = convert_for(&yaml, &gateway(&["default/ingress"]));
    assert!(warnings.is_empty(), "{warnings:?}");
    let host = |path: &str| format!("http://api.example.com:8080{path}");
    assert_eq!(cluster(&c, &host("/v2/x"), &[]).as_deref(), Some(V2));
    assert_eq!(cluster(&c, &host("/x"), &[]).as_deref(), Some(V1));
    let vhosts = c.routes().virtual_hosts();
    assert_eq!(vhosts.len(), 1);
    assert_eq!(vhosts[0].routes.len(), 2);
    // For the mesh they stay an error.
    let (resources, _) = read(&yaml.replace("[ingress]", "[mesh]"));
    let e = resources.to_mesh_config().unwrap_err().to_string();
    assert!(
        e.contains("host api.example.com is also routed by VirtualService default/first"),
        "{e}"
    );
}

/// A VirtualService `name` of `default` for `api.example.com` with
/// `gateways` and the HTTP routes `http`.
fn vs_with(name: &str, gateways: &str, http: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: [api.example.com]\n  gateways: {gateways}\n  http:\n{http}"
    )
}

#[test]
fn a_match_naming_gateways_applies_on_those_only() {
    let yaml = format!(
        "{INGRESS}---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: internal}}\nspec:\n  selector: {{istio: internalgateway}}\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['*']}}]\n{}{DR}",
        vs_with(
            "api",
            "[mesh, ingress, internal]",
            "  - match:\n    - {gateways: [ingress], uri: {prefix: /public}}\n    - {gateways: [mesh], uri: {prefix: /mesh}}\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match:\n    - {gateways: [default/internal], uri: {prefix: /public}}\n    route: [{destination: {host: reviews, subset: v1}}]\n",
        ),
    );
    let (c, _) = convert_for(&yaml, &gateway(&["default/ingress"]));
    let get =
        |c: &MeshConfig, path: &str| cluster(c, &format!("http://api.example.com{path}"), &[]);
    assert_eq!(get(&c, "/public").as_deref(), Some(V2));
    assert_eq!(get(&c, "/mesh"), None);
    let (c, _) = convert_for(&yaml, &gateway(&["default/internal"]));
    assert_eq!(get(&c, "/public").as_deref(), Some(V1));
    let c = config(&yaml);
    assert_eq!(get(&c, "/mesh").as_deref(), Some(V2));
    assert_eq!(get(&c, "/public"), None);
}

#[test]
fn servers_choose_the_hosts_and_ports() {
    let gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: edge}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [./a.example.com, 'default/*.b.example.com']\n  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: ['*']\n    tls: {mode: PASSTHROUGH}\n";
    let vs = |ns: &str, hosts: &str| {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r, namespace: {ns}}}\nspec:\n  hosts: {hosts}\n  gateways: [edge/ingress]\n  http:\n  - match: [{{port: 80, uri: {{prefix: /eighty}}}}]\n    route: [{{destination: {{host: reviews.default.svc.cluster.local, subset: v2}}}}]\n  - match: [{{port: 443}}]\n    route: [{{destination: {{host: reviews.default.svc.cluster.local, subset: v2}}}}]\n  - route: [{{destination: {{host: reviews.default.svc.cluster.local, subset: v1}}}}]\n"
        )
    };
    let workload = Workload {
        namespace: "edge".into(),
        ..gateway(&["edge/ingress"])
    };
    // `./` is the Gateway's namespace: a VirtualService of `edge` for
    // `a.example.com`, but not one of `default`.
    let yaml = format!(
        "{gw}{}{DR}",
        vs("edge", "[a.example.com, '*.b.example.com']")
    );
    let (c, warnings) = convert_for(&yaml, &workload);
    assert!(warnings.is_empty(), "{warnings:?}");
    let names: Vec<&str> = c
        .routes()
        .virtual_hosts()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["a.example.com"]);
    // A match naming a port the host is served on applies; 443 is
    // passed through, not routed by HTTP.
    assert_eq!(
        cluster(&c, "http://a.example.com/eighty", &[]).as_deref(),
        Some(V2)
    );
    assert_eq!(
        cluster(&c, "http://a.example.com/other", &[]).as_deref(),
        Some(V1)
    );
    let yaml = format!("{gw}{}{DR}", vs("default", "['*.example.com']"));
    let (c, _) = convert_for(&yaml, &workload);
    let names: Vec<&str> = c
        .routes()
        .virtual_hosts()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["*.b.example.com"]);
    assert_eq!(
        cluster(&c, "http://x.b.example.com/", &[]).as_deref(),
        Some(V1)
    );
    assert_eq!(cluster(&c, "http://a.example.com/", &[]), None);
    let yaml = format!("{gw}{}{DR}", vs("default", "[a.example.com]"));
    let (c, warnings) = convert_for(&yaml, &workload);
    assert_eq!(c.routes().virtual_hosts().len(), 0);
    assert_eq!(
        warnings,
        [
            "test.yaml, document 2 (VirtualService default/r), line 17, spec.hosts: no server of Gateway edge/ingress serves any of its hosts; not routed by this gateway"
        ]
    );
}

#[test]
fn gateway_errors_name_where_they_are() {
    let gw = |servers: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: ingress}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n{servers}"
        )
    };
    let error_for = |yaml: &str| {
        let (resources, _) = read(yaml);
        chain(
            &resources
                .convert(&gateway(&["default/ingress"]))
                .expect_err("an error"),
        )
    };
    let at = |line: usize, path: &str, message: &str| {
        format!("test.yaml, document 1 (Gateway default/ingress), line {line}, {path}: {message}")
    };
    for (servers, line, path, message) in [
        (
            "  - hosts: ['*']\n",
            7,
            "spec.servers[0].port",
            "expected a port",
        ),
        (
            "  - port: {number: 0, protocol: HTTP}\n    hosts: ['*']\n",
            7,
            "spec.servers[0].port.number",
            "expected a port number, 1 to 65535",
        ),
        (
            "  - port: {number: 80, protocol: SPDY}\n    hosts: ['*']\n",
            7,
            "spec.servers[0].port.protocol",
            "\"SPDY\" is not a protocol of a gateway server; expected HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS or MYSQL",
        ),
        (
            "  - port: {number: 443, protocol: HTTPS}\n    hosts: ['*']\n",
            7,
            "spec.servers[0].tls",
            "a server of protocol HTTPS needs TLS settings",
        ),
        (
            "  - port: {number: 80, protocol: HTTP}\n",
            7,
            "spec.servers[0].hosts",
            "expected at least one host",
        ),
        (
            "  - port: {number: 80, protocol: HTTP}\n    hosts: [a.example.com, '/b.example.com']\n",
            8,
            "spec.servers[0].hosts[1]",
            "\"/b.example.com\" has an empty namespace; expected namespace/host, */host or ./host",
        ),
    ] {
        assert_eq!(error_for(&gw(servers)), at(line, path, message));
    }
    let e = error_for(&gw(
        "  - port: {number: 80, protocol: HTTP}\n    hosts: ['bad host']\n",
    ));
    assert!(
        e.starts_with(&at(
            8,
            "spec.servers[0].hosts[0]",
            "expected a service host name"
        )),
        "{e}"
    );
    let e = error_for(&gw(
        "  - port: {number: 80, name: web, protocol: HTTP}\n    hosts: [a.example.com]\n  - port: {number: 81, name: web, protocol: HTTP}\n    hosts: [b.example.com]\n",
    ));
    assert_eq!(
        e,
        at(
            9,
            "spec.servers[1].port.name",
            "\"web\" names another server's port; port names are unique within a Gateway"
        )
    );
    let e = error_for(&gw("").replace("servers:\n", "servers: []\n"));
    assert_eq!(e, at(6, "spec.servers", "expected at least one server"));
    let one = gw("  - port: {number: 80, protocol: HTTP}\n    hosts: ['*']\n");
    let e = error_for(&format!("{one}---\n{one}"));
    assert_eq!(
        e,
        "test.yaml, document 2 (Gateway default/ingress), line 12, metadata.name: the name is also that of Gateway default/ingress (test.yaml, document 1); a Gateway has one definition"
    );
}

/// The route `uri` takes in the table of the gateway server `routes`.
fn server_route<'c>(c: &'c MeshConfig, routes: &str, uri: &str) -> Option<&'c Route> {
    let table = c
        .listener(routes)
        .unwrap_or_else(|| panic!("no table {routes}"));
    let req = request(uri, &[]);
    let target = Authority::from_uri(req.uri()).expect("authority");
    table.find(&target, &req).map(|id| table.route(id))
}

/// `edge`: app.example.com redirected to HTTPS on 80 and served with TLS
/// on 443, plain.example.com in plain text on 80, mutual TLS for any host
/// on 8443, and a server whose certificate is a Kubernetes secret.
const EDGE: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [app.example.com]\n    tls: {httpsRedirect: true}\n  - port: {number: 80, name: http-plain, protocol: HTTP}\n    hosts: [plain.example.com]\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [app.example.com]\n    tls: {mode: SIMPLE, serverCertificate: /certs/app.pem, privateKey: /certs/app.key}\n  - port: {number: 8443, name: mtls, protocol: HTTPS}\n    hosts: ['*']\n    tls:\n      mode: MUTUAL\n      tlsCertificates: [{serverCertificate: /certs/any.pem, privateKey: /certs/any.key, caCertificates: /certs/clients.pem}]\n      subjectAltNames: [spiffe://cluster.local/ns/default/sa/client]\n      minProtocolVersion: TLSV1_2\n  - port: {number: 9443, name: secret, protocol: HTTPS}\n    hosts: [x.example.com]\n    tls: {mode: SIMPLE, credentialName: x-cert}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com, plain.example.com, x.example.com]\n  gateways: [edge]\n  http:\n  - route: [{destination: {host: reviews}}]\n";

#[test]
fn each_server_routes_by_its_own_table() {
    let workload = gateway(&["default/edge"]);
    let (resources, warnings) = read(EDGE);
    assert!(warnings.is_empty(), "{warnings:?}");
    let ports = resources.gateway_ports(&workload).unwrap();
    let summary: Vec<(u16, Vec<&str>)> = ports
        .iter()
        .map(|p| {
            (
                p.number,
                p.servers.iter().map(|s| s.routes.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (80, vec!["http.80"]),
            (443, vec!["https.443.https.edge.default"]),
            (8443, vec!["https.8443.mtls.edge.default"]),
        ]
    );
    assert_eq!(ports[0].servers[0].tls, None);
    let app = &ports[1].servers[0];
    assert_eq!(app.server_names, ["app.example.com"]);
    let tls = app.tls.as_ref().unwrap();
    assert_eq!(
        (&tls.certificate_chain, &tls.client_ca),
        (&"/certs/app.pem".into(), &None)
    );
    let mtls = &ports[2].servers[0];
    assert!(mtls.server_names.is_empty(), "any host");
    let tls = mtls.tls.as_ref().unwrap();
    assert_eq!(tls.private_key, "/certs/any.key".into());
    assert_eq!(tls.client_ca, Some("/certs/clients.pem".into()));
    assert_eq!(tls.min_version, Some(mesh_core::policy::TlsVersion::V1_2));
    assert_eq!(
        tls.subject_alt_names,
        ["spiffe://cluster.local/ns/default/sa/client"]
    );

    let (c, warnings) = resources.convert(&workload).unwrap();
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (Gateway default/edge), line 23, spec.servers[4].tls.credentialName: there is no Secret x-cert in namespace default, the gateway proxy's; this server is not served"
        ]
    );
    let redirect = server_route(&c, "http.80", "http://app.example.com/a").unwrap();
    let RouteAction::Redirect(r) = &redirect.action else {
        panic!("{redirect:?}")
    };
    assert_eq!(
        (r.scheme.as_deref(), r.status.as_u16()),
        (Some("https"), 301)
    );
    let plain = server_route(&c, "http.80", "http://plain.example.com/a").unwrap();
    assert!(matches!(plain.action, RouteAction::Forward(_)));
    let secure = "https.443.https.edge.default";
    assert!(matches!(
        server_route(&c, secure, "http://app.example.com/a")
            .unwrap()
            .action,
        RouteAction::Forward(_)
    ));
    assert!(server_route(&c, secure, "http://plain.example.com/a").is_none());
    // The unserved server has no table; its host is served only where
    // another server takes it (any host, on 8443).
    let mut names: Vec<&str> = c.listener_names().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "http.80",
            "https.443.https.edge.default",
            "https.8443.mtls.edge.default"
        ]
    );
    assert!(server_route(&c, "http.80", "http://x.example.com/").is_none());
    assert!(server_route(&c, "https.8443.mtls.edge.default", "http://x.example.com/").is_some());
}

#[test]
fn a_tls_server_names_its_files() {
    for (tls, want) in [
        (
            "{mode: SIMPLE, privateKey: /k}",
            "spec.servers[0].tls.serverCertificate: expected the file (or a credentialName)",
        ),
        (
            "{mode: MUTUAL, serverCertificate: /c, privateKey: /k}",
            "spec.servers[0].tls.caCertificates: MUTUAL TLS checks client certificates",
        ),
        (
            "{mode: SIMPLE, serverCertificate: /c, privateKey: /k, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}",
            "spec.servers[0].tls.minProtocolVersion: the lowest version is above the highest",
        ),
    ] {
        let yaml = format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  servers:\n  - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: ['*']\n    tls: {tls}\n"
        );
        let (resources, _) = read(&yaml);
        let e = resources
            .gateway_ports(&gateway(&["default/edge"]))
            .expect_err("an error");
        let text = chain(&e);
        assert!(text.contains(want), "{want}\n{text}");
    }
}

#[test]
fn a_server_takes_its_certificates_from_the_secret_it_names() {
    use base64::Engine;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let secret = |name: &str, namespace: &str, data: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\ntype: kubernetes.io/tls\n{data}"
        )
    };
    let server = |port: u16, name: &str, tls: &str| {
        format!(
            "  - port: {{number: {port}, name: {name}, protocol: HTTPS}}\n    hosts: [{name}.example.com]\n    tls: {tls}\n"
        )
    };
    let edge = format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  servers:\n{}{}{}{}",
        server(
            443,
            "x",
            "{mode: SIMPLE, credentialNames: [x-rsa, x-ecdsa]}"
        ),
        server(8443, "m", "{mode: MUTUAL, credentialName: m}"),
        server(9443, "gone", "{mode: SIMPLE, credentialName: gone}"),
        server(
            10443,
            "f",
            "{mode: SIMPLE, credentialName: x-rsa, serverCertificate: /c, privateKey: /k}"
        ),
    );
    let yaml = [
        edge,
        secret(
            "x-rsa",
            "default",
            &format!(
                "data:\n  tls.crt: {}\n  tls.key: {}\n",
                b64("X CERT"),
                b64("X KEY")
            ),
        ),
        // Istio's generic layout, as text, its roots apart.
        secret("m", "default", "stringData: {cert: M CERT, key: M KEY}\n"),
        secret("m-cacert", "default", "stringData: {cacert: M ROOTS}\n"),
        // Not the gateway proxy's namespace.
        secret("gone", "prod", "stringData: {cert: C, key: K}\n"),
    ]
    .concat();
    let (resources, warnings) = read(&yaml);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (Gateway default/edge), line 8, spec.servers[0].tls.credentialNames: only the first Secret is served (credentialName, else the first of credentialNames)",
            "test.yaml, document 1 (Gateway default/edge), line 17, spec.servers[3].tls: the Secret credentialName names is served, as istiod serves it; the files are ignored",
        ]
    );
    let proxy = gateway(&["default/edge"]);
    let ports = resources.gateway_ports(&proxy).unwrap();
    let tls = |port: u16| {
        let p = ports.iter().find(|p| p.number == port).expect("served");
        p.servers[0].tls.clone().unwrap()
    };
    let inline = |text: &str| Some(Pem::Inline(text.into()));
    let x = tls(443);
    assert_eq!(
        (Some(x.certificate_chain), Some(x.private_key), x.client_ca),
        (inline("X CERT"), inline("X KEY"), None)
    );
    let m = tls(8443);
    assert_eq!(
        (Some(m.certificate_chain), m.client_ca),
        (inline("M CERT"), inline("M ROOTS"))
    );
    assert_eq!(Some(tls(10443).certificate_chain), inline("X CERT"));
    assert!(ports.iter().all(|p| p.number != 9443), "{ports:?}");
    let (_, warnings) = resources.convert(&proxy).unwrap();
    assert!(
        warnings.iter().any(|w| w.to_string().contains(
            "spec.servers[2].tls.credentialName: there is no Secret gone in namespace default, the gateway proxy's; this server is not served"
        )),
        "{warnings:?}"
    );

    // A Secret a server cannot use is an error naming the Secret.
    for (data, want) in [
        (
            "data: {tls.crt: '***', tls.key: a2V5}\n".to_owned(),
            "test.yaml, document 2 (Secret default/x-rsa), line 14, data.tls.crt: not base64",
        ),
        (
            format!("data: {{tls.crt: {}}}\n", b64("CERT")),
            "test.yaml, document 2 (Secret default/x-rsa), line 14, data: expected a certificate and its key",
        ),
    ] {
        let gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec:\n  servers:\n  - port: {number: 443, name: x, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: MUTUAL, credentialName: x-rsa}\n";
        let (resources, _) = read(&format!("{gw}{}", secret("x-rsa", "default", &data)));
        let e = chain(&resources.gateway_ports(&proxy).expect_err("an error"));
        assert!(e.starts_with(want), "{want}\n{e}");
    }
    let gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec:\n  servers:\n  - port: {number: 443, name: x, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: MUTUAL, credentialName: x}\n";
    let (resources, _) = read(&format!(
        "{gw}{}",
        secret("x", "default", "stringData: {cert: C, key: K}\n")
    ));
    let e = chain(&resources.gateway_ports(&proxy).expect_err("no roots"));
    assert!(
        e.contains("spec.servers[0].tls.credentialName: MUTUAL TLS checks client certificates: expected their roots in Secret x's ca.crt or in Secret x-cacert"),
        "{e}"
    );
}

#[test]
fn servers_that_conflict_on_a_port_are_left_out() {
    let server = |port: u16, name: &str, hosts: &str| {
        let (protocol, tls) = if name.starts_with("https") {
            (
                "HTTPS",
                "    tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k}\n",
            )
        } else {
            ("HTTP", "")
        };
        format!(
            "  - port: {{number: {port}, name: {name}, protocol: {protocol}}}\n    hosts: {hosts}\n{tls}"
        )
    };
    let gw = |name: &str, servers: &[String]| {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}}}\nspec:\n  servers:\n{}",
            servers.concat()
        )
    };
    let yaml = [
        gw(
            "edge",
            &[
                server(443, "https-any", "['*']"),
                server(443, "https-a", "[a.example.com]"),
                server(443, "https-any-again", "[b.example.com, '*']"),
                server(443, "http", "[c.example.com]"),
                server(80, "http-80", "['*']"),
                server(80, "https-80", "[d.example.com]"),
            ],
        ),
        gw("other", &[server(443, "https", "[a.example.com]")]),
    ]
    .concat();
    let (resources, _) = read(&yaml);
    let proxy = gateway(&["default/edge", "default/other"]);
    let (_, warnings) = resources.convert(&proxy).unwrap();
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    let edge = "test.yaml, document 1 (Gateway default/edge)";
    let edge_doc = "Gateway default/edge (test.yaml, document 1)";
    assert_eq!(
        text,
        [
            format!(
                "{edge}, line 13, spec.servers[2]: spec.servers[0] of {edge_doc} serves host * with TLS on port 443 already; this server is not served"
            ),
            format!(
                "{edge}, line 16, spec.servers[3]: port 443 serves TLS already; a plain-text server cannot share it; this server is not served"
            ),
            format!(
                "{edge}, line 20, spec.servers[5]: port 80 serves plain text already; a TLS server cannot share it; this server is not served"
            ),
            format!(
                "test.yaml, document 2 (Gateway default/other), line 29, spec.servers[0]: spec.servers[1] of {edge_doc} serves host a.example.com with TLS on port 443 already; this server is not served"
            ),
        ]
    );
    let ports = resources.gateway_ports(&proxy).unwrap();
    let served: Vec<(u16, &str)> = ports
        .iter()
        .flat_map(|p| p.servers.iter().map(move |s| (p.number, s.routes.as_str())))
        .collect();
    assert_eq!(
        served,
        [
            (80, "http.80"),
            (443, "https.443.https-any.edge.default"),
            (443, "https.443.https-a.edge.default"),
        ]
    );
}
