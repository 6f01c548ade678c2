//! Virtual-host selection by domain, as Envoy does it: an exact domain wins
//! over the longest `*suffix` wildcard, which wins over the longest
//! `prefix*` wildcard, which wins over `*`. Each kind is a hash lookup (one
//! per distinct wildcard length), so the cost does not grow with the number
//! of virtual hosts.
//!
//! A request's authority is tried with its port (`reviews:9080`) and then
//! without (`reviews`) at each step, so domains may be written either way,
//! as Istio writes both.

use std::collections::{BTreeMap, HashMap};

use super::RouteError;

/// Domains → virtual host index.
#[derive(Clone, Debug, Default)]
pub(super) struct DomainIndex {
    exact: HashMap<Box<str>, usize>,
    /// `*suffix` patterns by suffix length, longest first.
    suffixes: Vec<(usize, HashMap<Box<str>, usize>)>,
    /// `prefix*` patterns by prefix length, longest first.
    prefixes: Vec<(usize, HashMap<Box<str>, usize>)>,
    any: Option<usize>,
}

enum Pattern<'a> {
    Exact(&'a str),
    Suffix(&'a str),
    Prefix(&'a str),
    Any,
}

fn parse(domain: &str) -> Result<Pattern<'_>, &'static str> {
    if domain.is_empty() {
        return Err("empty domain");
    }
    if domain == "*" {
        return Ok(Pattern::Any);
    }
    let pattern = if let Some(suffix) = domain.strip_prefix('*') {
        Pattern::Suffix(suffix)
    } else if let Some(prefix) = domain.strip_suffix('*') {
        Pattern::Prefix(prefix)
    } else {
        Pattern::Exact(domain)
    };
    let rest = match pattern {
        Pattern::Exact(s) | Pattern::Suffix(s) | Pattern::Prefix(s) => s,
        Pattern::Any => "",
    };
    if rest.contains('*') {
        return Err("a wildcard may only be the first or last character");
    }
    Ok(pattern)
}

impl DomainIndex {
    /// Indexes the domains of each virtual host (`(name, domains)`); a
    /// domain that is malformed or appears twice is an error.
    pub(super) fn new<'a>(
        hosts: impl Iterator<Item = (&'a str, &'a [String])>,
    ) -> Result<Self, RouteError> {
        let mut exact = HashMap::new();
        let mut suffixes: BTreeMap<usize, HashMap<Box<str>, usize>> = BTreeMap::new();
        let mut prefixes: BTreeMap<usize, HashMap<Box<str>, usize>> = BTreeMap::new();
        let mut any = None;
        let mut owner: HashMap<String, &str> = HashMap::new();
        for (index, (name, domains)) in hosts.enumerate() {
            for domain in domains {
                let domain = domain.to_ascii_lowercase();
                let pattern = parse(&domain).map_err(|reason| RouteError::InvalidDomain {
                    domain: domain.clone(),
                    virtual_host: name.to_owned(),
                    reason,
                })?;
                if let Some(first) = owner.insert(domain.clone(), name) {
                    return Err(RouteError::DuplicateDomain {
                        domain,
                        first: first.to_owned(),
                        second: name.to_owned(),
                    });
                }
                match pattern {
                    Pattern::Exact(d) => {
                        exact.insert(d.into(), index);
                    }
                    Pattern::Suffix(s) => {
                        suffixes.entry(s.len()).or_default().insert(s.into(), index);
                    }
                    Pattern::Prefix(p) => {
                        prefixes.entry(p.len()).or_default().insert(p.into(), index);
                    }
                    Pattern::Any => any = Some(index),
                }
            }
        }
        Ok(Self {
            exact,
            suffixes: suffixes.into_iter().rev().collect(),
            prefixes: prefixes.into_iter().rev().collect(),
            any,
        })
    }

    /// The virtual host for `host` (lower case) and `port`.
    pub(super) fn find(&self, host: &str, port: u16) -> Option<usize> {
        let mut buf = [0u8; 300];
        let full = with_port(&mut buf, host, port);
        let names = [full, Some(host)];
        let names = names.iter().flatten();
        names
            .clone()
            .find_map(|n| self.exact.get(*n).copied())
            .or_else(|| names.clone().find_map(|n| self.suffix(n)))
            .or_else(|| names.clone().find_map(|n| self.prefix(n)))
            .or(self.any)
    }

    fn suffix(&self, name: &str) -> Option<usize> {
        self.suffixes
            .iter()
            .filter(|(len, _)| *len < name.len())
            .find_map(|(len, map)| map.get(name.get(name.len() - len..)?).copied())
    }

    fn prefix(&self, name: &str) -> Option<usize> {
        self.prefixes
            .iter()
            .filter(|(len, _)| *len < name.len())
            .find_map(|(len, map)| map.get(name.get(..*len)?).copied())
    }
}

/// `host:port` written into `buf`, without allocating; `None` when it does
/// not fit (no DNS name is that long).
fn with_port<'b>(buf: &'b mut [u8; 300], host: &str, port: u16) -> Option<&'b str> {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{host}:{port}").ok()?;
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(hosts: &[(&str, &[&str])]) -> Result<DomainIndex, RouteError> {
        let owned: Vec<(String, Vec<String>)> = hosts
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect();
        DomainIndex::new(owned.iter().map(|(n, d)| (n.as_str(), d.as_slice())))
    }

    #[test]
    fn most_specific_wins() {
        let i = index(&[
            ("any", &["*"]),
            ("suffix", &["*.example.com"]),
            ("longer-suffix", &["*.api.example.com"]),
            ("prefix", &["api.*"]),
            ("exact", &["api.example.com", "reviews:9080"]),
        ])
        .unwrap();
        assert_eq!(i.find("api.example.com", 80), Some(4));
        assert_eq!(i.find("v1.api.example.com", 80), Some(2));
        assert_eq!(i.find("www.example.com", 80), Some(1));
        assert_eq!(i.find("api.other", 80), Some(3));
        assert_eq!(i.find("reviews", 9080), Some(4));
        assert_eq!(i.find("reviews", 9081), Some(0));
        // A wildcard matches at least one character.
        assert_eq!(i.find(".example.com", 80), Some(0));
    }

    #[test]
    fn port_is_optional_in_domains() {
        let i = index(&[("a", &["ratings"]), ("b", &["ratings:9090"])]).unwrap();
        assert_eq!(i.find("ratings", 9080), Some(0));
        assert_eq!(i.find("ratings", 9090), Some(1));
        assert_eq!(index(&[("a", &["x"])]).unwrap().find("y", 1), None);
    }

    #[test]
    fn bad_domains_are_named() {
        let err = index(&[("a", &["x"]), ("b", &["X"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "domain \"x\" is in both virtual hosts \"a\" and \"b\""
        );
        let err = index(&[("a", &["a.*.com"])]).unwrap_err();
        assert!(err.to_string().contains("\"a.*.com\""), "{err}");
        assert!(index(&[("a", &[""])]).is_err());
    }
}
