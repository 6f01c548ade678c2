//! DNS name helpers shared by the lookups, the configuration and the local
//! server.

use hickory_resolver::proto::ProtoError;
use hickory_resolver::proto::rr::Name;

/// `name` parsed leniently (as people write names) and made fully qualified.
pub(crate) fn fqdn(name: &str) -> Result<Name, ProtoError> {
    let mut n = Name::from_str_relaxed(name)?;
    n.set_fqdn(true);
    Ok(n)
}

/// `name` as people write it: without the trailing dot.
pub(crate) fn display(name: &Name) -> String {
    let s = name.to_string();
    s.strip_suffix('.').map(str::to_owned).unwrap_or(s)
}
