//! [`TlsTermination`]: TLS a port terminates with certificates of its
//! own, as an Istio ingress gateway's servers do (`SIMPLE` and `MUTUAL`,
//! [`GatewayServer`]), beside the mesh's mutual TLS. The server a
//! connection gets is chosen by the server name (SNI) of its
//! `ClientHello`, as Envoy chooses a filter chain: an exact name first,
//! then the longest wildcard (`*.example.com`, which takes subdomains at
//! any depth), then a server for any name; a name no server takes, or
//! none where every server names some, is refused. The chosen server's
//! route table ([`RouteListener`]) is what the connection's requests are
//! routed by.
//!
//! Under `MUTUAL` a client must present a certificate the server's roots
//! sign, not revoked by its CRL, and, when the server lists them, with
//! one of its `subjectAltNames` (a DNS or URI SAN), the SHA-256 hash of
//! its public key (`verifyCertificateSpki`, base64) or of itself
//! (`verifyCertificateHash`, hex). rustls speaks TLS 1.2 and 1.3, so a
//! `maxProtocolVersion` below 1.2 is refused; `cipherSuites` (OpenSSL's
//! names, as Envoy takes them) narrow TLS 1.2's suites and leave 1.3's.
//!
//! Everything is read and checked when the termination is built, so a
//! file that cannot be read fails the configuration (which the caller
//! keeps serving the last good one of), never a handshake.

use std::sync::Arc;

use base64::Engine;
use mesh_core::gateway::GatewayServer;
use mesh_core::policy::{ServerTls, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{Acceptor, WebPkiClientVerifier};
use rustls::{CipherSuite, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::AcceptError;
use super::files::{FileTlsError, pem_certificates, pem_crls, pem_key};
use super::verify::sans;
use crate::route::RouteListener;

/// The TLS servers of one port, chosen by SNI.
#[derive(Debug)]
pub struct TlsTermination {
    servers: Vec<Terminating>,
}

/// One server: its names, route table and TLS.
struct Terminating {
    names: Vec<String>,
    routes: RouteListener,
    config: Arc<rustls::ServerConfig>,
    client: ClientChecks,
}

impl std::fmt::Debug for Terminating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminating")
            .field("names", &self.names)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// What a `MUTUAL` server asks of a client certificate beyond its chain.
#[derive(Debug, Default)]
struct ClientChecks {
    sans: Vec<String>,
    spki: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

/// A Gateway server whose TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("the TLS of Gateway server {routes}{}: {cause}", credential.as_ref().map(|c| format!(" (Secret {c})")).unwrap_or_default())]
pub struct TerminationError {
    /// The server, by its route table (`https.443.https.gateway.default`).
    pub routes: String,
    /// The Secret its certificates came from, if they did.
    pub credential: Option<String>,
    /// What is wrong.
    pub cause: Box<TerminationCause>,
}

/// What is wrong with a Gateway server's TLS.
#[derive(Debug, thiserror::Error)]
pub enum TerminationCause {
    /// The server terminates no TLS: it is for a plain-text port.
    #[error("it serves plain text")]
    Plain,
    /// One of its PEM files or texts.
    #[error("{field}: {source}")]
    Pem {
        /// Which of them (`serverCertificate`, `privateKey`,
        /// `caCertificates`, `caCrl`).
        field: &'static str,
        /// What is wrong with it.
        source: FileTlsError,
    },
    /// Its versions are ones rustls does not speak.
    #[error("{0}")]
    Versions(&'static str),
    /// None of its cipher suites is one rustls speaks for TLS 1.2.
    #[error(
        "none of the cipherSuites {0:?} is one this gateway speaks (ECDHE with AES-GCM or CHACHA20-POLY1305)"
    )]
    CipherSuites(Vec<String>),
    /// A `verifyCertificateSpki` or `verifyCertificateHash` entry is no
    /// SHA-256 hash.
    #[error("{field} {value:?} is not a SHA-256 hash")]
    Hash {
        /// Which list.
        field: &'static str,
        /// The entry.
        value: String,
    },
    /// Client certificates are to be checked (names, hashes, a CRL) but
    /// no roots ask clients for one.
    #[error("client certificates are to be checked, but no caCertificates ask clients for one")]
    NoClientRoots,
    /// rustls refused the roots, revocation lists, or certificate and key
    /// (a key that does not match its certificate, say).
    #[error("{0}")]
    Config(String),
}

impl TlsTermination {
    /// The servers `servers` of one port, each terminating its TLS; an
    /// error names the first that cannot.
    pub fn new(servers: &[GatewayServer]) -> Result<Self, TerminationError> {
        let servers = servers
            .iter()
            .map(|server| {
                let fail = |cause| TerminationError {
                    routes: server.routes.clone(),
                    credential: server.tls.as_ref().and_then(|t| t.credential.clone()),
                    cause: Box::new(cause),
                };
                let tls = server
                    .tls
                    .as_ref()
                    .ok_or_else(|| fail(TerminationCause::Plain))?;
                // The lists first: they need no file.
                let client = client_checks(tls).map_err(fail)?;
                Ok(Terminating {
                    names: server.server_names.clone(),
                    routes: RouteListener(Arc::from(server.routes.as_str())),
                    config: Arc::new(server_config(tls).map_err(fail)?),
                    client,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { servers })
    }

    /// The server for the server name `sni`.
    fn choose(&self, sni: Option<&str>) -> Option<&Terminating> {
        let any = || self.servers.iter().find(|s| s.names.is_empty());
        let Some(sni) = sni else {
            return any();
        };
        let sni = sni.to_ascii_lowercase();
        let named = |name: &str| {
            self.servers
                .iter()
                .find(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        };
        if let Some(server) = named(&sni) {
            return Some(server);
        }
        let mut rest = sni.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(server) = named(&format!("*.{parent}")) {
                return Some(server);
            }
            rest = parent;
        }
        any()
    }

    /// Runs the server side of the handshake on `io` with the server its
    /// SNI chooses; gives the route table of that server.
    pub(crate) async fn accept<IO>(
        &self,
        io: IO,
    ) -> Result<(TlsStream<IO>, RouteListener), AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = LazyConfigAcceptor::new(Acceptor::default(), io)
            .await
            .map_err(AcceptError::Handshake)?;
        let hello = start.client_hello();
        let sni = hello.server_name();
        let server = self
            .choose(sni)
            .ok_or_else(|| AcceptError::NoServer(sni.map(str::to_owned)))?;
        let stream = start
            .into_stream(server.config.clone())
            .await
            .map_err(AcceptError::Handshake)?;
        if let Some(cert) = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        {
            server.client.check(cert)?;
        }
        Ok((stream, server.routes.clone()))
    }
}

impl ClientChecks {
    /// Whether `cert` passes, or why not.
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), AcceptError> {
        let refuse = |reason: String| Err(AcceptError::ClientCertificate(reason));
        if !self.sans.is_empty() {
            let presented = sans(cert);
            if !presented.iter().any(|p| self.sans.contains(p)) {
                return refuse(format!(
                    "its names {presented:?} are none of the subjectAltNames {:?}",
                    self.sans
                ));
            }
        }
        if !self.hashes.is_empty() && !self.hashes.contains(&sha256(cert)) {
            return refuse("its hash is none of verifyCertificateHash".into());
        }
        if !self.spki.is_empty() {
            let spki = X509Certificate::from_der(cert)
                .map(|(_, c)| sha256(c.tbs_certificate.subject_pki.raw))
                .unwrap_or_default();
            if !self.spki.contains(&spki) {
                return refuse("its public key's hash is none of verifyCertificateSpki".into());
            }
        }
        Ok(())
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// The checks of `tls`'s lists, their hashes decoded; refused when it
/// names checks of client certificates but no roots to ask clients for
/// one, which would let every client through unchecked.
fn client_checks(tls: &ServerTls) -> Result<ClientChecks, TerminationCause> {
    let checks = !tls.subject_alt_names.is_empty()
        || !tls.verify_certificate_spki.is_empty()
        || !tls.verify_certificate_hash.is_empty()
        || tls.crl.is_some();
    if checks && tls.client_ca.is_none() {
        return Err(TerminationCause::NoClientRoots);
    }
    let hash = |field: &'static str, value: &String, decoded: Option<Vec<u8>>| match decoded {
        Some(bytes) if bytes.len() == 32 => Ok(bytes),
        _ => Err(TerminationCause::Hash {
            field,
            value: value.clone(),
        }),
    };
    let engine = base64::engine::general_purpose::STANDARD;
    Ok(ClientChecks {
        sans: tls.subject_alt_names.clone(),
        spki: tls
            .verify_certificate_spki
            .iter()
            .map(|v| hash("verifyCertificateSpki", v, engine.decode(v).ok()))
            .collect::<Result<_, _>>()?,
        hashes: tls
            .verify_certificate_hash
            .iter()
            .map(|v| hash("verifyCertificateHash", v, hex(v)))
            .collect::<Result<_, _>>()?,
    })
}

/// The bytes of hex text, colons between them allowed
/// (`DF:6F:…` as Envoy takes it).
fn hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    // Digit by digit: `from_str_radix` would take `+1` as 0x01.
    let digit = |b: u8| char::from(b).to_digit(16);
    digits
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// The rustls configuration of `tls`.
fn server_config(tls: &ServerTls) -> Result<rustls::ServerConfig, TerminationCause> {
    let pem = |field| move |source| TerminationCause::Pem { field, source };
    let provider = Arc::new(provider(&tls.cipher_suites)?);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(tls.min_version, tls.max_version)?)
        .map_err(|e| TerminationCause::Config(e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in pem_certificates(ca).map_err(pem("caCertificates"))? {
                roots
                    .add(cert)
                    .map_err(|e| TerminationCause::Config(format!("caCertificates: {e}")))?;
            }
            let crls = match &tls.crl {
                Some(crl) => pem_crls(crl).map_err(pem("caCrl"))?,
                None => Vec::new(),
            };
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .with_crls(crls)
                .build()
                .map_err(|e| TerminationCause::Config(format!("caCertificates: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = pem_certificates(&tls.certificate_chain).map_err(pem("serverCertificate"))?;
    let key = pem_key(&tls.private_key).map_err(pem("privateKey"))?;
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TerminationCause::Config(format!("serverCertificate and privateKey: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The versions between `min` and `max` that rustls speaks.
fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Result<&'static [&'static SupportedProtocolVersion], TerminationCause> {
    const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match (min, max) {
        (_, Some(TlsVersion::V1_0 | TlsVersion::V1_1)) => Err(TerminationCause::Versions(
            "maxProtocolVersion is below TLS 1.2, and this gateway speaks TLS 1.2 and 1.3 only",
        )),
        (Some(TlsVersion::V1_3), _) => Ok(TLS13),
        (_, Some(TlsVersion::V1_2)) => Ok(TLS12),
        _ => Ok(BOTH),
    }
}

/// The crypto provider with TLS 1.2's suites narrowed to `names`
/// (OpenSSL's names; every one when empty).
fn provider(names: &[String]) -> Result<CryptoProvider, TerminationCause> {
    let mut provider = CryptoProvider::clone(&super::crypto_provider());
    if names.is_empty() {
        return Ok(provider);
    }
    // Envoy's `[A|B]` groups suites of equal preference.
    let wanted: Vec<CipherSuite> = names
        .iter()
        .flat_map(|n| n.trim_matches(['[', ']']).split('|'))
        .filter_map(iana)
        .collect();
    provider.cipher_suites.retain(|s| match s {
        rustls::SupportedCipherSuite::Tls13(_) => true,
        rustls::SupportedCipherSuite::Tls12(_) => wanted.contains(&s.suite()),
    });
    if !provider
        .cipher_suites
        .iter()
        .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)))
    {
        return Err(TerminationCause::CipherSuites(names.to_vec()));
    }
    Ok(provider)
}

/// The suite of OpenSSL's name `name`, among those rustls speaks.
fn iana(name: &str) -> Option<CipherSuite> {
    Some(match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384" => CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => {
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "ECDHE-RSA-CHACHA20-POLY1305" => CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
