//! [`Entry`]: one request as its access log line tells it.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Uri, Version};
use mesh_core::route::ClusterName;

use super::Format;

/// One request, as logged.
#[derive(Clone, Debug)]
pub struct Entry {
    /// When it began.
    pub start_time: SystemTime,
    /// Its method.
    pub method: Method,
    /// Its URI (the path and query are logged).
    pub uri: Uri,
    /// Its authority: the URI's, else its `Host` (Envoy's `:authority`).
    pub authority: Option<HeaderValue>,
    /// Its protocol.
    pub protocol: Version,
    /// The response's code; 0 for none.
    pub response_code: u16,
    /// Envoy's response flags, `-` for none.
    pub response_flags: &'static str,
    /// Request bytes received.
    pub bytes_received: u64,
    /// Response bytes sent.
    pub bytes_sent: u64,
    /// From its start to its response's end.
    pub duration: Duration,
    /// The endpoint that answered, at a client.
    pub upstream_host: Option<SocketAddr>,
    /// The cluster it went to: at a client, the one its route chose
    /// (`outbound|9080|v1|reviews.default.svc.cluster.local`), else the
    /// service's host name; at a server, the host name of the service it
    /// serves. `-` when not known.
    pub upstream_cluster: Option<ClusterName>,
    /// Its `x-request-id`.
    pub request_id: Option<HeaderValue>,
    /// Its `user-agent`.
    pub user_agent: Option<HeaderValue>,
    /// The other end's SPIFFE id, when mutual TLS proved one.
    pub peer: Option<Arc<str>>,
}

impl Entry {
    /// Appends the line to `out`.
    pub(super) fn write(&self, format: Format, out: &mut String) {
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let text = |v: &Option<HeaderValue>| {
            v.as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let upstream = self
            .upstream_host
            .map_or_else(|| "-".to_owned(), |a| a.to_string());
        let start = crate::time::rfc3339_millis(self.start_time);
        let millis = self.duration.as_millis();
        let peer = self.peer.as_deref().unwrap_or("-");
        let cluster = self
            .upstream_cluster
            .as_ref()
            .map_or("-", ClusterName::as_str);
        match format {
            // Envoy's default format (the upstream service time and
            // x-forwarded-for are not kept: `-`), with the cluster and peer
            // after it as Istio's format adds them.
            Format::Text => {
                let authority = text(&self.authority);
                let _ = writeln!(
                    out,
                    "[{start}] \"{} {path} {:?}\" {} {} {} {} {millis} - \"-\" \"{}\" \"{}\" \"{authority}\" \"{}\" {} {peer}",
                    self.method,
                    self.protocol,
                    self.response_code,
                    self.response_flags,
                    self.bytes_received,
                    self.bytes_sent,
                    text(&self.user_agent),
                    text(&self.request_id),
                    upstream,
                    cluster,
                );
            }
            Format::Json => {
                let line = serde_json::json!({
                    "start_time": start,
                    "method": self.method.as_str(),
                    "path": path,
                    "authority": text(&self.authority),
                    "protocol": format!("{:?}", self.protocol),
                    "response_code": self.response_code,
                    "response_flags": self.response_flags,
                    "bytes_received": self.bytes_received,
                    "bytes_sent": self.bytes_sent,
                    "duration": millis as u64,
                    "upstream_host": upstream,
                    "upstream_cluster": cluster,
                    "x_request_id": text(&self.request_id),
                    "user_agent": text(&self.user_agent),
                    "peer_principal": peer,
                });
                let _ = writeln!(out, "{line}");
            }
        }
    }
}
