//! Istio's YAML read into mesh values: the routing
//! rules (`VirtualService`, `DestinationRule`), the gateways (`Gateway`),
//! the sidecars' listeners (`Sidecar`), the security policies
//! (`AuthorizationPolicy`, `PeerAuthentication`), the services and
//! workloads (`ServiceEntry`, `WorkloadEntry`, Kubernetes `Service`) and
//! the certificates Gateway servers name (Kubernetes `Secret`).
//!
//! Two steps, so that the control plane can reuse the first to produce xDS:
//!
//! 1. [`parse`] reads a file of Kubernetes resources (documents separated by
//!    `---`) into [`Resources`]: the serde types of Istio's API
//!    ([`VirtualService`], [`DestinationRule`], [`Gateway`],
//!    [`ServiceEntry`], [`WorkloadEntry`], [`Sidecar`] and everything under them, named
//!    as in `networking.istio.io/v1`; `v1beta1` and `v1alpha3` are read
//!    too) and of Kubernetes' `v1` [`Service`](kubernetes::Service) and
//!    [`Secret`](kubernetes::Secret). Other
//!    kinds (Deployment, ServiceAccount, the Kubernetes Gateway API's
//!    Gateway, ...) are skipped with a [`Warning`], and so is every field
//!    the types do not know. [`Resources::gateways_for`] tells which
//!    Gateways a gateway proxy implements, [`Resources::gateway_ports`]
//!    what it serves on which port, and [`Resources::sidecar_listeners`]
//!    what a sidecar listens on.
//! 2. [`Resources::convert`] turns them into a [`MeshConfig`] with Istio's
//!    semantics for a client or gateway [`Workload`], with warnings about
//!    what it leaves out ([`Resources::to_mesh_config`] without them);
//!    [`Resources::registry`] into the [`Registry`] of services and their
//!    instances; and for a server, [`Resources::authorization`] into its
//!    RBAC filters and [`Resources::mtls_mode`] into the mutual TLS mode of
//!    a port.
//!
//! Every [`IstioError`] names the file, the document, the resource, the
//! line and the field, and says what was expected.
//!
//! # How Istio's resources become routes and clusters
//!
//! - **Hosts.** A host without dots (`reviews`) is a Kubernetes service in
//!   the resource's namespace (`reviews.default.svc.cluster.local`); any
//!   other is taken as written. Each VirtualService host is a
//!   [`VirtualHost`](mesh_core::route::VirtualHost) named by its FQDN whose
//!   domains are the FQDN and, for a Kubernetes service, `name.ns.svc`,
//!   `name.ns` and (for a client in that namespace) `name`. A match that
//!   names a `port` gets its own virtual host of `host:port` domains. Two
//!   VirtualServices for one host are an error (Istio merges them only on
//!   gateways), and so is the host `*`.
//! - **DestinationRules** of one host are merged as istiod merges them:
//!   subsets joined (the first definition of a name kept), the first
//!   top-level `trafficPolicy` the host's, with a warning for what is
//!   dropped. Those of the client's namespace come first, then those of
//!   the service's; rules of one host in two other namespaces are an
//!   error, since istiod would choose by its root namespace.
//! - **Clusters** are named as Istio names them,
//!   `outbound|<port>|<subset>|<fqdn>` ([`istio_cluster_name`]), the port
//!   empty when the destination gives none (the request's port is used).
//!   Their policy is the DestinationRule's `trafficPolicy` with the
//!   subset's parts replacing the host's, and a `portLevelSettings` entry
//!   replacing the policy of its port whole, as Istio merges them. istiod
//!   builds a cluster per service port even for a destination without a
//!   port; here that is one cluster which keeps the policy of each port
//!   with settings of its own ([`Cluster::port_policies`]) for the
//!   requests sent to that port.
//!   A subset that no DestinationRule defines is an error.
//! - **Gateways.** A gateway proxy is a [`Workload`] with the
//!   [`gateways`](Workload::gateways) it implements, `namespace/name`:
//!   those whose `selector` its labels carry, in any namespace
//!   ([`Resources::gateways_for`], as istiod matches them with
//!   `PILOT_SCOPE_GATEWAY_TO_NAMESPACE` off). It takes only the
//!   VirtualServices whose `gateways` name one of them (a short name is in
//!   the VirtualService's namespace; `mesh` does not count, nor does naming
//!   none), and of their hosts those the Gateway's HTTP servers (HTTP,
//!   HTTP2, gRPC, HTTPS terminated there) serve: a server host
//!   `[namespace/]host` takes the hosts it covers of VirtualServices in
//!   that namespace, the two meeting at the narrower (`*` and `*.suffix`
//!   allowed on both sides). Each such host is a virtual host whose one
//!   domain is the host (`*` for `*`), without Kubernetes' short forms;
//!   the VirtualServices of one host are merged, their rules in the order
//!   read. A match's `gateways` restricts it likewise, and a match naming
//!   a `port` applies when the host is served on that port. Destinations
//!   become the same clusters as for a sidecar, and there are no default
//!   routes: istiod gives a gateway only what is bound to it. The routes
//!   of all the servers are one table: a host served on several ports
//!   has the same routes on each (istiod builds a route configuration per
//!   port), and `tls.httpsRedirect` is not applied (a warning says so).
//!   The ports, TLS and binding of the servers are read for the control
//!   plane's listeners.
//! - **Default routes.** A host with a DestinationRule and no VirtualService
//!   gets a virtual host sending everything to the whole service
//!   (`outbound|||<fqdn>`), as istiod generates one; so does every service
//!   of the registry the client sees (by its `exportTo`, for a Kubernetes
//!   Service its `networking.istio.io/exportTo` annotation), except a
//!   wildcard ServiceEntry host, which is warned about. Gateways get none.
//! - **Services.** Each host of a ServiceEntry is a service named as
//!   written (a short name is not expanded, as in Istio); a Kubernetes
//!   Service is `name.namespace.svc.<cluster domain>`. Their endpoints are
//!   the WorkloadEntries of their namespace their selector matches, and a
//!   ServiceEntry's own `endpoints` ([`Registry::endpoints`]). One host
//!   defined twice is an error naming both definitions.
//! - **Consistent hashing** (`loadBalancer.consistentHash`) becomes the
//!   cluster's ring-hash or Maglev balancer and a hash policy on every route
//!   that forwards to the cluster, as Istio puts it there. A route has one
//!   hash policy: when the clusters of a split hash on different keys it
//!   gets none, with a warning.
//! - **Visibility.** A VirtualService or DestinationRule is used only by a
//!   client in a namespace it is exported to (`exportTo`): every namespace
//!   when it is empty or has `*`, its own with `.`, and those listed.
//! - **Conditions on the client** (`gateways`, which for a sidecar or
//!   client must name `mesh`, `sourceLabels`, `sourceNamespace` of a match;
//!   `workloadSelector` of a DestinationRule, which selects only workloads
//!   of the rule's namespace and then replaces the rules without one) are
//!   decided when converting, for the [`Workload`] the configuration is
//!   for, as istiod decides them for each proxy: a match for other clients
//!   is left out rather than widened to all of them.
//!
//! Istio's defaults are kept where they surprise: a fault without a
//! `percentage` applies to no request; `headers: {x: {}}` only requires
//! the header; `timeout: 0s` and `retries.attempts: 0` disable timeouts
//! and retries. A cluster balances by least requests (`LEAST_REQUEST`)
//! unless its `loadBalancer` chooses otherwise, and ejects no endpoint
//! unless it has an `outlierDetection` (then Envoy's defaults fill what
//! that leaves out, 5 consecutive 5xx ejecting): istiod's defaults, not
//! the library's ([`ClusterPolicy::default`](mesh_core::policy::ClusterPolicy)
//! balances by peak EWMA and ejects after 5 consecutive 5xx). What the client cannot honour in a way that would change
//! which requests a route takes or where they go (matching on the scheme
//! or on JWT claims, delegation, header changes of one destination of a
//! split) is an error; what it does not apply and Istio applies elsewhere
//! (TLS settings, CORS, locality settings, connection limits it has no
//! counterpart for) is a warning. A DestinationRule's `ISTIO_MUTUAL` is
//! kept on the cluster ([`ClusterPolicy::tls`](mesh_core::policy::ClusterPolicy))
//! for the control plane to serve, and warned about all the same, since
//! the mesh's own clients do not dial TLS yet.
//!
//! ```
//! use http::Request;
//! use mesh_core::route::RouteAction;
//!
//! let yaml = r#"
//! apiVersion: networking.istio.io/v1
//! kind: VirtualService
//! metadata: {name: reviews}
//! spec:
//!   hosts: [reviews]
//!   http:
//!   - match: [{headers: {end-user: {exact: jason}}}]
//!     route: [{destination: {host: reviews, subset: v2}}]
//!   - route: [{destination: {host: reviews, subset: v1}}]
//! ---
//! apiVersion: networking.istio.io/v1
//! kind: DestinationRule
//! metadata: {name: reviews}
//! spec:
//!   host: reviews
//!   subsets:
//!   - {name: v1, labels: {version: v1}}
//!   - {name: v2, labels: {version: v2}}
//! "#;
//! let (resources, warnings) = mesh_istio::parse("reviews.yaml", yaml)?;
//! assert!(warnings.is_empty());
//! let config = resources.to_mesh_config()?;
//! let req = Request::get("http://reviews:9080/reviews/0")
//!     .header("end-user", "jason")
//!     .body(())?;
//! let id = config.routes().find(&"reviews:9080".parse()?, &req).expect("a route");
//! let RouteAction::Forward(f) = &config.routes().route(id).action else { panic!() };
//! assert_eq!(f.destination.pick(0).as_str(), "outbound||v2|reviews.default.svc.cluster.local");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api;
mod convert;
mod duration;
mod error;
mod lint;
mod read;
mod yaml;

use std::collections::BTreeMap;

pub use api::*;
pub use duration::{Duration, InvalidDuration};
pub use error::{IstioError, IstioErrorKind, Location, Warning};
pub use yaml::Origin;

#[cfg(doc)]
use mesh_core::cluster::{Cluster, istio_cluster_name};
use mesh_core::config::MeshConfig;
use mesh_core::gateway::GatewayPort;
use mesh_core::registry::Registry;
use mesh_core::security::{MtlsMode, Rbac};
use mesh_core::sidecar::SidecarListeners;

/// Reads every document of `text`, a file named `source` (for messages),
/// into the resources the client configuration uses and warnings about
/// what it skipped.
pub fn parse(source: &str, text: &str) -> Result<(Resources, Vec<Warning>), IstioError> {
    read::parse(source, text)
}

/// A resource and where it came from.
#[derive(Clone, Debug)]
pub struct Sourced<T> {
    /// The resource.
    pub resource: T,
    /// Where it came from.
    pub origin: Origin,
}

/// Istio's root namespace: its AuthorizationPolicies, PeerAuthentications
/// and Sidecar without a selector apply to every namespace.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The source key under which [`Resources::registry`] sets the instances
/// of WorkloadEntries ([`Registry::set_instances`]).
pub const WORKLOAD_ENTRIES: &str = "WorkloadEntry";

/// The resources of one or more files that the client configuration and
/// the service registry read.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// VirtualServices, in the order read.
    pub virtual_services: Vec<Sourced<VirtualService>>,
    /// DestinationRules, in the order read.
    pub destination_rules: Vec<Sourced<DestinationRule>>,
    /// Gateways, in the order read.
    pub gateways: Vec<Sourced<Gateway>>,
    /// ServiceEntries, in the order read.
    pub service_entries: Vec<Sourced<ServiceEntry>>,
    /// WorkloadEntries, in the order read.
    pub workload_entries: Vec<Sourced<WorkloadEntry>>,
    /// Kubernetes Services, in the order read.
    pub services: Vec<Sourced<kubernetes::Service>>,
    /// AuthorizationPolicies, in the order read.
    pub authorization_policies: Vec<Sourced<AuthorizationPolicy>>,
    /// PeerAuthentications, in the order read.
    pub peer_authentications: Vec<Sourced<PeerAuthentication>>,
    /// Sidecars, in the order read.
    pub sidecars: Vec<Sourced<Sidecar>>,
    /// Kubernetes Secrets (the certificates of Gateway servers), in the
    /// order read.
    pub secrets: Vec<Sourced<kubernetes::Secret>>,
}

impl Resources {
    /// Adds the resources of another file after these.
    pub fn extend(&mut self, other: Resources) {
        self.virtual_services.extend(other.virtual_services);
        self.destination_rules.extend(other.destination_rules);
        self.gateways.extend(other.gateways);
        self.service_entries.extend(other.service_entries);
        self.workload_entries.extend(other.workload_entries);
        self.services.extend(other.services);
        self.authorization_policies
            .extend(other.authorization_policies);
        self.peer_authentications.extend(other.peer_authentications);
        self.sidecars.extend(other.sidecars);
        self.secrets.extend(other.secrets);
    }

    /// The Gateways a gateway proxy carrying `labels` implements, in the
    /// order read: those whose `selector` its labels include, in every
    /// namespace (istiod's default, with `PILOT_SCOPE_GATEWAY_TO_NAMESPACE`
    /// off). A Gateway without a selector is implemented by every gateway
    /// proxy, so ask only for gateway proxies. Their
    /// [`qualified_name`](Gateway::qualified_name)s are the
    /// [`Workload::gateways`] of the proxy; their servers are the ports it
    /// listens on.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use mesh_istio::Workload;
    ///
    /// let yaml = r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: Gateway
    /// metadata: {name: public, namespace: istio-system}
    /// spec:
    ///   selector: {istio: ingressgateway}
    ///   servers:
    ///   - port: {number: 8080, name: http, protocol: HTTP}
    ///     hosts: ["*"]
    /// "#;
    /// let (resources, _) = mesh_istio::parse("gateway.yaml", yaml)?;
    /// let labels = BTreeMap::from([("istio".to_owned(), "ingressgateway".to_owned())]);
    /// let gateways = resources.gateways_for(&labels);
    /// assert_eq!(gateways.len(), 1);
    /// assert_eq!(gateways[0].resource.spec.servers[0].port.as_ref().unwrap().number, 8080);
    /// let workload = Workload {
    ///     namespace: "istio-system".into(),
    ///     labels,
    ///     gateways: gateways.iter().map(|g| g.resource.qualified_name()).collect(),
    ///     ..Workload::default()
    /// };
    /// assert_eq!(workload.gateways, ["istio-system/public"]);
    /// assert!(resources.gateways_for(&BTreeMap::new()).is_empty());
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn gateways_for(&self, labels: &BTreeMap<String, String>) -> Vec<&Sourced<Gateway>> {
        self.gateways
            .iter()
            .filter(|g| g.resource.selects(labels))
            .collect()
    }

    /// The service registry the ServiceEntries, WorkloadEntries and
    /// Kubernetes Services define, Kubernetes Services named
    /// `name.namespace.svc.<cluster_domain>`: a service per ServiceEntry
    /// host and per Kubernetes Service, and the WorkloadEntries' instances
    /// under the source [`WORKLOAD_ENTRIES`]. A host defined twice, a port
    /// without a number, or a value Istio would reject is an error.
    ///
    /// ```
    /// use mesh_core::Cluster;
    ///
    /// let yaml = r#"
    /// apiVersion: v1
    /// kind: Service
    /// metadata: {name: reviews}
    /// spec:
    ///   ports: [{name: http, port: 9080}]
    ///   selector: {app: reviews}
    /// ---
    /// apiVersion: networking.istio.io/v1
    /// kind: WorkloadEntry
    /// metadata: {name: reviews-v2}
    /// spec:
    ///   address: 10.0.0.2
    ///   labels: {app: reviews, version: v2}
    /// "#;
    /// let (resources, warnings) = mesh_istio::parse("reviews.yaml", yaml)?;
    /// assert!(warnings.is_empty());
    /// let registry = resources.registry("cluster.local")?;
    /// let host = "reviews.default.svc.cluster.local";
    /// assert_eq!(registry.service(host).unwrap().ports[0].number, 9080);
    /// let whole = Cluster::named("outbound|9080||reviews.default.svc.cluster.local");
    /// let set = registry.endpoints(host, 9080, &whole);
    /// assert_eq!(set.iter().next().unwrap().addr.to_string(), "10.0.0.2:9080");
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn registry(&self, cluster_domain: &str) -> Result<Registry, IstioError> {
        convert::registry(self, cluster_domain)
    }

    /// The mesh configuration for a client in namespace `default` with no
    /// labels ([`Workload::default`]), without the warnings of
    /// [`convert`](Self::convert).
    pub fn to_mesh_config(&self) -> Result<MeshConfig, IstioError> {
        self.to_mesh_config_for(&Workload::default())
    }

    /// The mesh configuration for a client that is `workload`, without the
    /// warnings of [`convert`](Self::convert).
    pub fn to_mesh_config_for(&self, workload: &Workload) -> Result<MeshConfig, IstioError> {
        self.convert(workload).map(|(config, _)| config)
    }

    /// The mesh configuration for a client that is `workload`, and
    /// warnings about what the conversion leaves out (such as a hash
    /// policy the destinations of a split disagree on). [`parse`] warns
    /// about what a file holds; these are about how resources combine.
    ///
    /// ```
    /// use mesh_istio::Workload;
    ///
    /// let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: r}}]\n";
    /// let (resources, _) = mesh_istio::parse("r.yaml", yaml)?;
    /// let (config, warnings) = resources.convert(&Workload::default())?;
    /// assert!(warnings.is_empty());
    /// assert_eq!(config.clusters().count(), 1);
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn convert(&self, workload: &Workload) -> Result<(MeshConfig, Vec<Warning>), IstioError> {
        convert::mesh_config(self, workload)
    }

    /// The ports a gateway proxy that is `workload` serves, and the
    /// servers on each; each server's route table is the listener of
    /// [`convert`](Self::convert)'s configuration it names. Empty for a
    /// workload that is not a gateway.
    ///
    /// ```
    /// use mesh_istio::Workload;
    ///
    /// let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec:\n  servers:\n  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['*']\n";
    /// let (resources, _) = mesh_istio::parse("edge.yaml", yaml)?;
    /// let proxy = Workload { gateways: vec!["default/edge".into()], ..Workload::default() };
    /// let ports = resources.gateway_ports(&proxy)?;
    /// assert_eq!((ports[0].number, ports[0].servers[0].routes.as_str()), (8080, "http.8080"));
    /// let (config, _) = resources.convert(&proxy)?;
    /// assert!(config.listener("http.8080").is_some());
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn gateway_ports(&self, workload: &Workload) -> Result<Vec<GatewayPort>, IstioError> {
        if !workload.is_gateway() {
            return Ok(Vec::new());
        }
        convert::gateway_ports(self, workload)
    }

    /// The listeners of the `Sidecar` that applies to `workload`, as
    /// istiod picks it (see [`Sidecar`]); `None` when none does, and the
    /// sidecar reaches every service.
    ///
    /// ```
    /// use mesh_istio::Workload;
    ///
    /// let yaml = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default}\nspec:\n  ingress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    defaultEndpoint: 127.0.0.1:8080\n  egress:\n  - hosts: [./*, istio-system/*]\n";
    /// let (resources, _) = mesh_istio::parse("sidecar.yaml", yaml)?;
    /// let listeners = resources.sidecar_listeners(&Workload::default())?.expect("the namespace's Sidecar");
    /// assert_eq!(listeners.ingress[0].endpoint, "127.0.0.1:8080".parse().unwrap());
    /// assert!(listeners.egress[0].selects("default", "reviews.default.svc.cluster.local"));
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn sidecar_listeners(
        &self,
        workload: &Workload,
    ) -> Result<Option<SidecarListeners>, IstioError> {
        convert::sidecar_listeners(self, workload)
    }

    /// Checks every `Sidecar`, as [`sidecar_listeners`](Self::sidecar_listeners)
    /// would for a workload it applies to: what a control plane does when
    /// it loads them, before any sidecar connects.
    ///
    /// ```
    ///
    /// let yaml = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: reviews}\nspec:\n  workloadSelector: {labels: {app: reviews}}\n  egress:\n  - hosts: [reviews]\n";
    /// let (resources, _) = mesh_istio::parse("sidecar.yaml", yaml)?;
    /// let e = resources.check_sidecars().unwrap_err();
    /// assert!(e.to_string().contains("spec.egress[0].hosts[0]"), "{e}");
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn check_sidecars(&self) -> Result<(), IstioError> {
        convert::check_sidecars(self)
    }

    /// The RBAC filters a server that is `workload` runs, DENY then ALLOW,
    /// from the AuthorizationPolicies of its namespace and of the root
    /// namespace that select it; empty when none does. AUDIT and CUSTOM
    /// policies are left out ([`check_authorization`](Self::check_authorization)
    /// warns about them), and what cannot be enforced as written (JWT
    /// principals, `request.auth.*` conditions, ...) is an error.
    ///
    /// ```
    /// use mesh_core::security::{RbacAction, Principal};
    /// use mesh_istio::Workload;
    ///
    /// let yaml = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: from-sleep}\nspec:\n  rules:\n  - from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]\n";
    /// let (resources, _) = mesh_istio::parse("authz.yaml", yaml)?;
    /// let filters = resources.authorization(&Workload::default())?;
    /// assert_eq!(filters[0].action, RbacAction::Allow);
    /// let (name, policy) = &filters[0].policies[0];
    /// assert_eq!(name, "default-from-sleep-0");
    /// let Principal::Authenticated(Some(id)) = &policy.principals[0] else { panic!() };
    /// assert!(id.matches("spiffe://cluster.local/ns/default/sa/sleep"));
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn authorization(&self, workload: &Workload) -> Result<Vec<Rbac>, IstioError> {
        convert::rbac(self, workload)
    }

    /// Checks every AuthorizationPolicy as [`authorization`](Self::authorization)
    /// would for a workload it applies to, and warns about those it leaves
    /// out.
    pub fn check_authorization(&self) -> Result<Vec<Warning>, IstioError> {
        convert::check_authorization(self)
    }

    /// The mutual TLS mode of `workload`'s port `port`, as Istio resolves
    /// its PeerAuthentications: the workload's (by selector, its
    /// `portLevelMtls` first), else its namespace's, else the root
    /// namespace's; `UNSET` inherits, and with none it is PERMISSIVE.
    ///
    /// ```
    /// use mesh_core::security::MtlsMode;
    /// use mesh_istio::Workload;
    ///
    /// let yaml = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n";
    /// let (resources, _) = mesh_istio::parse("peer.yaml", yaml)?;
    /// assert_eq!(resources.mtls_mode(&Workload::default(), 9080), MtlsMode::Strict);
    /// # Ok::<(), mesh_istio::IstioError>(())
    /// ```
    pub fn mtls_mode(&self, workload: &Workload, port: u16) -> MtlsMode {
        convert::mtls_mode(self, workload, port)
    }
}

impl TryFrom<&Resources> for MeshConfig {
    type Error = IstioError;

    fn try_from(resources: &Resources) -> Result<Self, IstioError> {
        resources.to_mesh_config()
    }
}

/// The client the configuration is for: where it runs and what labels it
/// carries, which decide the short host names it may use and the rules
/// that select clients (`sourceLabels`, `sourceNamespace`,
/// `workloadSelector`); and, for a gateway proxy, the Gateways it
/// implements, which decide the VirtualServices it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Its namespace. Default `default`.
    pub namespace: String,
    /// The cluster's DNS domain. Default `cluster.local`.
    pub cluster_domain: String,
    /// Its labels. Default none.
    pub labels: BTreeMap<String, String>,
    /// The Gateways it implements as a gateway proxy, `namespace/name`
    /// (a name alone is in the workload's namespace), such as
    /// [`Resources::gateways_for`] finds by its labels. Default none: a
    /// sidecar or proxyless client of the mesh.
    pub gateways: Vec<String>,
}

impl Workload {
    /// Whether it is a gateway proxy: it implements some Gateway.
    pub fn is_gateway(&self) -> bool {
        !self.gateways.is_empty()
    }
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            cluster_domain: "cluster.local".into(),
            labels: BTreeMap::new(),
            gateways: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
