//! Transparent interception: connections that iptables redirected to a
//! sidecar's outbound listener (as Istio's init container redirects a
//! pod's outbound TCP to 15001), told apart as Envoy's listener filters
//! tell them. The connection's original destination is read with
//! `SO_ORIGINAL_DST` (Linux); one whose first bytes are HTTP (an HTTP/1
//! request line, or HTTP/2's preface) is served as HTTP and routed by its
//! `Host`; any other is passed through, bytes untouched, to where it was
//! going. A connection made to the listener itself (an application using
//! it as its `HTTP_PROXY`) is HTTP.
//!
//! ```no_run
//! # fn run() -> Result<(), mesh_tower::server::ServerError> {
//! use mesh_core::security::MtlsMode;
//! let outbound = mesh_tower::MeshServer::builder()
//!     .mtls(MtlsMode::Disable)
//!     .connection_filter(mesh_tower::proxy::intercept::filter())
//!     .build()?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::server::ConnectionFilter;

/// How long a redirected connection has to send its first bytes before
/// it is taken for a protocol the server speaks first, and passed
/// through.
pub const DETECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the passthrough's own connection may take (Istio's
/// `connectTimeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The filter a sidecar's outbound listener takes connections with.
pub fn filter() -> ConnectionFilter {
    ConnectionFilter::new(|stream| Box::pin(http_or_passthrough(stream)))
}

/// Where `stream` was going before it was redirected here; `None` when it
/// was not redirected (its destination is this listener) or the system
/// cannot say.
pub fn original_dst(stream: &TcpStream) -> Option<SocketAddr> {
    #[cfg(target_os = "linux")]
    {
        let socket = socket2::SockRef::from(stream);
        let dst = match stream.local_addr().ok()? {
            SocketAddr::V4(_) => socket.original_dst_v4(),
            SocketAddr::V6(_) => socket.original_dst_v6(),
        };
        let dst = dst.ok()?.as_socket()?;
        (Some(dst) != stream.local_addr().ok()).then_some(dst)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        None
    }
}

/// `stream` back if it is HTTP or was not redirected; else `None` once it
/// has been passed through to its original destination and either side
/// has closed.
pub async fn http_or_passthrough(stream: TcpStream) -> Option<TcpStream> {
    let Some(dst) = original_dst(&stream) else {
        return Some(stream);
    };
    let mut first = [0u8; 16];
    let peeked = tokio::time::timeout(DETECTION_TIMEOUT, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(0)) | Ok(Err(_)) => return None,
        Ok(Ok(n)) if looks_like_http(&first[..n]) => return Some(stream),
        Ok(Ok(_)) | Err(_) => {}
    }
    passthrough(stream, dst).await;
    None
}

/// Copies `stream` to and from a new connection to `dst`.
async fn passthrough(mut stream: TcpStream, dst: SocketAddr) {
    let upstream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await;
    let mut upstream = match upstream {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(e)) => return tracing::debug!(%dst, error = %e, "passthrough: cannot connect"),
        Err(_) => return tracing::debug!(%dst, "passthrough: connect timed out"),
    };
    let _ = upstream.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await {
        tracing::debug!(%dst, error = %e, "passthrough ended with an error");
    }
}

/// Whether `bytes`, a connection's first, begin HTTP/2's preface or an
/// HTTP/1 request line (a method token of capitals, then a space).
fn looks_like_http(bytes: &[u8]) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0";
    if PREFACE.starts_with(&bytes[..bytes.len().min(PREFACE.len())]) {
        return true;
    }
    let method = bytes.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method > 0 && (method == bytes.len() || bytes[method] == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_told_from_other_protocols_by_its_first_bytes() {
        for http in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST /x",
            b"PRI * HTTP/2.0\r\n",
            b"PRI",
            b"DELE",
        ] {
            assert!(looks_like_http(http), "{:?}", String::from_utf8_lossy(http));
        }
        for other in [
            &b"\x16\x03\x01\x02\x00"[..],
            b"SSH-2.0-OpenSSH",
            b"hello",
            b"*1\r\n$4\r\nPING",
        ] {
            assert!(
                !looks_like_http(other),
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[tokio::test]
    async fn a_connection_made_to_the_listener_itself_is_http() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert_eq!(original_dst(&accepted), None);
        assert!(http_or_passthrough(accepted).await.is_some());
    }
}
