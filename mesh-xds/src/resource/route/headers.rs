//! Header changes: `request_headers_to_add`/`_remove` and
//! `response_headers_to_add`/`_remove` of a route, its virtual host and the
//! route configuration, flattened into one [`HeaderMutation`] per
//! direction.

use envoy_types::pb::envoy::config::core::v3::HeaderValueOption;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::route::v3 as rds;
use http::{HeaderName, HeaderValue};
use mesh_core::route::HeaderMutation;

use super::Scope;
use crate::resource::error::{At, FieldError};

/// The request and response changes of one level.
pub(super) fn level(
    request_add: &[HeaderValueOption],
    request_remove: &[String],
    response_add: &[HeaderValueOption],
    response_remove: &[String],
    at: &At<'_>,
) -> Result<(HeaderMutation, HeaderMutation), FieldError> {
    let mut request = HeaderMutation::default();
    add(
        &mut request,
        request_add,
        &at.field("request_headers_to_add"),
    )?;
    let remove_at = at.field("request_headers_to_remove");
    remove(&mut request, request_remove, &remove_at)?;
    let mut response = HeaderMutation::default();
    add(
        &mut response,
        response_add,
        &at.field("response_headers_to_add"),
    )?;
    let remove_at = at.field("response_headers_to_remove");
    remove(&mut response, response_remove, &remove_at)?;
    Ok((request, response))
}

/// A route's changes with those it inherits: the route's first, so that an
/// outer level's `set` wins, unless `most_specific_header_mutations_wins`.
pub(super) fn route(
    scope: &Scope<'_>,
    r: &rds::Route,
    at: &At<'_>,
) -> Result<(HeaderMutation, HeaderMutation), FieldError> {
    let (request, response) = level(
        &r.request_headers_to_add,
        &r.request_headers_to_remove,
        &r.response_headers_to_add,
        &r.response_headers_to_remove,
        at,
    )?;
    let most_specific_last = scope.rc.most_specific_header_mutations_wins;
    let merge = |own: &HeaderMutation, inherited: [&HeaderMutation; 2]| {
        let mut levels = [own, inherited[0], inherited[1]];
        if most_specific_last {
            levels.reverse();
        }
        let mut out = HeaderMutation::default();
        for level in levels {
            out.set.extend(level.set.iter().cloned());
            out.add.extend(level.add.iter().cloned());
            out.remove.extend(level.remove.iter().cloned());
        }
        out
    };
    Ok((
        merge(&request, scope.request_headers),
        merge(&response, scope.response_headers),
    ))
}

#[allow(deprecated)] // `append`: older control planes still send it
fn add(m: &mut HeaderMutation, list: &[HeaderValueOption], at: &At<'_>) -> Result<(), FieldError> {
    for (i, option) in list.iter().enumerate() {
        let at = at.index(i);
        let header_at = at.field("header");
        let Some(h) = &option.header else {
            return Err(header_at.error("missing"));
        };
        let name = name(&h.key, &header_at.field("key"))?;
        let value = if h.raw_value.is_empty() {
            value(h.value.as_bytes(), &header_at.field("value"))?
        } else {
            value(&h.raw_value, &header_at.field("raw_value"))?
        };
        if value.is_empty() && !option.keep_empty_value {
            continue;
        }
        let append = match (
            option.append,
            HeaderAppendAction::try_from(option.append_action),
        ) {
            (Some(append), _) => append.value,
            (None, Ok(HeaderAppendAction::AppendIfExistsOrAdd)) => true,
            (None, Ok(HeaderAppendAction::OverwriteIfExistsOrAdd)) => false,
            (None, Ok(action)) => {
                let reason = format!("{} is not supported", action.as_str_name());
                return Err(at.field("append_action").error(reason));
            }
            (None, Err(_)) => {
                let reason = format!("unknown action {}", option.append_action);
                return Err(at.field("append_action").error(reason));
            }
        };
        let to = if append { &mut m.add } else { &mut m.set };
        to.push((name, value));
    }
    Ok(())
}

fn remove(m: &mut HeaderMutation, list: &[String], at: &At<'_>) -> Result<(), FieldError> {
    for (i, header) in list.iter().enumerate() {
        m.remove.push(name(header, &at.index(i))?);
    }
    Ok(())
}

/// A header that may be changed: not a pseudo-header, not `host` (Envoy's
/// rule).
fn name(name: &str, at: &At<'_>) -> Result<HeaderName, FieldError> {
    if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
        return Err(at.error(format_args!("{name:?} cannot be changed")));
    }
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| at.error(format_args!("invalid header name {name:?}")))
}

/// A header value as Envoy reads it: `%%` is a `%`; a lone `%` starts a
/// command operator (`%DOWNSTREAM_REMOTE_ADDRESS%`), which the mesh does not
/// evaluate.
fn value(raw: &[u8], at: &At<'_>) -> Result<HeaderValue, FieldError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b == b'%' && bytes.next_if_eq(&b'%').is_none() {
            let reason = "command operators (%…%) are not supported; write a literal % as %%";
            return Err(at.error(reason));
        }
        out.push(b);
    }
    HeaderValue::from_bytes(&out).map_err(|_| at.error("invalid header value"))
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::HeaderValue as ProtoValue;

    use super::*;

    fn option(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
        HeaderValueOption {
            header: Some(ProtoValue {
                key: key.into(),
                value: value.into(),
                raw_value: Vec::new(),
            }),
            append_action: action as i32,
            ..Default::default()
        }
    }

    #[test]
    fn sets_adds_and_removes() {
        let adds = [
            option("x-set", "1", HeaderAppendAction::OverwriteIfExistsOrAdd),
            option("x-add", "100%%", HeaderAppendAction::AppendIfExistsOrAdd),
            option("x-empty", "", HeaderAppendAction::AppendIfExistsOrAdd),
        ];
        let (request, response) = level(&adds, &["x-gone".into()], &[], &[], &At::ROOT).unwrap();
        assert_eq!(
            request.set,
            [(
                HeaderName::from_static("x-set"),
                HeaderValue::from_static("1")
            )]
        );
        assert_eq!(
            request.add,
            [(
                HeaderName::from_static("x-add"),
                HeaderValue::from_static("100%")
            )]
        );
        assert_eq!(request.remove, [HeaderName::from_static("x-gone")]);
        assert!(response.is_empty());
    }

    #[test]
    fn what_cannot_be_done_is_named() {
        let cases = [
            (
                option("x", "1", HeaderAppendAction::AddIfAbsent),
                "request_headers_to_add[0].append_action: ADD_IF_ABSENT is not supported",
            ),
            (
                option(":path", "/", HeaderAppendAction::AppendIfExistsOrAdd),
                "request_headers_to_add[0].header.key: \":path\" cannot be changed",
            ),
            (
                option("x y", "1", HeaderAppendAction::AppendIfExistsOrAdd),
                "request_headers_to_add[0].header.key: invalid header name \"x y\"",
            ),
            (
                option("x", "%REQ(x)%", HeaderAppendAction::AppendIfExistsOrAdd),
                "request_headers_to_add[0].header.value: command operators (%…%) are not supported; write a literal % as %%",
            ),
        ];
        for (option, want) in cases {
            let err = level(&[option], &[], &[], &[], &At::ROOT).unwrap_err();
            assert_eq!(format!("{}: {}", err.field, err.reason), want);
        }
    }
}
