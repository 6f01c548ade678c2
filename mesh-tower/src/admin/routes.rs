//! `/routes`: the route tables each client routes by, now: the
//! configuration's own table (`default`) and each listener's (an xDS
//! target's), each as the `RouteConfiguration` Envoy would be sent for it
//! (feature `xds`; protobuf JSON), else as the mesh values it holds.

use mesh_core::route::RouteTable;
use serde_json::{Value, json};

use crate::client::ClientReader;

/// Every client's tables.
pub(super) fn routes(clients: &[(String, ClientReader)]) -> Value {
    let clients: Vec<Value> = clients
        .iter()
        .map(|(name, client)| {
            let config = client.config();
            let mut tables = vec![table("default", config.routes())];
            let mut listeners: Vec<&str> = config.listener_names().collect();
            listeners.sort_unstable();
            for listener in listeners {
                if let Some(routes) = config.listener(listener) {
                    tables.push(table(listener, routes));
                }
            }
            json!({ "client": name, "route_configs": tables })
        })
        .collect();
    json!({ "clients": clients })
}

#[cfg(feature = "xds")]
fn table(name: &str, routes: &RouteTable) -> Value {
    use mesh_xds::translate::{Peer, entry, route_configuration_for};
    let written = route_configuration_for(name, routes.virtual_hosts(), Peer::Envoy)
        .map_err(|e| e.to_string())
        .and_then(|rc| {
            let (_, any) = entry(name, &rc);
            mesh_xds::json::resource_json(&any).map_err(|e| e.to_string())
        });
    written.unwrap_or_else(|error| json!({ "name": name, "error": error }))
}

#[cfg(not(feature = "xds"))]
fn table(name: &str, routes: &RouteTable) -> Value {
    let hosts: Vec<String> = routes
        .virtual_hosts()
        .iter()
        .map(|v| format!("{v:?}"))
        .collect();
    json!({ "name": name, "virtual_hosts": hosts })
}
