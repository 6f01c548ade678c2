//! [`ControlPlane`]: the Istio configuration and registry it holds, and
//! a [`ResourceCache`] per kind of node made from them, which an
//! [`AdsServer`](mesh_xds::server::AdsServer) serves.
//!
//! - Nodes of one [`NodeClass`] (shape, namespace, domain, labels; for
//!   Envoy, its IP) share a cache: they are served the same resources. A
//!   class is forgotten when its last stream ends. Classes come from what
//!   clients say of themselves, and each is rebuilt on every change, so at
//!   most [`MAX_NODE_CLASSES`] are served at once (see
//!   [`ControlPlane::with_max_node_classes`]); a stream of one more is
//!   refused with `RESOURCE_EXHAUSTED`.
//! - A proxyless node's cache holds what its class asked for by listener
//!   name (see [`proxyless`](crate::proxyless)); each name asked is kept
//!   for the class, so that a later configuration serves it too.
//! - Nothing is served before the first configuration is applied: streams
//!   wait for it.
//! - A new configuration ([`apply`](ControlPlane::apply)) or new endpoints
//!   ([`set_instances`](ControlPlane::set_instances)) rebuild every
//!   class's cache at once. A class whose resources cannot be written
//!   keeps what it had and records why ([`ControlPlane::status`]).
//! - An Envoy sidecar's cache holds every service, and an Envoy
//!   gateway's the servers of the Gateways its labels select (see
//!   [`envoy`](crate::envoy)), as Envoy asks for every listener and
//!   cluster.
//! - Who a node is comes from its certificate when it connected over
//!   mutual TLS ([`Caller::identity`]): its namespace is the
//!   certificate's, and one claiming another is refused with
//!   `PERMISSION_DENIED` (see [`NodeClass::authenticated`]). Otherwise it
//!   is what the node says.
//! - A gateway's Secrets (its servers' `credentialName`s) are served by
//!   SDS, and only to a gateway that proved an identity: the Secrets it
//!   is served are those of its certificate's namespace. A gateway that
//!   only says who it is gets listeners naming the secrets and never the
//!   secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use envoy_types::pb::envoy::config::core::v3::Node;
use mesh_core::registry::{Instance, Registry};
use mesh_istio::{Resources, Warning, Workload};
use mesh_xds::resource::ResourceType;
use mesh_xds::server::{Caller, LimitReached, Refused, ResourceCache, Snapshots};

use crate::config_dir::{LoadError, Loaded};
use crate::node::{NodeClass, Shape};
use crate::{ByType, envoy, proxyless};

/// How many listener names one class of nodes may ask for: more than any
/// real mesh has services, bounded against a client that asks for
/// endless names.
const MAX_NAMES: usize = 4096;

/// How many classes of nodes are served at once by default: a laptop mesh
/// has a few dozen.
pub const MAX_NODE_CLASSES: usize = 1000;

/// The configuration and the caches made from it. Cloning it shares it.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    cluster_domain: String,
    max_node_classes: usize,
    resources: Resources,
    /// The services and instances of the configuration.
    yaml_registry: Registry,
    /// Instances set from code, by source.
    pushed: BTreeMap<String, Vec<Instance>>,
    /// Both together.
    registry: Registry,
    warnings: Vec<Warning>,
    /// Why the last load failed, if it did; cleared by the next success.
    load_errors: Vec<String>,
    /// The fingerprint of the configuration applied.
    fingerprint: Option<u64>,
    counters: Counters,
    nodes: BTreeMap<NodeClass, NodeState>,
}

#[derive(Debug, Default)]
struct NodeState {
    cache: ResourceCache,
    /// Streams connected for it; at 0 it is forgotten.
    streams: usize,
    /// Listener names asked for.
    listeners: BTreeSet<String>,
    /// Why the last rebuild failed, if it did.
    error: Option<String>,
}

/// How many loads of the configuration were applied and rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Loads applied.
    pub applied: u64,
    /// Loads rejected, the configuration before them kept.
    pub rejected: u64,
}

/// What the control plane holds, for the admin endpoints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    /// The fingerprint of the configuration served, in hex.
    pub config_version: Option<String>,
    /// Why the last load failed (file, line, reason): the configuration
    /// before it is still served.
    pub load_errors: Vec<String>,
    /// What the configuration served holds and is not used.
    pub warnings: Vec<String>,
    /// Each class of node seen.
    pub nodes: Vec<NodeStatus>,
}

/// What one class of nodes is served.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeStatus {
    /// `proxyless`, `sidecar`, `router` or `proxyless router`.
    pub shape: &'static str,
    /// The nodes' namespace.
    pub namespace: String,
    /// The identity they proved with a certificate, if they did.
    pub identity: Option<String>,
    /// Their labels.
    pub labels: BTreeMap<String, String>,
    /// The listener names they asked for.
    pub requested: Vec<String>,
    /// Per type, every resource's name and version.
    pub resources: BTreeMap<String, BTreeMap<String, String>>,
    /// Why their resources could not be rebuilt, if so: they keep the
    /// ones listed.
    pub error: Option<String>,
}

impl ControlPlane {
    /// A control plane with no configuration, for services in
    /// `cluster_domain` (`cluster.local`).
    pub fn new(cluster_domain: &str) -> Self {
        let state = State {
            cluster_domain: cluster_domain.to_owned(),
            max_node_classes: MAX_NODE_CLASSES,
            ..State::default()
        };
        Self {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    /// Serves at most `max` classes of nodes at once, in place of
    /// [`MAX_NODE_CLASSES`].
    pub fn with_max_node_classes(self, max: usize) -> Self {
        self.lock().max_node_classes = max;
        self
    }

    /// The services' DNS domain.
    pub fn cluster_domain(&self) -> String {
        self.lock().cluster_domain.clone()
    }

    /// Serves `loaded` from now on, replacing the configuration.
    pub fn apply(&self, loaded: Loaded) {
        let mut state = self.lock();
        state.resources = loaded.resources;
        state.yaml_registry = loaded.registry;
        state.warnings = loaded.warnings;
        state.load_errors.clear();
        state.fingerprint = Some(loaded.fingerprint);
        state.counters.applied += 1;
        state.rebuild_all();
    }

    /// Records that a load failed: the configuration served stays.
    pub fn load_failed(&self, errors: &[LoadError]) {
        let mut state = self.lock();
        state.load_errors = errors.iter().map(ToString::to_string).collect();
        state.counters.rejected += 1;
    }

    /// How many loads were applied and rejected.
    pub fn counters(&self) -> Counters {
        self.lock().counters
    }

    /// The fingerprint of the configuration applied, if one was.
    pub(crate) fn fingerprint(&self) -> Option<u64> {
        self.lock().fingerprint
    }

    /// Replaces the instances set under `source` (a launcher's name) with
    /// `instances`: endpoints started from code, beside those of the
    /// configuration.
    pub fn set_instances(&self, source: &str, instances: Vec<Instance>) {
        let mut state = self.lock();
        state.pushed.insert(source.to_owned(), instances);
        state.rebuild_all();
    }

    /// What is served to whom, and what went wrong.
    pub fn status(&self) -> Status {
        let state = self.lock();
        let nodes = state
            .nodes
            .iter()
            .map(|(class, node)| {
                let snapshot = node.cache.load();
                let resources = ResourceType::ALL
                    .into_iter()
                    .map(|kind| {
                        let versions = snapshot
                            .resources(kind)
                            .iter()
                            .map(|(name, r)| (name.clone(), r.version.clone()))
                            .collect();
                        (kind.to_string(), versions)
                    })
                    .collect();
                NodeStatus {
                    shape: match class.shape {
                        Shape::Proxyless => "proxyless",
                        Shape::Sidecar => "sidecar",
                        Shape::Router => "router",
                        Shape::ProxylessRouter => "proxyless router",
                    },
                    namespace: class.namespace.clone(),
                    identity: class.identity.as_ref().map(ToString::to_string),
                    labels: class.labels.clone(),
                    requested: node.listeners.iter().cloned().collect(),
                    resources,
                    error: node.error.clone(),
                }
            })
            .collect();
        Status {
            config_version: state.fingerprint.map(|f| format!("{f:016x}")),
            load_errors: state.load_errors.clone(),
            warnings: state.warnings.iter().map(ToString::to_string).collect(),
            nodes,
        }
    }

    /// The resources `node` would be served, by type, if it asked for
    /// every service of the registry: what `mesh-control translate`
    /// prints.
    pub fn resources_for(&self, node: &Node) -> Result<ByType, String> {
        let state = self.lock();
        let class = NodeClass::of(node);
        let names = state
            .registry
            .services()
            .map(|s| s.hostname.to_string())
            .collect();
        state.build(&class, &names)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The workload nodes of `class` are: for a gateway, implementing the
    /// Gateways its labels select.
    fn workload_for(&self, class: &NodeClass) -> Workload {
        let mut workload = class.workload();
        if class.shape.is_gateway() {
            workload.gateways = self
                .resources
                .gateways_for(&class.labels)
                .iter()
                .map(|g| g.resource.qualified_name())
                .collect();
        }
        workload
    }

    /// Rebuilds the registry and then every class's cache.
    fn rebuild_all(&mut self) {
        let mut registry = self.yaml_registry.clone();
        for (source, instances) in &self.pushed {
            registry.set_instances(source, instances.clone());
        }
        self.registry = registry;
        let classes: Vec<NodeClass> = self.nodes.keys().cloned().collect();
        for class in classes {
            self.rebuild(&class);
        }
    }

    /// What `class` is served, having asked for the listeners `names`.
    fn build(&self, class: &NodeClass, names: &BTreeSet<String>) -> Result<ByType, String> {
        let workload = self.workload_for(class);
        let config = self
            .resources
            .to_mesh_config_for(&workload)
            .map_err(|e| e.to_string())?;
        let built = match class.shape {
            Shape::Proxyless => {
                proxyless::resources(names, class, &self.resources, &config, &self.registry)
            }
            Shape::Sidecar => {
                let listeners = self
                    .resources
                    .sidecar_listeners(&workload)
                    .map_err(|e| e.to_string())?;
                envoy::sidecar(
                    class,
                    &config,
                    &self.registry,
                    &self.resources,
                    listeners.as_ref(),
                )
            }
            Shape::ProxylessRouter | Shape::Router => {
                let ports = self.gateway_ports(&workload)?;
                let built = match class.shape {
                    Shape::Router => envoy::gateway(class, &ports, &config, &self.registry),
                    _ => proxyless::gateway(names, class, &ports, &config, &self.registry),
                };
                built.map(|mut built| {
                    if class.identity.is_some() {
                        built.push((ResourceType::Secret, envoy::gateway_secrets(&ports)));
                    }
                    built
                })
            }
        };
        built.map_err(|e| e.to_string())
    }

    /// The ports the gateway `workload` serves.
    fn gateway_ports(
        &self,
        workload: &Workload,
    ) -> Result<Vec<mesh_core::gateway::GatewayPort>, String> {
        self.resources
            .gateway_ports(workload)
            .map_err(|e| e.to_string())
    }

    /// Rebuilds the cache of `class`; on failure it keeps what it had.
    /// Before a configuration is applied nothing is served: a server would
    /// otherwise take an inbound listener without its policies, and a
    /// client a partial mesh.
    fn rebuild(&mut self, class: &NodeClass) {
        if self.fingerprint.is_none() {
            return;
        }
        let built = self.build(class, &self.nodes[class].listeners);
        let node = self.nodes.get_mut(class).expect("a class being rebuilt");
        match built {
            Ok(resources) => {
                node.cache.set_all(resources);
                node.error = None;
            }
            Err(error) => {
                tracing::error!(
                    namespace = %class.namespace,
                    %error,
                    "cannot build what these nodes are served; they keep what they had"
                );
                node.error = Some(error);
            }
        }
    }

    /// Adds the listener names `names` to what `class` asked for, up to
    /// [`MAX_NAMES`]; whether any was new.
    fn request(&mut self, class: &NodeClass, names: &[String]) -> bool {
        let node = self.nodes.entry(class.clone()).or_default();
        let mut added = false;
        for name in names {
            if node.listeners.len() >= MAX_NAMES {
                tracing::warn!(name, "too many listener names asked for; ignored");
                break;
            }
            added |= node.listeners.insert(name.clone());
        }
        added
    }
}

/// The class of `caller`: from its certificate's identity when it has
/// one, else from what its node says.
fn class_of(caller: &Caller) -> Result<NodeClass, Refused> {
    match &caller.identity {
        Some(id) => NodeClass::authenticated(&caller.node, &id.0).map_err(|why| {
            tracing::warn!(node = %caller.node.id, %why, "ADS stream refused");
            Refused::PermissionDenied(why)
        }),
        None => Ok(NodeClass::of(&caller.node)),
    }
}

impl Snapshots for ControlPlane {
    fn cache_for(&self, caller: &Caller) -> Result<ResourceCache, Refused> {
        let class = class_of(caller)?;
        let node = &caller.node;
        let mut state = self.lock();
        let known = state.nodes.contains_key(&class);
        let max = state.max_node_classes;
        if !known && state.nodes.len() >= max {
            let what = format!(
                "node {:?} (namespace {}) would be one kind of node too many",
                node.id, class.namespace
            );
            return Err(LimitReached::new(what, "max_node_classes", max).into());
        }
        if class.shape.is_gateway() && class.identity.is_none() {
            tracing::warn!(
                node = %node.id,
                "a gateway without a client certificate: its Secrets are served only over mutual TLS"
            );
        }
        let entry = state.nodes.entry(class.clone()).or_default();
        entry.streams += 1;
        let cache = entry.cache.clone();
        // A proxyless node's resources are made as it asks; an Envoy
        // node's are all there from the start.
        if !known && !class.shape.asks_by_name() {
            state.rebuild(&class);
        }
        Ok(cache)
    }

    fn released(&self, caller: &Caller) {
        let Ok(class) = class_of(caller) else {
            return;
        };
        let mut state = self.lock();
        if let Some(entry) = state.nodes.get_mut(&class) {
            entry.streams = entry.streams.saturating_sub(1);
            if entry.streams == 0 {
                state.nodes.remove(&class);
            }
        }
    }

    fn requested(&self, caller: &Caller, kind: ResourceType, names: &[String]) {
        let Ok(class) = class_of(caller) else {
            return;
        };
        if kind != ResourceType::Listener || !class.shape.asks_by_name() {
            return;
        }
        let mut state = self.lock();
        if state.request(&class, names) {
            state.rebuild(&class);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control plane serving the Istio YAML `yaml`.
    fn plane_of(yaml: &str) -> ControlPlane {
        let loaded =
            crate::config_dir::load_texts([("c.yaml".into(), yaml.into())], "cluster.local")
                .unwrap();
        let plane = ControlPlane::new("cluster.local");
        plane.apply(loaded);
        plane
    }

    #[test]
    fn a_service_not_exported_to_the_node_is_absent_not_an_error() {
        let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n\
            spec:\n  ports: [{name: http, port: 9080}]\n---\n\
            apiVersion: v1\nkind: Service\nmetadata:\n  name: secret\n\
            \x20 annotations: {networking.istio.io/exportTo: shop}\n\
            spec:\n  ports: [{name: http, port: 9080}]\n";
        let plane = plane_of(yaml);
        for id in [
            "sidecar~10.0.0.1~p.default~default.svc.cluster.local",
            "proxyless",
        ] {
            let envoy = id.starts_with("sidecar");
            let node = crate::node::node(id, envoy, &[]);
            let cache = plane.cache_for(&node.clone().into()).unwrap();
            plane.requested(
                &node.clone().into(),
                ResourceType::Listener,
                &["reviews:9080".into(), "secret:9080".into()],
            );
            let listeners = cache.load().resources(ResourceType::Listener).len();
            assert_eq!(listeners, 1, "{id}");
        }
        assert!(plane.status().nodes.iter().all(|n| n.error.is_none()));
    }

    #[test]
    fn nothing_is_served_before_the_first_configuration() {
        let plane = ControlPlane::new("cluster.local");
        let node = crate::node::node("productpage-1", false, &[]);
        let cache = plane.cache_for(&node.clone().into()).unwrap();
        let inbound = "xds.istio.io/grpc/lds/inbound/127.0.0.1:50051".to_owned();
        plane.requested(
            &node.clone().into(),
            ResourceType::Listener,
            std::slice::from_ref(&inbound),
        );
        assert!(cache.load().resources(ResourceType::Listener).is_empty());
        let loaded = crate::config_dir::load_texts([], "cluster.local").unwrap();
        plane.apply(loaded);
        assert!(
            cache
                .load()
                .resources(ResourceType::Listener)
                .contains_key(&inbound)
        );
    }

    #[test]
    fn a_class_is_kept_while_a_stream_of_it_is_connected() {
        let plane = ControlPlane::new("cluster.local");
        let node = Node {
            id: "productpage-v1".into(),
            ..Node::default()
        };
        let cache = plane.cache_for(&node.clone().into()).unwrap();
        plane.requested(
            &node.clone().into(),
            ResourceType::Listener,
            &["reviews:9080".into()],
        );
        assert!(cache.load().resources(ResourceType::Listener).is_empty());
        let _second = plane.cache_for(&node.clone().into()).unwrap();
        plane.released(&node.clone().into());
        assert_eq!(plane.status().nodes[0].requested, ["reviews:9080"]);
        plane.released(&node.clone().into());
        assert!(plane.status().nodes.is_empty());
    }

    #[test]
    fn classes_past_the_limit_are_refused_until_one_goes() {
        let plane = ControlPlane::new("cluster.local").with_max_node_classes(2);
        let node = |labels: &[(&str, &str)]| crate::node::node("productpage-1", false, labels);
        let (a, b, c) = (
            node(&[("app", "a")]),
            node(&[("app", "b")]),
            node(&[("app", "c")]),
        );
        plane.cache_for(&a.clone().into()).unwrap();
        plane.cache_for(&b.clone().into()).unwrap();
        // A second stream of a class served already is not a new class.
        plane.cache_for(&a.clone().into()).unwrap();
        let refused = plane.cache_for(&c.clone().into()).unwrap_err();
        assert!(matches!(&refused, Refused::Limit(l) if l.limit() == "max_node_classes"));
        assert_eq!(
            refused.to_string(),
            "node \"productpage-1\" (namespace default) would be one kind of node \
             too many: max_node_classes is 2"
        );
        plane.released(&b.clone().into());
        plane.cache_for(&c.clone().into()).unwrap();
    }

    /// A gateway's Secret goes to a gateway of its namespace that proved
    /// it with a certificate, and to no other.
    #[test]
    fn a_gateways_secrets_go_only_to_a_gateway_that_proved_its_namespace() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
            metadata: {name: edge, namespace: istio-system}\n\
            spec:\n  selector: {istio: ingressgateway}\n  servers:\n\
            \x20 - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n\
            \x20   tls: {mode: SIMPLE, credentialName: edge-cert}\n---\n\
            apiVersion: v1\nkind: Secret\nmetadata: {name: edge-cert, namespace: istio-system}\n\
            stringData: {tls.crt: CHAIN, tls.key: THE-KEY}\n";
        let plane = plane_of(yaml);
        let id = "router~127.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local";
        let node = crate::node::node(id, true, &[("istio", "ingressgateway")]);
        let caller = |identity: Option<&str>| Caller {
            node: node.clone(),
            identity: identity.map(|i| mesh_core::security::ClientIdentity(i.into())),
        };
        let secrets = |caller: &Caller| {
            let cache = plane.cache_for(caller).unwrap();
            let names: Vec<String> = cache
                .load()
                .resources(ResourceType::Secret)
                .keys()
                .cloned()
                .collect();
            // The listener names the secret either way.
            assert_eq!(cache.load().resources(ResourceType::Listener).len(), 1);
            names
        };
        assert!(secrets(&caller(None)).is_empty());
        let gateway = caller(Some(
            "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        ));
        assert_eq!(secrets(&gateway), ["kubernetes://edge-cert"]);
        // A certificate of another namespace may not claim this one.
        let stranger = caller(Some("spiffe://cluster.local/ns/default/sa/gateway"));
        let refused = plane.cache_for(&stranger).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "node {id:?} says it is in namespace istio-system; its certificate \
                 (spiffe://cluster.local/ns/default/sa/gateway) is of namespace default"
            )
        );
        // What translate prints (no identity) has no secret, nor the key.
        let resources = plane.resources_for(&node).unwrap();
        assert!(
            resources
                .iter()
                .all(|(kind, _)| *kind != ResourceType::Secret)
        );
        let json = mesh_xds::json::resources_json(&resources)
            .unwrap()
            .to_string();
        assert!(
            json.contains("kubernetes://edge-cert") && !json.contains("THE-KEY"),
            "{json}"
        );
    }

    #[test]
    fn a_proxyless_gateway_is_served_its_servers_route_tables_by_name() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
            metadata: {name: edge, namespace: istio-system}\n\
            spec:\n  selector: {istio: ingressgateway}\n  servers:\n\
            \x20 - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['*']\n---\n\
            apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
            metadata: {name: bookinfo, namespace: istio-system}\n\
            spec:\n  hosts: ['*']\n  gateways: [edge]\n\
            \x20 http:\n  - route: [{destination: {host: productpage.default.svc.cluster.local}}]\n---\n\
            apiVersion: v1\nkind: Service\nmetadata: {name: productpage, namespace: default}\n\
            spec:\n  ports: [{name: http, port: 9080}]\n";
        let plane = plane_of(yaml);
        let id = "router~127.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local";
        let caller = Caller {
            node: crate::node::node(id, false, &[("istio", "ingressgateway")]),
            identity: None,
        };
        let cache = plane.cache_for(&caller).unwrap();
        // Nothing until asked for; a name that is no server's gets nothing.
        assert!(cache.load().resources(ResourceType::Listener).is_empty());
        let names = ["http.8080".to_owned(), "productpage:9080".to_owned()];
        plane.requested(&caller, ResourceType::Listener, &names);
        let served = cache.load();
        let names = |kind| -> Vec<String> { served.resources(kind).keys().cloned().collect() };
        assert_eq!(names(ResourceType::Listener), ["http.8080"]);
        assert_eq!(names(ResourceType::RouteConfig), ["http.8080"]);
        assert_eq!(
            names(ResourceType::Cluster),
            ["outbound|9080||productpage.default.svc.cluster.local"]
        );
    }

    #[test]
    fn a_proxyless_gateway_is_served_its_tls_port_and_with_a_certificate_its_secrets() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
            metadata: {name: edge, namespace: istio-system}\n\
            spec:\n  selector: {istio: ingressgateway}\n  servers:\n\
            \x20 - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: [edge.example.com]\n\
            \x20   tls: {mode: SIMPLE, credentialName: edge-cert}\n---\n\
            apiVersion: v1\nkind: Secret\nmetadata: {name: edge-cert, namespace: istio-system}\n\
            stringData: {tls.crt: CHAIN, tls.key: THE-KEY}\n";
        let plane = plane_of(yaml);
        let id = "router~127.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local";
        let node = crate::node::node(id, false, &[("istio", "ingressgateway")]);
        let port = "xds.istio.io/grpc/lds/inbound/0.0.0.0:8443".to_owned();
        let served = |identity: Option<&str>| {
            let caller = Caller {
                node: node.clone(),
                identity: identity.map(|i| mesh_core::security::ClientIdentity(i.into())),
            };
            let cache = plane.cache_for(&caller).unwrap();
            let other = "xds.istio.io/grpc/lds/inbound/0.0.0.0:9999".to_owned();
            plane.requested(&caller, ResourceType::Listener, &[port.clone(), other]);
            let served = cache.load();
            let names = |kind| -> Vec<String> { served.resources(kind).keys().cloned().collect() };
            (names(ResourceType::Listener), names(ResourceType::Secret))
        };
        let (listeners, secrets) = served(None);
        assert_eq!(listeners, std::slice::from_ref(&port));
        assert!(secrets.is_empty());
        let (_, secrets) = served(Some(
            "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        ));
        assert_eq!(secrets, ["kubernetes://edge-cert"]);
        // The listener reads back as the port's one server, its
        // certificate named by SDS.
        let caller = Caller {
            node: node.clone(),
            identity: None,
        };
        let cache = plane.cache_for(&caller).unwrap();
        let any = cache.load().resources(ResourceType::Listener)[&port].clone();
        let l: envoy_types::pb::envoy::config::listener::v3::Listener =
            prost::Message::decode(any.any.value.as_slice()).unwrap();
        let gateway = mesh_xds::resource::XdsListener::try_from(&l)
            .unwrap()
            .gateway
            .unwrap();
        assert_eq!(gateway.servers[0].server_names, ["edge.example.com"]);
        assert_eq!(
            gateway.secret_names().collect::<Vec<_>>(),
            ["kubernetes://edge-cert"]
        );
    }

    #[test]
    fn an_authenticated_node_is_in_its_certificates_namespace() {
        let yaml = "apiVersion: v1\nkind: Service\n\
            metadata:\n  name: ratings\n  namespace: shop\n\
            \x20 annotations: {networking.istio.io/exportTo: .}\n\
            spec:\n  ports: [{name: http, port: 9080}]\n";
        let plane = plane_of(yaml);
        let name = "ratings.shop.svc.cluster.local:9080".to_owned();
        let listeners = |caller: &Caller| {
            let cache = plane.cache_for(caller).unwrap();
            plane.requested(caller, ResourceType::Listener, std::slice::from_ref(&name));
            cache.load().resources(ResourceType::Listener).len()
        };
        // A node that names no namespace is in default, and sees nothing
        // of shop's, until its certificate puts it in shop.
        let node = crate::node::node("ratings-client", false, &[]);
        assert_eq!(
            listeners(&Caller {
                node: node.clone(),
                identity: None
            }),
            0
        );
        let shop =
            mesh_core::security::ClientIdentity("spiffe://cluster.local/ns/shop/sa/client".into());
        let caller = Caller {
            node,
            identity: Some(shop),
        };
        assert_eq!(listeners(&caller), 1);
        assert_eq!(
            plane
                .status()
                .nodes
                .iter()
                .find_map(|n| n.identity.clone())
                .as_deref(),
            Some("spiffe://cluster.local/ns/shop/sa/client")
        );
    }
}
