//! Putting a node's resources together service port by service port:
//! listeners and route configurations as they come (one name, one
//! resource), and the clusters routes name kept as mesh values until the
//! end, when each gets from the registry its endpoints (prioritised by
//! locality) and the identities its mutual TLS expects, and for Envoy
//! with mounted certificates the files it reads them from, and is
//! written for the node's kind of client.

use std::collections::BTreeMap;

use envoy_types::pb::google::protobuf::Any;
use mesh_core::cluster::istio_cluster_name;
use mesh_core::policy::TlsFiles;
use mesh_core::registry::Registry;
use mesh_core::route::ClusterName;
use mesh_core::{Cluster, Endpoint, EndpointSet, Locality, MeshConfig};
use mesh_xds::resource::ResourceType;
use mesh_xds::translate::{self, Peer, TranslateError};
use prost::{Message, Name};

use crate::node::{CertFiles, NodeClass, Shape};

/// Resources by type, packed and named, as
/// [`ResourceCache::set_all`](mesh_xds::server::ResourceCache::set_all)
/// takes them.
pub type ByType = Vec<(ResourceType, Vec<(String, Any)>)>;

/// Why a node's resources could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A route, cluster or endpoint set xDS cannot say.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// An authorization policy that cannot be enforced as written.
    #[error(transparent)]
    Istio(#[from] mesh_istio::IstioError),
    /// A port that takes mutual TLS only, on a node without certificates.
    #[error(
        "port {port} takes mutual TLS only (STRICT), and the node names no certificate files (metadata TLS_CLIENT_CERT_CHAIN, TLS_CLIENT_KEY, TLS_CLIENT_ROOT_CERT)"
    )]
    NoCertificates {
        /// The port.
        port: u16,
    },
    /// A Sidecar's ingress and egress listeners on one address.
    #[error(
        "the Sidecar's ingress and egress listeners both bind {addr} on this node; give one of them another bind"
    )]
    SharedAddress {
        /// The address.
        addr: std::net::SocketAddr,
    },
}

/// The resources of one node, being gathered.
#[derive(Debug, Default)]
pub(crate) struct Assembly {
    by_type: BTreeMap<ResourceType, BTreeMap<String, Any>>,
    /// Each cluster with its service and port, whose endpoints it takes.
    clusters: BTreeMap<String, (Cluster, String, u16)>,
    /// Where the node runs and its labels, by which endpoints are
    /// weighed and prioritised.
    locality: Locality,
    labels: BTreeMap<String, String>,
    /// The node's certificate files, which its mutual TLS clusters read
    /// instead of gRPC's certificate provider.
    cert_files: Option<CertFiles>,
    /// Which xDS client the node is.
    peer: Peer,
}

impl Assembly {
    /// An empty assembly for `node`.
    pub(crate) fn new(node: &NodeClass) -> Self {
        Self {
            locality: node.locality.clone(),
            labels: node.labels.clone(),
            cert_files: node.cert_files.clone(),
            peer: match node.shape {
                Shape::Proxyless | Shape::ProxylessRouter => Peer::Grpc,
                Shape::Sidecar | Shape::Router => Peer::Envoy,
            },
            ..Self::default()
        }
    }

    /// Adds the resource `m` named `name`; a later one of the same name
    /// replaces it.
    pub(crate) fn add<T: Message + Name>(&mut self, name: &str, m: &T) {
        let Some(kind) = ResourceType::from_type_url(&T::type_url()) else {
            return;
        };
        let (name, any) = translate::entry(name, m);
        self.by_type.entry(kind).or_default().insert(name, any);
    }

    /// Completes a TLS cluster's settings for the node: the mesh's mutual
    /// TLS expects the service accounts `accounts` (namespace, name) its
    /// instances run as when the rule names no identity, as istiod fills
    /// them in, and reads the node's mounted certificate files (Envoy)
    /// rather than gRPC's certificate provider.
    fn secure(&self, c: &mut Cluster, accounts: Vec<(String, String)>) {
        let Some(tls) = &mut c.policy.tls else {
            return;
        };
        if tls.files.is_some() {
            return;
        }
        if tls.subject_alt_names.is_empty() {
            tls.subject_alt_names = accounts
                .into_iter()
                .map(|(ns, sa)| format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/{sa}").into())
                .collect();
        }
        tls.files = self.cert_files.as_ref().map(|f| TlsFiles {
            client_certificate: Some(f.chain.clone()),
            private_key: Some(f.key.clone()),
            ca_certificates: Some(f.root.clone()),
        });
    }

    /// Adds `routes` for the node: its route configuration, and its
    /// clusters, whose endpoints are those of the service `host` on
    /// `port`.
    pub(crate) fn add_routes(
        &mut self,
        routes: &translate::PortedRoutes,
        host: &str,
        port: u16,
    ) -> Result<(), TranslateError> {
        self.add_route_configuration(&routes.name, &routes.virtual_hosts)?;
        self.add_clusters(&routes.clusters, host, port);
        Ok(())
    }

    /// Adds the route configuration `name` of `virtual_hosts`, written for
    /// the node.
    pub(crate) fn add_route_configuration(
        &mut self,
        name: &str,
        virtual_hosts: &[mesh_core::route::VirtualHost],
    ) -> Result<(), TranslateError> {
        let rc = translate::route_configuration_for(name, virtual_hosts, self.peer)?;
        self.add(name, &rc);
        Ok(())
    }

    /// Adds a gateway server's route configuration `name` (`http.8080`),
    /// the virtual hosts of `config`'s table of that name, written for the
    /// node, and the clusters they send to; a destination written without
    /// a port takes its service's only port.
    pub(crate) fn add_gateway_routes(
        &mut self,
        name: &str,
        config: &MeshConfig,
        registry: &Registry,
    ) -> Result<(), TranslateError> {
        let port_of = |c: &ClusterName| {
            let host = c.as_str().rsplit('|').next()?;
            match registry.service(host)?.ports.as_slice() {
                [only] => Some(only.number),
                _ => None,
            }
        };
        let vhosts = config
            .listener(name)
            .map(|t| t.virtual_hosts().to_vec())
            .unwrap_or_default();
        let ported = translate::port_routes(config, name, vhosts, port_of)?;
        self.add_route_configuration(name, &ported.virtual_hosts)?;
        for c in &ported.clusters {
            if let Some((host, port)) = service_port_of(c.name.as_str()) {
                self.add_clusters(std::slice::from_ref(c), host, port);
            }
        }
        Ok(())
    }

    /// Adds `clusters` of the service `host` on `port`.
    pub(crate) fn add_clusters(&mut self, clusters: &[Cluster], host: &str, port: u16) {
        for c in clusters {
            let name = c.name.as_str().to_owned();
            self.clusters
                .insert(name, (c.clone(), host.to_owned(), port));
        }
    }

    /// Everything, with an EDS resource per cluster, and each mutual TLS
    /// cluster that names no server identity expecting those its
    /// instances run as, as istiod fills them in.
    pub(crate) fn finish(
        mut self,
        config: &MeshConfig,
        registry: &Registry,
    ) -> Result<ByType, BuildError> {
        let clusters = std::mem::take(&mut self.clusters);
        let mut assignments = BTreeMap::new();
        for (name, (mut ported, host, port)) in clusters {
            let (set, accounts) = match mesh_cluster(&name, &host, port, config) {
                Some(cluster) => (
                    cluster_endpoints(cluster, &host, port, registry, &self.locality, &self.labels),
                    registry.service_accounts(&host, port, cluster),
                ),
                None => (EndpointSet::default(), Vec::new()),
            };
            let cla = translate::load_assignment(&name, &set)?;
            assignments.extend([translate::entry(&name, &cla)]);
            self.secure(&mut ported, accounts);
            let proto = translate::cluster_for(&ported, self.peer)?;
            self.add(&name, &proto);
        }
        self.by_type
            .insert(ResourceType::LoadAssignment, assignments);
        // Secrets are a gateway's only, added apart.
        Ok(ResourceType::ALL
            .into_iter()
            .filter(|kind| *kind != ResourceType::Secret)
            .map(|kind| {
                let entries = self.by_type.remove(&kind).unwrap_or_default();
                (kind, entries.into_iter().collect())
            })
            .collect())
    }
}

/// The service and port of a cluster named `outbound|PORT|SUBSET|HOST`.
fn service_port_of(name: &str) -> Option<(&str, u16)> {
    let mut parts = name.split('|');
    let (_, port, _, host) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((host, port.parse().ok()?))
}

/// Whether `config` routes the service `host` on `port`: a service not
/// exported to the node has no virtual host, and is left out rather than
/// failing the node's other resources.
pub(crate) fn routed(config: &MeshConfig, host: &str, port: u16) -> bool {
    let with_port = format!("{host}:{port}");
    config
        .routes()
        .virtual_hosts()
        .iter()
        .any(|vh| vh.domains.iter().any(|d| *d == host || *d == with_port))
}

/// The mesh cluster the xDS cluster `name` (`outbound|PORT|SUBSET|HOST`)
/// was written from.
fn mesh_cluster<'a>(
    name: &str,
    host: &str,
    port: u16,
    config: &'a MeshConfig,
) -> Option<&'a Cluster> {
    let subset = name.split('|').nth(2).filter(|s| !s.is_empty());
    [Some(port), None]
        .into_iter()
        .find_map(|p| config.cluster(&istio_cluster_name(host, p, subset)))
}

/// The trust domain of the mesh's identities, Istio's default.
const TRUST_DOMAIN: &str = "cluster.local";

/// The endpoints of `cluster` of the service `host` on `port` for a node
/// at `locality` with `labels`: the service's instances its subset
/// selects, weighed and prioritised by the cluster's locality settings
/// (see [`LocalityLb`](mesh_core::policy::LocalityLb)), as istiod writes
/// a proxy's endpoints. By default a cluster that ejects outliers keeps a
/// client in its own locality until too few endpoints there are healthy.
fn cluster_endpoints(
    cluster: &Cluster,
    host: &str,
    port: u16,
    registry: &Registry,
    locality: &Locality,
    labels: &BTreeMap<String, String>,
) -> EndpointSet {
    let endpoints: Vec<Endpoint> = registry
        .endpoints(host, port, cluster)
        .iter()
        .cloned()
        .collect();
    let policy = cluster.policy_for(port);
    let outlier = &policy.outlier;
    let ejects = outlier.consecutive_5xx.is_some() || outlier.consecutive_gateway_errors.is_some();
    policy
        .locality
        .apply(locality, labels, ejects, endpoints)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_dir::load_texts;

    const REVIEWS: &str = "outbound|9080||reviews.default.svc.cluster.local";

    /// reviews with an instance in each of three localities, and a
    /// DestinationRule that ejects outliers when `ejects`.
    fn setup(ejects: bool) -> (MeshConfig, Registry) {
        let mut yaml = String::from(
            "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n\
             spec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n",
        );
        for (i, locality) in ["us-east/a/1", "us-east/b/1", "us-west/c/1"]
            .iter()
            .enumerate()
        {
            yaml.push_str(&format!(
                "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
                 metadata: {{name: r{i}}}\n\
                 spec: {{address: 10.0.0.{i}, locality: {locality}, labels: {{app: reviews}}}}\n"
            ));
        }
        if ejects {
            yaml.push_str(
                "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
                 metadata: {name: reviews}\nspec:\n  host: reviews\n\
                 \x20 trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}}\n",
            );
        }
        let loaded = load_texts([("r.yaml".into(), yaml)], "cluster.local").unwrap();
        let config = loaded.resources.to_mesh_config().unwrap();
        (config, loaded.registry)
    }

    fn priorities(ejects: bool, node: &Locality) -> Vec<(String, u32)> {
        let (config, registry) = setup(ejects);
        let host = "reviews.default.svc.cluster.local";
        let cluster = mesh_cluster(REVIEWS, host, 9080, &config).unwrap();
        cluster_endpoints(cluster, host, 9080, &registry, node, &BTreeMap::new())
            .iter()
            .map(|e| (e.locality.zone.clone(), e.priority))
            .collect()
    }

    #[test]
    fn nearer_localities_come_first_when_outliers_are_ejected() {
        let east_a = Locality {
            region: "us-east".into(),
            zone: "a".into(),
            sub_zone: "1".into(),
        };
        let mut got = priorities(true, &east_a);
        got.sort();
        assert_eq!(got, [("a".into(), 0), ("b".into(), 1), ("c".into(), 2)]);
        // Without outlier detection, or without a node locality: one level.
        assert!(priorities(false, &east_a).iter().all(|(_, p)| *p == 0));
        assert!(
            priorities(true, &Locality::default())
                .iter()
                .all(|(_, p)| *p == 0)
        );
    }
}
