//! [`Resources`]: the Istio resources of one or more files, and what they
//! become for a workload: its configuration, the registry, a gateway's
//! ports, a sidecar's listeners, a server's RBAC filters and the mutual
//! TLS mode of its ports.

use std::collections::BTreeMap;

use mesh_core::config::MeshConfig;
use mesh_core::gateway::GatewayPort;
use mesh_core::registry::Registry;
use mesh_core::security::{InboundPolicy, MtlsMode, Rbac};
use mesh_core::sidecar::SidecarListeners;

#[cfg(doc)]
use super::WORKLOAD_ENTRIES;
use super::api::{
    AuthorizationPolicy, DestinationRule, Gateway, PeerAuthentication, ServiceEntry, Sidecar,
    VirtualService, WorkloadEntry, kubernetes,
};
use super::error::{IstioError, Warning};
use super::{Sourced, Workload, convert};

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
    /// policy the destinations of a split disagree on). [`parse`](crate::parse) warns
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
    /// namespace that select it; empty when none does. AUDIT policies are
    /// left out ([`check_authorization`](Self::check_authorization) warns
    /// about them); a CUSTOM policy (there is no external authorizer), and
    /// what cannot be enforced as written (JWT principals,
    /// `request.auth.*` conditions, ...), is an error.
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

    /// What `workload`'s port `port` asks of its callers: its mutual TLS
    /// mode ([`mtls_mode`](Self::mtls_mode)) and its authorization
    /// ([`authorization`](Self::authorization)).
    pub fn inbound_policy(
        &self,
        workload: &Workload,
        port: u16,
    ) -> Result<InboundPolicy, IstioError> {
        Ok(InboundPolicy {
            mtls: self.mtls_mode(workload, port),
            rbac: self.authorization(workload)?,
        })
    }
}

impl TryFrom<&Resources> for MeshConfig {
    type Error = IstioError;

    fn try_from(resources: &Resources) -> Result<Self, IstioError> {
        resources.to_mesh_config()
    }
}
