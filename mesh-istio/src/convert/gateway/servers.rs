//! A Gateway's servers that take HTTP routes, read and checked as Istio
//! validates them: their port and protocol, their hosts
//! (`[namespace/]host`), the route table each routes by, and how each
//! takes its connections (plain text, with or without a redirect to HTTPS;
//! TLS terminated with a Secret's certificates or named files; or not
//! served, with a warning).

use mesh_core::policy::{Pem, ServerTls, TlsVersion};
use mesh_core::registry::Protocol;

use super::super::super::Sourced;
use super::super::super::api::{
    Gateway, Port, Server, ServerTLSMode, ServerTLSSettings, TLSProtocol,
};
use super::super::super::error::{IstioError, Warning};
use super::super::super::yaml::FieldPath;
use super::super::secret::{Certificates, Secrets};
use super::super::{Ctx, check};
use super::ctx;

/// A host of a server: the namespace whose VirtualServices it takes
/// (`None` for any) and the host or pattern.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ServerHost {
    pub(super) namespace: Option<String>,
    pub(super) host: String,
}

/// A server of a Gateway that takes HTTP routes: its port, hosts, route
/// table and what it does with connections.
pub(super) struct HttpServer {
    /// Where it is written in its Gateway.
    pub(super) at: FieldPath,
    pub(super) port: u16,
    pub(super) hosts: Vec<ServerHost>,
    /// The name of its route table.
    pub(super) routes: String,
    pub(super) security: Security,
}

/// How a server takes its connections.
pub(super) enum Security {
    /// Plain text; `redirect` answers everything with a redirect to HTTPS.
    Plain { redirect: bool },
    /// TLS terminated with these certificates.
    Tls(Box<ServerTls>),
    /// TLS this proxy cannot terminate (no files): not served.
    Unserved,
}

/// The servers of `gw` that take HTTP routes (HTTP, HTTP/2, gRPC, and
/// HTTPS terminated at the gateway, as istiod's `IsHTTPServer`), every
/// server checked as Istio's validation checks it.
pub(super) fn http_servers(
    gw: &Sourced<Gateway>,
    secrets: &Secrets<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<HttpServer>, IstioError> {
    let ctx = ctx(gw);
    let at = FieldPath::root().key("spec").key("servers");
    let spec = &gw.resource.spec;
    if spec.servers.is_empty() {
        return Err(ctx.invalid(&at, "expected at least one server"));
    }
    let mut out = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, server) in spec.servers.iter().enumerate() {
        let at = at.index(i);
        let (port, http, written) = port(&ctx, &at, server)?;
        if names.contains(&written.name.as_str()) {
            return Err(ctx.invalid(
                &at.key("port").key("name"),
                format!(
                    "{:?} names another server's port; port names are unique within a Gateway",
                    written.name
                ),
            ));
        }
        names.push(&written.name);
        let hosts_at = at.key("hosts");
        if server.hosts.is_empty() {
            return Err(ctx.invalid(&hosts_at, "expected at least one host"));
        }
        let namespace = gw.resource.metadata.namespace();
        let hosts = server
            .hosts
            .iter()
            .enumerate()
            .map(|(j, h)| server_host(&ctx, &hosts_at.index(j), h, namespace))
            .collect::<Result<Vec<_>, _>>()?;
        if !http {
            continue;
        }
        let (routes, security) = match &server.tls {
            Some(tls) if Protocol::parse(&written.protocol) == Protocol::Https => (
                format!(
                    "https.{port}.{}.{}.{namespace}",
                    written.name, gw.resource.metadata.name
                ),
                server_tls(&ctx, &at.key("tls"), tls, secrets, warnings)?,
            ),
            tls => (
                mesh_core::gateway::http_routes(port),
                Security::Plain {
                    redirect: tls.as_ref().is_some_and(|t| t.https_redirect),
                },
            ),
        };
        out.push(HttpServer {
            at,
            port,
            hosts,
            routes,
            security,
        });
    }
    Ok(out)
}

/// The TLS a server terminates, from the Secret its `credentialName`
/// names (the first of `credentialNames`), as istiod prefers it, else from
/// the files it names: a certificate and key (`serverCertificate` and
/// `privateKey`, or the first of `tlsCertificates`), and for `MUTUAL` the
/// roots of client certificates. A server whose Secret is not there, or
/// of another mode, is not served.
fn server_tls(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    tls: &ServerTLSSettings,
    secrets: &Secrets<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Security, IstioError> {
    let mutual = match tls.mode {
        Some(ServerTLSMode::Simple) => false,
        Some(ServerTLSMode::Mutual) => true,
        _ => return Ok(Security::Unserved),
    };
    let credential = match tls.credential_names.first() {
        _ if !tls.credential_name.is_empty() => {
            Some((at.key("credentialName"), &tls.credential_name))
        }
        Some(name) => Some((at.key("credentialNames").index(0), name)),
        None => None,
    };
    let secret = credential.as_ref().map(|(_, name)| (*name).clone());
    let certificates = match credential {
        Some((name_at, name)) => match secrets.certificates(name)? {
            Some(c) => {
                if mutual && c.ca.is_none() {
                    return Err(ctx.invalid(
                        &name_at,
                        format!(
                            "MUTUAL TLS checks client certificates: expected their roots in Secret {name}'s ca.crt or in Secret {name}-cacert"
                        ),
                    ));
                }
                c
            }
            None => {
                warnings.push(ctx.warning(
                    &name_at,
                    format!(
                        "there is no Secret {name} in namespace {}, the gateway proxy's; this server is not served",
                        secrets.namespace
                    ),
                ));
                return Ok(Security::Unserved);
            }
        },
        None => files(ctx, at, tls, mutual)?,
    };
    let version = |v: Option<TLSProtocol>| match v? {
        TLSProtocol::Auto => None,
        TLSProtocol::V1_0 => Some(TlsVersion::V1_0),
        TLSProtocol::V1_1 => Some(TlsVersion::V1_1),
        TLSProtocol::V1_2 => Some(TlsVersion::V1_2),
        TLSProtocol::V1_3 => Some(TlsVersion::V1_3),
    };
    let (min_version, max_version) = (
        version(tls.min_protocol_version),
        version(tls.max_protocol_version),
    );
    if let (Some(min), Some(max)) = (min_version, max_version)
        && min > max
    {
        return Err(ctx.invalid(
            &at.key("minProtocolVersion"),
            "the lowest version is above the highest (maxProtocolVersion)",
        ));
    }
    Ok(Security::Tls(Box::new(ServerTls {
        credential: secret,
        certificate_chain: certificates.chain,
        private_key: certificates.key,
        client_ca: certificates.ca.filter(|_| mutual),
        subject_alt_names: tls.subject_alt_names.clone(),
        crl: certificates.crl,
        verify_certificate_spki: tls.verify_certificate_spki.clone(),
        verify_certificate_hash: tls.verify_certificate_hash.clone(),
        min_version,
        max_version,
        cipher_suites: tls.cipher_suites.clone(),
    })))
}

/// The certificates of the files `tls` names.
fn files(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    tls: &ServerTLSSettings,
    mutual: bool,
) -> Result<Certificates, IstioError> {
    let (chain, key, ca, file_at) = match tls.tls_certificates.first() {
        Some(c) if tls.server_certificate.is_empty() => (
            &c.server_certificate,
            &c.private_key,
            if tls.ca_certificates.is_empty() {
                &c.ca_certificates
            } else {
                &tls.ca_certificates
            },
            at.key("tlsCertificates").index(0),
        ),
        _ => (
            &tls.server_certificate,
            &tls.private_key,
            &tls.ca_certificates,
            at.clone(),
        ),
    };
    for (field, value) in [("serverCertificate", chain), ("privateKey", key)] {
        if value.is_empty() {
            return Err(ctx.invalid(
                &file_at.key(field),
                "expected the file (or a credentialName)",
            ));
        }
    }
    if mutual && ca.is_empty() {
        return Err(ctx.invalid(
            &at.key("caCertificates"),
            "MUTUAL TLS checks client certificates: expected the file of their roots",
        ));
    }
    let file = |path: &String| (!path.is_empty()).then(|| Pem::File(path.clone()));
    Ok(Certificates {
        chain: Pem::File(chain.clone()),
        key: Pem::File(key.clone()),
        ca: file(ca),
        crl: file(&tls.ca_crl),
    })
}

/// The port number of `server`, whether it takes HTTP routes, and the
/// port as written.
fn port<'s>(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    server: &'s Server,
) -> Result<(u16, bool, &'s Port), IstioError> {
    let Some(p) = &server.port else {
        return Err(ctx.invalid(&at.key("port"), "expected a port"));
    };
    let number = check::required_port(ctx, &at.key("port").key("number"), p.number)?;
    let protocol = Protocol::parse(&p.protocol);
    if protocol == Protocol::Unsupported {
        return Err(ctx.invalid(
            &at.key("port").key("protocol"),
            format!(
                "{:?} is not a protocol of a gateway server; expected HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS or MYSQL",
                p.protocol
            ),
        ));
    }
    let tls = matches!(protocol, Protocol::Https | Protocol::Tls);
    if tls && server.tls.is_none() {
        return Err(ctx.invalid(
            &at.key("tls"),
            format!("a server of protocol {protocol} needs TLS settings"),
        ));
    }
    let passthrough = server.tls.as_ref().is_some_and(|t| {
        matches!(
            t.mode,
            None | Some(ServerTLSMode::Passthrough | ServerTLSMode::AutoPassthrough)
        )
    });
    let http = protocol.is_http() || (protocol == Protocol::Https && !passthrough);
    Ok((number, http, p))
}

/// A server host `[namespace/]host` of a Gateway of `gateway_namespace`.
fn server_host(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    written: &str,
    gateway_namespace: &str,
) -> Result<ServerHost, IstioError> {
    let (namespace, host) = match written.split_once('/') {
        None => (None, written),
        Some(("", _)) => {
            return Err(ctx.invalid(
                at,
                format!(
                    "{written:?} has an empty namespace; expected namespace/host, */host or ./host"
                ),
            ));
        }
        Some(("*", host)) => (None, host),
        Some((".", host)) => (Some(gateway_namespace.to_owned()), host),
        Some((ns, host)) => (Some(ns.to_owned()), host),
    };
    Ok(ServerHost {
        namespace,
        host: check::gateway_host(ctx, at, host)?,
    })
}
