//! Istio's `fault` into a [`FaultPolicy`]: a fixed delay and an HTTP or
//! gRPC abort, each for the share of requests written, none when no share
//! is written (as in Istio).

use mesh_core::GrpcCode;
use mesh_core::route::{AbortSource, DelaySource, FaultAbort, FaultDelay, FaultPolicy, Percent};

use super::super::api::HTTPFaultInjection;
use super::super::error::IstioError;
use super::super::yaml::FieldPath;
use super::{Ctx, check};

/// Istio's fault: the delay and abort given, each for the share of
/// requests given (none when no share is written, as in Istio).
pub(super) fn fault(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    f: &HTTPFaultInjection,
) -> Result<Option<FaultPolicy>, IstioError> {
    let mut out = FaultPolicy::default();
    if let Some(d) = &f.delay {
        let at = at.key("delay");
        let share = check::share(
            ctx,
            &at,
            ("percentage", d.percentage),
            ("percent", d.percent),
            Percent::NONE,
        )?;
        match (d.fixed_delay, d.exponential_delay) {
            (Some(_), Some(_)) => {
                return Err(ctx.invalid(&at, "expected fixedDelay or exponentialDelay, not both"));
            }
            (Some(fixed), None) => {
                out.delay = Some(FaultDelay {
                    delay: DelaySource::Fixed(fixed.get()),
                    percent: share,
                });
            }
            (None, Some(_)) => {} // not supported; warned about when read
            (None, None) => return Err(ctx.invalid(&at, "expected fixedDelay")),
        }
    }
    if let Some(a) = &f.abort {
        let at = at.key("abort");
        let kinds = [
            a.http_status.is_some(),
            a.grpc_status.is_some(),
            a.http2_error.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(ctx.invalid(
                &at,
                "expected one of httpStatus, grpcStatus and http2Error, not several",
            ));
        }
        let share = match a.percentage {
            Some(p) => check::percent(ctx, &at.key("percentage").key("value"), p)?,
            None => Percent::NONE,
        };
        let abort = if let Some(s) = a.http_status {
            Some(AbortSource::Http(check::status(
                ctx,
                &at.key("httpStatus"),
                s,
            )?))
        } else if let Some(name) = &a.grpc_status {
            let code = grpc_code(name).ok_or_else(|| {
                ctx.invalid(
                    &at.key("grpcStatus"),
                    format!("{name:?} is not a gRPC status; expected a name such as UNAVAILABLE"),
                )
            })?;
            Some(AbortSource::Grpc(code))
        } else if a.http2_error.is_some() {
            None // not supported; warned about when read
        } else {
            return Err(ctx.invalid(&at, "expected httpStatus or grpcStatus"));
        };
        out.abort = abort.map(|abort| FaultAbort {
            abort,
            percent: share,
        });
    }
    Ok((out.delay.is_some() || out.abort.is_some()).then_some(out))
}

/// gRPC status codes by name, as Istio's `grpcStatus` writes them.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

fn grpc_code(name: &str) -> Option<GrpcCode> {
    GRPC_CODES
        .iter()
        .position(|n| *n == name)
        .map(|i| GrpcCode(i as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_names() {
        assert_eq!(grpc_code("UNAVAILABLE"), Some(GrpcCode::UNAVAILABLE));
        assert_eq!(grpc_code("OK"), Some(GrpcCode::OK));
        assert_eq!(grpc_code("UNAUTHENTICATED"), Some(GrpcCode(16)));
        assert_eq!(grpc_code("unavailable"), None);
    }
}
