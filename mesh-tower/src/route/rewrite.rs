//! Path and host rewrites of a forwarded request, and redirect responses.

use http::uri::{Authority as UriAuthority, PathAndQuery};
use http::{HeaderValue, StatusCode, Uri};
use mesh_core::Authority;
use mesh_core::route::{Forward, PathRewrite, Redirect, Route, StringMatch};

use crate::body::local_response;
use crate::{BoxError, ResponseBody};

/// Applies `forward`'s path and host rewrites to `req`.
pub(super) fn apply<B>(
    req: &mut http::Request<B>,
    route: &Route,
    forward: &Forward,
) -> Result<(), BoxError> {
    if forward.rewrite.is_none() && forward.host_rewrite.is_none() {
        return Ok(());
    }
    let mut parts = req.uri().clone().into_parts();
    if let Some(rewrite) = &forward.rewrite {
        let path = req.uri().path();
        let prefix = match (&route.matches.path.kind, rewrite) {
            (StringMatch::Prefix(p), PathRewrite::Prefix(_)) => Some(p.as_str()),
            _ => None,
        };
        let mut new = rewrite.apply(path, prefix);
        if let Some(q) = req.uri().query() {
            new.push('?');
            new.push_str(q);
        }
        parts.path_and_query = Some(PathAndQuery::try_from(new)?);
    }
    if let Some(host) = &forward.host_rewrite {
        parts.authority = Some(UriAuthority::try_from(host.as_str())?);
        req.headers_mut()
            .insert(http::header::HOST, HeaderValue::try_from(host.as_str())?);
    }
    *req.uri_mut() = Uri::from_parts(parts)?;
    Ok(())
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The redirect response for a request to `target` with `uri`.
pub(super) fn redirect(
    r: &Redirect,
    target: &Authority,
    uri: &Uri,
) -> http::Response<ResponseBody> {
    let scheme = r.scheme.as_deref().or(uri.scheme_str()).unwrap_or("http");
    let host = r.host.as_deref().unwrap_or(target.host());
    // The port as the request wrote it is kept with its host, but not when
    // it is the old scheme's default and the scheme changes (as Envoy).
    let written = uri.port_u16().filter(|p| {
        let old = uri.scheme_str().unwrap_or("http");
        old == scheme || default_port(old) != Some(*p)
    });
    let port = r
        .port
        .or(r.host.is_none().then_some(written).flatten())
        .filter(|p| default_port(scheme) != Some(*p));
    let path = r.path.as_deref().unwrap_or(uri.path());
    let mut location = format!("{scheme}://{host}");
    if let Some(p) = port {
        location.push_str(&format!(":{p}"));
    }
    location.push_str(path);
    if let Some(q) = uri.query() {
        location.push('?');
        location.push_str(q);
    }
    let mut res = local_response(r.status, "");
    match HeaderValue::try_from(location) {
        Ok(v) => {
            res.headers_mut().insert(http::header::LOCATION, v);
        }
        Err(_) => *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    res
}
