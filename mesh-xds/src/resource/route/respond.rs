//! Routes that answer by themselves: Envoy's `RedirectAction` into a
//! [`Redirect`] and `DirectResponseAction` into a [`DirectResponse`].

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::route::v3 as rds;
use http::StatusCode;
use mesh_core::route::{DirectResponse, Redirect};
use rds::redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier};

use crate::resource::error::{At, FieldError};

/// Envoy's default `max_direct_response_body_size_bytes`.
const DIRECT_BODY_LIMIT: u32 = 4096;

pub(super) fn redirect(r: &rds::RedirectAction, at: &At<'_>) -> Result<Redirect, FieldError> {
    let scheme = match &r.scheme_rewrite_specifier {
        Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => Some("https".to_owned()),
        Some(SchemeRewriteSpecifier::SchemeRedirect(s)) if !s.is_empty() => {
            Some(s.to_ascii_lowercase())
        }
        _ => None,
    };
    let port = match r.port_redirect {
        0 => None,
        p => Some(u16::try_from(p).map_err(|_| {
            at.field("port_redirect")
                .error(format_args!("{p} is not a port"))
        })?),
    };
    let path = match &r.path_rewrite_specifier {
        None => None,
        Some(PathRewriteSpecifier::PathRedirect(p)) if p.contains('?') => {
            let at = at.field("path_redirect");
            return Err(
                at.error("redirects keep the request's query; a query here is not supported")
            );
        }
        Some(PathRewriteSpecifier::PathRedirect(p)) => Some(p.clone()),
        Some(PathRewriteSpecifier::PrefixRewrite(_)) => {
            let at = at.field("prefix_rewrite");
            return Err(at.error("redirects that rewrite a prefix are not supported"));
        }
        Some(PathRewriteSpecifier::RegexRewrite(_)) => {
            let at = at.field("regex_rewrite");
            return Err(at.error("redirects that rewrite by regex are not supported"));
        }
        Some(PathRewriteSpecifier::PathRewrite(_)) => {
            let at = at.field("path_rewrite");
            return Err(at.error("substitution formats are not supported"));
        }
    };
    if r.strip_query {
        let at = at.field("strip_query");
        return Err(at.error("redirects keep the request's query; stripping it is not supported"));
    }
    let status = match RedirectResponseCode::try_from(r.response_code) {
        Ok(RedirectResponseCode::MovedPermanently) => StatusCode::MOVED_PERMANENTLY,
        Ok(RedirectResponseCode::Found) => StatusCode::FOUND,
        Ok(RedirectResponseCode::SeeOther) => StatusCode::SEE_OTHER,
        Ok(RedirectResponseCode::TemporaryRedirect) => StatusCode::TEMPORARY_REDIRECT,
        Ok(RedirectResponseCode::PermanentRedirect) => StatusCode::PERMANENT_REDIRECT,
        Err(_) => {
            let at = at.field("response_code");
            return Err(at.error(format_args!("unknown code {}", r.response_code)));
        }
    };
    Ok(Redirect {
        scheme,
        host: (!r.host_redirect.is_empty()).then(|| r.host_redirect.clone()),
        port,
        path,
        status,
    })
}

pub(super) fn direct(
    rc: &rds::RouteConfiguration,
    d: &rds::DirectResponseAction,
    at: &At<'_>,
) -> Result<DirectResponse, FieldError> {
    let status = u16::try_from(d.status)
        .ok()
        .filter(|s| (200..600).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            at.field("status")
                .error(format_args!("{} is not between 200 and 599", d.status))
        })?;
    let body_at = at.field("body");
    let body = match d.body.as_ref().and_then(|b| b.specifier.as_ref()) {
        None => None,
        Some(Specifier::InlineString(s)) => Some(Bytes::from(s.clone())),
        Some(Specifier::InlineBytes(b)) => Some(Bytes::from(b.clone())),
        Some(Specifier::Filename(_)) => {
            return Err(body_at
                .field("filename")
                .error("bodies read from files are not supported"));
        }
        Some(Specifier::EnvironmentVariable(_)) => {
            let at = body_at.field("environment_variable");
            return Err(at.error("bodies read from the environment are not supported"));
        }
    };
    let limit = rc
        .max_direct_response_body_size_bytes
        .map_or(DIRECT_BODY_LIMIT, |v| v.value);
    if let Some(len) = body
        .as_ref()
        .map(Bytes::len)
        .filter(|l| *l as u64 > u64::from(limit))
    {
        let reason =
            format!("{len} bytes, more than max_direct_response_body_size_bytes ({limit})");
        return Err(body_at.error(reason));
    }
    Ok(DirectResponse { status, body })
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
    use envoy_types::pb::envoy::config::route::v3::route;
    use mesh_core::route::RouteAction;

    use super::super::tests::{convert, nack, pick, prefix, routes};
    use super::*;

    #[test]
    fn redirects_direct_responses_and_non_forwarding_routes() {
        let redirect = rds::Route {
            r#match: Some(prefix("/old")),
            action: Some(route::Action::Redirect(rds::RedirectAction {
                host_redirect: "new.example.com".into(),
                port_redirect: 8443,
                response_code: rds::redirect_action::RedirectResponseCode::PermanentRedirect as i32,
                scheme_rewrite_specifier: Some(
                    rds::redirect_action::SchemeRewriteSpecifier::HttpsRedirect(true),
                ),
                path_rewrite_specifier: Some(
                    rds::redirect_action::PathRewriteSpecifier::PathRedirect("/new".into()),
                ),
                ..Default::default()
            })),
            ..Default::default()
        };
        let direct = rds::Route {
            r#match: Some(prefix("/health")),
            action: Some(route::Action::DirectResponse(rds::DirectResponseAction {
                status: 200,
                body: Some(DataSource {
                    specifier: Some(data_source::Specifier::InlineString("ok".into())),
                    watched_directory: None,
                }),
                body_format: None,
            })),
            ..Default::default()
        };
        let server_only = rds::Route {
            r#match: Some(prefix("/")),
            action: Some(route::Action::NonForwardingAction(
                rds::NonForwardingAction {},
            )),
            ..Default::default()
        };
        let routes = convert(&routes(vec![redirect, direct, server_only]));
        let table = &routes.table;
        let RouteAction::Redirect(r) = &pick(table, "http://reviews/old", &[]).unwrap().action
        else {
            panic!("a redirect");
        };
        assert_eq!(
            (
                r.scheme.as_deref(),
                r.host.as_deref(),
                r.port,
                r.path.as_deref(),
                r.status.as_u16()
            ),
            (
                Some("https"),
                Some("new.example.com"),
                Some(8443),
                Some("/new"),
                308
            )
        );
        let RouteAction::Direct(d) = &pick(table, "http://reviews/health", &[]).unwrap().action
        else {
            panic!("a direct response");
        };
        assert_eq!(
            (d.status.as_u16(), d.body.as_deref()),
            (200, Some(&b"ok"[..]))
        );
        let RouteAction::Direct(d) = &pick(table, "http://reviews/x", &[]).unwrap().action else {
            panic!("a failing route");
        };
        assert_eq!(d.status.as_u16(), 503);
        assert_eq!(routes.ignored.len(), 1);
    }

    #[test]
    fn what_cannot_be_answered_is_named() {
        let answer = |action| {
            routes(vec![rds::Route {
                r#match: Some(prefix("/")),
                action: Some(action),
                ..Default::default()
            }])
        };
        let strip = route::Action::Redirect(rds::RedirectAction {
            strip_query: true,
            ..Default::default()
        });
        let teapot = route::Action::DirectResponse(rds::DirectResponseAction {
            status: 700,
            ..Default::default()
        });
        let file = route::Action::DirectResponse(rds::DirectResponseAction {
            status: 200,
            body: Some(DataSource {
                specifier: Some(data_source::Specifier::Filename("/etc/passwd".into())),
                watched_directory: None,
            }),
            body_format: None,
        });
        let big = route::Action::DirectResponse(rds::DirectResponseAction {
            status: 200,
            body: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineBytes(vec![b'x'; 5000])),
                watched_directory: None,
            }),
            body_format: None,
        });
        let cases = [
            (
                strip,
                "redirect.strip_query: redirects keep the request's query",
            ),
            (
                teapot,
                "direct_response.status: 700 is not between 200 and 599",
            ),
            (
                file,
                "direct_response.body.filename: bodies read from files are not supported",
            ),
            (
                big,
                "direct_response.body: 5000 bytes, more than max_direct_response_body_size_bytes (4096)",
            ),
        ];
        for (action, want) in cases {
            let err = nack(&answer(action));
            assert!(err.contains(&format!("routes[0].{want}")), "{err}");
        }
    }
}
