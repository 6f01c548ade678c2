//! Hosts as clients see them: which resources a client sees
//! (`exportTo`), the FQDNs a VirtualService's hosts stand for, the
//! domains of each (a Kubernetes service's short forms too), and the
//! virtual hosts of hosts and their routes, one per port a match names.

use std::collections::{BTreeSet, HashMap, HashSet};

use mesh_core::route::{Route, VirtualHost};

use super::super::Workload;
use super::super::api::VirtualService;
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::{Ctx, PortRoute, check};

/// Whether a resource of `namespace` with `export_to` is visible to
/// `workload`: everywhere when `export_to` is empty or has `*`, in its own
/// namespace with `.`, and in the namespaces listed.
pub(super) fn exported(export_to: &[String], namespace: &str, workload: &Workload) -> bool {
    let client = workload.namespace.as_str();
    export_to.is_empty()
        || export_to.iter().any(|e| match e.as_str() {
            "*" => true,
            "." => namespace == client,
            listed => listed == client,
        })
}

/// The wildcard hosts that cover `fqdn` other than `*`, longest first:
/// `*.b.c` and `*.c` for `a.b.c`.
pub(super) fn wildcards(fqdn: &str) -> impl Iterator<Item = String> + '_ {
    fqdn.match_indices('.')
        .map(|(i, _)| format!("*{}", &fqdn[i..]))
}

/// A host and its routes, before virtual hosts are made.
pub(super) struct Host {
    pub(super) fqdn: String,
    pub(super) routes: Vec<PortRoute>,
}

/// Hosts and their routes, in the order first given.
#[derive(Default)]
pub(super) struct Hosts {
    pub(super) hosts: Vec<Host>,
    /// Hosts by FQDN: their index in `hosts`.
    index: HashMap<String, usize>,
}

impl Hosts {
    /// Adds `routes` after those of the host `fqdn`, a new one unless it
    /// is known.
    pub(super) fn add(&mut self, fqdn: String, routes: impl IntoIterator<Item = PortRoute>) {
        match self.index.get(&fqdn) {
            Some(i) => self.hosts[*i].routes.extend(routes),
            None => {
                self.index.insert(fqdn.clone(), self.hosts.len());
                self.hosts.push(Host {
                    fqdn,
                    routes: routes.into_iter().collect(),
                });
            }
        }
    }
}

/// The hosts of a VirtualService, as FQDNs with where each is written.
pub(super) fn vs_hosts(
    ctx: &Ctx<'_>,
    vs: &VirtualService,
    workload: &Workload,
) -> Result<Vec<(String, FieldPath)>, IstioError> {
    let at = FieldPath::root().key("spec").key("hosts");
    if vs.spec.hosts.is_empty() {
        return Err(ctx.invalid(&at, "expected at least one host"));
    }
    let mut out: Vec<(String, FieldPath)> = Vec::new();
    for (i, host) in vs.spec.hosts.iter().enumerate() {
        let at = at.index(i);
        if host == "*" && !workload.is_gateway() {
            return Err(ctx.invalid(
                &at,
                "the host `*` is allowed only on gateways; name the hosts the rules are for",
            ));
        }
        let fqdn = check::host_or_wildcard(ctx, &at, host, vs.metadata.namespace(), workload)?;
        if out.iter().any(|(f, _)| *f == fqdn) {
            return Err(ctx.invalid(&at, format!("host {fqdn} is listed twice")));
        }
        out.push((fqdn, at));
    }
    Ok(out)
}

/// The domains of `fqdn`: a Kubernetes service's also in the short forms
/// kube-dns resolves (`name.ns.svc`, `name.ns`, and `name` for clients in
/// its namespace); on a gateway, the host alone (`*` for `*`), with any
/// port, as istiod writes a gateway's domains.
fn domains(fqdn: &str, workload: &Workload) -> Vec<String> {
    if workload.is_gateway() {
        return vec![fqdn.to_owned()];
    }
    let Some((name, ns)) = kubernetes_service(fqdn, workload) else {
        return vec![fqdn.to_owned()];
    };
    let base = format!("{name}.{ns}");
    let mut out = vec![fqdn.to_owned(), format!("{base}.svc"), base];
    if ns == workload.namespace {
        out.push(name.to_owned());
    }
    out
}

/// The name and namespace of the Kubernetes service whose FQDN is `fqdn`
/// (`name.ns.svc.<cluster domain>`), if it is one.
pub(super) fn kubernetes_service<'f>(
    fqdn: &'f str,
    workload: &Workload,
) -> Option<(&'f str, &'f str)> {
    let base = fqdn
        .strip_suffix(workload.cluster_domain.as_str())?
        .strip_suffix(".svc.")?;
    base.split_once('.').filter(|(_, ns)| !ns.contains('.'))
}

/// The virtual hosts of `hosts`: one per host without a port, and one per
/// port that matches name (`host:port` domains, with the routes for that
/// port). A short form that is also another host's name is left to that
/// host.
pub(super) fn virtual_hosts(hosts: &[Host], workload: &Workload) -> Vec<VirtualHost> {
    let named: HashSet<&str> = hosts.iter().map(|h| h.fqdn.as_str()).collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for host in hosts {
        let domains: Vec<String> = domains(&host.fqdn, workload)
            .into_iter()
            .enumerate()
            .filter(|(i, d)| *i == 0 || (!named.contains(d.as_str()) && !taken.contains(d)))
            .map(|(_, d)| d)
            .collect();
        taken.extend(domains.iter().cloned());
        let ports: BTreeSet<u16> = host.routes.iter().filter_map(|r| r.port).collect();
        for port in ports {
            let routes = host
                .routes
                .iter()
                .filter(|r| !r.fallback && r.port.is_none_or(|p| p == port))
                .map(|r| r.route.clone())
                .collect();
            out.push(VirtualHost::new(
                format!("{}:{port}", host.fqdn),
                domains.iter().map(|d| format!("{d}:{port}")),
                routes,
            ));
        }
        let routes: Vec<Route> = host
            .routes
            .iter()
            .filter(|r| r.port.is_none())
            .map(|r| r.route.clone())
            .collect();
        if !routes.is_empty() {
            out.push(VirtualHost::new(host.fqdn.clone(), domains, routes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_covering_a_host() {
        let all: Vec<String> = wildcards("a.b.example.com").collect();
        assert_eq!(all, ["*.b.example.com", "*.example.com", "*.com"]);
        assert_eq!(wildcards("localhost").count(), 0);
    }

    #[test]
    fn kubernetes_services_get_their_short_forms() {
        let w = Workload::default();
        assert_eq!(
            domains("reviews.default.svc.cluster.local", &w),
            [
                "reviews.default.svc.cluster.local",
                "reviews.default.svc",
                "reviews.default",
                "reviews"
            ]
        );
        assert_eq!(
            domains("reviews.prod.svc.cluster.local", &w),
            [
                "reviews.prod.svc.cluster.local",
                "reviews.prod.svc",
                "reviews.prod"
            ]
        );
        assert_eq!(domains("example.com", &w), ["example.com"]);
        assert_eq!(
            domains("a.b.c.svc.cluster.local", &w),
            ["a.b.c.svc.cluster.local"]
        );
    }
}
