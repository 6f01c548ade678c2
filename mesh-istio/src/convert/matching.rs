//! An `HTTPMatchRequest` into a [`RouteMatch`], as Istio translates it for
//! Envoy: `{}` (or regex `*`) on a header or query parameter checks
//! presence, `withoutHeaders` inverts (a missing header counting as empty),
//! and the conditions on who the client is (`gateways`, `sourceLabels`,
//! `sourceNamespace`) are decided now, for the client the configuration is
//! built for, as istiod decides them per proxy.

use http::HeaderName;

use mesh_core::route::{
    HeaderMatch, HeaderMatcher, QueryMatcher, RouteMatch, StringMatch as Matcher,
};

use super::super::Workload;
use super::super::api::{HTTPMatchRequest, StringMatch};
use super::super::error::{IstioError, IstioErrorKind};
use super::super::yaml::FieldPath;
use super::{Ctx, check, gateway};

/// Whether a match block of a VirtualService of `namespace` applies to
/// `workload` at all: its `gateways` name one of `bound` (`mesh` for a
/// sidecar or proxyless client, the workload's Gateways the VirtualService
/// is bound to for a gateway), or it has none and the workload carries its
/// `sourceLabels` and is in its `sourceNamespace`.
pub(super) fn applies(
    m: &HTTPMatchRequest,
    workload: &Workload,
    namespace: &str,
    bound: &[String],
) -> bool {
    if !m.gateways.is_empty() {
        return m
            .gateways
            .iter()
            .any(|g| bound.contains(&gateway::resolve(g, namespace)));
    }
    m.source_labels
        .iter()
        .all(|(k, v)| workload.labels.get(k) == Some(v))
        && (m.source_namespace.is_empty() || m.source_namespace == workload.namespace)
}

/// The match's conditions on the request, and the port it names.
pub(super) fn route_match(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    m: &HTTPMatchRequest,
) -> Result<(Option<u16>, RouteMatch), IstioError> {
    let mut out = RouteMatch::default();
    if let Some(uri) = &m.uri
        && let Some(kind) = string_match(ctx, &at.key("uri"), uri, false)?
    {
        out.path.kind = kind;
    }
    out.path.ignore_case = m.ignore_uri_case;
    if let Some(method) = &m.method {
        out.method = string_match(ctx, &at.key("method"), method, false)?;
    }
    if let Some(authority) = &m.authority {
        out.authority = string_match(ctx, &at.key("authority"), authority, false)?;
    }
    if let Some(scheme) = &m.scheme
        && string_match(ctx, &at.key("scheme"), scheme, false)?.is_some()
    {
        return Err(ctx.invalid(
                &at.key("scheme"),
                "matching on the scheme is not supported by the client; without it the route would match every scheme",
            ));
    }
    for (name, sm) in &m.headers {
        out.headers
            .extend(header(ctx, &at.key("headers").key(name), name, sm, false)?);
    }
    for (name, sm) in &m.without_headers {
        out.headers.extend(header(
            ctx,
            &at.key("withoutHeaders").key(name),
            name,
            sm,
            true,
        )?);
    }
    for (name, sm) in &m.query_params {
        let at = at.key("queryParams").key(name);
        let Some(sm) = sm else {
            return Err(ctx.invalid(&at, NULL_MATCH));
        };
        out.query.push(QueryMatcher {
            name: name.clone(),
            value: string_match(ctx, &at, sm, true)?,
        });
    }
    let port = check::optional_port(ctx, &at.key("port"), m.port)?;
    Ok((port, out))
}

const NULL_MATCH: &str =
    "a match cannot be null; expected exact, prefix or regex, or {} for presence";

/// The matchers of one `headers` (or, inverted, `withoutHeaders`) entry.
fn header(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    name: &str,
    sm: &Option<StringMatch>,
    invert: bool,
) -> Result<Vec<HeaderMatcher>, IstioError> {
    let Some(sm) = sm else {
        return Err(ctx.invalid(at, NULL_MATCH));
    };
    if name.starts_with("@request.auth.claims") {
        return Err(ctx.invalid(
            at,
            "matching on JWT claims is not supported by the client; without it the route would match every request",
        ));
    }
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        ctx.invalid(
            at,
            format!(
                "{name:?} is not a valid header name; expected lower-case letters, digits and '-'"
            ),
        )
    })?;
    let kind = match string_match(ctx, at, sm, true)? {
        Some(m) => HeaderMatch::Value(m),
        None => HeaderMatch::Present(true),
    };
    // Envoy treats a missing header as empty for an inverted value match:
    // when the empty value would match, a missing header must not.
    let present = invert && matches!(&kind, HeaderMatch::Value(m) if m.matches("", false));
    let mut out = vec![HeaderMatcher {
        name: header.clone(),
        kind,
        invert,
    }];
    if present {
        out.push(HeaderMatcher {
            name: header,
            kind: HeaderMatch::Present(true),
            invert: false,
        });
    }
    Ok(out)
}

/// The matcher of `sm`, or `None` for one that matches anything present
/// (`{}`, or regex `*` where `star_is_presence`).
pub(super) fn string_match(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    sm: &StringMatch,
    star_is_presence: bool,
) -> Result<Option<Matcher>, IstioError> {
    let set = [&sm.exact, &sm.prefix, &sm.regex]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if set > 1 {
        return Err(ctx.invalid(at, "expected one of exact, prefix and regex, not several"));
    }
    Ok(match (&sm.exact, &sm.prefix, &sm.regex) {
        (Some(e), _, _) => Some(Matcher::Exact(e.clone())),
        (_, Some(p), _) => Some(Matcher::Prefix(p.clone())),
        (_, _, Some(r)) if star_is_presence && r == "*" => None,
        (_, _, Some(r)) => Some(
            Matcher::regex(r).map_err(|e| ctx.error(&at.key("regex"), IstioErrorKind::Route(e)))?,
        ),
        _ => None,
    })
}
