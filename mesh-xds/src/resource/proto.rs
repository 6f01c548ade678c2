//! Small conversions every resource needs: durations, fractions, packed
//! `Any` messages and metadata structs.

use std::collections::BTreeMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::r#type::v3::FractionalPercent;
use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use envoy_types::pb::google::protobuf::{self as pb, value::Kind};
use mesh_core::route::Percent;
use prost::{Message, Name};

use super::error::{At, FieldError};

/// The prefix of every type URL the mesh reads.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// A `google.protobuf.Duration`; negative or malformed ones are errors.
pub(crate) fn duration(d: &pb::Duration, at: &At<'_>) -> Result<Duration, FieldError> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(at.error(format_args!(
            "invalid duration ({}s {}ns): must be positive",
            d.seconds, d.nanos
        )));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// An optional duration.
pub(crate) fn opt_duration(
    d: Option<&pb::Duration>,
    at: &At<'_>,
) -> Result<Option<Duration>, FieldError> {
    d.map(|d| duration(d, at)).transpose()
}

/// A `FractionalPercent` (numerator over 100, 10,000 or 1,000,000), capped
/// at 100 % as Envoy caps it.
pub(crate) fn fraction(f: &FractionalPercent, at: &At<'_>) -> Result<Percent, FieldError> {
    let denominator = match DenominatorType::try_from(f.denominator) {
        Ok(DenominatorType::Hundred) => 100,
        Ok(DenominatorType::TenThousand) => 10_000,
        Ok(DenominatorType::Million) => 1_000_000,
        Err(_) => {
            let at = at.field("denominator");
            return Err(at.error(format_args!("unknown denominator {}", f.denominator)));
        }
    };
    Ok(Percent::from_fraction(f.numerator, denominator))
}

/// Checks that `source` (at `at`) says `ads` or `self`: a proxyless client
/// fetches what a resource refers to only from the server that sent it.
pub(crate) fn same_server(
    source: Option<&core::ConfigSource>,
    at: &At<'_>,
) -> Result<(), FieldError> {
    match source.and_then(|s| s.config_source_specifier.as_ref()) {
        Some(ConfigSourceSpecifier::Ads(_) | ConfigSourceSpecifier::Self_(_)) => Ok(()),
        None => Err(at.error("missing: must be ads or self")),
        Some(_) => Err(at.error(
            "must be ads or self: resources are fetched only from the server that sent \
             what refers to them",
        )),
    }
}

/// Whether `any` holds a message of type `T`.
pub(crate) fn is<T: Name>(any: &pb::Any) -> bool {
    any.type_url
        .strip_prefix(TYPE_URL_PREFIX)
        .unwrap_or(&any.type_url)
        .rsplit('/')
        .next()
        .is_some_and(|name| name == T::full_name())
}

/// The message of type `T` packed in `any`.
pub(crate) fn unpack<T: Message + Default>(any: &pb::Any, at: &At<'_>) -> Result<T, FieldError> {
    T::decode(any.value.as_slice())
        .map_err(|e| at.error(format_args!("cannot decode {}: {e}", any.type_url)))
}

/// The message of type `T` encoded in `bytes`.
pub(crate) fn decode<T: Message + Default + Name>(
    bytes: &[u8],
    at: &At<'_>,
) -> Result<T, FieldError> {
    T::decode(bytes).map_err(|e| at.error(format_args!("cannot decode {}: {e}", T::full_name())))
}

/// The scalar fields of a metadata struct as strings (`true`, `3`, `v1`);
/// lists, structs and nulls are left out.
/// A protobuf JSON duration: decimal seconds with an `s` (`"0.030s"`).
pub(crate) fn json_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

pub(crate) fn string_fields(s: &pb::Struct) -> BTreeMap<String, String> {
    s.fields
        .iter()
        .filter_map(|(k, v)| {
            let v = match v.kind.as_ref()? {
                Kind::StringValue(s) => s.clone(),
                Kind::BoolValue(b) => b.to_string(),
                Kind::NumberValue(n) => n.to_string(),
                Kind::NullValue(_) | Kind::StructValue(_) | Kind::ListValue(_) => return None,
            };
            Some((k.clone(), v))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod build {
    //! Shorthands for writing protos in tests.

    use super::*;

    pub(crate) fn secs(s: i64) -> pb::Duration {
        pb::Duration {
            seconds: s,
            nanos: 0,
        }
    }

    pub(crate) fn millis(ms: i64) -> pb::Duration {
        pb::Duration {
            seconds: ms / 1000,
            nanos: (ms % 1000) as i32 * 1_000_000,
        }
    }

    pub(crate) fn u32v(value: u32) -> Option<pb::UInt32Value> {
        Some(pb::UInt32Value { value })
    }

    pub(crate) fn u64v(value: u64) -> Option<pb::UInt64Value> {
        Some(pb::UInt64Value { value })
    }

    pub(crate) fn percent(numerator: u32) -> FractionalPercent {
        FractionalPercent {
            numerator,
            denominator: DenominatorType::Hundred as i32,
        }
    }

    pub(crate) fn any<T: Message + Name>(m: &T) -> pb::Any {
        pb::Any {
            type_url: T::type_url(),
            value: m.encode_to_vec(),
        }
    }

    pub(crate) fn strings(fields: &[(&str, &str)]) -> pb::Struct {
        pb::Struct {
            fields: fields
                .iter()
                .map(|(k, v)| {
                    let kind = Some(Kind::StringValue(v.to_string()));
                    (k.to_string(), pb::Value { kind })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn durations_and_fractions() {
        let at = At::ROOT.field("timeout");
        assert_eq!(
            duration(&millis(1500), &at),
            Ok(Duration::from_millis(1500))
        );
        let err = duration(&secs(-1), &at).unwrap_err();
        assert_eq!(err.field, "timeout");
        let tenth = FractionalPercent {
            numerator: 1000,
            denominator: DenominatorType::TenThousand as i32,
        };
        assert_eq!(fraction(&tenth, &at).unwrap(), Percent::new(10.0).unwrap());
        assert_eq!(fraction(&percent(250), &at).unwrap(), Percent::ALL);
        let odd = FractionalPercent {
            numerator: 1,
            denominator: 7,
        };
        assert_eq!(
            fraction(&odd, &at).unwrap_err().field,
            "timeout.denominator"
        );
    }

    #[test]
    fn type_urls() {
        let any = any(&pb::UInt32Value { value: 3 });
        assert!(is::<pb::UInt32Value>(&any));
        assert!(!is::<pb::UInt64Value>(&any));
        let at = At::ROOT;
        assert_eq!(unpack::<pb::UInt32Value>(&any, &at).unwrap().value, 3);
    }
}
