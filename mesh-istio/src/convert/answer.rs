//! The actions that answer without forwarding: Istio's `redirect` and
//! `directResponse`.

use bytes::Bytes;
use http::StatusCode;

use mesh_core::route::{DirectResponse, Redirect};

use super::super::api::{HTTPDirectResponse, HTTPRedirect, RedirectPortSelection};
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::{Ctx, check};

/// Istio's redirect: the status defaults to 301; the port is the one given,
/// the request's (`FROM_REQUEST_PORT`, only while the authority is kept) or
/// the scheme's default (`FROM_PROTOCOL_DEFAULT`).
pub(super) fn redirect(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    r: &HTTPRedirect,
) -> Result<Redirect, IstioError> {
    let status = match r.redirect_code {
        0 | 301 => StatusCode::MOVED_PERMANENTLY,
        302 => StatusCode::FOUND,
        303 => StatusCode::SEE_OTHER,
        307 => StatusCode::TEMPORARY_REDIRECT,
        308 => StatusCode::PERMANENT_REDIRECT,
        n => {
            return Err(ctx.invalid(
                &at.key("redirectCode"),
                format!("{n} is not a redirect status; expected 301, 302, 303, 307 or 308"),
            ));
        }
    };
    let scheme = (!r.scheme.is_empty()).then(|| r.scheme.clone());
    let host = (!r.authority.is_empty()).then(|| r.authority.clone());
    let port = match (r.port, r.derive_port) {
        (Some(_), Some(_)) => {
            return Err(ctx.invalid(at, "expected port or derivePort, not both"));
        }
        (Some(n), None) => Some(check::port(ctx, &at.key("port"), n)?),
        (None, None) | (None, Some(RedirectPortSelection::FromRequestPort)) if host.is_none() => {
            None
        }
        (None, Some(RedirectPortSelection::FromRequestPort)) => {
            return Err(ctx.invalid(
                &at.key("derivePort"),
                "keeping the request's port while changing the authority is not supported by the client; give the port",
            ));
        }
        (None, None) => None,
        (None, Some(RedirectPortSelection::FromProtocolDefault)) => match scheme.as_deref() {
            Some("https") => Some(443),
            Some(_) => Some(80),
            None if host.is_some() => None,
            None => {
                return Err(ctx.invalid(
                    &at.key("derivePort"),
                    "the protocol's default port needs the scheme or the authority to be given",
                ));
            }
        },
    };
    Ok(Redirect {
        scheme,
        host,
        port,
        path: (!r.uri.is_empty()).then(|| r.uri.clone()),
        status,
    })
}

/// Istio's direct response: a status from 200 to 599 and a body given as
/// text or as base64 bytes.
pub(super) fn direct_response(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    d: &HTTPDirectResponse,
) -> Result<DirectResponse, IstioError> {
    let status = check::status(ctx, &at.key("status"), d.status)?;
    let body =
        match &d.body {
            None => None,
            Some(b) => match (&b.string, &b.bytes) {
                (Some(_), Some(_)) => {
                    return Err(ctx.invalid(&at.key("body"), "expected string or bytes, not both"));
                }
                (Some(s), None) => Some(Bytes::from(s.clone())),
                (None, Some(encoded)) => Some(Bytes::from(base64(encoded).ok_or_else(|| {
                    ctx.invalid(&at.key("body").key("bytes"), "expected base64")
                })?)),
                (None, None) => None,
            },
        };
    Ok(DirectResponse { status, body })
}

/// Decodes standard base64, padded or not, ignoring line breaks.
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = clean
        .strip_suffix(b"==")
        .or_else(|| clean.strip_suffix(b"="))
        .unwrap_or(&clean);
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut acc: u32 = 0;
        for (i, c) in chunk.iter().enumerate() {
            acc |= u32::from(value(*c)?) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64("").as_deref(), Some(&b""[..]));
        assert_eq!(base64("a"), None);
        assert_eq!(base64("a$=="), None);
    }
}
