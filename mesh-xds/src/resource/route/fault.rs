//! Fault injection (gRFC A33): Envoy's `HTTPFault`, found in the
//! `typed_per_filter_config` of a route, its virtual host or the route
//! configuration, into a [`FaultPolicy`]; listeners decode their fault
//! filter's `HTTPFault` here too.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::FaultDelay as ProtoDelay;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::fault_abort::ErrorType;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort as ProtoAbort, HttpFault,
};
use envoy_types::pb::google::protobuf::Any;
use http::StatusCode;
use mesh_core::GrpcCode;
use mesh_core::route::{AbortSource, DelaySource, FaultAbort, FaultDelay, FaultPolicy, Percent};

use crate::resource::error::{At, FieldError};
use crate::resource::proto;

/// The name Envoy (and Istio) give the fault filter.
const FAULT_FILTER: &str = "envoy.filters.http.fault";

/// The fault policy of a route, given the filter configs of the route, its
/// virtual host and its route configuration, most specific first.
pub(super) fn fault(
    levels: [(&HashMap<String, Any>, &At<'_>); 3],
) -> Result<Option<FaultPolicy>, FieldError> {
    for (configs, at) in levels {
        let at = at.field("typed_per_filter_config");
        let mut names: Vec<&String> = configs.keys().collect();
        names.sort();
        for name in names {
            let any = &configs[name];
            let at = at.key(name);
            if proto::is::<HttpFault>(any) {
                return http_fault(&proto::unpack(any, &at)?, &at).map(Some);
            }
            if !proto::is::<FilterConfig>(any) {
                continue;
            }
            let wrapper: FilterConfig = proto::unpack(any, &at)?;
            let inner = wrapper
                .config
                .as_ref()
                .filter(|c| proto::is::<HttpFault>(c));
            match inner {
                _ if wrapper.disabled && (inner.is_some() || name == FAULT_FILTER) => {
                    return Ok(None);
                }
                Some(c) => {
                    let at = at.field("config");
                    return http_fault(&proto::unpack(c, &at)?, &at).map(Some);
                }
                None => {}
            }
        }
    }
    Ok(None)
}

/// An `HTTPFault`, wherever it is found: a route's filter config or the
/// fault filter of a listener's chain (its default for every route).
pub(in crate::resource) fn http_fault(
    f: &HttpFault,
    at: &At<'_>,
) -> Result<FaultPolicy, FieldError> {
    if !f.headers.is_empty() {
        let reason = "faults limited to some headers are not supported; match them in the route";
        return Err(at.field("headers").error(reason));
    }
    if !f.upstream_cluster.is_empty() {
        let reason = "faults limited to one cluster are not supported";
        return Err(at.field("upstream_cluster").error(reason));
    }
    // `downstream_nodes` does not apply to a client, and a throughput limit
    // (`response_rate_limit`) is not injected: both only narrow the faults.
    let delay = f.delay.as_ref().map(|d| delay(d, &at.field("delay")));
    let abort = f.abort.as_ref().map(|a| abort(a, &at.field("abort")));
    Ok(FaultPolicy {
        delay: delay.transpose()?,
        abort: abort.transpose()?,
        max_active_faults: f.max_active_faults.map(|v| v.value),
    })
}

/// A share left unset is none, as in Envoy.
fn share(
    f: Option<&envoy_types::pb::envoy::r#type::v3::FractionalPercent>,
    at: &At<'_>,
) -> Result<Percent, FieldError> {
    f.map_or(Ok(Percent::NONE), |f| {
        proto::fraction(f, &at.field("percentage"))
    })
}

fn delay(d: &ProtoDelay, at: &At<'_>) -> Result<FaultDelay, FieldError> {
    let delay = match &d.fault_delay_secifier {
        Some(FaultDelaySecifier::FixedDelay(fixed)) => {
            DelaySource::Fixed(proto::duration(fixed, &at.field("fixed_delay"))?)
        }
        Some(FaultDelaySecifier::HeaderDelay(_)) => DelaySource::Header,
        None => return Err(at.error("neither fixed_delay nor header_delay")),
    };
    Ok(FaultDelay {
        delay,
        percent: share(d.percentage.as_ref(), at)?,
    })
}

fn abort(a: &ProtoAbort, at: &At<'_>) -> Result<FaultAbort, FieldError> {
    let abort = match a.error_type {
        Some(ErrorType::HttpStatus(s)) => AbortSource::Http(
            u16::try_from(s)
                .ok()
                .filter(|s| (200..600).contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or_else(|| {
                    at.field("http_status")
                        .error(format_args!("{s} is not between 200 and 599"))
                })?,
        ),
        Some(ErrorType::GrpcStatus(code)) if code <= 16 => AbortSource::Grpc(GrpcCode(code)),
        Some(ErrorType::GrpcStatus(code)) => {
            let at = at.field("grpc_status");
            return Err(at.error(format_args!("{code} is not a gRPC status")));
        }
        Some(ErrorType::HeaderAbort(_)) => AbortSource::Header,
        None => return Err(at.error("neither http_status, grpc_status nor header_abort")),
    };
    Ok(FaultAbort {
        abort,
        percent: share(a.percentage.as_ref(), at)?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay::HeaderDelay;

    use super::super::tests::{cluster, convert, first, nack, prefix, route, routes};
    use super::*;
    use crate::resource::proto::build::{any, percent, secs};

    fn istio_fault() -> HttpFault {
        HttpFault {
            delay: Some(ProtoDelay {
                percentage: Some(percent(10)),
                fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(secs(5))),
            }),
            abort: Some(ProtoAbort {
                percentage: Some(percent(50)),
                error_type: Some(ErrorType::HttpStatus(503)),
                response_body: String::new(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_route_fault_as_istio_writes_it() {
        let mut r = route(prefix("/"), cluster("ratings"));
        r.typed_per_filter_config
            .insert(FAULT_FILTER.into(), any(&istio_fault()));
        let fault = first(&routes(vec![r])).fault.expect("a fault");
        assert_eq!(
            fault.delay,
            Some(FaultDelay {
                delay: DelaySource::Fixed(Duration::from_secs(5)),
                percent: Percent::new(10.0).unwrap(),
            })
        );
        assert_eq!(
            fault.abort,
            Some(FaultAbort {
                abort: AbortSource::Http(StatusCode::SERVICE_UNAVAILABLE),
                percent: Percent::new(50.0).unwrap(),
            })
        );
        assert_eq!(fault.max_active_faults, None);
    }

    #[test]
    fn the_route_overrides_its_virtual_host() {
        let header_delay = HttpFault {
            delay: Some(ProtoDelay {
                percentage: Some(percent(100)),
                fault_delay_secifier: Some(FaultDelaySecifier::HeaderDelay(HeaderDelay {})),
            }),
            ..Default::default()
        };
        let disabled = FilterConfig {
            config: None,
            is_optional: false,
            disabled: true,
        };
        let mut off = route(prefix("/off"), cluster("c"));
        off.typed_per_filter_config
            .insert(FAULT_FILTER.into(), any(&disabled));
        let mut rc = routes(vec![off, route(prefix("/"), cluster("c"))]);
        rc.virtual_hosts[0].typed_per_filter_config.insert(
            FAULT_FILTER.into(),
            any(&FilterConfig {
                config: Some(any(&header_delay)),
                ..Default::default()
            }),
        );
        let table = convert(&rc).table;
        let routes = &table.virtual_hosts()[0].routes;
        assert_eq!(routes[0].fault, None, "disabled on the route");
        let inherited = routes[1].fault.as_ref().expect("the virtual host's");
        assert_eq!(inherited.delay.as_ref().unwrap().delay, DelaySource::Header);
    }

    #[test]
    fn faults_that_cannot_be_limited_are_rejected() {
        let mut limited = istio_fault();
        limited.upstream_cluster = "ratings".into();
        let mut r = route(prefix("/"), cluster("c"));
        r.typed_per_filter_config
            .insert("fault".into(), any(&limited));
        let err = nack(&routes(vec![r]));
        assert_eq!(
            err,
            r#"RouteConfiguration "9080": virtual_hosts[0].routes[0].typed_per_filter_config["fault"].upstream_cluster: faults limited to one cluster are not supported"#
        );
        let mut bad = istio_fault();
        bad.abort.as_mut().unwrap().error_type = Some(ErrorType::GrpcStatus(99));
        let mut r = route(prefix("/"), cluster("c"));
        r.typed_per_filter_config
            .insert(FAULT_FILTER.into(), any(&bad));
        assert!(nack(&routes(vec![r])).ends_with("abort.grpc_status: 99 is not a gRPC status"));
    }
}
