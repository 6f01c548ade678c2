//! The [`Lookup`] over hickory-resolver: A and AAAA records, or SRV records
//! with their targets' addresses, trying the name in the search domains the
//! way resolv.conf's `search` and `ndots` say.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::lookup::Lookup as HickoryAnswer;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::SRV;
use hickory_resolver::proto::rr::{Name, RData, Record};
use hickory_resolver::{Resolver, TokioResolver};
use mesh_core::{Authority, Endpoint};

use crate::lookup::{Answer, Failure, Lookup};
use crate::names;
use crate::{DnsConfig, DnsError};

/// Looks targets up with a hickory [`TokioResolver`].
#[derive(Clone, Debug)]
pub(crate) struct HickoryLookup {
    resolver: TokioResolver,
    srv: bool,
    search: Vec<Name>,
    ndots: usize,
    max_ttl: Duration,
    /// The name servers asked, for messages: `10.96.0.10:53, …`.
    servers: String,
}

/// What a lookup asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Addresses,
    Srv,
}

impl Kind {
    fn records(self) -> &'static str {
        match self {
            Kind::Addresses => "A/AAAA",
            Kind::Srv => "SRV",
        }
    }

    /// Whether `answer` holds records of this kind.
    fn found_in(self, answer: &HickoryAnswer) -> bool {
        answer.answers().iter().any(|r| match self {
            Kind::Addresses => r.data.ip_addr().is_some(),
            Kind::Srv => matches!(r.data, RData::SRV(_)),
        })
    }
}

/// How much a failure says about the name, to report the most telling one
/// of the search candidates: a server that does not serve the name says
/// least, "no such name" more, anything else (no records of the type, a
/// timeout, a server failure) most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Telling {
    Refused,
    NoSuchName,
    Other,
}

impl HickoryLookup {
    pub(crate) fn new(config: &DnsConfig) -> Result<Self, DnsError> {
        let (hickory_config, opts) = config.to_hickory()?;
        let servers = servers_text(&hickory_config);
        let resolver =
            Resolver::builder_with_config(hickory_config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(DnsError::build)?;
        Ok(Self {
            resolver,
            srv: config.srv,
            search: config.search_names()?,
            ndots: config.ndots,
            max_ttl: config.max_ttl,
            servers,
        })
    }

    /// The fully qualified names to try for `host`, in order: with at least
    /// `ndots` dots (or `localhost`) as written first, then in each search
    /// domain; with fewer, as written last.
    fn candidates(&self, host: &str) -> Result<Vec<Name>, Failure> {
        let name = Name::from_str_relaxed(host)
            .map_err(|e| Failure::new(format!("{host:?} is not a valid DNS name: {e}")))?;
        let mut as_written = name.clone();
        as_written.set_fqdn(true);
        let written_first = host.matches('.').count() >= self.ndots || name.is_localhost();

        let mut names = Vec::with_capacity(self.search.len() + 1);
        if written_first {
            names.push(as_written.clone());
        }
        for domain in &self.search {
            // A name too long with a domain is simply not tried there.
            if let Ok(candidate) = name.clone().append_domain(domain)
                && !names.contains(&candidate)
            {
                names.push(candidate);
            }
        }
        if !written_first && !names.contains(&as_written) {
            names.push(as_written);
        }
        Ok(names)
    }

    /// The first candidate name with records of `kind`, or the most telling
    /// failure, listing the names tried.
    ///
    /// The failure is negative (the name is gone) only when every
    /// candidate was answered that it has no such records; a candidate
    /// that got no answer (a timeout, a server failure, a refusal) leaves
    /// the name's fate unknown.
    async fn search(&self, host: &str, kind: Kind) -> Result<HickoryAnswer, Failure> {
        let names = self.candidates(host)?;
        let mut best: Option<(Telling, String)> = None;
        let mut negative = true;
        for name in &names {
            let result = match kind {
                Kind::Addresses => self
                    .resolver
                    .lookup_ip(name.clone())
                    .await
                    .map(HickoryAnswer::from),
                Kind::Srv => self.resolver.srv_lookup(name.clone()).await,
            };
            // A name server that does not answer will not answer the next
            // candidate either: stop rather than wait out every one.
            let timed_out = matches!(result, Err(NetError::Timeout));
            let (telling, failure) = match result {
                Ok(answer) if kind.found_in(&answer) => return Ok(answer),
                Ok(_) => no_records(kind.records()),
                Err(e) => classify(&e, kind.records()),
            };
            negative &= failure.is_negative();
            if best.as_ref().is_none_or(|(t, _)| telling > *t) {
                best = Some((telling, failure.to_string()));
            }
            if timed_out {
                break;
            }
        }
        let mut reason = best.map_or_else(|| "no name to look up".to_owned(), |(_, r)| r);
        if names.len() > 1 {
            let tried: Vec<String> = names.iter().map(names::display).collect();
            reason = format!("{reason}; tried {}", tried.join(", "));
        }
        Err(if negative && !names.is_empty() {
            Failure::negative(reason)
        } else {
            Failure::new(reason)
        })
    }

    /// A and AAAA records of the host, with the authority's port.
    async fn addresses(&self, target: &Authority) -> Result<Answer, Failure> {
        let answer = self.search(target.host(), Kind::Addresses).await?;
        let endpoints = answer
            .answers()
            .iter()
            .filter_map(|r| r.data.ip_addr())
            .map(|ip| Endpoint::new(SocketAddr::new(ip, target.port())))
            .collect();
        Ok(Answer {
            endpoints,
            ttl: min_ttl(answer.answers(), self.max_ttl),
        })
    }

    /// SRV records of the host: each target's addresses with the record's
    /// port and weight. Only the lowest priority with any reachable target
    /// is used (RFC 2782); the authority's port is ignored.
    async fn services(&self, target: &Authority) -> Result<Answer, Failure> {
        let answer = self.search(target.host(), Kind::Srv).await?;
        let mut ttl = min_ttl(answer.answers(), self.max_ttl);
        let mut records: Vec<&SRV> = answer
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(srv),
                _ => None,
            })
            // A target of "." means the service is not offered (RFC 2782).
            .filter(|srv| !srv.target.is_root() && srv.port != 0)
            .collect();
        if records.is_empty() {
            // Records whose target is "." say the service is not offered.
            return Err(Failure::negative("no usable SRV records"));
        }
        records.sort_by_key(|srv| srv.priority);

        let mut problems = Vec::new();
        let mut all_negative = true;
        for group in records.chunk_by(|a, b| a.priority == b.priority) {
            let mut endpoints = Vec::new();
            // A group's targets are looked up together, so one slow target
            // does not delay the others.
            let lookups = group
                .iter()
                .map(|srv| self.target_ips(&srv.target, answer.additionals()));
            let results = futures_util::future::join_all(lookups).await;
            for (srv, result) in group.iter().zip(results) {
                match result {
                    Ok((ips, target_ttl)) => {
                        ttl = ttl.min(target_ttl);
                        endpoints.extend(ips.into_iter().map(|ip| {
                            Endpoint::new(SocketAddr::new(ip, srv.port))
                                .with_weight(u32::from(srv.weight))
                        }));
                    }
                    Err(failure) => {
                        all_negative &= failure.is_negative();
                        problems.push(format!("{}: {failure}", names::display(&srv.target)));
                    }
                }
            }
            if !endpoints.is_empty() {
                return Ok(Answer { endpoints, ttl });
            }
        }
        let reason = format!("no SRV target has an address ({})", problems.join("; "));
        Err(if all_negative {
            Failure::negative(reason)
        } else {
            Failure::new(reason)
        })
    }

    /// The addresses of an SRV target: from the answer's additional section
    /// when the server sent them, else from an A/AAAA lookup.
    async fn target_ips(
        &self,
        target: &Name,
        additionals: &[Record],
    ) -> Result<(Vec<IpAddr>, Duration), Failure> {
        let glue: Vec<&Record> = additionals
            .iter()
            .filter(|r| r.name == *target && r.data.ip_addr().is_some())
            .collect();
        if !glue.is_empty() {
            let ips = glue.iter().filter_map(|r| r.data.ip_addr()).collect();
            return Ok((ips, min_ttl(glue, self.max_ttl)));
        }
        let lookup = self
            .resolver
            .lookup_ip(target.clone())
            .await
            .map_err(|e| classify(&e, "A/AAAA").1)?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(no_records("A/AAAA").1);
        }
        Ok((ips, min_ttl(lookup.as_lookup().answers(), self.max_ttl)))
    }
}

impl Lookup for HickoryLookup {
    async fn lookup(&self, target: &Authority) -> Result<Answer, Failure> {
        let answer = if self.srv && target.host().starts_with('_') {
            self.services(target).await
        } else {
            self.addresses(target).await
        };
        // Say where the answer (or its absence) came from.
        answer.map_err(|f| {
            let reason = format!("{f} (name servers: {})", self.servers);
            f.with_reason(reason)
        })
    }
}

/// The name servers of a hickory configuration as `ip:port` text.
fn servers_text(config: &hickory_resolver::config::ResolverConfig) -> String {
    let mut addrs: Vec<String> = config
        .name_servers()
        .iter()
        .flat_map(|ns| {
            ns.connections
                .iter()
                .map(move |c| SocketAddr::new(ns.ip, c.port).to_string())
        })
        .collect();
    addrs.dedup();
    addrs.join(", ")
}

/// The smallest TTL of `records`; `fallback` when there are none.
fn min_ttl<'a>(records: impl IntoIterator<Item = &'a Record>, fallback: Duration) -> Duration {
    records
        .into_iter()
        .map(|r| Duration::from_secs(u64::from(r.ttl)))
        .min()
        .unwrap_or(fallback)
}

/// NOERROR with no records of the type (NODATA): negative.
fn no_records(records: &str) -> (Telling, Failure) {
    (
        Telling::Other,
        Failure::negative(format!("no {records} records")),
    )
}

/// A lookup error in words (NXDOMAIN, no records of the asked type, a
/// server's error code, a timeout), how telling it is, and whether it is
/// an answer that the name has none (a negative [`Failure`]).
fn classify(error: &NetError, records: &str) -> (Telling, Failure) {
    match error {
        NetError::Dns(HickoryDnsError::NoRecordsFound(none)) => match none.response_code {
            ResponseCode::NXDomain => (
                Telling::NoSuchName,
                Failure::negative("no such name (NXDOMAIN)"),
            ),
            ResponseCode::NoError => no_records(records),
            code => classify(&NetError::Dns(HickoryDnsError::ResponseCode(code)), records),
        },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => {
            let telling = if *code == ResponseCode::Refused {
                Telling::Refused
            } else {
                Telling::Other
            };
            let reason = format!("the name server answered {code} ({})", u16::from(*code));
            (telling, Failure::new(reason))
        }
        NetError::Timeout => (
            Telling::Other,
            Failure::new("no name server answered in time (timeout)"),
        ),
        other => (Telling::Other, Failure::new(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query;
    use hickory_resolver::proto::rr::RecordType;
    use std::net::Ipv4Addr;

    fn no_records(code: ResponseCode) -> NetError {
        let query = Query::query(Name::root(), RecordType::A);
        NetError::Dns(HickoryDnsError::NoRecordsFound(NoRecords::new(query, code)))
    }

    fn reason(error: &NetError) -> String {
        classify(error, "A/AAAA").1.to_string()
    }

    #[test]
    fn describes_causes_in_words() {
        assert_eq!(
            reason(&no_records(ResponseCode::NXDomain)),
            "no such name (NXDOMAIN)"
        );
        assert_eq!(
            classify(&no_records(ResponseCode::NoError), "SRV")
                .1
                .to_string(),
            "no SRV records"
        );
        assert_eq!(
            reason(&NetError::Timeout),
            "no name server answered in time (timeout)"
        );
        assert_eq!(
            reason(&NetError::Dns(HickoryDnsError::ResponseCode(
                ResponseCode::ServFail
            ))),
            "the name server answered Server Failure (2)"
        );
    }

    #[test]
    fn refused_tells_least_and_no_such_name_less_than_the_rest() {
        let refused = NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::Refused));
        let nxdomain = no_records(ResponseCode::NXDomain);
        let telling = |e: &NetError| classify(e, "A").0;
        assert!(telling(&refused) < telling(&nxdomain));
        assert!(telling(&nxdomain) < telling(&NetError::Timeout));
        assert!(telling(&nxdomain) < telling(&no_records(ResponseCode::NoError)));
    }

    #[test]
    fn only_an_answer_that_there_is_nothing_is_negative() {
        let negative = |e: &NetError| classify(e, "A").1.is_negative();
        assert!(negative(&no_records(ResponseCode::NXDomain)));
        assert!(negative(&no_records(ResponseCode::NoError)));
        assert!(!negative(&NetError::Timeout));
        for code in [ResponseCode::ServFail, ResponseCode::Refused] {
            assert!(!negative(&NetError::Dns(HickoryDnsError::ResponseCode(
                code
            ))));
            assert!(!negative(&no_records(code)));
        }
    }

    fn candidates(host: &str) -> Vec<String> {
        let lookup = HickoryLookup::new(&DnsConfig {
            name_servers: vec!["127.0.0.1:53".parse().unwrap()],
            hosts_file: false,
            ..DnsConfig::default()
        })
        .unwrap();
        let names = lookup.candidates(host).unwrap();
        assert!(names.iter().all(Name::is_fqdn));
        names.iter().map(names::display).collect()
    }

    #[test]
    fn search_candidates_follow_ndots() {
        assert_eq!(
            candidates("reviews"),
            [
                "reviews.default.svc.cluster.local",
                "reviews.svc.cluster.local",
                "reviews.cluster.local",
                "reviews"
            ]
        );
        // Four dots are fewer than ndots 5: the search domains come first.
        assert_eq!(
            candidates("reviews.default.svc.cluster.local")[0],
            "reviews.default.svc.cluster.local.default.svc.cluster.local"
        );
        // Five dots: as written first.
        assert_eq!(
            candidates("_http._tcp.reviews.default.svc.cluster.local")[0],
            "_http._tcp.reviews.default.svc.cluster.local"
        );
        assert_eq!(candidates("localhost")[0], "localhost");
    }

    #[test]
    fn ttl_is_the_smallest_record_ttl() {
        let name = Name::from_ascii("a.example.").unwrap();
        let records = [
            Record::from_rdata(
                name.clone(),
                30,
                RData::A(Ipv4Addr::new(10, 0, 0, 1).into()),
            ),
            Record::from_rdata(name, 7, RData::A(Ipv4Addr::new(10, 0, 0, 2).into())),
        ];
        assert_eq!(
            min_ttl(&records, Duration::from_secs(300)),
            Duration::from_secs(7)
        );
        assert_eq!(
            min_ttl(&[], Duration::from_secs(300)),
            Duration::from_secs(300)
        );
    }
}
