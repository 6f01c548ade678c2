//! What a gateway proxy serves: the ports it listens on and, on each, the
//! servers sharing it (Istio's Gateway `servers` as one proxy implements
//! them). A server names the route table it routes by, one of the
//! [`MeshConfig`](crate::MeshConfig)'s listeners, and the TLS it
//! terminates, if any.

use crate::policy::ServerTls;

/// The route table of a gateway port's plain-text HTTP servers, named as
/// istiod names it: `http.PORT`.
pub fn http_routes(port: u16) -> String {
    format!("http.{port}")
}

/// A port of a gateway proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayPort {
    /// The port number.
    pub number: u16,
    /// The servers on it: plain-text HTTP ones share one route table;
    /// each that terminates TLS has its own, chosen by the server name
    /// (SNI) a client asks for.
    pub servers: Vec<GatewayServer>,
}

/// One server of a gateway port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayServer {
    /// The listener of the configuration whose route table serves it,
    /// named as istiod names its route configuration: `http.PORT`, or
    /// `https.PORT.PORT_NAME.GATEWAY.NAMESPACE` for TLS.
    pub routes: String,
    /// The server names (SNI) it is chosen by: its hosts, a wildcard such
    /// as `*.example.com` included; empty for any.
    pub server_names: Vec<String>,
    /// The TLS it terminates; `None` for plain text.
    pub tls: Option<ServerTls>,
}
