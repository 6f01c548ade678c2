//! What upstream (clusters') and downstream (server listeners') TLS
//! contexts share, read one way: the plain-text socket's type, the
//! validation context wherever it is written, the certificate provider
//! instance of the context's own certificate, and the PEM a data source
//! holds.

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, TlsCertificate,
    common_tls_context::ValidationContextType,
};
use mesh_core::policy::Pem;

use super::error::{At, FieldError};

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

/// The certificate chain and private key of `c` (at `at`), both required.
pub(crate) fn certificate_and_key(
    c: &TlsCertificate,
    at: &At<'_>,
) -> Result<(Pem, Pem), FieldError> {
    let chain = required_pem(c.certificate_chain.as_ref(), &at.field("certificate_chain"))?;
    let key = required_pem(c.private_key.as_ref(), &at.field("private_key"))?;
    Ok((chain, key))
}

/// The PEM of `source` (at `at`), which must be there.
pub(crate) fn required_pem(source: Option<&DataSource>, at: &At<'_>) -> Result<Pem, FieldError> {
    pem(source.ok_or_else(|| at.error("missing"))?, at)
}

/// The PEM a data source holds: the file it names, or its inline text.
/// An environment variable, or bytes that are not text, are refused.
pub(crate) fn pem(source: &DataSource, at: &At<'_>) -> Result<Pem, FieldError> {
    match &source.specifier {
        Some(data_source::Specifier::Filename(path)) if !path.is_empty() => {
            Ok(Pem::File(path.clone()))
        }
        Some(data_source::Specifier::InlineString(text)) => Ok(Pem::Inline(text.clone())),
        Some(data_source::Specifier::InlineBytes(bytes)) => String::from_utf8(bytes.clone())
            .map(Pem::Inline)
            .map_err(|_| at.field("inline_bytes").error("not PEM text")),
        Some(data_source::Specifier::EnvironmentVariable(_)) => Err(at
            .field("environment_variable")
            .error("certificates from environment variables are not supported")),
        Some(data_source::Specifier::Filename(_)) | None => {
            Err(at.error("empty: a file name or inline PEM is needed"))
        }
    }
}
