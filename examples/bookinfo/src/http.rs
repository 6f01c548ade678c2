//! What the services share of HTTP: their response body, JSON and text
//! answers, and reading a numeric product id from a path.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

/// The body every service answers with.
pub type Body = Full<Bytes>;

/// `value` as JSON, with `status`.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|e| {
        // A value of the services' own types always serializes.
        format!("{{\"error\":\"{e}\"}}").into_bytes()
    });
    with_type(status, "application/json", body)
}

/// `body` with `status` and `content_type`.
pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    res
}

/// `404 Not Found`.
pub fn not_found() -> Response<Body> {
    with_type(StatusCode::NOT_FOUND, "text/plain", "not found\n")
}

/// Serves `service` on `listener` with plain hyper (HTTP/1.1 and h2c on
/// one port), as a service outside the mesh is served; never returns.
pub async fn serve_plain<S, B>(listener: tokio::net::TcpListener, service: S)
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(error) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

/// The product id of a path `PREFIX<id>` (`/details/0`): `None` when the
/// path is not under `prefix`, else the id if it is a number.
pub fn product_id<'p>(path: &'p str, prefix: &str) -> Option<Result<i64, &'p str>> {
    let id = path.strip_prefix(prefix)?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    Some(id.parse().map_err(|_| id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_id_is_a_number_under_its_prefix() {
        assert_eq!(product_id("/details/7", "/details/"), Some(Ok(7)));
        assert_eq!(product_id("/details/-1", "/details/"), Some(Ok(-1)));
        assert_eq!(product_id("/details/x", "/details/"), Some(Err("x")));
        assert_eq!(product_id("/details/", "/details/"), None);
        assert_eq!(product_id("/details/1/2", "/details/"), None);
        assert_eq!(product_id("/reviews/1", "/details/"), None);
    }
}
