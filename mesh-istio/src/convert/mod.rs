//! Resources into a [`MeshConfig`], with Istio's semantics: a virtual host
//! per VirtualService host (named by its FQDN, with Kubernetes' short forms
//! as domains), a default virtual host for each host that has only a
//! DestinationRule or a service of the registry, and a cluster for every
//! destination a route names, with the policies of its DestinationRule and
//! subset. For a gateway, a virtual host per host its Gateways' servers
//! serve of the VirtualServices bound to them, and no default ones. Also
//! the [`Registry`](mesh_core::registry::Registry) the resources define
//! ([`registry`]).

mod answer;
mod authorization;
mod check;
mod fault;
mod gateway;
mod headers;
mod hosts;
mod locality;
mod matching;
mod peer_authentication;
mod policy;
mod registry;
mod route;
mod rules;
mod secret;
mod sidecar;

use std::collections::{BTreeMap, HashMap, HashSet};

use mesh_core::cluster::{Cluster, istio_cluster_name};
use mesh_core::config::MeshConfig;
use mesh_core::gateway::GatewayPort;
use mesh_core::route::{
    ClusterName, Forward, HashPolicy, Redirect, Route, RouteAction, RouteTable,
};

use super::api::Destination;
use super::error::{IstioError, IstioErrorKind, Warning};
use super::yaml::{FieldPath, Origin};
use super::{Resources, Sourced, Workload};
use hosts::{Hosts, virtual_hosts, vs_hosts};
use rules::Rules;

use hosts::{exported, kubernetes_service, wildcards};

pub(super) use authorization::{check as check_authorization, rbac};
pub(super) use peer_authentication::mode as mtls_mode;
pub(super) use registry::registry;
pub(super) use sidecar::{check as check_sidecars, listeners as sidecar_listeners};

/// A resource errors are reported against.
#[derive(Clone)]
pub(super) struct Ctx<'a> {
    origin: &'a Origin,
    label: String,
}

impl<'a> Ctx<'a> {
    fn new<T>(r: &'a Sourced<T>, kind: &str, name: &str, namespace: &str) -> Self {
        Self {
            origin: &r.origin,
            label: format!("{kind} {namespace}/{name}"),
        }
    }

    fn error(&self, at: &FieldPath, kind: IstioErrorKind) -> IstioError {
        IstioError::new(self.origin.locate(Some(&self.label), at), kind)
    }

    fn invalid(&self, at: &FieldPath, message: impl Into<String>) -> IstioError {
        self.error(at, IstioErrorKind::Invalid(message.into()))
    }

    /// The resource and where it is written:
    /// `DestinationRule default/reviews (rules.yaml, document 2)`.
    fn describe(&self) -> String {
        match self.origin.document() {
            Some(d) => format!("{} ({}, document {d})", self.label, self.origin.source()),
            None => format!("{} ({})", self.label, self.origin.source()),
        }
    }

    fn warning(&self, at: &FieldPath, message: impl Into<String>) -> Warning {
        Warning {
            location: self.origin.locate(Some(&self.label), at),
            message: message.into(),
        }
    }
}

/// A route and the port its match names, if any.
#[derive(Clone)]
pub(super) struct PortRoute {
    port: Option<u16>,
    route: Route,
    /// A DestinationRule's default route: for requests to ports no match
    /// names, not added to the routes of those ports.
    fallback: bool,
}

/// A cluster a destination names and the hash policy its DestinationRule
/// asks routes to it for.
#[derive(Clone)]
pub(super) struct Resolved {
    cluster: Cluster,
    /// The hash policies the cluster's consistent-hash balancers expect of
    /// the routes to it, each once; empty when it does not hash.
    hashes: Vec<HashPolicy>,
}

/// What conversion builds up: the clusters destinations name, and
/// warnings about what it leaves out.
pub(super) struct Env<'a> {
    rules: Rules<'a>,
    workload: &'a Workload,
    clusters: BTreeMap<ClusterName, Resolved>,
    warnings: Vec<Warning>,
}

impl<'a> Env<'a> {
    /// The cluster of `d`, written at `at` in a resource of `namespace`.
    fn destination(
        &mut self,
        ctx: &Ctx<'_>,
        at: &FieldPath,
        d: &Destination,
        namespace: &str,
    ) -> Result<Resolved, IstioError> {
        let fqdn = check::service_host(ctx, &at.key("host"), &d.host, namespace, self.workload)?;
        let port = match d.port {
            None => None,
            Some(p) => check::optional_port(ctx, &at.key("port").key("number"), p.number)?,
        };
        let subset = (!d.subset.is_empty()).then_some(d.subset.as_str());
        let name = istio_cluster_name(&fqdn, port, subset);
        if let Some(r) = self.clusters.get(&name) {
            return Ok(r.clone());
        }
        let resolved = self
            .rules
            .resolve(ctx, &at.key("subset"), name, &fqdn, port, subset)?;
        self.clusters
            .insert(resolved.cluster.name.clone(), resolved.clone());
        Ok(resolved)
    }
}

/// The mesh configuration of `resources` for a client that is `workload`,
/// and warnings about what it leaves out.
pub(super) fn mesh_config(
    resources: &Resources,
    workload: &Workload,
) -> Result<(MeshConfig, Vec<Warning>), IstioError> {
    let mut warnings = Vec::new();
    let rules = Rules::new(&resources.destination_rules, workload, &mut warnings)?;
    let mut env = Env {
        rules,
        workload,
        clusters: BTreeMap::new(),
        warnings,
    };
    let mut hosts = Hosts::default();
    let mut servers = BTreeMap::new();
    if workload.is_gateway() {
        servers = gateway_routes(resources, &mut env, &mut hosts)?;
    } else {
        mesh_routes(resources, &mut env, &mut hosts)?;
        default_routes(resources, &mut env, &mut hosts)?;
    }
    let table = |hosts: &Hosts| {
        RouteTable::new(virtual_hosts(&hosts.hosts, workload)).map_err(|e| {
            IstioError::new(
                Origin::new("<istio resources>", None).locate(None, &FieldPath::root()),
                IstioErrorKind::Route(e),
            )
        })
    };
    let listeners = servers
        .iter()
        .map(|(name, hosts)| Ok((name.as_str().into(), table(hosts)?)))
        .collect::<Result<Vec<_>, IstioError>>()?;
    let clusters = env.clusters.into_values().map(|r| r.cluster);
    let config = MeshConfig::with_listeners(table(&hosts)?, listeners, clusters).map_err(|e| {
        IstioError::new(
            Origin::new("<istio resources>", None).locate(None, &FieldPath::root()),
            IstioErrorKind::Config(e),
        )
    })?;
    Ok((config, env.warnings))
}

/// The routes of a sidecar or proxyless client: those of the
/// VirtualServices that apply to the mesh, one VirtualService per host.
fn mesh_routes<'a>(
    resources: &'a Resources,
    env: &mut Env<'a>,
    hosts: &mut Hosts,
) -> Result<(), IstioError> {
    let bound = [gateway::MESH.to_owned()];
    // The VirtualService routing each host.
    let mut routed: HashMap<String, String> = HashMap::new();
    for vs in &resources.virtual_services {
        let spec = &vs.resource.spec;
        let meta = &vs.resource.metadata;
        if !gateway::binds_mesh(&spec.gateways)
            || !exported(&spec.export_to, meta.namespace(), env.workload)
        {
            continue;
        }
        let ctx = Ctx::new(vs, "VirtualService", &meta.name, meta.namespace());
        let names = vs_hosts(&ctx, &vs.resource, env.workload)?;
        for (fqdn, at) in &names {
            if let Some(other) = routed.get(fqdn) {
                return Err(ctx.invalid(
                    at,
                    format!(
                        "host {fqdn} is also routed by {other}; Istio merges VirtualServices of one host only on gateways, so write one VirtualService per host"
                    ),
                ));
            }
            routed.insert(fqdn.clone(), ctx.describe());
        }
        let routes = route::routes(&ctx, &vs.resource, env, &bound)?;
        for (fqdn, _) in names {
            hosts.add(fqdn, routes.iter().cloned());
        }
    }
    Ok(())
}

/// The routes of a gateway: those of the VirtualServices bound to its
/// Gateways, for the hosts their HTTP servers serve, the VirtualServices
/// of one host merged in the order read. A match naming a port applies
/// where the host is served on that port. No default routes: istiod gives
/// a gateway only what is bound to it.
///
/// Returns the route table of each server by its name, empty when
/// nothing is bound to it; `hosts` gets
/// every host with the routes of all the ports it is served on, for a
/// proxy that does not tell its ports apart.
fn gateway_routes<'a>(
    resources: &'a Resources,
    env: &mut Env<'a>,
    hosts: &mut Hosts,
) -> Result<BTreeMap<String, Hosts>, IstioError> {
    let gateways = gateway::Gateways::new(resources, env.workload, &mut env.warnings)?;
    // Every server has a table, if only an empty one.
    let mut servers: BTreeMap<String, Hosts> = gateways
        .ports()
        .into_iter()
        .flat_map(|p| p.servers)
        .map(|s| (s.routes, Hosts::default()))
        .collect();
    for vs in &resources.virtual_services {
        let spec = &vs.resource.spec;
        let meta = &vs.resource.metadata;
        let namespace = meta.namespace();
        if !exported(&spec.export_to, namespace, env.workload) {
            continue;
        }
        let bound = gateways.bound(&spec.gateways, namespace);
        if bound.is_empty() {
            continue;
        }
        let ctx = Ctx::new(vs, "VirtualService", &meta.name, namespace);
        let names: Vec<String> = vs_hosts(&ctx, &vs.resource, env.workload)?
            .into_iter()
            .map(|(fqdn, _)| fqdn)
            .collect();
        let served = gateways.hosts(&bound, &names, namespace);
        if served.is_empty() {
            env.warnings.push(ctx.warning(
                &FieldPath::root().key("spec").key("hosts"),
                format!(
                    "no server of Gateway {} serves any of its hosts; not routed by this gateway",
                    bound.join(", ")
                ),
            ));
            continue;
        }
        let routes = route::routes(&ctx, &vs.resource, env, &bound)?;
        let on = |ports: &[u16]| {
            routes
                .iter()
                .filter(|r| r.port.is_none_or(|p| ports.contains(&p)))
                .map(|r| PortRoute {
                    port: None,
                    ..r.clone()
                })
                .collect::<Vec<_>>()
        };
        let mut by_host: Vec<(&str, Vec<u16>)> = Vec::new();
        for s in &served {
            match by_host.iter_mut().find(|(h, _)| *h == s.host) {
                Some((_, ports)) => ports.push(s.port),
                None => by_host.push((&s.host, vec![s.port])),
            }
            let table = servers.entry(s.routes.clone()).or_default();
            if s.redirect {
                table.add(s.host.clone(), [https_redirect()]);
            } else {
                table.add(s.host.clone(), on(&[s.port]));
            }
        }
        for (host, ports) in by_host {
            hosts.add(host.to_owned(), on(&ports));
        }
    }
    Ok(servers)
}

/// The ports of the gateway `workload` and their servers.
pub(super) fn gateway_ports(
    resources: &Resources,
    workload: &Workload,
) -> Result<Vec<GatewayPort>, IstioError> {
    // Its warnings are the configuration's, given with it.
    let gateways = gateway::Gateways::new(resources, workload, &mut Vec::new())?;
    Ok(gateways.ports())
}

/// A route answering every request with a redirect to HTTPS (`301`), as
/// Envoy's `require_tls` does for a server with `httpsRedirect`.
fn https_redirect() -> PortRoute {
    PortRoute {
        port: None,
        route: Route::new(RouteAction::Redirect(Redirect {
            scheme: Some("https".into()),
            host: None,
            port: None,
            path: None,
            status: http::StatusCode::MOVED_PERMANENTLY,
        })),
        fallback: false,
    }
}

/// The default routes of a sidecar or proxyless client: to each host with
/// a DestinationRule, and each service of the registry it sees, that no
/// VirtualService routes, as istiod generates them.
fn default_routes<'a>(
    resources: &'a Resources,
    env: &mut Env<'a>,
    hosts: &mut Hosts,
) -> Result<(), IstioError> {
    let workload = env.workload;
    // A host whose VirtualService has no route for some port is as if it had
    // none there: its DestinationRule's default applies. A wildcard host
    // covers the services under it, as in Istio.
    let covering: HashSet<String> = hosts
        .hosts
        .iter()
        .filter(|h| h.routes.iter().any(|r| r.port.is_none()))
        .map(|h| h.fqdn.clone())
        .collect();
    let covered =
        |fqdn: &str| covering.contains(fqdn) || wildcards(fqdn).any(|w| covering.contains(&w));
    let mut defaulted: HashSet<String> = HashSet::new();
    for (fqdn, rule) in env.rules.exact_hosts() {
        defaulted.insert(fqdn.clone());
        if covered(&fqdn) {
            continue;
        }
        let resolved = env.rules.resolve_default(rule, &fqdn)?;
        let route = default_route(
            rule.ctx(),
            &FieldPath::root().key("spec"),
            &fqdn,
            resolved,
            &mut env.clusters,
            &mut env.warnings,
        );
        hosts.add(fqdn, [route]);
    }
    // So do the services of the registry (ServiceEntry hosts, Kubernetes
    // Services) the client sees, as istiod gives every service one.
    for defined in registry::services(resources, &workload.cluster_domain)? {
        let service = &defined.service;
        let fqdn = &service.hostname;
        if !exported(&service.export_to, &service.namespace, workload)
            || defaulted.contains(fqdn)
            || covered(fqdn)
        {
            continue;
        }
        if fqdn.starts_with('*') {
            env.warnings.push(defined.ctx.warning(
                &defined.at,
                format!(
                    "{fqdn} gets no default route: the client has no cluster that sends a request to the host it names; route its hosts with a VirtualService"
                ),
            ));
            continue;
        }
        let name = istio_cluster_name(fqdn, None, None);
        let resolved =
            env.rules
                .resolve(&defined.ctx, &FieldPath::root(), name, fqdn, None, None)?;
        let route = default_route(
            &defined.ctx,
            &defined.at,
            fqdn,
            resolved,
            &mut env.clusters,
            &mut env.warnings,
        );
        hosts.add(fqdn.clone(), [route]);
    }
    Ok(())
}

/// The default route of `fqdn` to the whole service, `resolved` (a
/// fallback for the ports no match names), its cluster added to
/// `clusters`. `ctx` and `at` are where a warning about its hash policy
/// points.
fn default_route(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    fqdn: &str,
    resolved: Resolved,
    clusters: &mut BTreeMap<ClusterName, Resolved>,
    warnings: &mut Vec<Warning>,
) -> PortRoute {
    let mut forward = Forward::to(resolved.cluster.name.clone());
    forward.hash_policy = route::one_hash_policy(
        ctx,
        at,
        &format!("the default route to {fqdn}"),
        resolved.hashes.clone(),
        warnings,
    );
    clusters
        .entry(resolved.cluster.name.clone())
        .or_insert(resolved);
    let mut route = Route::forward(forward);
    route.name = Some("default".into());
    PortRoute {
        port: None,
        route,
        fallback: true,
    }
}
