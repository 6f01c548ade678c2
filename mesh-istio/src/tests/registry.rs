//! ServiceEntries, WorkloadEntries and Kubernetes Services: how they are
//! read, the registry they make, and the default routes of its services.

use super::*;
use mesh_core::registry::{Protocol, Registry, Resolution};

/// A ServiceEntry `name` in `default` with `body` under `spec`.
fn entry(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}}}\nspec:\n{body}"
    )
}

/// A Kubernetes Service `name` in `namespace` with `body` under `spec`.
fn service(name: &str, namespace: &str, body: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}"
    )
}

const HTTP_9080: &str = "  ports: [{name: http, port: 9080}]\n  selector: {app: reviews}\n";

fn registry(yaml: &str) -> Registry {
    let (resources, _) = read(yaml);
    resources
        .registry("cluster.local")
        .unwrap_or_else(|e| panic!("{}", chain(&e)))
}

/// The error building the registry of `yaml`.
fn registry_error(yaml: &str) -> String {
    let (resources, _) = read(yaml);
    chain(&resources.registry("cluster.local").expect_err("an error"))
}

#[test]
fn kubernetes_services_are_named_in_the_cluster_domain() {
    let yaml = service(
        "reviews",
        "prod",
        "  type: ClusterIP\n  clusterIP: 10.96.0.7\n  ports:\n  - {name: http-api, port: 9080, targetPort: 8080, nodePort: 30080}\n  - {name: grpc, port: 9090, appProtocol: kubernetes.io/h2c}\n  selector: {app: reviews}\n",
    );
    let (resources, warnings) = read(&yaml);
    assert!(warnings.is_empty(), "{warnings:?}");
    let r = resources.registry("corp.local").expect("a registry");
    let s = r
        .service("reviews.prod.svc.corp.local")
        .expect("the service");
    assert_eq!(s.namespace, "prod");
    assert_eq!(s.resolution, Resolution::Static);
    assert_eq!(s.addresses, ["10.96.0.7"]);
    assert_eq!(s.selector["app"], "reviews");
    assert_eq!(s.ports[0].protocol, Protocol::Http);
    assert_eq!(s.ports[0].target_port, Some(8080));
    assert_eq!(s.ports[1].protocol, Protocol::Http2);
    assert_eq!(s.ports[1].target_port, None);
    assert_eq!(s.origin, "Service prod/reviews (test.yaml, document 1)");

    let headless = registry(&service(
        "db",
        "default",
        "  clusterIP: None\n  ports: [{port: 5432}]\n",
    ));
    let db = headless.service("db.default.svc.cluster.local").unwrap();
    assert_eq!(db.resolution, Resolution::None);
    assert!(db.addresses.is_empty());
    assert_eq!(db.ports[0].protocol, Protocol::Unsupported);
}

#[test]
fn what_a_kubernetes_service_has_that_is_not_used_is_warned_about() {
    let yaml = service(
        "reviews",
        "default",
        "  type: ExternalName\n  externalName: reviews.example.com\n  ports: [{name: http, port: 9080, targetPort: web}]\n",
    );
    let (resources, warnings) = read(&yaml);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (Service default/reviews), line 7, spec.externalName: unknown field; ignored",
            "test.yaml, document 1 (Service default/reviews), line 6, spec.type: an ExternalName service is not read as an alias of its externalName; the service has no endpoints",
            "test.yaml, document 1 (Service default/reviews), line 8, spec.ports[0].targetPort: a named targetPort (web) names a container port, which is not known here; endpoints get the port an instance gives for the port's name, else the service port",
        ]
    );
    let r = resources.registry("cluster.local").unwrap();
    let port = &r
        .service("reviews.default.svc.cluster.local")
        .unwrap()
        .ports[0];
    assert_eq!(port.target_port, None);
}

#[test]
fn services_of_other_groups_are_skipped() {
    let (resources, warnings) = read(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: hello}\nspec: {}\n---\napiVersion: example.com/v1\nkind: ServiceEntry\nmetadata: {name: e}\n",
    );
    assert!(resources.services.is_empty());
    assert!(resources.service_entries.is_empty());
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (Service default/hello), line 2, kind: Service (serving.knative.dev/v1) is not used by the client configuration or the service registry; skipped",
            "test.yaml, document 2 (ServiceEntry default/e), line 7, kind: ServiceEntry of example.com/v1 is not Istio's; skipped",
        ]
    );
}

#[test]
fn service_entries_read_as_written() {
    let yaml = entry(
        "external",
        "  hosts: [API.example.com., reviews, '*.wild.example']\n  addresses: [192.0.2.1/32]\n  location: MESH_EXTERNAL\n  ports:\n  - {number: 443, name: https, protocol: tls}\n  resolution: DNS_ROUND_ROBIN\n  exportTo: ['.']\n  subjectAltNames: [spiffe://example/api]\n  unknownField: 1\n",
    );
    let (resources, warnings) = read(&yaml);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (ServiceEntry default/external), line 14, spec.unknownField: unknown field; ignored",
            "test.yaml, document 1 (ServiceEntry default/external), line 13, spec.subjectAltNames: TLS towards endpoints is not applied yet (mutual TLS comes with the security work); ignored",
        ]
    );
    let r = resources.registry("cluster.local").unwrap();
    let names: Vec<&str> = r.services().map(|s| s.hostname.as_str()).collect();
    // Short names are taken as written, as Istio takes them.
    assert_eq!(names, ["*.wild.example", "api.example.com", "reviews"]);
    let api = r.service("api.example.com").unwrap();
    assert_eq!(api.resolution, Resolution::DnsRoundRobin);
    assert_eq!(api.ports[0].protocol, Protocol::Tls);
    assert_eq!(api.addresses, ["192.0.2.1/32"]);
    assert_eq!(api.export_to, ["."]);
    assert_eq!(
        api.origin,
        "ServiceEntry default/external (test.yaml, document 1)"
    );
    // Without a resolution: NONE, Istio's default.
    let r = registry(&entry("e", "  hosts: [a.example]\n"));
    assert_eq!(r.service("a.example").unwrap().resolution, Resolution::None);
}

#[test]
fn workload_entries_are_instances_with_their_metadata_labels() {
    let yaml = "apiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata:\n  name: vm-1\n  namespace: vms\n  labels: {version: v2}\nspec:\n  address: 10.0.0.1\n  ports: {http: 8080}\n  labels: {app: reviews, version: v1}\n  locality: us-east/zone1/sub\n  weight: 3\n  serviceAccount: reviews\n  network: vpc-2\n";
    let (resources, warnings) = read(yaml);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (WorkloadEntry vms/vm-1), line 14, spec.network: the client reaches every endpoint directly, as on one network (it does not go through another network's gateway); ignored"
        ]
    );
    let r = resources.registry("cluster.local").unwrap();
    let i = &r.instances_of(super::super::WORKLOAD_ENTRIES)[0];
    assert_eq!(i.address, "10.0.0.1");
    assert_eq!(i.namespace, "vms");
    assert_eq!(i.ports["http"], 8080);
    assert_eq!(i.labels["app"], "reviews");
    assert_eq!(i.labels["version"], "v2", "the metadata's labels win");
    assert_eq!(i.locality.as_ref().unwrap().sub_zone, "sub");
    assert_eq!(i.weight, Some(3));
    assert_eq!(i.service_account.as_deref(), Some("reviews"));
}

#[test]
fn registry_errors_name_where_they_are() {
    let e = registry_error(&entry(
        "api",
        "  hosts: [api.example.com]\n  ports:\n  - {name: https, protocol: TLS}\n",
    ));
    assert_eq!(
        e,
        "test.yaml, document 1 (ServiceEntry default/api), line 8, spec.ports[0].number: expected a port number, 1 to 65535"
    );
    let e = registry_error(&service("reviews", "default", "  ports: [{name: http}]\n"));
    assert!(
        e.ends_with("line 6, spec.ports[0].port: expected a port number, 1 to 65535"),
        "{e}"
    );

    let twice = entry(
        "reviews",
        "  hosts: [reviews.default.svc.cluster.local]\n  ports: [{number: 9080, name: http}]\n",
    ) + &service("reviews", "default", HTTP_9080);
    assert_eq!(
        registry_error(&twice),
        "test.yaml, document 2 (Service default/reviews), line 11, metadata.name: host reviews.default.svc.cluster.local is also defined by ServiceEntry default/reviews (test.yaml, document 1); a host has one definition"
    );
    // Conversion needs the registry's services, and says the same.
    assert!(error(&twice).ends_with("a host has one definition"));

    for (body, wanted) in [
        ("  hosts: []\n", "spec.hosts: expected at least one host"),
        (
            "  hosts: ['*']\n",
            "spec.hosts[0]: the host `*` is not allowed in a ServiceEntry",
        ),
        (
            "  hosts: [a.example, A.example]\n",
            "spec.hosts[1]: host a.example is listed twice",
        ),
        (
            "  hosts: [a.example]\n  ports: [{number: 80, name: a}, {number: 80, name: b}]\n",
            "spec.ports[1]: port 80 is listed twice",
        ),
        (
            "  hosts: [a.example]\n  ports: [{number: 80, name: a, targetPort: 70000}]\n",
            "spec.ports[0].targetPort: port 70000 is out of range",
        ),
        (
            "  hosts: [a.example]\n  workloadSelector: {labels: {app: a}}\n  endpoints: [{address: 10.0.0.1}]\n",
            "spec.workloadSelector: a ServiceEntry has endpoints or a workloadSelector, not both",
        ),
        (
            "  hosts: [a.example]\n  resolution: STATIC\n  endpoints: [{address: a.internal}]\n",
            "spec.endpoints[0].address: \"a.internal\" is not an IP address, which a STATIC ServiceEntry's endpoints need",
        ),
        (
            "  hosts: [a.example]\n  resolution: DNS\n  endpoints: [{labels: {a: b}}]\n",
            "spec.endpoints[0].address: expected an address",
        ),
        (
            "  hosts: [a.example]\n  resolution: DNS\n  endpoints: [{address: a.internal, ports: {http: 0}}]\n",
            "spec.endpoints[0].ports.http: port 0 is out of range",
        ),
    ] {
        let e = registry_error(&entry("e", body));
        assert!(e.contains(wanted), "{body}: {e}");
    }
    let e = error(&entry(
        "e",
        "  hosts: [a.example]\n  resolution: SOMETIMES\n",
    ));
    assert!(e.contains("unknown variant `SOMETIMES`"), "{e}");
}

#[test]
fn registry_services_get_a_default_route() {
    let yaml = service("reviews", "default", HTTP_9080)
        + &entry(
            "api",
            "  hosts: [api.example.com]\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n  resolution: DNS\n",
        );
    let (c, warnings) = convert(&yaml);
    assert!(warnings.is_empty(), "{warnings:?}");
    for uri in [
        "http://reviews:9080/",
        "http://reviews.default.svc:9080/",
        "http://reviews.default.svc.cluster.local/",
    ] {
        assert_eq!(
            cluster(&c, uri, &[]).as_deref(),
            Some("outbound|||reviews.default.svc.cluster.local"),
            "{uri}"
        );
    }
    assert_eq!(
        cluster(&c, "http://api.example.com:443/", &[]).as_deref(),
        Some("outbound|||api.example.com")
    );
    let api = cluster_of(&c, "outbound|||api.example.com");
    assert_eq!(
        api.discovery,
        mesh_core::Discovery::Service {
            host: "api.example.com".into(),
            port: None
        }
    );
    assert!(api.subset.is_empty());
}

#[test]
fn default_routes_give_way_to_virtual_services_and_destination_rules() {
    // A VirtualService routing the host: its routes only.
    let routed = vs("  http:\n  - route: [{destination: {host: reviews, subset: v2}}]\n")
        + DR
        + &service("reviews", "default", HTTP_9080);
    let (c, _) = convert(&routed);
    assert_eq!(
        cluster(&c, "http://reviews:9080/", &[]).as_deref(),
        Some(V2)
    );
    assert_eq!(c.routes().virtual_hosts().len(), 1);

    // A DestinationRule's default route, with its policy: one route.
    let policy = DR.replace(
        "  subsets:",
        "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets:",
    );
    let (c, _) = convert(&(policy + &service("reviews", "default", HTTP_9080)));
    let whole = cluster_of(&c, "outbound|||reviews.default.svc.cluster.local");
    assert_eq!(
        whole.policy.load_balancer,
        mesh_core::policy::LoadBalancer::Random
    );
    let vh = &c.routes().virtual_hosts()[0];
    assert_eq!(vh.routes.len(), 1);

    // A VirtualService with routes for one port only: the default route
    // takes the other ports.
    let one_port = vs(
        "  http:\n  - match: [{port: 9080}]\n    route: [{destination: {host: reviews, subset: v2}}]\n",
    ) + DR
        + &service("reviews", "default", HTTP_9080);
    let (c, _) = convert(&one_port);
    assert_eq!(
        cluster(&c, "http://reviews:9080/", &[]).as_deref(),
        Some(V2)
    );
    assert_eq!(
        cluster(&c, "http://reviews:9090/", &[]).as_deref(),
        Some("outbound|||reviews.default.svc.cluster.local")
    );
}

#[test]
fn default_routes_only_where_the_service_is_exported() {
    let mut private = service("ratings", "prod", HTTP_9080);
    private = private.replace(
        "namespace: prod}",
        "namespace: prod, annotations: {networking.istio.io/exportTo: '.'}}",
    );
    let yaml = private
        + &entry(
            "api",
            "  hosts: [api.example.com]\n  exportTo: [prod, ' ']\n",
        );
    let (c, _) = convert(&yaml);
    assert!(c.routes().virtual_hosts().is_empty());
    let prod = Workload {
        namespace: "prod".into(),
        ..Workload::default()
    };
    let c = config_for(&yaml, &prod);
    assert_eq!(
        cluster(&c, "http://ratings:9080/", &[]).as_deref(),
        Some("outbound|||ratings.prod.svc.cluster.local")
    );
    assert_eq!(
        cluster(&c, "http://api.example.com/", &[]).as_deref(),
        Some("outbound|||api.example.com")
    );
    let (resources, _) = read(&yaml);
    let r = resources.registry("cluster.local").unwrap();
    assert_eq!(
        r.service("ratings.prod.svc.cluster.local")
            .unwrap()
            .export_to,
        ["."]
    );
}

#[test]
fn a_wildcard_entry_gets_no_default_route_and_says_so() {
    let (c, warnings) = convert(&entry(
        "wild",
        "  hosts: ['*.example.com']\n  ports: [{number: 80, name: http}]\n",
    ));
    assert!(c.routes().virtual_hosts().is_empty());
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (ServiceEntry default/wild), line 6, spec.hosts[0]: *.example.com gets no default route: the client has no cluster that sends a request to the host it names; route its hosts with a VirtualService"
        ]
    );
}
