//! Istio's `headers` into [`HeaderMutation`]s: `set`, `add` and `remove`
//! on requests and responses. As in Istio, a request `host` (or
//! `:authority`) header rewrites the authority instead, and Envoy's
//! pseudo-headers are left alone.

use http::{HeaderName, HeaderValue};

use mesh_core::route::HeaderMutation;

use super::super::api::{HeaderOperations, Headers};
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::Ctx;

/// Request and response header changes; a request `host` (or
/// `:authority`) sets `authority`, as in Istio, `set` winning over `add`.
pub(super) fn headers(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    h: &Headers,
    authority: &mut Option<String>,
) -> Result<(HeaderMutation, HeaderMutation), IstioError> {
    let mut request = HeaderMutation::default();
    if let Some(ops) = &h.request {
        let mut added = None;
        let mut set = None;
        request = operations(ctx, &at.key("request"), ops, Some((&mut set, &mut added)))?;
        if let Some(a) = set.or(added) {
            *authority = Some(a);
        }
    }
    let response = match &h.response {
        Some(ops) => operations(ctx, &at.key("response"), ops, None)?,
        None => HeaderMutation::default(),
    };
    Ok((request, response))
}

type Authorities<'a> = Option<(&'a mut Option<String>, &'a mut Option<String>)>;

fn operations(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    ops: &HeaderOperations,
    mut authority: Authorities<'_>,
) -> Result<HeaderMutation, IstioError> {
    let mut out = HeaderMutation::default();
    for (field, map) in [("set", &ops.set), ("add", &ops.add)] {
        for (key, value) in map {
            let at = at.key(field).key(key);
            if key.eq_ignore_ascii_case("host") || key.eq_ignore_ascii_case(":authority") {
                if let Some((set, add)) = authority.as_mut() {
                    let slot = if field == "set" {
                        &mut **set
                    } else {
                        &mut **add
                    };
                    *slot = Some(value.clone());
                }
                continue;
            }
            if key.starts_with(':') {
                continue; // Envoy's own pseudo-headers cannot be changed
            }
            let pair = (header_name(ctx, &at, key)?, header_value(ctx, &at, value)?);
            if field == "set" {
                out.set.push(pair);
            } else {
                out.add.push(pair);
            }
        }
    }
    for (i, key) in ops.remove.iter().enumerate() {
        if key.starts_with(':') || key.eq_ignore_ascii_case("host") {
            continue;
        }
        out.remove
            .push(header_name(ctx, &at.key("remove").index(i), key)?);
    }
    Ok(out)
}

fn header_name(ctx: &Ctx<'_>, at: &FieldPath, name: &str) -> Result<HeaderName, IstioError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ctx.invalid(at, format!("{name:?} is not a valid header name")))
}

fn header_value(ctx: &Ctx<'_>, at: &FieldPath, value: &str) -> Result<HeaderValue, IstioError> {
    HeaderValue::from_str(value)
        .map_err(|_| ctx.invalid(at, format!("{value:?} is not a valid header value")))
}
