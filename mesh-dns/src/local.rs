//! [`LocalDns`]: a small authoritative DNS server for one zone, on loopback,
//! whose records can be changed while it runs — a stand-in for kube-dns on a
//! laptop, in examples and in tests. Feature `local-server`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, MessageType, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponseBuilder, ZoneHandler, ZoneType,
};
use tokio::net::{TcpListener, UdpSocket};

use crate::DnsError;

/// A running DNS server authoritative for one zone, on UDP and TCP of one
/// `127.0.0.1` port, answering NXDOMAIN for names outside it. Dropping it
/// stops it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mesh_dns::DnsError> {
/// use mesh_dns::LocalDns;
/// let dns = LocalDns::start("default.svc.cluster.local").await?;
/// dns.set_addresses("reviews", 5, &["127.0.0.1".parse().unwrap()]).await?;
/// dns.set_srv("_http._tcp.reviews", 5, &[(0, 1, 9080, "reviews")]).await?;
/// # Ok(()) }
/// ```
pub struct LocalDns {
    addr: SocketAddr,
    origin: Name,
    zone: Arc<InMemoryZoneHandler>,
    outage: Arc<AtomicU8>,
    server: Option<Server<Answering>>,
}

/// How a server in trouble answers every query, whatever its records:
/// what clients must ride out without taking it for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// SERVFAIL: the server could not answer.
    ServerFailure,
    /// REFUSED: the server will not answer.
    Refused,
}

impl Outage {
    const NONE: u8 = 0;

    fn to_u8(outage: Option<Outage>) -> u8 {
        match outage {
            None => Self::NONE,
            Some(Outage::ServerFailure) => 1,
            Some(Outage::Refused) => 2,
        }
    }

    fn from_u8(n: u8) -> Option<Outage> {
        match n {
            1 => Some(Outage::ServerFailure),
            2 => Some(Outage::Refused),
            _ => None,
        }
    }

    fn code(self) -> ResponseCode {
        match self {
            Outage::ServerFailure => ResponseCode::ServFail,
            Outage::Refused => ResponseCode::Refused,
        }
    }
}

impl std::fmt::Debug for LocalDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDns")
            .field("addr", &self.addr)
            .field("zone", &self.origin.to_string())
            .finish()
    }
}

impl LocalDns {
    /// Starts a server for `zone` with no records but its SOA (negative
    /// answers cached for 1 s), on a free `127.0.0.1` port.
    pub async fn start(zone: &str) -> Result<Self, DnsError> {
        let origin = fqdn(zone)?;
        let mut handler =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(fqdn("ns.local")?, fqdn("admin.local")?, 1, 60, 60, 600, 1);
        handler.upsert_mut(Record::from_rdata(origin.clone(), 1, RData::SOA(soa)), 1);
        let zone = Arc::new(handler);

        let mut catalog = Catalog::new();
        let handler: Arc<dyn ZoneHandler> = zone.clone();
        catalog.upsert(LowerName::new(&origin), vec![handler]);
        let outage = Arc::new(AtomicU8::new(Outage::NONE));

        let (udp, tcp) = bind_pair().await?;
        let addr = udp.local_addr().map_err(DnsError::local_server)?;
        let mut server = Server::new(Answering {
            catalog,
            origin: LowerName::new(&origin),
            outage: outage.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(Self {
            addr,
            origin,
            zone,
            outage,
            server: Some(server),
        })
    }

    /// Answers every query with `outage` from now on, or from the records
    /// again with `None`.
    pub fn set_outage(&self, outage: Option<Outage>) {
        self.outage.store(Outage::to_u8(outage), Ordering::Relaxed);
    }

    /// Where the server listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the A and AAAA records of `label` (relative to the zone).
    /// A query sees the old records or the new ones, never neither.
    pub async fn set_addresses(
        &self,
        label: &str,
        ttl: u32,
        ips: &[IpAddr],
    ) -> Result<(), DnsError> {
        let name = self.name(label)?;
        let (v4, v6): (Vec<RData>, Vec<RData>) = ips
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            })
            .partition(|d| matches!(d, RData::A(_)));
        let mut records = self.zone.records_mut().await;
        replace(&mut records, &name, RecordType::A, ttl, v4);
        replace(&mut records, &name, RecordType::AAAA, ttl, v6);
        Ok(())
    }

    /// Replaces the SRV records of `label`: `(priority, weight, port, target
    /// label)`, targets relative to the zone.
    pub async fn set_srv(
        &self,
        label: &str,
        ttl: u32,
        records: &[(u16, u16, u16, &str)],
    ) -> Result<(), DnsError> {
        let name = self.name(label)?;
        let data = records
            .iter()
            .map(|(priority, weight, port, target)| {
                Ok(RData::SRV(SRV::new(
                    *priority,
                    *weight,
                    *port,
                    self.name(target)?,
                )))
            })
            .collect::<Result<Vec<_>, DnsError>>()?;
        replace(
            &mut *self.zone.records_mut().await,
            &name,
            RecordType::SRV,
            ttl,
            data,
        );
        Ok(())
    }

    /// Stops serving: both sockets are closed.
    pub async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // Dropping the server aborts whatever the graceful stop left.
            let _ =
                tokio::time::timeout(Duration::from_secs(2), server.shutdown_gracefully()).await;
        }
    }

    fn name(&self, label: &str) -> Result<Name, DnsError> {
        Name::from_str_relaxed(label)
            .and_then(|n| n.append_domain(&self.origin))
            .map_err(|e| DnsError::invalid_name(label, e))
    }
}

/// The zone's catalog, unless an outage answers instead. A name outside
/// the zone is answered NXDOMAIN, as kube-dns answers for names that are
/// nowhere (it forwards them upstream; the loopback server has no
/// upstream): a client's search-domain candidates get an answer.
struct Answering {
    catalog: Catalog,
    origin: LowerName,
    outage: Arc<AtomicU8>,
}

#[async_trait::async_trait]
impl RequestHandler for Answering {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let in_zone = request
            .request_info()
            .is_ok_and(|info| self.origin.zone_of(info.query.name()));
        let code = match Outage::from_u8(self.outage.load(Ordering::Relaxed)) {
            Some(outage) => outage.code(),
            None if in_zone => {
                return self
                    .catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await;
            }
            None => ResponseCode::NXDomain,
        };
        let response =
            MessageResponseBuilder::new(&request.queries, None).error_msg(&request.metadata, code);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut metadata = Metadata::new(
                    request.metadata.id,
                    MessageType::Response,
                    request.metadata.op_code,
                );
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}

/// Sets the records of one name and type to `data`, in one step.
fn replace(
    records: &mut BTreeMap<RrKey, Arc<RecordSet>>,
    name: &Name,
    rtype: RecordType,
    ttl: u32,
    data: Vec<RData>,
) {
    let key = RrKey::new(LowerName::new(name), rtype);
    if data.is_empty() {
        records.remove(&key);
        return;
    }
    let mut set = RecordSet::new(name.clone(), rtype, 1);
    for d in data {
        set.insert(Record::from_rdata(name.clone(), ttl, d), 1);
    }
    records.insert(key, Arc::new(set));
}

fn fqdn(name: &str) -> Result<Name, DnsError> {
    crate::names::fqdn(name).map_err(|e| DnsError::invalid_name(name, e))
}

/// A UDP socket and a TCP listener on the same free 127.0.0.1 port.
async fn bind_pair() -> Result<(UdpSocket, TcpListener), DnsError> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(DnsError::local_server)?;
        match TcpListener::bind(udp.local_addr().map_err(DnsError::local_server)?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(DnsError::local_server(
        last.unwrap_or_else(|| std::io::Error::other("no free port")),
    ))
}
