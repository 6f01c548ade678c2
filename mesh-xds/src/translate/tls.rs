//! A cluster's mutual TLS as Envoy's upstream TLS transport socket, in
//! the shape istiod writes for proxyless gRPC (gRFC A29): the workload's
//! certificate and the mesh's roots from the certificate provider
//! instance `default` (certificates `default` and `ROOTCA`, as Istio's
//! agent names them), the server's SPIFFE ids as URI SAN matchers.

use envoy_types::pb::envoy::config::core::v3::{TransportSocket, transport_socket};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    UpstreamTlsContext, common_tls_context::ValidationContextType,
    subject_alt_name_matcher::SanType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use mesh_core::policy::UpstreamTls;

use super::any;

/// The transport socket's name.
pub(crate) const TLS_SOCKET: &str = "envoy.transport_sockets.tls";

/// The certificate provider instance Istio's agent configures.
const PROVIDER: &str = "default";

/// `tls` as a cluster's transport socket.
pub fn tls_transport_socket(tls: &UpstreamTls) -> TransportSocket {
    let instance = |certificate_name: &str| CertificateProviderPluginInstance {
        instance_name: PROVIDER.into(),
        certificate_name: certificate_name.into(),
    };
    // `match_subject_alt_names`, as istiod writes it: gRPC checks that
    // field and not its typed successor.
    let sans = tls
        .subject_alt_names
        .iter()
        .map(|id| StringMatcher {
            match_pattern: Some(MatchPattern::Exact(id.clone())),
            ..Default::default()
        })
        .collect();
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_provider_instance: Some(instance("default")),
            validation_context_type: Some(ValidationContextType::ValidationContext(
                #[allow(deprecated)]
                CertificateValidationContext {
                    ca_certificate_provider_instance: Some(instance("ROOTCA")),
                    match_subject_alt_names: sans,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        sni: tls.sni.clone().unwrap_or_default(),
        ..Default::default()
    };
    TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(&context))),
    }
}

/// The mutual TLS an upstream TLS context asks for: its SNI and the URI
/// SANs it requires exactly (the shape [`tls_transport_socket`] writes).
pub fn upstream_tls(context: &UpstreamTlsContext) -> UpstreamTls {
    let validation = context
        .common_tls_context
        .as_ref()
        .and_then(|c| c.validation_context_type.as_ref());
    let exact = |m: &StringMatcher| match m.match_pattern.as_ref()? {
        MatchPattern::Exact(id) => Some(id.clone()),
        _ => None,
    };
    let subject_alt_names = match validation {
        #[allow(deprecated)]
        Some(ValidationContextType::ValidationContext(v)) => v
            .match_subject_alt_names
            .iter()
            .filter_map(exact)
            .chain(
                v.match_typed_subject_alt_names
                    .iter()
                    .filter(|m| m.san_type == SanType::Uri as i32)
                    .filter_map(|m| exact(m.matcher.as_ref()?)),
            )
            .collect(),
        _ => Vec::new(),
    };
    UpstreamTls {
        sni: (!context.sni.is_empty()).then(|| context.sni.clone()),
        subject_alt_names,
    }
}
