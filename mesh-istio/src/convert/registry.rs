//! ServiceEntries, WorkloadEntries and Kubernetes Services into a
//! [`Registry`], as istiod's service registries read them:
//!
//! - each host of a ServiceEntry is a service named as written, with the
//!   entry's ports, its `workloadSelector` labels as selector and its
//!   `endpoints` written with it;
//! - a Kubernetes Service is the service `name.namespace.svc.<domain>`,
//!   its protocol read from `appProtocol`, else the port name's prefix
//!   (`http`, `grpc-web`, `http2-api`), as Istio reads it, and visible
//!   where its `networking.istio.io/exportTo` annotation says;
//! - a WorkloadEntry is an [`Instance`], its metadata labels added to (and
//!   winning over) its spec's, set under [`WORKLOAD_ENTRIES`].
//!
//! One host name defined twice is an error naming both definitions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use mesh_core::registry::{
    Instance, Protocol, Registry, Resolution, Service, ServicePort, parse_locality,
};

use super::super::api::kubernetes::{self, IntOrString};
use super::super::api::{ServiceEntry, ServiceEntryResolution, WorkloadEntrySpec};
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::super::{Resources, Sourced, WORKLOAD_ENTRIES};
use super::{Ctx, check};

/// The annotation by which a Kubernetes Service says where it is visible.
const EXPORT_TO: &str = "networking.istio.io/exportTo";

/// A service and the resource defining it, for messages.
pub(super) struct Defined<'a> {
    pub(super) service: Service,
    pub(super) ctx: Ctx<'a>,
    /// Where its host name is written.
    pub(super) at: FieldPath,
}

/// The registry of `resources`, Kubernetes Services named in
/// `cluster_domain`.
pub(crate) fn registry(
    resources: &Resources,
    cluster_domain: &str,
) -> Result<Registry, IstioError> {
    let mut registry = Registry::new();
    for defined in services(resources, cluster_domain)? {
        registry.insert_service(defined.service);
    }
    let mut instances = Vec::with_capacity(resources.workload_entries.len());
    for we in &resources.workload_entries {
        let meta = &we.resource.metadata;
        let ctx = Ctx::new(we, "WorkloadEntry", &meta.name, meta.namespace());
        let spec = FieldPath::root().key("spec");
        let mut instance = instance(&ctx, &spec, &we.resource.spec, meta.namespace())?;
        instance
            .labels
            .extend(meta.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        instances.push(instance);
    }
    registry.set_instances(WORKLOAD_ENTRIES, instances);
    Ok(registry)
}

/// The services `resources` define, each host name once.
pub(super) fn services<'a>(
    resources: &'a Resources,
    cluster_domain: &str,
) -> Result<Vec<Defined<'a>>, IstioError> {
    let mut out: Vec<Defined<'a>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut add = |defined: Defined<'a>| {
        let host = &defined.service.hostname;
        if let Some(first) = index.get(host) {
            return Err(defined.ctx.invalid(
                &defined.at,
                format!(
                    "host {host} is also defined by {}; a host has one definition",
                    out[*first].ctx.describe()
                ),
            ));
        }
        index.insert(host.clone(), out.len());
        out.push(defined);
        Ok(())
    };
    for se in &resources.service_entries {
        for defined in entry_services(se)? {
            add(defined)?;
        }
    }
    for svc in &resources.services {
        add(kubernetes_service(svc, cluster_domain)?)?;
    }
    Ok(out)
}

/// A service per host of a ServiceEntry.
fn entry_services(se: &Sourced<ServiceEntry>) -> Result<Vec<Defined<'_>>, IstioError> {
    let meta = &se.resource.metadata;
    let namespace = meta.namespace();
    let ctx = Ctx::new(se, "ServiceEntry", &meta.name, namespace);
    let spec = &se.resource.spec;
    let at = FieldPath::root().key("spec");
    if spec.hosts.is_empty() {
        return Err(ctx.invalid(&at.key("hosts"), "expected at least one host"));
    }
    if spec.workload_selector.is_some() && !spec.endpoints.is_empty() {
        return Err(ctx.invalid(
            &at.key("workloadSelector"),
            "a ServiceEntry has endpoints or a workloadSelector, not both",
        ));
    }
    let resolution = match spec.resolution {
        None | Some(ServiceEntryResolution::None) => Resolution::None,
        Some(ServiceEntryResolution::Static) => Resolution::Static,
        Some(ServiceEntryResolution::Dns) => Resolution::Dns,
        Some(ServiceEntryResolution::DnsRoundRobin) => Resolution::DnsRoundRobin,
    };
    let mut ports = Vec::with_capacity(spec.ports.len());
    for (i, p) in spec.ports.iter().enumerate() {
        let at = at.key("ports").index(i);
        ports.push(ServicePort {
            number: check::required_port(&ctx, &at.key("number"), p.number)?,
            name: p.name.clone(),
            protocol: Protocol::parse(&p.protocol),
            target_port: check::optional_port(&ctx, &at.key("targetPort"), p.target_port)?,
        });
    }
    unique_ports(&ctx, &at.key("ports"), &ports)?;
    let mut endpoints = Vec::with_capacity(spec.endpoints.len());
    for (i, e) in spec.endpoints.iter().enumerate() {
        let at = at.key("endpoints").index(i);
        if resolution == Resolution::Static && !is_ip_or_unix(&e.address) {
            return Err(ctx.invalid(
                &at.key("address"),
                format!(
                    "{:?} is not an IP address, which a STATIC ServiceEntry's endpoints need; use resolution DNS for host names",
                    e.address
                ),
            ));
        }
        endpoints.push(instance(&ctx, &at, e, namespace)?);
    }
    let selector = spec
        .workload_selector
        .as_ref()
        .map(|s| s.labels.clone())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(spec.hosts.len());
    let mut seen = HashSet::new();
    for (i, host) in spec.hosts.iter().enumerate() {
        let at = at.key("hosts").index(i);
        let hostname = check::entry_host(&ctx, &at, host)?;
        if !seen.insert(hostname.clone()) {
            return Err(ctx.invalid(&at, format!("host {hostname} is listed twice")));
        }
        out.push(Defined {
            service: Service {
                hostname,
                namespace: namespace.to_owned(),
                ports: ports.clone(),
                selector: selector.clone(),
                endpoints: endpoints.clone(),
                resolution,
                addresses: spec.addresses.clone(),
                export_to: spec.export_to.clone(),
                origin: ctx.describe(),
            },
            ctx: ctx.clone(),
            at,
        });
    }
    Ok(out)
}

/// The service of a Kubernetes Service.
fn kubernetes_service<'a>(
    svc: &'a Sourced<kubernetes::Service>,
    cluster_domain: &str,
) -> Result<Defined<'a>, IstioError> {
    let meta = &svc.resource.metadata;
    let namespace = meta.namespace();
    let ctx = Ctx::new(svc, "Service", &meta.name, namespace);
    let spec = &svc.resource.spec;
    let at = FieldPath::root().key("spec");
    let mut ports = Vec::with_capacity(spec.ports.len());
    for (i, p) in spec.ports.iter().enumerate() {
        let at = at.key("ports").index(i);
        let target_port = match &p.target_port {
            Some(IntOrString::Int(n)) => Some(check::port(&ctx, &at.key("targetPort"), *n)?),
            // Warned about when read.
            Some(IntOrString::String(_)) | None => None,
        };
        ports.push(ServicePort {
            number: check::required_port(&ctx, &at.key("port"), p.port)?,
            name: p.name.clone(),
            protocol: kubernetes_protocol(p),
            target_port,
        });
    }
    unique_ports(&ctx, &at.key("ports"), &ports)?;
    let cluster_ip = spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty());
    let export_to = meta
        .annotations
        .get(EXPORT_TO)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|ns| !ns.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let hostname = format!("{}.{namespace}.svc.{cluster_domain}", meta.name);
    Ok(Defined {
        service: Service {
            hostname,
            namespace: namespace.to_owned(),
            ports,
            selector: spec.selector.clone(),
            endpoints: Vec::new(),
            resolution: match cluster_ip {
                Some("None") => Resolution::None,
                _ => Resolution::Static,
            },
            addresses: cluster_ip
                .filter(|ip| *ip != "None")
                .map(str::to_owned)
                .into_iter()
                .collect(),
            export_to,
            origin: ctx.describe(),
        },
        at: FieldPath::root().key("metadata").key("name"),
        ctx,
    })
}

/// The protocol of a Kubernetes Service port as Istio reads it
/// (`ConvertProtocol`): UDP as declared; else its `appProtocol`, with
/// Kubernetes' own `kubernetes.io/` names; else its name, or the part of
/// it before a `-`.
fn kubernetes_protocol(port: &kubernetes::ServicePort) -> Protocol {
    if port.protocol.as_deref() == Some("UDP") {
        return Protocol::Udp;
    }
    let name = match port.app_protocol.as_deref() {
        Some("kubernetes.io/h2c") => return Protocol::Http2,
        Some("kubernetes.io/ws") => return Protocol::Http,
        Some("kubernetes.io/wss") => return Protocol::Https,
        Some(app) => app,
        None => &port.name,
    };
    if name.to_ascii_lowercase().starts_with("grpc-web") {
        return Protocol::GrpcWeb;
    }
    Protocol::parse(name.split('-').next().unwrap_or_default())
}

/// No port number listed twice.
fn unique_ports(ctx: &Ctx<'_>, at: &FieldPath, ports: &[ServicePort]) -> Result<(), IstioError> {
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !seen.insert(p.number) {
            return Err(ctx.invalid(&at.index(i), format!("port {} is listed twice", p.number)));
        }
    }
    Ok(())
}

/// Whether `address` is an IP address or a Unix socket (`unix://`).
fn is_ip_or_unix(address: &str) -> bool {
    address.starts_with("unix://") || address.parse::<IpAddr>().is_ok()
}

/// The instance a WorkloadEntry's fields, written at `at`, describe.
fn instance(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    w: &WorkloadEntrySpec,
    namespace: &str,
) -> Result<Instance, IstioError> {
    if w.address.is_empty() && w.network.is_empty() {
        return Err(ctx.invalid(&at.key("address"), "expected an address"));
    }
    let mut ports = BTreeMap::new();
    for (name, n) in &w.ports {
        ports.insert(
            name.clone(),
            check::port(ctx, &at.key("ports").key(name), *n)?,
        );
    }
    Ok(Instance {
        address: w.address.clone(),
        ports,
        labels: w.labels.clone(),
        locality: parse_locality(&w.locality),
        weight: (w.weight > 0).then_some(w.weight),
        namespace: namespace.to_owned(),
        service_account: (!w.service_account.is_empty()).then(|| w.service_account.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, protocol: Option<&str>, app: Option<&str>) -> kubernetes::ServicePort {
        kubernetes::ServicePort {
            name: name.into(),
            port: 80,
            protocol: protocol.map(Into::into),
            app_protocol: app.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn kubernetes_protocols_as_istio_reads_them() {
        for (name, protocol, app, expected) in [
            ("http", None, None, Protocol::Http),
            ("http-api", Some("TCP"), None, Protocol::Http),
            ("HTTP2-x", None, None, Protocol::Http2),
            ("grpc-web-ui", None, None, Protocol::GrpcWeb),
            ("grpc", None, None, Protocol::Grpc),
            ("web", None, None, Protocol::Unsupported),
            ("", None, None, Protocol::Unsupported),
            ("http", Some("UDP"), None, Protocol::Udp),
            ("web", None, Some("grpc"), Protocol::Grpc),
            ("http", None, Some("kubernetes.io/h2c"), Protocol::Http2),
            ("http", None, Some("kubernetes.io/wss"), Protocol::Https),
        ] {
            assert_eq!(
                kubernetes_protocol(&port(name, protocol, app)),
                expected,
                "{name} {protocol:?} {app:?}"
            );
        }
    }

    #[test]
    fn addresses_a_static_entry_takes() {
        assert!(is_ip_or_unix("10.0.0.1"));
        assert!(is_ip_or_unix("2001:db8::1"));
        assert!(is_ip_or_unix("unix:///var/run/app.sock"));
        assert!(!is_ip_or_unix("api.example.com"));
    }
}
