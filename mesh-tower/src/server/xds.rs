//! A [`MeshServer`](super::MeshServer) driven by xDS (feature `xds`), as
//! gRFC A36 has a proxyless gRPC server follow its control plane:
//!
//! - Serving on an address, it subscribes to the listener the bootstrap
//!   names for it ([`Bootstrap::server_listener_name`](mesh_xds::Bootstrap::server_listener_name):
//!   Istio's `xds.istio.io/grpc/lds/inbound/HOST:PORT` unless the
//!   bootstrap's template says otherwise) and is *not serving* until it
//!   has arrived: connections are closed as they are accepted.
//! - Each accepted copy of that listener sets the server's
//!   [`InboundPolicy`](mesh_core::security::InboundPolicy): its filter
//!   chains the mutual TLS mode, its RBAC filter the authorization. The
//!   next connection takes the mode, the next request the authorization;
//!   a rejected copy leaves the last good one in force.
//! - A listener the control plane says does not exist, one for another
//!   address, one that is not a server listener, or one whose mutual TLS
//!   this server cannot present (no identity, or a certificate provider
//!   instance other than its own, `default`) puts the server back to not
//!   serving, with the reason ([`ServingMode`]): the open connections are
//!   drained, as at shutdown, and new ones closed.
//! - A gateway's listener (its chains routed by RDS, as `mesh-control`
//!   and istiod write an Envoy gateway's port) makes the server terminate
//!   its servers' TLS ([`TlsTermination`]), each connection routed by the
//!   table of the server its SNI chooses, with the certificates the
//!   listener carries or names by SDS; plain text when its servers are.
//!   The server waits, not serving, for the secrets it names; a copy whose
//!   TLS cannot be set up (a certificate that does not parse, a secret
//!   gone) is logged and the last good one keeps serving.

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::gateway::GatewayServer;
use mesh_core::security::{InboundPolicy, MtlsMode};
use mesh_xds::ads::{AdsHandle, AdsView, ResourceType};
use mesh_xds::resource::{XdsGateway, XdsListener};

use crate::tls::TlsTermination;

use super::{ServingMode, Shared};

/// The certificate provider instance the server's own identity stands
/// for: the one Istio's agent writes into the bootstrap.
const OWN_INSTANCE: &str = "default";

/// Follows the listener for `addr` into `shared` for as long as it is
/// polled; unsubscribes when dropped.
pub(super) async fn follow(shared: &Shared, ads: &AdsHandle, addr: SocketAddr) {
    let name = ads.bootstrap().server_listener_name(addr);
    ads.subscribe_listener(name.clone());
    let _unsubscribe = Unsubscribe { ads, name: &name };
    let mut updates = ads.updates();
    let mut terminating = Terminating::default();
    loop {
        let view = updates.borrow_and_update().clone();
        let mode = match listener(&view, &name, addr) {
            Ok(XdsListener {
                gateway: Some(gateway),
                ..
            }) => terminating.follow(shared, gateway, &view, &name),
            Ok(listener) => match policy(listener, &name, shared.tls.is_some()) {
                Ok(policy) => {
                    set_policy(shared, policy);
                    terminating.stop(shared);
                    ServingMode::Serving
                }
                Err(reason) => ServingMode::NotServing(reason.into()),
            },
            Err(reason) => ServingMode::NotServing(reason.into()),
        };
        shared.set_mode(mode);
        if updates.changed().await.is_err() {
            shared.set_mode(ServingMode::NotServing("the ADS client stopped".into()));
            std::future::pending::<()>().await;
        }
    }
}

/// Sets `policy`, unless it is the one in force: most updates are of
/// other resources.
fn set_policy(shared: &Shared, policy: &InboundPolicy) {
    if *shared.policy.get() != *policy {
        shared.policy.set(policy.clone());
    }
}

/// The listener `name` in `view`, for a server on `addr`; why there is
/// none the server can serve by.
fn listener<'v>(
    view: &'v AdsView,
    name: &str,
    addr: SocketAddr,
) -> Result<&'v XdsListener, String> {
    let Some(listener) = view.listeners.get(name) else {
        if let Some(e) = view.rejected(ResourceType::Listener, name) {
            return Err(format!(
                "the control plane's listener {name:?} was rejected: {e}"
            ));
        }
        if view.does_not_exist(ResourceType::Listener, name) {
            return Err(format!("the control plane has no listener {name:?}"));
        }
        return Err(format!(
            "waiting for listener {name:?} from the control plane"
        ));
    };
    let address = match (&listener.server, &listener.gateway) {
        (Some(server), _) => server.address,
        (None, Some(gateway)) => gateway.address,
        (None, None) => return Err(format!("listener {name:?} is not a server listener")),
    };
    if address != addr {
        return Err(format!(
            "listener {name:?} is for {address}, and this server listens on {addr}"
        ));
    }
    Ok(listener)
}

/// What the server listener `listener` (named `name`) asks of a server
/// with an identity to present, or not; why the server cannot serve by
/// it.
fn policy<'l>(
    listener: &'l XdsListener,
    name: &str,
    has_identity: bool,
) -> Result<&'l InboundPolicy, String> {
    let Some(server) = &listener.server else {
        return Err(format!("listener {name:?} is not a server listener"));
    };
    if let Some(tls) = &server.tls {
        if !has_identity {
            return Err(format!(
                "listener {name:?} asks for mutual TLS, and this server has no identity to \
                 present (MeshServerBuilder::identity, or the bootstrap's certificate \
                 provider `default`)"
            ));
        }
        for instance in [&tls.certificate, &tls.roots] {
            if instance != OWN_INSTANCE {
                return Err(format!(
                    "listener {name:?} names certificate provider instance {instance:?}; this \
                     server presents its own identity, instance {OWN_INSTANCE:?}"
                ));
            }
        }
    }
    Ok(&server.policy)
}

/// The TLS a gateway's listener has the server terminate, as its copies
/// come.
#[derive(Debug, Default)]
struct Terminating {
    /// The servers last tried, with their certificates, and the mode
    /// that left the server in.
    tried: Option<(Vec<GatewayServer>, ServingMode)>,
    /// Whether a copy was set up: then one that cannot be leaves it
    /// serving.
    good: bool,
    /// Why the last copy could not be, once logged: said again only when
    /// it changes, not on every update of other resources.
    refusal: Option<String>,
}

impl Terminating {
    /// Terminates the TLS of `gateway`'s servers, with the secrets of
    /// `view`, from the next connection on.
    fn follow(
        &mut self,
        shared: &Shared,
        gateway: &XdsGateway,
        view: &AdsView,
        name: &str,
    ) -> ServingMode {
        let refused = |this: &mut Self, reason: String| {
            if !this.good {
                return ServingMode::NotServing(format!("listener {name:?}: {reason}").into());
            }
            if this.refusal.as_ref() != Some(&reason) {
                tracing::error!(
                    listener = name,
                    %reason,
                    "the gateway's TLS cannot be set up; the last good one is still served"
                );
                this.refusal = Some(reason);
            }
            ServingMode::Serving
        };
        let servers = match gateway.servers(|secret| view.secrets.get(secret).map(|s| &**s)) {
            Ok(servers) => servers,
            Err(reason) => return refused(self, reason),
        };
        if let Some((tried, mode)) = &self.tried
            && *tried == servers
        {
            return mode.clone();
        }
        let termination = if servers.iter().any(|s| s.tls.is_some()) {
            match TlsTermination::new(&servers) {
                Ok(termination) => Some(Arc::new(termination)),
                Err(e) => {
                    let mode = refused(self, e.to_string());
                    self.tried = Some((servers, mode.clone()));
                    return mode;
                }
            }
        } else {
            None
        };
        shared.termination.store(termination);
        set_policy(
            shared,
            &InboundPolicy {
                mtls: MtlsMode::Disable,
                rbac: Vec::new(),
            },
        );
        self.tried = Some((servers, ServingMode::Serving));
        self.good = true;
        self.refusal = None;
        ServingMode::Serving
    }

    /// The listener is no gateway's (any more): the TLS it set up goes.
    fn stop(&mut self, shared: &Shared) {
        if self.tried.take().is_some() {
            shared.termination.store(None);
        }
        self.good = false;
        self.refusal = None;
    }
}

/// Unsubscribes from the listener when the server stops following it.
struct Unsubscribe<'a> {
    ads: &'a AdsHandle,
    name: &'a str,
}

impl Drop for Unsubscribe<'_> {
    fn drop(&mut self) {
        self.ads.unsubscribe_listener(self.name);
    }
}

/// The initial mode of a server that follows xDS.
pub(super) fn waiting() -> ServingMode {
    ServingMode::NotServing(Arc::from(
        "waiting for this server's listener from the control plane",
    ))
}
