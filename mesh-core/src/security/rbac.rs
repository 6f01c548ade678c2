//! Authorization as Envoy's RBAC filter expresses it: a filter has an
//! action and named policies; a policy matches a request when one of its
//! permissions (what is asked: headers, path, port) and one of its
//! principals (who asks: peer identity, address, headers) match. An ALLOW
//! filter lets through only what a policy matches (with no policy,
//! nothing); a DENY filter refuses what one matches. A server runs its
//! filters in order, and a request must pass every one.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::route::StringMatch;

/// One RBAC filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Rbac {
    /// What a match does.
    pub action: RbacAction,
    /// The policies, by name (istiod's `NS-NAME-INDEX`), in name order.
    pub policies: Vec<(String, RbacPolicy)>,
}

/// What a filter does with the requests its policies match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RbacAction {
    /// Only matched requests pass.
    Allow,
    /// Matched requests are refused.
    Deny,
}

/// One policy: matched when any permission and any principal match.
#[derive(Clone, Debug, PartialEq)]
pub struct RbacPolicy {
    /// What the request asks for.
    pub permissions: Vec<Permission>,
    /// Who asks.
    pub principals: Vec<Principal>,
}

/// A condition on what a request asks for (Envoy's `Permission`).
#[derive(Clone, Debug, PartialEq)]
pub enum Permission {
    /// Every request.
    Any,
    /// All of these.
    And(Vec<Permission>),
    /// Any of these.
    Or(Vec<Permission>),
    /// Not this.
    Not(Box<Permission>),
    /// A header, pseudo-headers included (`:authority`, `:method`), whose
    /// value matches; an absent header never does.
    Header {
        /// Its name, in lower case.
        name: String,
        /// Its value.
        value: ValueMatch,
    },
    /// The path, without the query.
    UrlPath(ValueMatch),
    /// The port the connection came in on.
    DestinationPort(u16),
}

/// A condition on who sends a request (Envoy's `Principal`).
#[derive(Clone, Debug, PartialEq)]
pub enum Principal {
    /// Anyone, authenticated or not.
    Any,
    /// All of these.
    And(Vec<Principal>),
    /// Any of these.
    Or(Vec<Principal>),
    /// Not this.
    Not(Box<Principal>),
    /// A peer that presented a certificate whose identity (its SPIFFE id,
    /// else its subject) matches; `None` takes any peer with a
    /// certificate.
    Authenticated(Option<ValueMatch>),
    /// The peer's own address (the connection's).
    DirectRemoteIp(Cidr),
    /// The original client's address (after `X-Forwarded-For`, where the
    /// server trusts it; else the peer's).
    RemoteIp(Cidr),
    /// A request header.
    Header {
        /// Its name, in lower case.
        name: String,
        /// Its value.
        value: ValueMatch,
    },
}

/// A string condition (Envoy's `StringMatcher`).
#[derive(Clone, Debug, PartialEq)]
pub struct ValueMatch {
    /// How the value is compared.
    pub kind: StringMatch,
    /// Whether ASCII case is ignored (not for regular expressions).
    pub ignore_case: bool,
}

impl ValueMatch {
    /// Exactly `value`, case counting.
    pub fn exact(value: impl Into<String>) -> Self {
        Self {
            kind: StringMatch::Exact(value.into()),
            ignore_case: false,
        }
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        self.kind.matches(value, self.ignore_case)
    }
}

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a lone address is
/// its own block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    address: IpAddr,
    prefix_len: u8,
}

/// A text that is not an address block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR block")]
pub struct InvalidCidr(pub String);

impl Cidr {
    /// The block of `address`'s first `prefix_len` bits; a length longer
    /// than the address is an error.
    pub fn new(address: IpAddr, prefix_len: u8) -> Result<Self, InvalidCidr> {
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(InvalidCidr(format!("{address}/{prefix_len}")));
        }
        Ok(Self {
            address,
            prefix_len,
        })
    }

    /// The address as written.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The number of leading bits that count.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in the block; an IPv4 address is never in an IPv6
    /// block, nor the reverse.
    pub fn contains(&self, ip: IpAddr) -> bool {
        // The leading `prefix_len` bits; none when the prefix is empty
        // (a shift by the whole width is no shift in Rust).
        let len = u32::from(self.prefix_len);
        match (self.address, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let head = |ip: u32| ip.checked_shr(32 - len).unwrap_or(0);
                head(a.into()) == head(b.into())
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let head = |ip: u128| ip.checked_shr(128 - len).unwrap_or(0);
                head(a.into()) == head(b.into())
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidCidr(s.to_owned());
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let address: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            Some(l) => l.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        Self::new(address, prefix_len).map_err(|_| bad())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_parse_and_contain_their_addresses() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one: Cidr = "192.168.0.7".parse().unwrap();
        assert_eq!(one.prefix_len(), 32);
        assert!(one.contains("192.168.0.7".parse().unwrap()));
        assert!(!one.contains("192.168.0.8".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0.0/", "::/129", "ten", "10.0.0.0/-1"] {
            assert_eq!(bad.parse::<Cidr>(), Err(InvalidCidr(bad.into())), "{bad}");
        }
    }

    #[test]
    fn values_match_with_or_without_case() {
        let host = ValueMatch {
            kind: StringMatch::Suffix(".example.com".into()),
            ignore_case: true,
        };
        assert!(host.matches("API.Example.COM"));
        assert!(!ValueMatch::exact("GET").matches("get"));
    }
}
