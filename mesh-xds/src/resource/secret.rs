//! SDS: a `Secret` into an [`XdsSecret`], the certificates a gateway's
//! listener names by SDS (`kubernetes://NAME`, as istiod serves a
//! Gateway's `credentialName`): a certificate with its private key, or the
//! roots (and CRL) client certificates are checked against.
//!
//! Each PEM is inline text or a file's name, as the secret carries it. A
//! secret of another type (session ticket keys, a generic secret), one
//! with neither, or PEM read from an environment variable is NACKed. A
//! private key is never written out: [`Pem`]'s `Debug` shows inline text
//! by its length only, and the ADS client keeps a secret's raw copy with
//! the key redacted.

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
use mesh_core::policy::Pem;
use prost::Name;

use super::error::{At, FieldError, ResourceError};
use super::tls_context::{certificate_and_key, pem, required_pem};

/// A `Secret`, converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XdsSecret {
    /// A certificate chain a server presents, and its private key.
    Certificate {
        /// The chain.
        certificate_chain: Pem,
        /// Its key.
        private_key: Pem,
    },
    /// The roots a peer's certificate must chain to, and the revoked ones.
    Roots {
        /// The roots.
        trusted_ca: Pem,
        /// A CRL, if any.
        crl: Option<Pem>,
    },
}

impl TryFrom<&Secret> for XdsSecret {
    type Error = ResourceError;

    fn try_from(s: &Secret) -> Result<Self, ResourceError> {
        convert(s).map_err(|e| e.in_resource(Secret::NAME, &s.name))
    }
}

fn convert(s: &Secret) -> Result<XdsSecret, FieldError> {
    if s.name.is_empty() {
        return Err(At::ROOT.field("name").error("must not be empty"));
    }
    match &s.r#type {
        Some(secret::Type::TlsCertificate(c)) => {
            let (certificate_chain, private_key) =
                certificate_and_key(c, &At::ROOT.field("tls_certificate"))?;
            Ok(XdsSecret::Certificate {
                certificate_chain,
                private_key,
            })
        }
        Some(secret::Type::ValidationContext(v)) => {
            let at = At::ROOT.field("validation_context");
            let trusted_ca = required_pem(v.trusted_ca.as_ref(), &at.field("trusted_ca"))?;
            let crl_at = at.field("crl");
            let crl = v.crl.as_ref().map(|s| pem(s, &crl_at)).transpose()?;
            Ok(XdsSecret::Roots { trusted_ca, crl })
        }
        Some(secret::Type::SessionTicketKeys(_)) => Err(At::ROOT
            .field("session_ticket_keys")
            .error("session ticket keys are not supported")),
        Some(secret::Type::GenericSecret(_)) => Err(At::ROOT
            .field("generic_secret")
            .error("generic secrets are not supported")),
        None => Err(At::ROOT.error("neither tls_certificate nor validation_context")),
    }
}

/// `s` with its private key, if it holds one, replaced by `[redacted]`, as
/// Envoy's admin shows secrets: what `/config_dump` and CSDS may show.
pub(crate) fn redacted(s: &Secret) -> Secret {
    use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
    let mut s = s.clone();
    if let Some(secret::Type::TlsCertificate(c)) = &mut s.r#type
        && c.private_key.is_some()
    {
        c.private_key = Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString("[redacted]".into())),
            ..Default::default()
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        CertificateValidationContext, TlsCertificate,
    };

    use super::*;

    fn inline(text: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(Specifier::InlineString(text.into())),
            ..Default::default()
        })
    }

    fn certificate() -> Secret {
        Secret {
            name: "kubernetes://edge".into(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: inline("CHAIN"),
                private_key: inline("KEY"),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn a_certificate_and_its_key() {
        let converted = XdsSecret::try_from(&certificate()).unwrap();
        assert_eq!(
            converted,
            XdsSecret::Certificate {
                certificate_chain: Pem::Inline("CHAIN".into()),
                private_key: Pem::Inline("KEY".into()),
            }
        );
        assert!(!format!("{converted:?}").contains("KEY"));
    }

    #[test]
    fn roots_with_a_crl_from_files() {
        let file = |path: &str| {
            Some(DataSource {
                specifier: Some(Specifier::Filename(path.into())),
                ..Default::default()
            })
        };
        let s = Secret {
            name: "kubernetes://edge-cacert".into(),
            r#type: Some(secret::Type::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: file("/etc/ca.pem"),
                    crl: file("/etc/crl.pem"),
                    ..Default::default()
                },
            )),
        };
        assert_eq!(
            XdsSecret::try_from(&s).unwrap(),
            XdsSecret::Roots {
                trusted_ca: Pem::File("/etc/ca.pem".into()),
                crl: Some(Pem::File("/etc/crl.pem".into())),
            }
        );
    }

    #[test]
    fn what_cannot_be_used_is_refused_by_field() {
        let mut s = certificate();
        let Some(secret::Type::TlsCertificate(c)) = &mut s.r#type else {
            unreachable!()
        };
        c.private_key = None;
        let e = XdsSecret::try_from(&s).unwrap_err();
        assert_eq!(e.field, "tls_certificate.private_key");
        assert_eq!(e.resource, "kubernetes://edge");

        let Some(secret::Type::TlsCertificate(c)) = &mut s.r#type else {
            unreachable!()
        };
        c.private_key = Some(DataSource {
            specifier: Some(Specifier::EnvironmentVariable("KEY".into())),
            ..Default::default()
        });
        let e = XdsSecret::try_from(&s).unwrap_err();
        assert_eq!(e.field, "tls_certificate.private_key.environment_variable");

        s.r#type = None;
        assert!(XdsSecret::try_from(&s).is_err());
    }

    #[test]
    fn a_redacted_copy_keeps_the_chain_only() {
        let r = redacted(&certificate());
        let Some(secret::Type::TlsCertificate(c)) = &r.r#type else {
            unreachable!()
        };
        assert_eq!(c.certificate_chain, inline("CHAIN"));
        assert_eq!(c.private_key, inline("[redacted]"));
    }
}
