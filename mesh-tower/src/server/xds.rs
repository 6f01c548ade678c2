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

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::security::InboundPolicy;
use mesh_xds::ads::{AdsHandle, AdsView, ResourceType};

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
    loop {
        let view = updates.borrow_and_update().clone();
        let mode = match policy(&view, &name, addr, shared.tls.is_some()) {
            Ok(policy) => {
                // Most updates are of other resources: the policy stays.
                if *shared.policy.get() != *policy {
                    shared.policy.set(policy.clone());
                }
                ServingMode::Serving
            }
            Err(reason) => ServingMode::NotServing(reason.into()),
        };
        shared.set_mode(mode);
        if updates.changed().await.is_err() {
            shared.set_mode(ServingMode::NotServing("the ADS client stopped".into()));
            std::future::pending::<()>().await;
        }
    }
}

/// What the listener `name` in `view` asks of a server on `addr` (with
/// an identity to present, or not); why the server cannot serve by it.
fn policy<'v>(
    view: &'v AdsView,
    name: &str,
    addr: SocketAddr,
    has_identity: bool,
) -> Result<&'v InboundPolicy, String> {
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
    let Some(server) = &listener.server else {
        return Err(format!("listener {name:?} is not a server listener"));
    };
    if server.address != addr {
        return Err(format!(
            "listener {name:?} is for {}, and this server listens on {addr}",
            server.address
        ));
    }
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
