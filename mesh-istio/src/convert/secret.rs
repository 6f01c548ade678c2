//! The certificates a Gateway server's `credentialName` names, read from
//! Kubernetes Secrets as istiod reads them for its SDS: the Secret of that
//! name in the gateway proxy's namespace, holding `tls.crt` and `tls.key`
//! (or Istio's generic `cert` and `key`); for `MUTUAL` the roots of client
//! certificates in its `ca.crt` (`cacert`) or else in the Secret
//! `NAME-cacert`; a CRL in `ca.crl` (`crl`).

use mesh_core::policy::Pem;

use super::super::api::kubernetes::Secret;
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::super::{Resources, Sourced};
use super::Ctx;

/// The Secrets a gateway proxy in `namespace` can read.
pub(super) struct Secrets<'a> {
    pub(super) resources: &'a Resources,
    pub(super) namespace: &'a str,
}

/// What a Secret holds for a server.
pub(super) struct Certificates {
    pub(super) chain: Pem,
    pub(super) key: Pem,
    pub(super) ca: Option<Pem>,
    pub(super) crl: Option<Pem>,
}

impl Secrets<'_> {
    /// The certificates of the Secret `name`, `None` when there is no such
    /// Secret; an error names a Secret that lacks what a server needs.
    pub(super) fn certificates(&self, name: &str) -> Result<Option<Certificates>, IstioError> {
        let Some(secret) = self.find(name) else {
            return Ok(None);
        };
        let chain = value(secret, &["tls.crt", "cert"])?;
        let key = value(secret, &["tls.key", "key"])?;
        let (Some(chain), Some(key)) = (chain, key) else {
            return Err(secret_ctx(secret).invalid(
                &FieldPath::root().key("data"),
                "expected a certificate and its key: tls.crt and tls.key (or cert and key)",
            ));
        };
        let ca = match value(secret, &["ca.crt", "cacert"])? {
            Some(ca) => Some(ca),
            None => match self.find(&format!("{name}-cacert")) {
                Some(roots) => value(roots, &["ca.crt", "cacert"])?,
                None => None,
            },
        };
        Ok(Some(Certificates {
            chain: Pem::Inline(chain),
            key: Pem::Inline(key),
            ca: ca.map(Pem::Inline),
            crl: value(secret, &["ca.crl", "crl"])?.map(Pem::Inline),
        }))
    }

    fn find(&self, name: &str) -> Option<&Sourced<Secret>> {
        self.resources.secrets.iter().find(|s| {
            s.resource.metadata.name == name && s.resource.metadata.namespace() == self.namespace
        })
    }
}

fn secret_ctx(s: &Sourced<Secret>) -> Ctx<'_> {
    let meta = &s.resource.metadata;
    Ctx::new(s, "Secret", &meta.name, meta.namespace())
}

/// The first of `keys` the Secret holds, decoded.
fn value(s: &Sourced<Secret>, keys: &[&str]) -> Result<Option<String>, IstioError> {
    for key in keys {
        let field = if s.resource.string_data.contains_key(*key) {
            "stringData"
        } else {
            "data"
        };
        match s.resource.value(key) {
            Ok(Some(text)) => return Ok(Some(text)),
            Ok(None) => {}
            Err(why) => {
                let at = FieldPath::root().key(field).key(key);
                return Err(secret_ctx(s).invalid(&at, why));
            }
        }
    }
    Ok(None)
}
