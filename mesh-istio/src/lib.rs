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
//! counterpart for) is a warning. A DestinationRule's TLS is kept on the
//! cluster ([`ClusterPolicy::tls`](mesh_core::policy::ClusterPolicy)) for
//! the control plane to serve and the mesh's own clients to dial (they
//! dial `ISTIO_MUTUAL` with a workload identity, not yet `SIMPLE` or
//! `MUTUAL`), with a warning saying which.
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
mod resources;
mod yaml;

use std::collections::BTreeMap;

pub use api::*;
pub use duration::{Duration, InvalidDuration};
pub use error::{IstioError, IstioErrorKind, Location, Warning};
pub use resources::Resources;
pub use yaml::Origin;

#[cfg(doc)]
use mesh_core::cluster::{Cluster, istio_cluster_name};
#[cfg(doc)]
use mesh_core::{config::MeshConfig, registry::Registry};

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
