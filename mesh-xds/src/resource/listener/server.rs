//! A server `Listener` (gRFC A36: a gRPC xDS server's
//! `xds.istio.io/grpc/lds/inbound/HOST:PORT`, as istiod and `mesh-control`
//! write it) into what the server on its address asks of its callers: an
//! [`InboundPolicy`] and the certificate provider its TLS takes.
//!
//! Its filter chains are told apart by `transport_protocol` only (`tls` or
//! `raw_buffer`, or none): at most one chain of mutual TLS and one of
//! plain text, which give the port's mode (TLS only: `STRICT`; both:
//! `PERMISSIVE`; plain text only: `DISABLE`). Each chain holds one
//! `HttpConnectionManager`, read as a client listener's is, whose RBAC
//! filters ([`rbac`](super::super::rbac)) must be the same on every chain:
//! the port has one authorization. A TLS chain must require client
//! certificates and take its certificate and roots from certificate
//! provider instances (gRFC A29). Anything else is a NACK naming the
//! field: a server never takes connections in a way its listener does not
//! say.

use std::net::{IpAddr, SocketAddr};

use envoy_types::pb::envoy::config::core::v3::{
    TransportSocket, address, socket_address, transport_socket,
};
use envoy_types::pb::envoy::config::listener::v3 as lds;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    DownstreamTlsContext, common_tls_context::ValidationContextType,
};
use mesh_core::security::{InboundPolicy, MtlsMode, Rbac};
use prost::Name;

use super::{FilterKind, HttpFilter, RouteSource, chain_manager, read_manager, transport_agrees};
use crate::resource::error::{At, FieldError, Ignored};
use crate::resource::proto;
use crate::resource::rbac::rbac_filter;
use crate::resource::tls_context::{RAW_BUFFER_TYPE, certificate_provider, validation_context};

/// What a server listener asks of the server on its address.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsServer {
    /// The address it is for.
    pub address: SocketAddr,
    /// How the port takes mutual TLS, and its authorization.
    pub policy: InboundPolicy,
    /// The certificate provider instances its mutual TLS takes the
    /// server's certificate and the roots from; `None` for plain text
    /// only.
    pub tls: Option<ServerTls>,
}

/// The certificate provider instances (the bootstrap's
/// `certificate_providers`) a server's mutual TLS uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// The instance of the server's own certificate.
    pub certificate: String,
    /// The instance of the roots clients' certificates must chain to.
    pub roots: String,
}

/// One chain, read.
struct Chain {
    tls: Option<ServerTls>,
    routes: RouteSource,
    http_filters: Vec<HttpFilter>,
    rbac: Vec<Rbac>,
}

/// The server side of `l`, and the first chain's routes and filters.
pub(super) fn convert(
    l: &lds::Listener,
    ignored: &mut Vec<Ignored>,
) -> Result<(XdsServer, RouteSource, Vec<HttpFilter>), FieldError> {
    let address = socket(l)?;
    let list = At::ROOT.field("filter_chains");
    let mut chains = Vec::new();
    for (i, c) in l.filter_chains.iter().enumerate() {
        chains.push((
            list.index(i).to_string(),
            chain(c, &list.index(i), ignored)?,
        ));
    }
    if let Some(c) = &l.default_filter_chain {
        let at = At::ROOT.field("default_filter_chain");
        chains.push((at.to_string(), chain(c, &at, ignored)?));
    }
    let Some(((_, first), rest)) = chains.split_first() else {
        return Err(At::ROOT.field("filter_chains").error("no filter chain"));
    };
    let tls_chains = chains.iter().filter(|(_, c)| c.tls.is_some()).count();
    let plain_chains = chains.len() - tls_chains;
    if tls_chains > 1 || plain_chains > 1 {
        return Err(At::ROOT.field("filter_chains").error(
            "more than one chain of the same transport: a server port has one of mutual TLS \
             and one of plain text at most",
        ));
    }
    for (at, c) in rest {
        if c.rbac != first.rbac {
            return Err(FieldError {
                field: at.clone(),
                reason: "its RBAC filters differ from the first chain's; a port has one \
                         authorization"
                    .to_owned(),
            });
        }
    }
    let mtls = match (tls_chains, plain_chains) {
        (1, 1) => MtlsMode::Permissive,
        (1, _) => MtlsMode::Strict,
        _ => MtlsMode::Disable,
    };
    let tls = chains.iter().find_map(|(_, c)| c.tls.clone());
    let server = XdsServer {
        address,
        policy: InboundPolicy {
            mtls,
            rbac: first.rbac.clone(),
        },
        tls,
    };
    Ok((server, first.routes.clone(), first.http_filters.clone()))
}

/// The socket address of the server listener `l`.
pub(super) fn socket(l: &lds::Listener) -> Result<SocketAddr, FieldError> {
    let at = At::ROOT.field("address");
    let socket = match l.address.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(s)) => s,
        _ => return Err(at.error("a server listener needs a socket address")),
    };
    let at = at.field("socket_address");
    let ip: IpAddr = socket.address.parse().map_err(|_| {
        at.field("address")
            .error(format_args!("{:?} is not an IP address", socket.address))
    })?;
    let port = match socket.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(p)) => u16::try_from(p).ok(),
        _ => None,
    };
    let port = port.ok_or_else(|| at.field("port_value").error("must be a port"))?;
    Ok(SocketAddr::new(ip, port))
}

fn chain(
    c: &lds::FilterChain,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<Chain, FieldError> {
    let transport = match &c.filter_chain_match {
        None => "",
        Some(m) => {
            let only_transport = lds::FilterChainMatch {
                transport_protocol: m.transport_protocol.clone(),
                ..Default::default()
            };
            if *m != only_transport {
                return Err(at
                    .field("filter_chain_match")
                    .error("matching on anything but transport_protocol is not supported"));
            }
            m.transport_protocol.as_str()
        }
    };
    let tls = c
        .transport_socket
        .as_ref()
        .map(|s| server_tls(s, &at.field("transport_socket")))
        .transpose()?
        .flatten();
    transport_agrees(transport, tls.is_some(), at)?;
    let hcm = chain_manager(c, at)?;
    let filters_at = at.field("filters");
    let filter_at = filters_at.index(0);
    let at = filter_at.field("typed_config");
    let (routes, http_filters, _) = read_manager(&hcm, &at, ignored)?;
    if let RouteSource::Rds { .. } = routes {
        return Err(at.field("rds").error(
            "a server's routes must be inline: per-route authorization over RDS is not supported",
        ));
    }
    let mut rbac = Vec::new();
    let list = at.field("http_filters");
    for (i, f) in http_filters.iter().enumerate() {
        if let FilterKind::Rbac(packed) = &f.kind {
            let filter_at = list.index(i);
            let at = filter_at.field("typed_config");
            let config: RbacFilter = proto::decode(&packed.value, &at)?;
            rbac.extend(rbac_filter(&config, &at)?);
        }
    }
    no_per_route_rbac(&hcm, &http_filters, &at)?;
    Ok(Chain {
        tls,
        routes,
        http_filters,
        rbac,
    })
}

/// Refuses routes that override an RBAC filter: the mesh enforces one
/// authorization per port, and an override left out could allow what it
/// denies.
fn no_per_route_rbac(
    manager: &hcm::HttpConnectionManager,
    filters: &[HttpFilter],
    at: &At<'_>,
) -> Result<(), FieldError> {
    let Some(hcm::http_connection_manager::RouteSpecifier::RouteConfig(rc)) =
        &manager.route_specifier
    else {
        return Ok(());
    };
    let rbac_names: Vec<&str> = filters
        .iter()
        .filter(|f| matches!(f.kind, FilterKind::Rbac(_)))
        .map(|f| f.name.as_str())
        .collect();
    let overrides = |map: &std::collections::HashMap<String, _>| {
        map.keys()
            .any(|k: &String| rbac_names.contains(&k.as_str()))
    };
    for vh in &rc.virtual_hosts {
        if overrides(&vh.typed_per_filter_config)
            || vh
                .routes
                .iter()
                .any(|r| overrides(&r.typed_per_filter_config))
        {
            return Err(at.field("route_config").error(format_args!(
                "virtual host {:?} overrides an RBAC filter per route, which is not supported",
                vh.name
            )));
        }
    }
    Ok(())
}

/// A server chain's TLS: `None` for plain text (`raw_buffer`); mutual TLS
/// from certificate providers; anything else refused.
fn server_tls(s: &TransportSocket, at: &At<'_>) -> Result<Option<ServerTls>, FieldError> {
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &s.config_type else {
        return Err(at.error("no typed_config"));
    };
    if any.type_url.rsplit('/').next() == Some(RAW_BUFFER_TYPE) {
        return Ok(None);
    }
    let at = at.field("typed_config");
    if !proto::is::<DownstreamTlsContext>(any) {
        return Err(at.error(format_args!(
            "transport socket {:?} is not supported: only TLS ({}) or raw_buffer",
            any.type_url,
            DownstreamTlsContext::full_name()
        )));
    }
    let context: DownstreamTlsContext = proto::unpack(any, &at)?;
    if !context.require_client_certificate.is_some_and(|r| r.value) {
        return Err(at.field("require_client_certificate").error(
            "must be true: the mesh's servers take mutual TLS only, never TLS without a client \
             certificate",
        ));
    }
    let common_at = at.field("common_tls_context");
    let Some(common) = &context.common_tls_context else {
        return Err(common_at.error("missing"));
    };
    let certificate = certificate_provider(common)
        .map(str::to_owned)
        .ok_or_else(|| {
            common_at
                .field("tls_certificate_provider_instance")
                .error("missing: the server's certificate must come from a certificate provider")
        })?;
    let validation_at = common_at.field("validation_context");
    let context = validation_context(common);
    #[allow(deprecated)] // match_subject_alt_names: still sent by older control planes
    if context.is_some_and(|v| {
        !v.match_subject_alt_names.is_empty() || !v.match_typed_subject_alt_names.is_empty()
    }) {
        return Err(validation_at.error(
            "client subject alt name matchers are not supported: authorize clients with RBAC",
        ));
    }
    #[allow(deprecated)] // the provider-instance variant: istiod's older form
    let roots = match (&common.validation_context_type, context) {
        (_, Some(v)) => v
            .ca_certificate_provider_instance
            .as_ref()
            .map(|i| i.instance_name.clone()),
        (Some(ValidationContextType::ValidationContextCertificateProviderInstance(i)), None) => {
            Some(i.instance_name.clone())
        }
        _ => None,
    };
    let roots = roots.ok_or_else(|| {
        validation_at
            .field("ca_certificate_provider_instance")
            .error("missing: the roots must come from a certificate provider")
    })?;
    Ok(Some(ServerTls { certificate, roots }))
}
