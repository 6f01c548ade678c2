//! A route's [`HeaderMutation`]s as `request_headers_to_add`/`_remove` and
//! `response_headers_to_add`/`_remove`: sets as `OVERWRITE_IF_EXISTS_OR_ADD`,
//! adds as `APPEND_IF_EXISTS_OR_ADD`, a literal `%` written `%%`, an empty
//! value kept with `keep_empty_value`.

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue as ProtoValue, HeaderValueOption};
use http::{HeaderName, HeaderValue};
use mesh_core::route::HeaderMutation;

use crate::translate::error::Refused;

/// The additions and removals of `m`.
pub(super) fn mutation(
    m: &HeaderMutation,
) -> Result<(Vec<HeaderValueOption>, Vec<String>), Refused> {
    let mut add = Vec::with_capacity(m.set.len() + m.add.len());
    let actions = [
        ("set", &m.set, HeaderAppendAction::OverwriteIfExistsOrAdd),
        ("add", &m.add, HeaderAppendAction::AppendIfExistsOrAdd),
    ];
    for (field, list, action) in actions {
        for (i, (name, value)) in list.iter().enumerate() {
            let field = format!("{field}[{i}]");
            changeable(name, &field)?;
            add.push(option(name, value, action));
        }
    }
    let remove = m
        .remove
        .iter()
        .enumerate()
        .map(|(i, name)| {
            changeable(name, &format!("remove[{i}]"))?;
            Ok(name.as_str().to_owned())
        })
        .collect::<Result<_, Refused>>()?;
    Ok((add, remove))
}

/// xDS does not let a route change `host` (nor pseudo-headers, which a
/// `HeaderName` cannot be).
fn changeable(name: &HeaderName, field: &str) -> Result<(), Refused> {
    if name == http::header::HOST {
        return Err(Refused::new(
            field,
            "`host` cannot be changed by header changes in xDS; use host_rewrite",
        ));
    }
    Ok(())
}

fn option(name: &HeaderName, value: &HeaderValue, action: HeaderAppendAction) -> HeaderValueOption {
    let escaped = escape(value.as_bytes());
    let (text, raw) = match String::from_utf8(escaped) {
        Ok(s) => (s, Vec::new()),
        Err(e) => (String::new(), e.into_bytes()),
    };
    HeaderValueOption {
        header: Some(ProtoValue {
            key: name.as_str().to_owned(),
            value: text,
            raw_value: raw,
        }),
        append_action: action as i32,
        keep_empty_value: value.is_empty(),
        ..Default::default()
    }
}

/// `%` starts a command operator in Envoy's header values; a literal one is
/// `%%`.
fn escape(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        out.push(b);
        if b == b'%' {
            out.push(b'%');
        }
    }
    out
}
