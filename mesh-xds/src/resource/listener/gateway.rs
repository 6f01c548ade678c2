//! A gateway's `Listener`, in the shape istiod (and `mesh-control`) writes
//! an Envoy gateway's port, into an [`XdsGateway`]: the port's servers,
//! each with the server names (SNI) that choose it, the route
//! configuration that routes it and the TLS it terminates.
//!
//! A server listener (no `api_listener`) is a gateway's when its chains
//! route by RDS (a proxyless server's carry their routes inline, gRFC
//! A36). What is read:
//!
//! - `filter_chain_match`: `server_names`, and a `transport_protocol` that
//!   agrees with the chain's socket; matching on anything else is NACKed.
//! - The transport socket: none or `raw_buffer` for plain text, else a
//!   `DownstreamTlsContext` holding one certificate, inline or in files
//!   (`tls_certificates`) or by SDS over ADS
//!   (`tls_certificate_sds_secret_configs`); client certificates, when
//!   `require_client_certificate`, checked against roots inline, in files
//!   or by SDS (`validation_context_sds_secret_config`, or a combined
//!   context), with exact subject alt names, SPKI and certificate hashes;
//!   protocol versions and cipher suites. A certificate from a
//!   certificate provider, client certificates verified but not required,
//!   or required with nothing to verify them against are NACKed.
//! - One `HttpConnectionManager` routing by RDS; an RBAC filter is
//!   NACKed (a gateway never drops an authorization it was sent).
//!
//! A port is TLS or plain text, as istiod merges a port's servers: a
//! listener with both kinds of chain, more than one plain-text chain, or
//! server names on one is NACKed. The certificates SDS carries are not
//! here: [`XdsGateway::servers`] puts them in from the secrets the client
//! holds.

use envoy_types::pb::envoy::config::listener::v3 as lds;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType as FilterConfig;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, DownstreamTlsContext, SdsSecretConfig,
    common_tls_context::ValidationContextType, tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use mesh_core::gateway::GatewayServer;
use mesh_core::policy::{ServerTls, TlsVersion};
use prost::Name;
use std::net::SocketAddr;

use super::{FilterKind, HttpFilter, RouteSource, chain_manager, read_manager, transport_agrees};
use crate::resource::error::{At, FieldError, Ignored};
use crate::resource::proto;
use crate::resource::secret::XdsSecret;
use crate::resource::tls_context::{RAW_BUFFER_TYPE, certificate_and_key, pem};

/// A gateway's port, as its listener says.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsGateway {
    /// The address the listener is for.
    pub address: SocketAddr,
    /// Its servers, in the listener's order.
    pub servers: Vec<XdsGatewayServer>,
}

/// One server of a gateway's port: one filter chain.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsGatewayServer {
    /// The server names that choose it; empty for any.
    pub server_names: Vec<String>,
    /// The route configuration that routes its requests.
    pub routes: String,
    /// The TLS it terminates; `None` for plain text.
    pub tls: Option<XdsServerTls>,
}

/// The TLS a gateway server terminates.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsServerTls {
    /// Its settings, with the PEM the listener itself carries; what comes
    /// by SDS is left empty here.
    pub settings: ServerTls,
    /// The SDS secret of its certificate and key, if they come by SDS.
    pub certificate_secret: Option<String>,
    /// The SDS secret of the client roots, if they come by SDS.
    pub roots_secret: Option<String>,
}

impl XdsGateway {
    /// The SDS secrets its servers name.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.servers
            .iter()
            .filter_map(|s| s.tls.as_ref())
            .flat_map(|t| [&t.certificate_secret, &t.roots_secret])
            .filter_map(|name| name.as_deref())
    }

    /// Its servers as the mesh's, with the certificates `secret` gives by
    /// name put in; why not, when a secret is missing or of the wrong
    /// kind.
    pub fn servers<'a>(
        &self,
        secret: impl Fn(&str) -> Option<&'a XdsSecret>,
    ) -> Result<Vec<GatewayServer>, String> {
        self.servers
            .iter()
            .map(|server| {
                let tls = server
                    .tls
                    .as_ref()
                    .map(|tls| resolve(tls, &secret))
                    .transpose()?;
                Ok(GatewayServer {
                    routes: server.routes.clone(),
                    server_names: server.server_names.clone(),
                    tls,
                })
            })
            .collect()
    }
}

/// `tls`'s settings with its secrets put in.
fn resolve<'a>(
    tls: &XdsServerTls,
    secret: &impl Fn(&str) -> Option<&'a XdsSecret>,
) -> Result<ServerTls, String> {
    let mut settings = tls.settings.clone();
    let get = |name: &str| secret(name).ok_or_else(|| format!("waiting for secret {name:?}"));
    if let Some(name) = &tls.certificate_secret {
        match get(name)? {
            XdsSecret::Certificate {
                certificate_chain,
                private_key,
            } => {
                settings.certificate_chain = certificate_chain.clone();
                settings.private_key = private_key.clone();
            }
            XdsSecret::Roots { .. } => {
                return Err(format!(
                    "secret {name:?} holds roots, and a certificate was asked for"
                ));
            }
        }
    }
    if let Some(name) = &tls.roots_secret {
        match get(name)? {
            XdsSecret::Roots { trusted_ca, crl } => {
                settings.client_ca = Some(trusted_ca.clone());
                settings.crl = crl.clone();
            }
            XdsSecret::Certificate { .. } => {
                return Err(format!(
                    "secret {name:?} holds a certificate, and roots were asked for"
                ));
            }
        }
    }
    Ok(settings)
}

/// Whether `l` is a gateway's: its first chain routes by RDS.
pub(super) fn is_gateway(l: &lds::Listener) -> bool {
    let Some(chain) = l.filter_chains.first().or(l.default_filter_chain.as_ref()) else {
        return false;
    };
    let Some(FilterConfig::TypedConfig(any)) =
        chain.filters.first().and_then(|f| f.config_type.as_ref())
    else {
        return false;
    };
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, http_connection_manager::RouteSpecifier,
    };
    proto::is::<HttpConnectionManager>(any)
        && proto::unpack::<HttpConnectionManager>(any, &At::ROOT)
            .is_ok_and(|m| matches!(m.route_specifier, Some(RouteSpecifier::Rds(_))))
}

/// The gateway port `l`, and its first chain's routes and filters.
pub(super) fn convert(
    l: &lds::Listener,
    ignored: &mut Vec<Ignored>,
) -> Result<(XdsGateway, RouteSource, Vec<HttpFilter>), FieldError> {
    let address = super::server::socket(l)?;
    let list = At::ROOT.field("filter_chains");
    let default_at = At::ROOT.field("default_filter_chain");
    let mut servers = Vec::new();
    let mut first = None;
    let chains = l
        .filter_chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c, list.index(i)))
        .chain(l.default_filter_chain.iter().map(|c| (c, default_at)));
    for (c, at) in chains {
        let (server, routes, filters) = chain(c, &at, ignored)?;
        if server.tls.is_none() && !server.server_names.is_empty() {
            return Err(at
                .field("filter_chain_match")
                .field("server_names")
                .error("server names choose among TLS chains only"));
        }
        first.get_or_insert((routes, filters));
        servers.push((server, at.to_string()));
    }
    let Some((routes, filters)) = first else {
        return Err(list.error("no filter chain"));
    };
    let plain = servers.iter().filter(|(s, _)| s.tls.is_none()).count();
    if plain > 0 && plain < servers.len() {
        return Err(list
            .error("TLS and plain-text chains on one port: a gateway's port is one or the other"));
    }
    if plain > 1 {
        return Err(list.error("more than one plain-text chain"));
    }
    let servers = servers.into_iter().map(|(s, _)| s).collect();
    Ok((XdsGateway { address, servers }, routes, filters))
}

fn chain(
    c: &lds::FilterChain,
    at: &At<'_>,
    ignored: &mut Vec<Ignored>,
) -> Result<(XdsGatewayServer, RouteSource, Vec<HttpFilter>), FieldError> {
    let (server_names, transport) = match &c.filter_chain_match {
        None => (Vec::new(), ""),
        Some(m) => {
            let only = lds::FilterChainMatch {
                server_names: m.server_names.clone(),
                transport_protocol: m.transport_protocol.clone(),
                ..Default::default()
            };
            if *m != only {
                return Err(at.field("filter_chain_match").error(
                    "matching on anything but server_names and transport_protocol is not \
                     supported",
                ));
            }
            (m.server_names.clone(), m.transport_protocol.as_str())
        }
    };
    let socket_at = at.field("transport_socket");
    let tls = match &c.transport_socket {
        None => None,
        Some(s) => {
            use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
            let Some(ConfigType::TypedConfig(any)) = &s.config_type else {
                return Err(socket_at.error("no typed_config"));
            };
            let at = socket_at.field("typed_config");
            if any.type_url.rsplit('/').next() == Some(RAW_BUFFER_TYPE) {
                None
            } else if proto::is::<DownstreamTlsContext>(any) {
                Some(terminated(&proto::unpack(any, &at)?, &at)?)
            } else {
                return Err(at.error(format_args!(
                    "transport socket {:?} is not supported: only TLS ({}) or raw_buffer",
                    any.type_url,
                    DownstreamTlsContext::full_name()
                )));
            }
        }
    };
    transport_agrees(transport, tls.is_some(), at)?;
    let manager = chain_manager(c, at)?;
    let filters_at = at.field("filters");
    let filter_at = filters_at.index(0);
    let at = filter_at.field("typed_config");
    let (routes, http_filters, _) = read_manager(&manager, &at, ignored)?;
    let RouteSource::Rds { route_config_name } = &routes else {
        return Err(at
            .field("route_config")
            .error("a gateway chain routes by RDS, as every other chain of its listener"));
    };
    if let Some(i) = http_filters
        .iter()
        .position(|f| matches!(f.kind, FilterKind::Rbac(_)))
    {
        return Err(at
            .field("http_filters")
            .index(i)
            .error("authorization on a gateway's port is not supported"));
    }
    let server = XdsGatewayServer {
        server_names,
        routes: route_config_name.clone(),
        tls,
    };
    Ok((server, routes, http_filters))
}

/// The TLS `context` (at `at`) terminates.
fn terminated(context: &DownstreamTlsContext, at: &At<'_>) -> Result<XdsServerTls, FieldError> {
    let common_at = at.field("common_tls_context");
    let common = context
        .common_tls_context
        .as_ref()
        .ok_or_else(|| common_at.error("missing"))?;
    let mut settings = ServerTls::default();
    let mut certificate_secret = None;
    match (
        common.tls_certificates.as_slice(),
        common.tls_certificate_sds_secret_configs.as_slice(),
    ) {
        ([certificate], []) => {
            let list = common_at.field("tls_certificates");
            (settings.certificate_chain, settings.private_key) =
                certificate_and_key(certificate, &list.index(0))?;
        }
        ([], [sds]) => {
            let list = common_at.field("tls_certificate_sds_secret_configs");
            certificate_secret = Some(sds_name(sds, &list.index(0))?);
        }
        _ => {
            return Err(common_at.error(
                "a gateway server needs one certificate: in tls_certificates or by \
                 tls_certificate_sds_secret_configs",
            ));
        }
    }
    settings.credential = certificate_secret.clone();
    let validation_at = common_at.field("validation_context");
    let mut roots_secret = None;
    match &common.validation_context_type {
        None => {}
        Some(ValidationContextType::ValidationContext(v)) => {
            let roots_at = validation_at.field("trusted_ca");
            let roots = v.trusted_ca.as_ref().ok_or_else(|| {
                roots_at.error("missing: client certificates need roots to chain to")
            })?;
            settings.client_ca = Some(pem(roots, &roots_at)?);
            settings.crl = v
                .crl
                .as_ref()
                .map(|c| pem(c, &validation_at.field("crl")))
                .transpose()?;
            client_checks(v, &mut settings, &validation_at)?;
        }
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            let at = common_at.field("combined_validation_context");
            let sds = c
                .validation_context_sds_secret_config
                .as_ref()
                .ok_or_else(|| {
                    at.field("validation_context_sds_secret_config")
                        .error("missing")
                })?;
            roots_secret = Some(sds_name(
                sds,
                &at.field("validation_context_sds_secret_config"),
            )?);
            if let Some(v) = &c.default_validation_context {
                client_checks(v, &mut settings, &at.field("default_validation_context"))?;
            }
        }
        Some(ValidationContextType::ValidationContextSdsSecretConfig(sds)) => {
            let at = common_at.field("validation_context_sds_secret_config");
            roots_secret = Some(sds_name(sds, &at)?);
        }
        Some(_) => {
            return Err(validation_at
                .error("client roots from a certificate provider are not supported on a gateway"));
        }
    }
    let verifies = settings.client_ca.is_some() || roots_secret.is_some();
    let required = context.require_client_certificate.is_some_and(|r| r.value);
    let require_at = at.field("require_client_certificate");
    match (verifies, required) {
        (true, false) => {
            return Err(require_at.error(
                "must be true with client roots: an optional client certificate is not supported",
            ));
        }
        (false, true) => {
            return Err(require_at.error("true, and no roots to check client certificates against"));
        }
        _ => {}
    }
    if let Some(params) = &common.tls_params {
        let at = common_at.field("tls_params");
        let version = |v: i32, field| match TlsProtocol::try_from(v) {
            Ok(TlsProtocol::TlsAuto) => Ok(None),
            Ok(TlsProtocol::TlSv10) => Ok(Some(TlsVersion::V1_0)),
            Ok(TlsProtocol::TlSv11) => Ok(Some(TlsVersion::V1_1)),
            Ok(TlsProtocol::TlSv12) => Ok(Some(TlsVersion::V1_2)),
            Ok(TlsProtocol::TlSv13) => Ok(Some(TlsVersion::V1_3)),
            Err(_) => Err(at.field(field).error(format_args!("unknown version {v}"))),
        };
        settings.min_version = version(
            params.tls_minimum_protocol_version,
            "tls_minimum_protocol_version",
        )?;
        settings.max_version = version(
            params.tls_maximum_protocol_version,
            "tls_maximum_protocol_version",
        )?;
        settings.cipher_suites = params.cipher_suites.clone();
    }
    Ok(XdsServerTls {
        settings,
        certificate_secret,
        roots_secret,
    })
}

/// The identities, SPKI and certificate hashes `v` checks client
/// certificates by, into `settings`.
fn client_checks(
    v: &CertificateValidationContext,
    settings: &mut ServerTls,
    at: &At<'_>,
) -> Result<(), FieldError> {
    let exact = |m: &StringMatcher, at: &At<'_>| match &m.match_pattern {
        Some(MatchPattern::Exact(name)) if !m.ignore_case => Ok(name.clone()),
        _ => Err(at.error("only exact subject alt names are supported on a gateway")),
    };
    let typed = at.field("match_typed_subject_alt_names");
    for (i, m) in v.match_typed_subject_alt_names.iter().enumerate() {
        let at = typed.index(i);
        let matcher = m
            .matcher
            .as_ref()
            .ok_or_else(|| at.field("matcher").error("missing"))?;
        settings
            .subject_alt_names
            .push(exact(matcher, &at.field("matcher"))?);
    }
    let untyped = at.field("match_subject_alt_names");
    #[allow(deprecated)] // still written by older control planes
    for (i, m) in v.match_subject_alt_names.iter().enumerate() {
        settings
            .subject_alt_names
            .push(exact(m, &untyped.index(i))?);
    }
    settings.verify_certificate_spki = v.verify_certificate_spki.clone();
    settings.verify_certificate_hash = v.verify_certificate_hash.clone();
    Ok(())
}

/// The name of the SDS secret `sds` refers to, fetched over ADS.
fn sds_name(sds: &SdsSecretConfig, at: &At<'_>) -> Result<String, FieldError> {
    if sds.name.is_empty() {
        return Err(at.field("name").error("must not be empty"));
    }
    proto::same_server(sds.sds_config.as_ref(), &at.field("sds_config"))?;
    Ok(sds.name.clone())
}
