//! Gateways: which VirtualServices apply to a proxy and, for a gateway
//! proxy, which of their hosts it serves, as istiod decides them.
//!
//! A VirtualService names the proxies it applies to in `gateways`: `mesh`
//! for the sidecars (and proxyless clients), else Gateways, a short name
//! being in the VirtualService's namespace (istiod's `resolveGatewayName`).
//! A gateway proxy takes the VirtualServices bound to the Gateways it
//! implements, and of their hosts those its HTTP servers serve: a server
//! host `ns/h` takes the hosts `h` covers of VirtualServices in `ns`, and
//! the two meet at the narrower (istiod's `NamesForNamespace` and
//! `Intersection`).
//!
//! Each server routes by a table of its own, named as istiod names its
//! route configuration: the plain-text HTTP servers of a port share
//! `http.PORT`, each server terminating TLS has
//! `https.PORT.PORT_NAME.GATEWAY.NAMESPACE`. A plain server with
//! `httpsRedirect` answers every request of its hosts with a redirect to
//! HTTPS, as istiod's `require_tls` does. TLS is terminated with the
//! certificates of the Kubernetes Secret a `SIMPLE` or `MUTUAL` server's
//! `credentialName` names (see [`super::secret`]), else of the files it
//! names; a server whose Secret is not there, or whose certificate is the
//! mesh's own (`ISTIO_MUTUAL`), is not served (with a warning); nor
//! is one that conflicts with the servers before it on its port: a port
//! is plain text or TLS, and an SNI host has one TLS server.

use mesh_core::gateway::{GatewayPort, GatewayServer};
use mesh_core::policy::ServerTls;

use super::super::api::Gateway;
use super::super::error::{IstioError, Warning};
use super::super::yaml::{FieldPath, Origin};
use super::super::{Resources, Sourced, Workload};
use super::Ctx;
use super::secret::Secrets;

mod servers;

use servers::{HttpServer, Security, http_servers};

/// What `gateways` names for the sidecars of the mesh.
pub(super) const MESH: &str = "mesh";

/// The gateway `written` names in a resource of `namespace`, as
/// `namespace/name`: a short name (or `./name`) is in `namespace`, the
/// legacy `name.namespace[.svc...]` is `namespace/name`; `mesh` stays
/// `mesh`.
pub(super) fn resolve(written: &str, namespace: &str) -> String {
    if written == MESH {
        return MESH.to_owned();
    }
    match written.split_once('/') {
        Some((".", name)) => format!("{namespace}/{name}"),
        Some(_) => written.to_owned(),
        None => match written.split_once('.') {
            None => format!("{namespace}/{written}"),
            Some((name, rest)) => {
                let ns = rest.split('.').next().unwrap_or(rest);
                format!("{ns}/{name}")
            }
        },
    }
}

/// Whether a VirtualService (or a match) with `gateways` applies to the
/// sidecars of the mesh: it names none, or `mesh`.
pub(super) fn binds_mesh(gateways: &[String]) -> bool {
    gateways.is_empty() || gateways.iter().any(|g| g == MESH)
}

/// Whether pattern `wide` covers host `narrow` (istiod's `SubsetOf` seen
/// from the other side): the same, `*`, or `*.suffix` over a host ending
/// in `.suffix` (`*.example.com` covers `a.example.com` and
/// `*.a.example.com`, not `example.com`).
pub(super) fn covers(wide: &str, narrow: &str) -> bool {
    wide == narrow
        || wide == "*"
        || wide
            .strip_prefix('*')
            .is_some_and(|suffix| narrow.ends_with(suffix))
}

/// Where a server host and a VirtualService host meet: the narrower of
/// the two when one covers the other.
fn intersect<'h>(server: &'h str, vs: &'h str) -> Option<&'h str> {
    if covers(vs, server) {
        Some(server)
    } else if covers(server, vs) {
        Some(vs)
    } else {
        None
    }
}

/// Where a VirtualService host is served: on `port`, by the route table
/// `routes`, redirected to HTTPS when `redirect`.
pub(super) struct Served {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) routes: String,
    pub(super) redirect: bool,
}

/// The Gateways a gateway workload implements, with their HTTP servers.
pub(super) struct Gateways {
    /// By qualified name, in the workload's order, each once.
    gateways: Vec<(String, Vec<HttpServer>)>,
}

impl Gateways {
    /// The Gateways of `workload` (its `gateways`) that `resources`
    /// define, their servers checked; one the resources do not define is
    /// warned about and serves nothing, one they define twice is an error.
    pub(super) fn new(
        resources: &Resources,
        workload: &Workload,
        warnings: &mut Vec<Warning>,
    ) -> Result<Self, IstioError> {
        let mut gateways: Vec<(String, Vec<HttpServer>)> = Vec::new();
        let mut claims = Vec::new();
        let secrets = Secrets {
            resources,
            namespace: &workload.namespace,
        };
        for written in &workload.gateways {
            let name = resolve(written, &workload.namespace);
            if gateways.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let mut defined = resources
                .gateways
                .iter()
                .filter(|g| g.resource.qualified_name() == name);
            let servers = match (defined.next(), defined.next()) {
                (Some(first), Some(second)) => {
                    return Err(ctx(second).invalid(
                        &FieldPath::root().key("metadata").key("name"),
                        format!(
                            "the name is also that of {}; a Gateway has one definition",
                            ctx(first).describe()
                        ),
                    ));
                }
                (Some(gw), None) => {
                    let mut servers = http_servers(gw, &secrets, warnings)?;
                    for server in &mut servers {
                        claim(&ctx(gw), server, &mut claims, warnings);
                    }
                    servers
                }
                (None, _) => {
                    let origin = Origin::new("<istio resources>", None);
                    warnings.push(Warning {
                        location: origin.locate(None, &FieldPath::root()),
                        message: format!(
                            "the workload implements Gateway {name}, which no resource defines; no routes are bound to it"
                        ),
                    });
                    Vec::new()
                }
            };
            gateways.push((name, servers));
        }
        Ok(Self { gateways })
    }

    /// The workload's Gateways that `gateways`, written in a resource of
    /// `namespace`, names, in the workload's order.
    pub(super) fn bound(&self, gateways: &[String], namespace: &str) -> Vec<String> {
        let named: Vec<String> = gateways.iter().map(|g| resolve(g, namespace)).collect();
        self.gateways
            .iter()
            .filter(|(name, _)| named.contains(name))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Where the servers of the Gateways `bound` serve the hosts of
    /// `vs_hosts`, the hosts of a VirtualService of `namespace`: each host
    /// on each server that takes it, in the order of the servers. Servers
    /// that are not served take none.
    pub(super) fn hosts(
        &self,
        bound: &[String],
        vs_hosts: &[String],
        namespace: &str,
    ) -> Vec<Served> {
        let mut out: Vec<Served> = Vec::new();
        let servers = self
            .gateways
            .iter()
            .filter(|(name, _)| bound.contains(name))
            .flat_map(|(_, servers)| servers)
            .filter(|s| !matches!(s.security, Security::Unserved));
        for server in servers {
            let hosts = server
                .hosts
                .iter()
                .filter(|h| h.namespace.as_deref().is_none_or(|ns| ns == namespace));
            for sh in hosts {
                for vh in vs_hosts {
                    let Some(host) = intersect(&sh.host, vh) else {
                        continue;
                    };
                    let taken = out
                        .iter()
                        .any(|s| s.host == host && s.routes == server.routes);
                    if !taken {
                        out.push(Served {
                            host: host.to_owned(),
                            port: server.port,
                            routes: server.routes.clone(),
                            redirect: matches!(server.security, Security::Plain { redirect: true }),
                        });
                    }
                }
            }
        }
        out
    }

    /// The ports the workload's Gateways serve, each with its servers:
    /// one for the plain-text HTTP servers of the port, one per server
    /// terminating TLS.
    pub(super) fn ports(&self) -> Vec<GatewayPort> {
        let mut ports: Vec<GatewayPort> = Vec::new();
        let servers = self.gateways.iter().flat_map(|(_, servers)| servers);
        for server in servers {
            let tls = match &server.security {
                Security::Unserved => continue,
                Security::Plain { .. } => None,
                Security::Tls(tls) => Some(ServerTls::clone(tls)),
            };
            let at = match ports.iter().position(|p| p.number == server.port) {
                Some(i) => i,
                None => {
                    ports.push(GatewayPort {
                        number: server.port,
                        servers: Vec::new(),
                    });
                    ports.len() - 1
                }
            };
            let port = &mut ports[at];
            if port.servers.iter().any(|s| s.routes == server.routes) {
                continue;
            }
            let server_names = match tls {
                None => Vec::new(),
                Some(_) if server.hosts.iter().any(|h| h.host == "*") => Vec::new(),
                Some(_) => server.hosts.iter().map(|h| h.host.clone()).collect(),
            };
            port.servers.push(GatewayServer {
                routes: server.routes.clone(),
                server_names,
                tls,
            });
        }
        ports.sort_by_key(|p| p.number);
        ports
    }
}

fn ctx(gw: &Sourced<Gateway>) -> Ctx<'_> {
    let meta = &gw.resource.metadata;
    Ctx::new(gw, "Gateway", &meta.name, meta.namespace())
}

/// What the servers served so far take of a port: plain text, or TLS
/// for these SNI hosts, each with the server that took it.
struct Claim {
    port: u16,
    tls: bool,
    hosts: Vec<(String, String)>,
}

/// Serves `server` on its port unless the port's servers so far conflict
/// with it, as istiod merges the servers of a gateway proxy's Gateways:
/// a port is plain text or TLS, and one SNI host is served by one TLS
/// server. A server that conflicts is not served, with a warning.
fn claim(
    ctx: &Ctx<'_>,
    server: &mut HttpServer,
    claims: &mut Vec<Claim>,
    warnings: &mut Vec<Warning>,
) {
    let tls = match &server.security {
        Security::Unserved => return,
        Security::Plain { .. } => false,
        Security::Tls(_) => true,
    };
    let at = match claims.iter().position(|c| c.port == server.port) {
        Some(i) => i,
        None => {
            claims.push(Claim {
                port: server.port,
                tls,
                hosts: Vec::new(),
            });
            claims.len() - 1
        }
    };
    let claim = &mut claims[at];
    let port = server.port;
    let conflict = if claim.tls != tls {
        Some(if tls {
            format!("port {port} serves plain text already; a TLS server cannot share it")
        } else {
            format!("port {port} serves TLS already; a plain-text server cannot share it")
        })
    } else {
        server.hosts.iter().find_map(|h| {
            let (_, by) = claim.hosts.iter().find(|(host, _)| *host == h.host)?;
            Some(format!(
                "{by} serves host {} with TLS on port {port} already",
                h.host
            ))
        })
    };
    if let Some(why) = conflict {
        warnings.push(ctx.warning(&server.at, format!("{why}; this server is not served")));
        server.security = Security::Unserved;
        return;
    }
    if tls {
        let by = format!("{} of {}", server.at, ctx.describe());
        claim
            .hosts
            .extend(server.hosts.iter().map(|h| (h.host.clone(), by.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_names_are_completed_in_the_resource_namespace() {
        assert_eq!(resolve("mesh", "prod"), "mesh");
        assert_eq!(resolve("ingress", "prod"), "prod/ingress");
        assert_eq!(resolve("./ingress", "prod"), "prod/ingress");
        assert_eq!(
            resolve("istio-system/ingress", "prod"),
            "istio-system/ingress"
        );
        assert_eq!(
            resolve("ingress.istio-system", "prod"),
            "istio-system/ingress"
        );
        assert_eq!(
            resolve("ingress.istio-system.svc.cluster.local", "prod"),
            "istio-system/ingress"
        );
        assert!(binds_mesh(&[]));
        assert!(binds_mesh(&["ingress".into(), "mesh".into()]));
        assert!(!binds_mesh(&["ingress".into()]));
    }

    #[test]
    fn hosts_meet_at_the_narrower() {
        assert!(covers("*", "a.example.com"));
        assert!(covers("*.example.com", "a.example.com"));
        assert!(covers("*.example.com", "*.a.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "*"));
        assert!(!covers("a.example.com", "b.example.com"));
        assert_eq!(intersect("*", "*"), Some("*"));
        assert_eq!(intersect("*", "a.com"), Some("a.com"));
        assert_eq!(intersect("*.example.com", "*"), Some("*.example.com"));
        assert_eq!(
            intersect("a.example.com", "*.example.com"),
            Some("a.example.com")
        );
        assert_eq!(intersect("a.example.com", "b.example.com"), None);
    }
}
