//! A route's [`FaultPolicy`] as Envoy's `HTTPFault`, which a route carries
//! in `typed_per_filter_config` under the fault filter's name (gRFC A33).

use envoy_types::pb::envoy::extensions::filters::common::fault::v3::FaultDelay as ProtoDelay;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay::{
    FaultDelaySecifier, HeaderDelay,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::fault_abort::{
    ErrorType, HeaderAbort,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort as ProtoAbort, HttpFault,
};
use envoy_types::pb::google::protobuf::UInt32Value;
use mesh_core::route::{AbortSource, DelaySource, FaultPolicy};

use crate::translate::error::Refused;
use crate::translate::{duration, fraction};

pub(super) fn http_fault(f: &FaultPolicy) -> Result<HttpFault, Refused> {
    let delay = f.delay.as_ref().map(|d| ProtoDelay {
        fault_delay_secifier: Some(match d.delay {
            DelaySource::Fixed(t) => FaultDelaySecifier::FixedDelay(duration(t)),
            DelaySource::Header => FaultDelaySecifier::HeaderDelay(HeaderDelay {}),
        }),
        percentage: Some(fraction(d.percent)),
    });
    let abort = match &f.abort {
        None => None,
        Some(a) => {
            let error_type = match a.abort {
                AbortSource::Http(s) if (200..600).contains(&s.as_u16()) => {
                    ErrorType::HttpStatus(u32::from(s.as_u16()))
                }
                AbortSource::Http(s) => {
                    return Err(Refused::new(
                        "abort.abort",
                        format_args!("{s} is not between 200 and 599"),
                    ));
                }
                AbortSource::Grpc(code) if code.0 <= 16 => ErrorType::GrpcStatus(code.0),
                AbortSource::Grpc(code) => {
                    return Err(Refused::new(
                        "abort.abort",
                        format_args!("{} is not a gRPC status", code.0),
                    ));
                }
                AbortSource::Header => ErrorType::HeaderAbort(HeaderAbort {}),
            };
            Some(ProtoAbort {
                error_type: Some(error_type),
                percentage: Some(fraction(a.percent)),
                ..Default::default()
            })
        }
    };
    Ok(HttpFault {
        delay,
        abort,
        max_active_faults: f.max_active_faults.map(|value| UInt32Value { value }),
        ..Default::default()
    })
}
