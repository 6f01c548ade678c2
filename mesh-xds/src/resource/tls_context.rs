//! What upstream (clusters') and downstream (server listeners') TLS
//! contexts share, read one way: the plain-text socket's type, the
//! validation context wherever it is written, and the certificate
//! provider instance of the context's own certificate.

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, common_tls_context::ValidationContextType,
};

/// The configuration type of Envoy's plain-text transport socket.
pub(crate) const RAW_BUFFER_TYPE: &str =
    "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

/// The validation context of `common`: the plain one, or a combined
/// one's default.
pub(crate) fn validation_context(
    common: &CommonTlsContext,
) -> Option<&CertificateValidationContext> {
    match common.validation_context_type.as_ref()? {
        ValidationContextType::ValidationContext(v) => Some(v),
        ValidationContextType::CombinedValidationContext(c) => {
            c.default_validation_context.as_ref()
        }
        _ => None,
    }
}

/// The certificate provider instance `common`'s own certificate comes
/// from, in either field (istiod writes the deprecated one).
pub(crate) fn certificate_provider(common: &CommonTlsContext) -> Option<&str> {
    #[allow(deprecated)]
    let deprecated = common
        .tls_certificate_certificate_provider_instance
        .as_ref();
    common
        .tls_certificate_provider_instance
        .as_ref()
        .map(|i| i.instance_name.as_str())
        .or(deprecated.map(|i| i.instance_name.as_str()))
}
