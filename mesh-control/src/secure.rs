//! ADS over mutual TLS, as istiod serves it on 15012: the control plane
//! presents a certificate from its own CA and takes only clients whose
//! certificates that CA signed, whose SPIFFE ids then decide what each is
//! served (see [`ControlPlane`](crate::ControlPlane)).
//!
//! - The certificate ([`ControlPlaneIdentity`]) is istiod's identity in
//!   the cluster's trust domain, `spiffe://DOMAIN/ns/istio-system/sa/istiod`,
//!   with the DNS names and addresses clients dial it by (`istiod.istio-system.svc`,
//!   `localhost`, `127.0.0.1`, and the address it listens on), for
//!   clients that check the host, as gRPC's TLS credentials and Envoy's
//!   `sni`-less clusters do. It lives [`TTL`] and is issued again every
//!   half of that; handshakes after a reissue get the new one.
//! - [`serve`] serves the ADS service with [`MeshServer`] in `STRICT`
//!   mode: a client without a certificate, or with one from another root,
//!   is refused at the handshake; a client's identity reaches the
//!   [`AdsServer`] as the request's
//!   [`ClientIdentity`](mesh_core::security::ClientIdentity).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use mesh_tower::server::{MeshServer, ServerError};
use mesh_tower::tls::{
    CertificateSource, IdentityCause, IdentityError, IdentitySource, Part, WorkloadIdentity,
};
use mesh_xds::server::AdsServer;
use tokio::net::TcpListener;

use crate::ca::Ca;

/// How long the control plane's certificate lives; it is issued again
/// every half of it.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// How often HTTP/2 connections are pinged, and how long an answer may
/// take, before a client that vanished without closing is let go.
const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(10));

/// The control plane's own identity, issued by its CA on every load.
pub struct ControlPlaneIdentity {
    ca: Ca,
    id: String,
    hosts: Vec<String>,
}

impl ControlPlaneIdentity {
    /// istiod's identity in `trust_domain`, for a server listening on
    /// `addr`.
    pub fn new(ca: Ca, trust_domain: &str, addr: SocketAddr) -> Self {
        let mut hosts: Vec<String> = ["istiod.istio-system.svc", "localhost", "127.0.0.1"]
            .map(String::from)
            .into();
        let ip = addr.ip();
        if !ip.is_unspecified() && ip != IpAddr::from([127, 0, 0, 1]) {
            hosts.push(ip.to_string());
        }
        Self {
            ca,
            id: format!("spiffe://{trust_domain}/ns/istio-system/sa/istiod"),
            hosts,
        }
    }

    /// A source of it that issues it now and again every half of its
    /// life; within a Tokio runtime.
    pub fn into_source(self) -> Result<IdentitySource, IdentityError> {
        Ok(IdentitySource::from_source(self)?.watch(TTL / 2))
    }
}

impl CertificateSource for ControlPlaneIdentity {
    fn load(&self, now: SystemTime) -> Result<WorkloadIdentity, IdentityError> {
        let cert = self
            .ca
            .issue_for_hosts(&self.id, &self.hosts, TTL)
            .map_err(|e| IdentityError {
                part: Part::CertificateChain,
                from: None,
                cause: IdentityCause::Unavailable(e.to_string()),
            })?;
        WorkloadIdentity::from_pem(
            cert.chain_pem().as_bytes(),
            cert.key_pem().as_bytes(),
            cert.root_pem().as_bytes(),
            now,
        )
    }
}

/// Serves `server`'s ADS on `listener` over mutual TLS with `identity`
/// until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    identity: IdentitySource,
    server: AdsServer,
) -> Result<(), ServerError> {
    MeshServer::builder()
        .identity(identity)
        .http2_keepalive(KEEPALIVE.0, KEEPALIVE.1)
        .serve(listener, server.into_service())
        .await
}
