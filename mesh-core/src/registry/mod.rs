//! The service registry: which services exist (host names, ports) and the
//! workload instances that serve them, for a control plane without
//! Kubernetes. It is Istio's service model in small: [`Service`]s as
//! Kubernetes Services and ServiceEntries define them, [`Instance`]s as
//! WorkloadEntries (or a launcher's own processes) describe them, and a
//! service's endpoints the instances of its namespace its selector
//! matches, plus those written with it.
//!
//! Instances are kept by source: [`Registry::set_instances`] replaces what
//! one source said before (the instances read from YAML, those a launcher
//! started), so each source updates its own without touching the others'.
//!
//! `mesh_istio::Resources::registry` builds a registry from
//! Istio's ServiceEntries and WorkloadEntries and Kubernetes Services.
//!
//! ```
//! use mesh_core::Cluster;
//! use mesh_core::registry::{Instance, Protocol, Registry, Service, ServicePort};
//!
//! let mut reviews = Service::new("reviews.default.svc.cluster.local", "default");
//! reviews.selector.insert("app".into(), "reviews".into());
//! reviews.ports.push(ServicePort {
//!     number: 9080,
//!     name: "http".into(),
//!     protocol: Protocol::Http,
//!     target_port: None,
//! });
//! let mut registry = Registry::new();
//! registry.insert_service(reviews);
//!
//! let started = ["127.0.0.1", "127.0.0.2"].map(|a| {
//!     let mut i = Instance::new(a);
//!     i.labels.insert("app".into(), "reviews".into());
//!     i
//! });
//! registry.set_instances("launcher", started.into());
//!
//! let whole = Cluster::named("outbound|9080||reviews.default.svc.cluster.local");
//! let set = registry.endpoints("reviews.default.svc.cluster.local", 9080, &whole);
//! assert_eq!(set.len(), 2);
//! assert_eq!(set.iter().next().unwrap().addr, "127.0.0.1:9080".parse()?);
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

mod instance;
mod service;

use std::collections::BTreeMap;

use crate::cluster::Cluster;
use crate::endpoint::{Endpoint, EndpointSet};

pub use instance::{Instance, parse_locality};
pub use service::{Protocol, Resolution, Service, ServicePort};

/// Services by host name, and the instances each source gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    services: BTreeMap<String, Service>,
    instances: BTreeMap<String, Vec<Instance>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The service whose host name is `fqdn`.
    pub fn service(&self, fqdn: &str) -> Option<&Service> {
        self.services.get(fqdn)
    }

    /// The services, by host name.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// Adds `service`, returning the one of the same host name it
    /// replaces.
    pub fn insert_service(&mut self, service: Service) -> Option<Service> {
        self.services.insert(service.hostname.clone(), service)
    }

    /// Removes the service whose host name is `fqdn`.
    pub fn remove_service(&mut self, fqdn: &str) -> Option<Service> {
        self.services.remove(fqdn)
    }

    /// Replaces every instance `source` set before with `instances`; an
    /// empty list removes the source.
    pub fn set_instances(&mut self, source: &str, instances: Vec<Instance>) {
        if instances.is_empty() {
            self.instances.remove(source);
        } else {
            self.instances.insert(source.to_owned(), instances);
        }
    }

    /// The instances `source` set.
    pub fn instances_of(&self, source: &str) -> &[Instance] {
        self.instances.get(source).map_or(&[], Vec::as_slice)
    }

    /// Every instance, by source.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values().flatten()
    }

    /// Adds the services and instances of `other`: its services replace
    /// those of the same host names, and its sources those of the same
    /// keys.
    pub fn extend(&mut self, other: Registry) {
        self.services.extend(other.services);
        self.instances.extend(other.instances);
    }

    /// The endpoints of port `port` of the service `fqdn` that belong to
    /// `cluster` (its subset's labels, [`Cluster::selects`]): each instance
    /// the service selects and each written with it, at the instance's
    /// address and the port serving `port` ([`ServicePort::instance_port`]),
    /// with its labels, locality and weight. Instances whose address is not
    /// an IP address (a DNS ServiceEntry's host names) are left out. Empty
    /// for an unknown service or port.
    pub fn endpoints(&self, fqdn: &str, port: u16, cluster: &Cluster) -> EndpointSet {
        self.selected(fqdn, port, cluster).map(|(_, e)| e).collect()
    }

    /// The service accounts (namespace, name) the instances behind
    /// [`endpoints`](Self::endpoints) run as, each once, in order: the
    /// identities a client of the cluster may expect of its server.
    pub fn service_accounts(
        &self,
        fqdn: &str,
        port: u16,
        cluster: &Cluster,
    ) -> Vec<(String, String)> {
        let mut accounts: Vec<(String, String)> = self
            .selected(fqdn, port, cluster)
            .filter_map(|(i, _)| Some((i.namespace.clone(), i.service_account.clone()?)))
            .collect();
        accounts.sort();
        accounts.dedup();
        accounts
    }

    /// The instances of `fqdn` serving `port` that `cluster` selects, with
    /// their endpoints.
    fn selected<'a>(
        &'a self,
        fqdn: &str,
        port: u16,
        cluster: &'a Cluster,
    ) -> impl Iterator<Item = (&'a Instance, Endpoint)> + 'a {
        let service = self.services.get(fqdn);
        let port = service.and_then(|s| s.port(port));
        let (inline, selected) = match (service, port) {
            (Some(service), Some(_)) => (
                service.endpoints.as_slice(),
                Some(self.instances().filter(move |i| service.selects(i))),
            ),
            _ => (&[][..], None),
        };
        inline
            .iter()
            .chain(selected.into_iter().flatten())
            .filter_map(move |i| Some((i, i.endpoint(port?)?)))
            .filter(move |(_, e)| cluster.selects(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "reviews.default.svc.cluster.local";

    fn reviews() -> Service {
        let mut s = Service::new(HOST, "default");
        s.selector.insert("app".into(), "reviews".into());
        s.ports.push(ServicePort {
            number: 9080,
            name: "http".into(),
            protocol: Protocol::Http,
            target_port: Some(8080),
        });
        s
    }

    fn instance(address: &str, version: &str) -> Instance {
        let mut i = Instance::new(address);
        i.labels.insert("app".into(), "reviews".into());
        i.labels.insert("version".into(), version.into());
        i
    }

    fn addresses(set: &EndpointSet) -> Vec<String> {
        set.iter().map(|e| e.addr.to_string()).collect()
    }

    #[test]
    fn endpoints_of_a_port_and_a_subset() {
        let mut r = Registry::new();
        assert_eq!(r.insert_service(reviews()), None);
        r.set_instances(
            "yaml",
            vec![instance("10.0.0.1", "v1"), instance("10.0.0.2", "v2")],
        );
        let mut other = instance("10.0.0.3", "v2");
        other.namespace = "prod".into();
        r.set_instances("launcher", vec![other, instance("api.internal", "v2")]);

        let whole = Cluster::named("outbound|9080||reviews");
        let all = r.endpoints(HOST, 9080, &whole);
        assert_eq!(addresses(&all), ["10.0.0.1:8080", "10.0.0.2:8080"]);
        let mut v2 = Cluster::named("outbound|9080|v2|reviews");
        v2.subset.insert("version".into(), "v2".into());
        assert_eq!(addresses(&r.endpoints(HOST, 9080, &v2)), ["10.0.0.2:8080"]);
        assert!(r.endpoints(HOST, 9081, &whole).is_empty());
        assert!(r.endpoints("ratings", 9080, &whole).is_empty());
    }

    #[test]
    fn inline_endpoints_whatever_their_labels() {
        let mut s = reviews();
        s.selector.clear();
        s.endpoints.push(instance("10.0.1.1", "v1"));
        let mut r = Registry::new();
        r.insert_service(s);
        r.set_instances("yaml", vec![instance("10.0.0.1", "v1")]);
        let whole = Cluster::named("c");
        assert_eq!(
            addresses(&r.endpoints(HOST, 9080, &whole)),
            ["10.0.1.1:8080"]
        );
    }

    #[test]
    fn sources_replace_only_their_own_instances() {
        let mut r = Registry::new();
        r.insert_service(reviews());
        r.set_instances("a", vec![instance("10.0.0.1", "v1")]);
        r.set_instances("b", vec![instance("10.0.0.2", "v1")]);
        r.set_instances("a", vec![instance("10.0.0.3", "v1")]);
        let whole = Cluster::named("c");
        assert_eq!(
            addresses(&r.endpoints(HOST, 9080, &whole)),
            ["10.0.0.2:8080", "10.0.0.3:8080"]
        );
        r.set_instances("b", Vec::new());
        assert!(r.instances_of("b").is_empty());
        assert_eq!(r.instances().count(), 1);

        let mut other = Registry::new();
        let mut replaced = reviews();
        replaced.ports[0].target_port = None;
        other.insert_service(replaced);
        other.set_instances("a", vec![instance("10.0.0.4", "v1")]);
        other.set_instances("c", vec![instance("10.0.0.5", "v1")]);
        r.extend(other);
        assert_eq!(
            addresses(&r.endpoints(HOST, 9080, &whole)),
            ["10.0.0.4:9080", "10.0.0.5:9080"]
        );
        assert_eq!(r.services().count(), 1);
        assert!(r.remove_service(HOST).is_some());
        assert!(r.service(HOST).is_none());
    }
}
