//! A cluster's TLS as Envoy's upstream TLS transport socket. The mesh's
//! mutual TLS takes the shape istiod writes for proxyless gRPC (gRFC
//! A29): the workload's certificate and the mesh's roots from the
//! certificate provider instance `default` (certificates `default` and
//! `ROOTCA`, as Istio's agent names them). TLS with files of the client's
//! own (`SIMPLE`, `MUTUAL`) names them as data sources, which Envoy reads
//! and gRPC does not. Either way the server's identities are SAN matchers.
//! A gateway server's TLS ([`ServerTls`]) is a downstream TLS context with
//! its files, for Envoy; or, when its certificates came from a Kubernetes
//! Secret, with SDS references to them over ADS (`kubernetes://NAME`, as
//! istiod names them), the secrets themselves made apart
//! ([`server_tls_secrets`]) for a control plane to serve only to whom it
//! may.

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, TransportSocket,
    config_source::ConfigSourceSpecifier, data_source, transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, SdsSecretConfig, Secret, SubjectAltNameMatcher, TlsCertificate,
    TlsParameters, UpstreamTlsContext,
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    secret,
    subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_core::policy::{Pem, ServerTls, TlsVersion, UpstreamTls};
use mesh_core::route::StringMatch;

use super::any;
use super::error::Refused;
use super::route::string_matcher;
use crate::resource::cluster::TLS_SOCKET;

/// The certificate provider instance Istio's agent configures.
const PROVIDER: &str = "default";

/// Where a TLS context puts the server identities it requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SanMatchers {
    /// `match_subject_alt_names`, the field gRPC checks (and istiod
    /// writes for it).
    Untyped,
    /// `match_typed_subject_alt_names`, the one Envoy does not deprecate:
    /// a SPIFFE id as a URI, any other name as DNS.
    Typed,
}

/// `tls` as a cluster's transport socket, its identities in `sans`; a
/// regular expression not written by [`StringMatch::regex`] is refused.
pub(crate) fn tls_transport_socket(
    tls: &UpstreamTls,
    sans: SanMatchers,
) -> Result<TransportSocket, Refused> {
    let instance = |certificate_name: &str| CertificateProviderPluginInstance {
        instance_name: PROVIDER.into(),
        certificate_name: certificate_name.into(),
    };
    let mut validation = CertificateValidationContext::default();
    require_sans(&mut validation, san_matchers(&tls.subject_alt_names)?, sans);
    let mut common = CommonTlsContext::default();
    match &tls.files {
        None => {
            common.tls_certificate_provider_instance = Some(instance("default"));
            validation.ca_certificate_provider_instance = Some(instance("ROOTCA"));
        }
        Some(files) => {
            if let (Some(chain), Some(key)) = (&files.client_certificate, &files.private_key) {
                common.tls_certificates = vec![TlsCertificate {
                    certificate_chain: Some(file(chain)),
                    private_key: Some(file(key)),
                    ..Default::default()
                }];
            }
            validation.trusted_ca = files.ca_certificates.as_deref().map(file);
        }
    }
    common.validation_context_type = Some(ValidationContextType::ValidationContext(validation));
    let context = UpstreamTlsContext {
        common_tls_context: Some(common),
        sni: tls.sni.clone().unwrap_or_default(),
        ..Default::default()
    };
    Ok(TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(&context))),
    })
}

/// The SAN matchers of the identities `ids`, each with the kind of SAN it
/// matches.
fn san_matchers(ids: &[StringMatch]) -> Result<Vec<(SanType, StringMatcher)>, Refused> {
    ids.iter()
        .map(|id| Ok((san_type(id), string_matcher(id, "subject_alt_names")?)))
        .collect()
}

/// The SAN matcher of the exact identity `id`.
fn exact_san(id: &str) -> (SanType, StringMatcher) {
    let matcher = StringMatcher {
        match_pattern: Some(MatchPattern::Exact(id.to_owned())),
        ..Default::default()
    };
    (san_type(&StringMatch::from(id)), matcher)
}

/// Makes `validation` require one of the identities `matchers`, in the
/// field `sans` says.
fn require_sans(
    validation: &mut CertificateValidationContext,
    matchers: Vec<(SanType, StringMatcher)>,
    sans: SanMatchers,
) {
    match sans {
        #[allow(deprecated)]
        SanMatchers::Untyped => {
            validation.match_subject_alt_names = matchers.into_iter().map(|(_, m)| m).collect();
        }
        SanMatchers::Typed => {
            validation.match_typed_subject_alt_names = matchers
                .into_iter()
                .map(|(san_type, matcher)| SubjectAltNameMatcher {
                    san_type: san_type as i32,
                    matcher: Some(matcher),
                    ..Default::default()
                })
                .collect();
        }
    }
}

/// The kind of SAN `id` matches: a URI (a SPIFFE id) where it has a `/`,
/// which no DNS name has, else a DNS name.
fn san_type(id: &StringMatch) -> SanType {
    let text = match id {
        StringMatch::Exact(s)
        | StringMatch::Prefix(s)
        | StringMatch::Suffix(s)
        | StringMatch::Contains(s) => s.as_str(),
        StringMatch::Regex(r) => r.as_str(),
    };
    if text.contains('/') {
        SanType::Uri
    } else {
        SanType::Dns
    }
}

/// TLS a server terminates with its own certificates (files, or PEM
/// inline), as a listener's transport socket for Envoy: the certificate it presents and, when it checks
/// client certificates, their roots (then required), identities, CRL
/// and pinned hashes; its protocol versions and cipher suites. It offers
/// HTTP/2 and HTTP/1.1 (ALPN).
///
/// ```
/// use mesh_core::policy::ServerTls;
/// use mesh_xds::translate;
///
/// let tls = ServerTls { certificate_chain: "/certs/cert.pem".into(), private_key: "/certs/key.pem".into(), ..ServerTls::default() };
/// assert_eq!(translate::server_tls_transport_socket(&tls).name, "envoy.transport_sockets.tls");
/// ```
pub fn server_tls_transport_socket(tls: &ServerTls) -> TransportSocket {
    let version = |v: Option<TlsVersion>| {
        (match v {
            None => TlsProtocol::TlsAuto,
            Some(TlsVersion::V1_0) => TlsProtocol::TlSv10,
            Some(TlsVersion::V1_1) => TlsProtocol::TlSv11,
            Some(TlsVersion::V1_2) => TlsProtocol::TlSv12,
            Some(TlsVersion::V1_3) => TlsProtocol::TlSv13,
        }) as i32
    };
    let mut common = CommonTlsContext {
        tls_params: Some(TlsParameters {
            tls_minimum_protocol_version: version(tls.min_version),
            tls_maximum_protocol_version: version(tls.max_version),
            cipher_suites: tls.cipher_suites.clone(),
            ..Default::default()
        }),
        // HTTP/2 and HTTP/1.1, as istiod offers on an HTTPS server: a
        // gRPC client goes no further without h2.
        alpn_protocols: vec!["h2".into(), "http/1.1".into()],
        ..Default::default()
    };
    let secrets = tls.credential.as_deref().map(SecretNames::of);
    match &secrets {
        Some(names) => common.tls_certificate_sds_secret_configs = vec![sds(&names.certificate)],
        None => common.tls_certificates = vec![certificate(tls)],
    }
    if tls.client_ca.is_some() {
        let mut validation = CertificateValidationContext {
            verify_certificate_spki: tls.verify_certificate_spki.clone(),
            verify_certificate_hash: tls.verify_certificate_hash.clone(),
            ..Default::default()
        };
        let sans = tls
            .subject_alt_names
            .iter()
            .map(|id| exact_san(id))
            .collect();
        require_sans(&mut validation, sans, SanMatchers::Typed);
        common.validation_context_type = Some(match &secrets {
            Some(names) => ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    default_validation_context: Some(validation),
                    validation_context_sds_secret_config: Some(sds(&names.roots)),
                    ..Default::default()
                },
            ),
            None => {
                roots(tls, &mut validation);
                ValidationContextType::ValidationContext(validation)
            }
        });
    }
    let context = DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate: Some(BoolValue {
            value: tls.client_ca.is_some(),
        }),
        ..Default::default()
    };
    downstream_tls_socket(&context)
}

/// The SDS secrets a server's TLS refers to when its certificates came
/// from a Kubernetes Secret: `kubernetes://NAME` with its certificate and
/// key, and for `MUTUAL` `kubernetes://NAME-cacert` with the client roots
/// (and CRL). None for TLS from files.
///
/// ```
/// use mesh_core::policy::{Pem, ServerTls};
/// use mesh_xds::translate;
///
/// let tls = ServerTls {
///     credential: Some("bookinfo-cert".into()),
///     certificate_chain: Pem::Inline("-----BEGIN CERTIFICATE-----…".into()),
///     private_key: Pem::Inline("-----BEGIN PRIVATE KEY-----…".into()),
///     ..ServerTls::default()
/// };
/// let secrets = translate::server_tls_secrets(&tls);
/// assert_eq!(secrets[0].name, "kubernetes://bookinfo-cert");
/// ```
pub fn server_tls_secrets(tls: &ServerTls) -> Vec<Secret> {
    let Some(names) = tls.credential.as_deref().map(SecretNames::of) else {
        return Vec::new();
    };
    let mut secrets = vec![Secret {
        name: names.certificate,
        r#type: Some(secret::Type::TlsCertificate(certificate(tls))),
    }];
    if tls.client_ca.is_some() {
        let mut validation = CertificateValidationContext::default();
        roots(tls, &mut validation);
        secrets.push(Secret {
            name: names.roots,
            r#type: Some(secret::Type::ValidationContext(validation)),
        });
    }
    secrets
}

/// The SDS names of a Kubernetes Secret's certificate and client roots.
struct SecretNames {
    certificate: String,
    roots: String,
}

impl SecretNames {
    fn of(credential: &str) -> Self {
        Self {
            certificate: format!("kubernetes://{credential}"),
            roots: format!("kubernetes://{credential}-cacert"),
        }
    }
}

/// An SDS reference to the secret `name`, fetched over ADS.
fn sds(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_owned(),
        sds_config: Some(ConfigSource {
            config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
            resource_api_version: ApiVersion::V3 as i32,
            ..Default::default()
        }),
    }
}

/// The certificate and key a server presents.
fn certificate(tls: &ServerTls) -> TlsCertificate {
    TlsCertificate {
        certificate_chain: Some(pem(&tls.certificate_chain)),
        private_key: Some(pem(&tls.private_key)),
        ..Default::default()
    }
}

/// Puts the roots client certificates are checked against, and the CRL,
/// into `validation`.
fn roots(tls: &ServerTls, validation: &mut CertificateValidationContext) {
    validation.trusted_ca = tls.client_ca.as_ref().map(pem);
    validation.crl = tls.crl.as_ref().map(pem);
}

/// `context` as a listener's TLS transport socket.
pub fn downstream_tls_socket(context: &DownstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(context))),
    }
}

/// A data source of PEM: the file it names, or its text.
fn pem(source: &Pem) -> DataSource {
    match source {
        Pem::File(path) => file(path),
        Pem::Inline(text) => DataSource {
            specifier: Some(data_source::Specifier::InlineString(text.clone())),
            ..Default::default()
        },
    }
}

/// A data source naming the file `path`.
fn file(path: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_owned())),
        ..Default::default()
    }
}
