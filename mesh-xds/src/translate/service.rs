//! One service port of a [`MeshConfig`] as istiod serves it to a
//! proxyless client: the listener the client asked for, the route
//! configuration named after the service's port
//! (`outbound|9080||reviews.default.svc.cluster.local`) and the EDS
//! clusters its routes name (`outbound|9080|v1|…`).
//!
//! A `MeshConfig` read from Istio's YAML names a destination without a
//! port `outbound||v1|…` and keeps the policy of each port on that one
//! cluster; istiod writes one cluster per port. So, for the port asked:
//!
//! - The virtual host is the one for `host:port` if there is one (a
//!   VirtualService match on that port), else the one for `host`; its
//!   domains are written with and without the port, as istiod lists them
//!   (`reviews`, `reviews:9080`, …).
//! - Every cluster name with an empty port (in destinations and mirrors)
//!   gets the port; other names are kept.
//! - Each cluster is written with the policy of the port
//!   ([`Cluster::policy_for`]), and its retries and timeout, which xDS
//!   keeps on routes, are put on the routes that forward to it without
//!   their own, as istiod puts Istio's default retry policy on every
//!   route. The clusters of one split must agree on them.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3 as cds;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use mesh_core::cluster::istio_cluster_name;
use mesh_core::policy::RetryPolicy;
use mesh_core::route::{ClusterName, Destination, Forward, RouteAction, VirtualHost};
use mesh_core::{Cluster, Discovery, MeshConfig};
use prost::Name;

use crate::resource::ResourceType;

use super::error::{Refused, TranslateError};
use super::{api_listener, cluster, route_configuration};

/// What a proxyless client is served for one service port.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    /// The listener, named as the client asked.
    pub listener: Listener,
    /// The route configuration the listener names.
    pub route_configuration: RouteConfiguration,
    /// The clusters its routes send and mirror to, in the order first named.
    pub clusters: Vec<cds::Cluster>,
}

impl ServicePort {
    /// The listener, route configuration and clusters, packed and by type
    /// as [`ResourceCache::set_all`](crate::server::ResourceCache::set_all)
    /// takes them (with the caller's EDS resources beside them).
    pub fn entries(&self) -> [(ResourceType, Vec<(String, Any)>); 3] {
        [
            (
                ResourceType::Listener,
                vec![super::entry(&self.listener.name, &self.listener)],
            ),
            (
                ResourceType::RouteConfig,
                vec![super::entry(
                    &self.route_configuration.name,
                    &self.route_configuration,
                )],
            ),
            (
                ResourceType::Cluster,
                self.clusters
                    .iter()
                    .map(|c| super::entry(&c.name, c))
                    .collect(),
            ),
        ]
    }
}

/// The resources for a client that asked for the listener `listener_name`
/// (`reviews:9080`, `reviews.default.svc.cluster.local:9080`) of the
/// service `host` (its FQDN) on `port`, routed by `config` (by the route
/// table of that listener if `config` has one, else by its routes): the
/// API listener, and [`service_routes`] written for gRPC.
///
/// ```
/// use mesh_core::route::{Forward, Route, RouteTable, VirtualHost};
/// use mesh_core::{Cluster, MeshConfig};
/// use mesh_xds::translate;
///
/// let host = "reviews.default.svc.cluster.local";
/// let v1 = format!("outbound||v1|{host}");
/// let routes = RouteTable::new(vec![VirtualHost::new(
///     host,
///     [host, "reviews"],
///     vec![Route::forward(Forward::to(v1.as_str()))],
/// )])?;
/// let config = MeshConfig::new(routes, [Cluster::named(&v1)])?;
/// let served = translate::service_port(&config, "reviews:9080", host, 9080)?;
/// assert_eq!(served.route_configuration.name, format!("outbound|9080||{host}"));
/// assert_eq!(served.clusters[0].name, format!("outbound|9080|v1|{host}"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn service_port(
    config: &MeshConfig,
    listener_name: &str,
    host: &str,
    port: u16,
) -> Result<ServicePort, TranslateError> {
    let ported = service_routes(config, listener_name, host, port)?;
    Ok(ServicePort {
        listener: api_listener(listener_name, &ported.name),
        route_configuration: route_configuration(&ported.name, &ported.virtual_hosts)?,
        clusters: ported
            .clusters
            .iter()
            .map(cluster)
            .collect::<Result<_, _>>()?,
    })
}

/// The routes and clusters of the service `host` on `port` for the
/// listener `listener_name`, as mesh values in xDS's shape: the route
/// configuration `outbound|PORT||HOST` of the one virtual host serving
/// the port (the one for `host:port` if there is one, else the one for
/// `host`), its domains with and without the port, and the clusters it
/// names, each for this port as [`port_routes`] writes them.
///
/// ```
/// use mesh_core::route::{Forward, Route, RouteTable, VirtualHost};
/// use mesh_core::{Cluster, MeshConfig};
/// use mesh_xds::translate;
///
/// let host = "reviews.default.svc.cluster.local";
/// let v1 = format!("outbound||v1|{host}");
/// let routes = RouteTable::new(vec![VirtualHost::new(host, [host], vec![Route::forward(Forward::to(v1.as_str()))])])?;
/// let config = MeshConfig::new(routes, [Cluster::named(&v1)])?;
/// let ported = translate::service_routes(&config, "reviews:9080", host, 9080)?;
/// assert_eq!(ported.virtual_hosts[0].domains, [host.to_owned(), format!("{host}:9080")]);
/// assert_eq!(ported.clusters[0].name.as_str(), format!("outbound|9080|v1|{host}"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn service_routes(
    config: &MeshConfig,
    listener_name: &str,
    host: &str,
    port: u16,
) -> Result<PortedRoutes, TranslateError> {
    let rc_name = istio_cluster_name(host, Some(port), None);
    let refuse = |r: Refused, part: String| r.at(RouteConfiguration::NAME, rc_name.as_str(), part);
    let vhs = config.routes_for(listener_name).virtual_hosts();
    let with_port = format!("{host}:{port}");
    let serves = |d: &str| vhs.iter().find(|vh| vh.domains.iter().any(|x| x == d));
    let Some(vh) = serves(&with_port).or_else(|| serves(host)) else {
        let reason = format!("no virtual host serves {with_port}");
        return Err(refuse(Refused::new("virtual_hosts", reason), String::new()));
    };
    let mut domains = Vec::with_capacity(vh.domains.len() * 2);
    for d in &vh.domains {
        let bare = d.strip_suffix(&format!(":{port}")).unwrap_or(d);
        // A domain of another port is not this port's.
        if bare
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            continue;
        }
        for d in [bare.to_owned(), format!("{bare}:{port}")] {
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
    }
    let vh = VirtualHost {
        name: vh.name.clone(),
        domains,
        routes: vh.routes.clone(),
    };
    port_routes(config, rc_name.as_str(), vec![vh], |_| Some(port))
}

/// A route configuration and the clusters its routes name, as xDS keeps
/// them, still as mesh values: each cluster for one port, with its port's
/// policy and `Discovery::Named` by its own name, its retries and timeout
/// on the routes.
#[derive(Clone, Debug, PartialEq)]
pub struct PortedRoutes {
    /// The route configuration's name.
    pub name: String,
    /// Its virtual hosts, naming the clusters by their ported names.
    pub virtual_hosts: Vec<VirtualHost>,
    /// The clusters its routes send and mirror to, in the order first named.
    pub clusters: Vec<Cluster>,
}

/// The virtual hosts `vhosts` of `config` as the route configuration
/// `rc_name`, as [`service_port`] writes one service's: a cluster named
/// without a port (`outbound||v1|reviews…`) is written for the port
/// `port_of` gives it (`outbound|9080|v1|reviews…`), with that port's
/// policy; retries and timeouts move from clusters onto the routes that
/// lack them. An Envoy gateway's routes, which send to many services, are
/// written so.
pub fn port_routes(
    config: &MeshConfig,
    rc_name: &str,
    vhosts: Vec<VirtualHost>,
    port_of: impl Fn(&ClusterName) -> Option<u16>,
) -> Result<PortedRoutes, TranslateError> {
    let refuse = |r: Refused, part: String| r.at(RouteConfiguration::NAME, rc_name, part);
    // The clusters as written, by their new names, with their port, in the
    // order named.
    let mut clusters: Vec<(ClusterName, &Cluster, u16)> = Vec::new();
    let mut find = |name: &ClusterName, part: &str| -> Result<(ClusterName, u16), TranslateError> {
        let Some(port) = written_port(name).or_else(|| port_of(name)) else {
            let reason = format!("names {name} without a port, and no port is known for it");
            return Err(refuse(Refused::new("action.forward", reason), part.into()));
        };
        let new = with_port_name(name, port);
        if clusters.iter().all(|(n, _, _)| *n != new) {
            let Some(c) = config.cluster(name) else {
                let reason = format!("names {name}, which the configuration does not define");
                return Err(refuse(Refused::new("action.forward", reason), part.into()));
            };
            clusters.push((new.clone(), c, port));
        }
        Ok((new, port))
    };
    let mut written = Vec::with_capacity(vhosts.len());
    for mut vh in vhosts {
        for (i, r) in vh.routes.iter_mut().enumerate() {
            let part = format!("virtual host {:?}, route #{i}", vh.name);
            let RouteAction::Forward(f) = &mut r.action else {
                continue;
            };
            let originals: Vec<ClusterName> = f.destination.clusters().cloned().collect();
            let mut ports = Vec::with_capacity(originals.len());
            rename(f, |c| {
                let (new, port) = find(c, &part)?;
                ports.push(port);
                Ok(new)
            })?;
            let policies: Vec<_> = originals
                .iter()
                .zip(&ports)
                .filter_map(|(c, port)| config.cluster(c).map(|c| c.policy_for(*port)))
                .collect();
            // Only what the route lacks comes from its clusters, which must
            // then agree on it: xDS keeps it on the route.
            let disagree = |what: &str| {
                let names: Vec<String> = originals.iter().map(ToString::to_string).collect();
                let reason = format!(
                    "the clusters {} of the split have different {what}, which xDS keeps on \
                     the route; give the route its own",
                    names.join(", ")
                );
                Err(refuse(
                    Refused::new("action.forward.destination", reason),
                    part.clone(),
                ))
            };
            if let Some(p) = policies.first() {
                if f.retry.is_none() {
                    if !policies.iter().all(|q| q.retry == p.retry) {
                        return disagree("retry policies");
                    }
                    if p.retry != RetryPolicy::disabled() {
                        f.retry = Some(Arc::new(p.retry.clone()));
                    }
                }
                if f.timeout.is_none() {
                    if !policies.iter().all(|q| q.timeout == p.timeout) {
                        return disagree("timeouts");
                    }
                    if p.timeout.is_some() {
                        f.timeout = Some(p.timeout);
                    }
                }
            }
        }
        written.push(vh);
    }
    let clusters = clusters
        .into_iter()
        .map(|(name, c, port)| {
            let mut policy = c.policy_for(port).clone();
            policy.retry = RetryPolicy::disabled();
            policy.timeout = None;
            Cluster {
                discovery: Discovery::Named(name.as_str().into()),
                name,
                subset: c.subset.clone(),
                policy,
                port_policies: Default::default(),
            }
        })
        .collect();
    Ok(PortedRoutes {
        name: rc_name.to_owned(),
        virtual_hosts: written,
        clusters,
    })
}

/// The port an Istio cluster name carries (`outbound|9080|v1|…`), if any.
fn written_port(name: &ClusterName) -> Option<u16> {
    let mut parts = name.as_str().split('|');
    match (parts.next(), parts.next()) {
        (Some("outbound" | "inbound"), Some(port)) => port.parse().ok(),
        _ => None,
    }
}

/// Renames every cluster `f` sends or mirrors to.
fn rename(
    f: &mut Forward,
    mut new: impl FnMut(&ClusterName) -> Result<ClusterName, TranslateError>,
) -> Result<(), TranslateError> {
    match &mut f.destination {
        Destination::Cluster(c) => *c = new(c)?,
        Destination::Weighted(w) => {
            for c in w {
                c.name = new(&c.name)?;
            }
        }
    }
    for m in &mut f.mirrors {
        m.cluster = new(&m.cluster)?;
    }
    Ok(())
}

/// `outbound||v1|reviews…` with the port: `outbound|9080|v1|reviews…`;
/// other names as they are.
fn with_port_name(name: &ClusterName, port: u16) -> ClusterName {
    match name.as_str().strip_prefix("outbound||") {
        Some(rest) => ClusterName::new(format!("outbound|{port}|{rest}")),
        None => name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mesh_core::route::{Forward, Route, RouteTable};

    use super::*;

    #[test]
    fn domains_take_the_port_asked_and_drop_other_ports() {
        let host = "reviews.default.svc.cluster.local";
        let v1 = format!("outbound||v1|{host}");
        let routes = RouteTable::new(vec![VirtualHost::new(
            host,
            [host, "reviews", "reviews:9081"],
            vec![Route::forward(Forward::to(v1.as_str()))],
        )])
        .unwrap();
        let config = MeshConfig::new(routes, [Cluster::named(&v1)]).unwrap();
        let served = service_port(&config, "reviews:9080", host, 9080).unwrap();
        let domains = &served.route_configuration.virtual_hosts[0].domains;
        assert_eq!(
            domains,
            &[
                host.to_owned(),
                format!("{host}:9080"),
                "reviews".into(),
                "reviews:9080".into()
            ]
        );
    }

    #[test]
    fn a_split_takes_its_clusters_timeout_only_when_they_agree_and_the_route_has_none() {
        let host = "reviews.default.svc.cluster.local";
        let (v1, v2) = (
            format!("outbound||v1|{host}"),
            format!("outbound||v2|{host}"),
        );
        let config = |route_timeout: Option<Option<Duration>>| {
            let mut forward = Forward::split([(v1.as_str().into(), 50), (v2.as_str().into(), 50)]);
            forward.timeout = route_timeout;
            let routes = RouteTable::new(vec![VirtualHost::new(
                host,
                [host],
                vec![Route::forward(forward)],
            )])
            .unwrap();
            let mut slow = Cluster::named(&v2);
            slow.policy.timeout = Some(Duration::from_secs(9));
            MeshConfig::new(routes, [Cluster::named(&v1), slow]).unwrap()
        };
        let err = service_port(&config(None), host, host, 9080).unwrap_err();
        assert!(err.to_string().contains("have different timeouts"), "{err}");
        let own = Some(Some(Duration::from_secs(3)));
        assert!(service_port(&config(own), host, host, 9080).is_ok());
    }
}
