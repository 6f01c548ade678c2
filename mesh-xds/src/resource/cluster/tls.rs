//! A cluster's transport sockets, read: Envoy's upstream TLS (its SNI,
//! the identities it requires, a certificate provider's or files'
//! certificates) or plain text; any other socket is refused.

use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, TransportSocket as ProtoSocket, data_source,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
use mesh_core::policy::{TlsFiles, UpstreamTls};
use prost::Name;

use crate::resource::error::{At, FieldError};
use crate::resource::matcher::string_match;
use crate::resource::proto;
use crate::resource::tls_context::{RAW_BUFFER_TYPE, certificate_provider, validation_context};

/// Envoy's TLS transport socket.
pub(crate) const TLS_SOCKET: &str = "envoy.transport_sockets.tls";

/// Envoy's plain-text transport socket, and its configuration's type.
const RAW_BUFFER_SOCKET: &str = "envoy.transport_sockets.raw_buffer";

/// The TLS of a transport socket: `None` for none or plain text
/// (`raw_buffer`). Any other socket is refused: what it asks of the
/// connection cannot be done, so it must not be dialled in plain text.
pub(super) fn upstream_tls(
    s: Option<&ProtoSocket>,
    at: &At<'_>,
) -> Result<Option<mesh_core::policy::UpstreamTls>, FieldError> {
    let Some(s) = s else {
        return Ok(None);
    };
    let type_name = s
        .config_type
        .as_ref()
        .map(|ConfigType::TypedConfig(any)| any.type_url.rsplit('/').next().unwrap_or_default());
    let tls_type = UpstreamTlsContext::full_name();
    let is = |name: &str, type_url: &str| match type_name {
        Some(t) => t == type_url,
        None => s.name == name,
    };
    if is(RAW_BUFFER_SOCKET, RAW_BUFFER_TYPE) {
        return Ok(None);
    }
    if !is(TLS_SOCKET, &tls_type) {
        let what = type_name.unwrap_or(&s.name);
        let reason = format!(
            "transport socket {what:?} is not supported: only TLS (UpstreamTlsContext) \
             or raw_buffer, so a connection is never made without what it asks for"
        );
        return Err(at.error(reason));
    }
    let context = match &s.config_type {
        Some(ConfigType::TypedConfig(any)) => {
            proto::unpack::<UpstreamTlsContext>(any, &at.field("typed_config"))?
        }
        None => UpstreamTlsContext::default(),
    };
    context_tls(&context, &at.field("typed_config")).map(Some)
}

/// The TLS an upstream TLS context asks for: its SNI, the server
/// identities it requires (its SAN matchers, in the validation context or
/// a combined one's default, as istiod writes them for gRPC: exact, prefix,
/// suffix, contains or regex, `ignore_case` as Envoy reads it), and the
/// files it names, if any. A matcher that cannot be read is an error: one
/// left out would let any server of the roots through.
fn context_tls(context: &UpstreamTlsContext, at: &At<'_>) -> Result<UpstreamTls, FieldError> {
    let common = context.common_tls_context.as_ref();
    let validation = common.and_then(validation_context);
    let mut subject_alt_names = Vec::new();
    if let Some(v) = validation {
        let at = at.field("validation_context");
        #[allow(deprecated)]
        for (i, m) in v.match_subject_alt_names.iter().enumerate() {
            let at = at.field("match_subject_alt_names");
            subject_alt_names.push(string_match(m, &at.index(i))?);
        }
        for (i, m) in v.match_typed_subject_alt_names.iter().enumerate() {
            let at = at.field("match_typed_subject_alt_names");
            let at = at.index(i);
            let Some(m) = m.matcher.as_ref() else {
                return Err(at.error("a typed subject alt name matcher has no matcher"));
            };
            subject_alt_names.push(string_match(m, &at.field("matcher"))?);
        }
    }
    let own = common.and_then(|c| c.tls_certificates.first());
    let trusted_ca = validation.and_then(|v| filename(v.trusted_ca.as_ref()));
    let by_provider = common.is_some_and(|c| certificate_provider(c).is_some());
    let files = (!by_provider).then(|| TlsFiles {
        client_certificate: own.and_then(|c| filename(c.certificate_chain.as_ref())),
        private_key: own.and_then(|c| filename(c.private_key.as_ref())),
        ca_certificates: trusted_ca,
    });
    Ok(UpstreamTls {
        sni: (!context.sni.is_empty()).then(|| context.sni.clone()),
        subject_alt_names,
        files,
    })
}

/// The file a data source names, if it names one.
fn filename(source: Option<&DataSource>) -> Option<String> {
    match source?.specifier.as_ref()? {
        data_source::Specifier::Filename(f) => Some(f.clone()),
        _ => None,
    }
}
