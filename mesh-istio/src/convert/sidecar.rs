//! The `Sidecar` of a workload, as istiod picks it, into
//! [`SidecarListeners`]: the one in the workload's namespace whose
//! `workloadSelector` its labels match (the first read, if several; a
//! selector without labels matches every workload, as istiod has it), else
//! its namespace's without a selector, else the root namespace's
//! (`istio-system`) without one. Checked as Istio validates it: an
//! ingress listener needs a port and a default endpoint
//! (`127.0.0.1:PORT`, `0.0.0.0:PORT`); egress hosts are
//! `namespace/dnsName`; at most one egress listener has no port; a port
//! has one ingress and one egress listener at most, on different
//! addresses; a namespace has at most one Sidecar without a selector.

use std::net::{IpAddr, SocketAddr};

use mesh_core::sidecar::{Egress, HostSelector, Ingress, SidecarListeners};

use super::super::api::Sidecar;
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::super::{ROOT_NAMESPACE, Resources, Sourced, Workload};
use super::{Ctx, check};

/// The listeners of the Sidecar that applies to `workload`, if one does.
pub(crate) fn listeners(
    resources: &Resources,
    workload: &Workload,
) -> Result<Option<SidecarListeners>, IstioError> {
    let selected = in_namespace(resources, &workload.namespace).find(|s| {
        s.resource
            .spec
            .workload_selector
            .as_ref()
            .is_some_and(|sel| {
                sel.labels
                    .iter()
                    .all(|(k, v)| workload.labels.get(k) == Some(v))
            })
    });
    let sidecar = match selected {
        Some(s) => Some(s),
        None => match default_of(resources, &workload.namespace)? {
            Some(s) => Some(s),
            None => default_of(resources, ROOT_NAMESPACE)?,
        },
    };
    sidecar.map(read).transpose()
}

/// Checks every Sidecar of `resources`, whichever workloads it applies
/// to, so that a broken one is found when it is loaded rather than when
/// a sidecar it selects connects.
pub(crate) fn check(resources: &Resources) -> Result<(), IstioError> {
    for s in &resources.sidecars {
        read(s)?;
        default_of(resources, s.resource.metadata.namespace())?;
    }
    Ok(())
}

fn in_namespace<'r>(
    resources: &'r Resources,
    namespace: &'r str,
) -> impl Iterator<Item = &'r Sourced<Sidecar>> {
    resources
        .sidecars
        .iter()
        .filter(move |s| s.resource.metadata.namespace() == namespace)
}

/// The Sidecar of `namespace` without a workload selector; an error if
/// there are several.
fn default_of<'r>(
    resources: &'r Resources,
    namespace: &'r str,
) -> Result<Option<&'r Sourced<Sidecar>>, IstioError> {
    let mut defaults =
        in_namespace(resources, namespace).filter(|s| s.resource.spec.workload_selector.is_none());
    match (defaults.next(), defaults.next()) {
        (Some(first), Some(second)) => Err(ctx(second).invalid(
            &FieldPath::root().key("spec"),
            format!(
                "{} has no workloadSelector either; a namespace has at most one Sidecar without one",
                ctx(first).describe()
            ),
        )),
        (first, _) => Ok(first),
    }
}

fn ctx(s: &Sourced<Sidecar>) -> Ctx<'_> {
    let meta = &s.resource.metadata;
    Ctx::new(s, "Sidecar", &meta.name, meta.namespace())
}

/// The listeners `s` writes, checked.
fn read(s: &Sourced<Sidecar>) -> Result<SidecarListeners, IstioError> {
    let ctx = ctx(s);
    let spec = &s.resource.spec;
    let namespace = s.resource.metadata.namespace();
    let at = FieldPath::root().key("spec");
    let bind = |at: &FieldPath, written: &str| -> Result<Option<IpAddr>, IstioError> {
        if written.is_empty() {
            return Ok(None);
        }
        written
            .parse()
            .map(Some)
            .map_err(|_| ctx.invalid(&at.key("bind"), format!("{written:?} is not an IP address")))
    };
    let mut ingress = Vec::new();
    for (i, l) in spec.ingress.iter().enumerate() {
        let at = at.key("ingress").index(i);
        let Some(port) = &l.port else {
            return Err(ctx.invalid(&at.key("port"), "expected a port"));
        };
        let number = check::required_port(&ctx, &at.key("port").key("number"), port.number)?;
        let endpoint_at = at.key("defaultEndpoint");
        let endpoint = match l.default_endpoint.parse::<SocketAddr>() {
            Ok(e) if e.ip().is_loopback() || e.ip().is_unspecified() => {
                // 0.0.0.0 is the workload's own address: reached here on
                // loopback.
                let ip = if e.ip().is_unspecified() {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    e.ip()
                };
                SocketAddr::new(ip, e.port())
            }
            _ if l.default_endpoint.starts_with("unix://") => {
                return Err(ctx.invalid(
                    &endpoint_at,
                    "Unix socket endpoints are not supported; expected 127.0.0.1:PORT",
                ));
            }
            _ => {
                return Err(ctx.invalid(
                    &endpoint_at,
                    format!(
                        "{:?} is not the workload's address; expected 127.0.0.1:PORT or 0.0.0.0:PORT",
                        l.default_endpoint
                    ),
                ));
            }
        };
        if ingress.iter().any(|e: &Ingress| e.port == number) {
            return Err(ctx.invalid(
                &at.key("port").key("number"),
                format!("port {number} has an ingress listener already"),
            ));
        }
        ingress.push(Ingress {
            port: number,
            name: port.name.clone(),
            bind: bind(&at, &l.bind)?,
            endpoint,
        });
    }
    let mut egress = Vec::new();
    for (i, l) in spec.egress.iter().enumerate() {
        let at = at.key("egress").index(i);
        let port = match &l.port {
            None => None,
            Some(p) => Some(check::required_port(
                &ctx,
                &at.key("port").key("number"),
                p.number,
            )?),
        };
        if port.is_none() && egress.iter().any(|e: &Egress| e.port.is_none()) {
            return Err(ctx.invalid(
                &at.key("port"),
                "only one egress listener may leave out its port",
            ));
        }
        let bound = bind(&at, &l.bind)?;
        if let Some(number) = port {
            let port_at = at.key("port").key("number");
            if egress.iter().any(|e: &Egress| e.port == Some(number)) {
                return Err(ctx.invalid(
                    &port_at,
                    format!("port {number} has an egress listener already"),
                ));
            }
            // Ingress listeners are bound, not reached by redirection:
            // the two cannot share an address.
            if ingress
                .iter()
                .any(|i: &Ingress| i.port == number && i.bind == bound)
            {
                return Err(ctx.invalid(
                    &port_at,
                    format!(
                        "port {number} has an ingress listener on the same address; give one of them another bind"
                    ),
                ));
            }
        }
        if l.hosts.is_empty() {
            return Err(ctx.invalid(&at.key("hosts"), "expected at least one host"));
        }
        let mut hosts = Vec::new();
        for (j, written) in l.hosts.iter().enumerate() {
            let at = at.key("hosts").index(j);
            let Some((ns, host)) = written.split_once('/') else {
                return Err(ctx.invalid(
                    &at,
                    format!("{written:?} is not namespace/dnsName (such as ./* or */reviews.default.svc.cluster.local)"),
                ));
            };
            let namespace = match ns {
                "~" => continue,
                "*" => None,
                "." => Some(namespace.to_owned()),
                "" => return Err(ctx.invalid(&at, format!("{written:?} has an empty namespace"))),
                ns => Some(ns.to_owned()),
            };
            hosts.push(HostSelector {
                namespace,
                host: check::gateway_host(&ctx, &at, host)?,
            });
        }
        egress.push(Egress {
            port,
            bind: bound,
            hosts,
        });
    }
    Ok(SidecarListeners { ingress, egress })
}
