//! Values checked as Istio's validation checks them, in one place each:
//! ports, statuses, shares of requests, durations and host names.

use http::StatusCode;

use mesh_core::route::Percent;

use super::super::Workload;
use super::super::api::Percent as IstioPercent;
use super::super::error::{IstioError, IstioErrorKind};
use super::super::yaml::FieldPath;
use super::Ctx;

/// A port number, 1 to 65535.
pub(super) fn port(ctx: &Ctx<'_>, at: &FieldPath, n: u32) -> Result<u16, IstioError> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ctx.invalid(at, format!("port {n} is out of range; expected 1 to 65535")))
}

/// A port number where 0 (Istio's unset) means none.
pub(super) fn optional_port(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    n: u32,
) -> Result<Option<u16>, IstioError> {
    match n {
        0 => Ok(None),
        n => port(ctx, at, n).map(Some),
    }
}

/// An HTTP status Istio lets a route answer with: 200 to 599.
pub(super) fn status(ctx: &Ctx<'_>, at: &FieldPath, n: u32) -> Result<StatusCode, IstioError> {
    u16::try_from(n)
        .ok()
        .filter(|s| (200..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ctx.invalid(at, format!("{n} is not a status from 200 to 599")))
}

/// Istio's `Percent`, 0 to 100.
pub(super) fn percent(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    p: IstioPercent,
) -> Result<Percent, IstioError> {
    Percent::new(p.value).map_err(|e| ctx.error(at, IstioErrorKind::Route(e)))
}

/// A share written as a `Percent` under `field` or, in the deprecated
/// form, as whole percent under `integer_field`: the `Percent` when both
/// are written, `absent` when neither is.
pub(super) fn share(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    (field, value): (&str, Option<IstioPercent>),
    (integer_field, integer): (&str, Option<u32>),
    absent: Percent,
) -> Result<Percent, IstioError> {
    match (value, integer) {
        (Some(p), _) => percent(ctx, &at.key(field).key("value"), p),
        (None, Some(n)) => percent(
            ctx,
            &at.key(integer_field),
            IstioPercent {
                value: f64::from(n),
            },
        ),
        (None, None) => Ok(absent),
    }
}

/// A duration Envoy accepts where zero or less than a millisecond is
/// meaningless: at least 1 ms.
pub(super) fn at_least_1ms(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    d: std::time::Duration,
) -> Result<std::time::Duration, IstioError> {
    if d < std::time::Duration::from_millis(1) {
        return Err(ctx.invalid(at, "expected a duration of at least 1ms"));
    }
    Ok(d)
}

/// The FQDN of a service host written in a resource of `namespace`: a name
/// without dots is a Kubernetes service in that namespace; any other is
/// taken as written.
pub(super) fn service_host(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    host: &str,
    namespace: &str,
    workload: &Workload,
) -> Result<String, IstioError> {
    if host.contains('*') {
        return Err(ctx.invalid(
            at,
            format!("{host:?} is a wildcard; expected the name of one service"),
        ));
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    check_dns_name(ctx, at, &host)?;
    Ok(if host.contains('.') {
        host
    } else {
        format!("{host}.{namespace}.svc.{}", workload.cluster_domain)
    })
}

/// A host that may be a wildcard: `*`, `*.suffix` (lower-cased), or a
/// service host as [`service_host`] reads it.
pub(super) fn host_or_wildcard(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    host: &str,
    namespace: &str,
    workload: &Workload,
) -> Result<String, IstioError> {
    if host == "*" {
        return Ok(host.to_owned());
    }
    match host.strip_prefix("*.") {
        Some(rest) => {
            check_dns_name(ctx, at, rest)?;
            Ok(host.to_ascii_lowercase())
        }
        None => service_host(ctx, at, host, namespace, workload),
    }
}

/// A ServiceEntry host: taken as written (a short name is not expanded,
/// as in Istio), lower-cased, without a trailing dot; `*.suffix` allowed,
/// `*` not.
pub(super) fn entry_host(ctx: &Ctx<'_>, at: &FieldPath, host: &str) -> Result<String, IstioError> {
    if host == "*" {
        return Err(ctx.invalid(
            at,
            "the host `*` is not allowed in a ServiceEntry; name the hosts, or `*.suffix`",
        ));
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    check_dns_name(ctx, at, host.strip_prefix("*.").unwrap_or(&host))?;
    Ok(host)
}

/// A host of a Gateway's server: taken as written (a short name is not
/// expanded, as in Istio), lower-cased, without a trailing dot; `*` and
/// `*.suffix` allowed.
pub(super) fn gateway_host(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    host: &str,
) -> Result<String, IstioError> {
    if host == "*" {
        return Ok(host.to_owned());
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    check_dns_name(ctx, at, host.strip_prefix("*.").unwrap_or(&host))?;
    Ok(host)
}

/// A port number that must be written: 0 (absent) is an error.
pub(super) fn required_port(ctx: &Ctx<'_>, at: &FieldPath, n: u32) -> Result<u16, IstioError> {
    if n == 0 {
        return Err(ctx.invalid(at, "expected a port number, 1 to 65535"));
    }
    port(ctx, at, n)
}

fn check_dns_name(ctx: &Ctx<'_>, at: &FieldPath, host: &str) -> Result<(), IstioError> {
    mesh_core::Authority::new(host, 1)
        .map(|_| ())
        .map_err(|e| ctx.invalid(at, format!("expected a service host name: {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::super::{Origin, Sourced};
    use super::*;

    fn with_ctx(f: impl FnOnce(&Ctx<'_>)) {
        let r = Sourced {
            resource: (),
            origin: Origin::new("t.yaml", Some(1)),
        };
        f(&Ctx::new(&r, "VirtualService", "r", "default"));
    }

    #[test]
    fn ports_statuses_and_shares() {
        with_ctx(|ctx| {
            let at = FieldPath::root().key("port");
            assert_eq!(port(ctx, &at, 9080).unwrap(), 9080);
            let e = port(ctx, &at, 0).unwrap_err().to_string();
            assert_eq!(
                e,
                "t.yaml, document 1 (VirtualService default/r), port: port 0 is out of range; expected 1 to 65535"
            );
            assert!(port(ctx, &at, 65536).is_err());
            assert_eq!(optional_port(ctx, &at, 0).unwrap(), None);
            assert_eq!(optional_port(ctx, &at, 1).unwrap(), Some(1));

            assert_eq!(
                status(ctx, &at, 503).unwrap(),
                StatusCode::SERVICE_UNAVAILABLE
            );
            for bad in [199, 600, 70_000] {
                assert!(status(ctx, &at, bad).is_err(), "{bad}");
            }

            let root = FieldPath::root();
            let half = Some(IstioPercent { value: 50.0 });
            let of = |p, n| share(ctx, &root, ("percentage", p), ("percent", n), Percent::NONE);
            assert_eq!(of(half, Some(10)).unwrap(), Percent::new(50.0).unwrap());
            assert_eq!(of(None, Some(10)).unwrap(), Percent::new(10.0).unwrap());
            assert_eq!(of(None, None).unwrap(), Percent::NONE);
            let e = of(None, Some(101)).unwrap_err();
            assert_eq!(e.location().path, "percent");
            let e = of(Some(IstioPercent { value: -1.0 }), None).unwrap_err();
            assert_eq!(e.location().path, "percentage.value");
        });
    }

    #[test]
    fn durations_and_hosts() {
        with_ctx(|ctx| {
            let at = FieldPath::root();
            let ms = std::time::Duration::from_millis(1);
            assert_eq!(at_least_1ms(ctx, &at, ms).unwrap(), ms);
            assert!(at_least_1ms(ctx, &at, ms / 2).is_err());

            let w = Workload::default();
            let host = |h: &str| host_or_wildcard(ctx, &at, h, "prod", &w);
            assert_eq!(host("*").unwrap(), "*");
            assert_eq!(host("*.Example.com").unwrap(), "*.example.com");
            assert_eq!(host("reviews").unwrap(), "reviews.prod.svc.cluster.local");
            assert_eq!(host("api.example.com.").unwrap(), "api.example.com");
            assert!(host("*.bad host").is_err());
            assert!(service_host(ctx, &at, "*.example.com", "prod", &w).is_err());

            assert_eq!(entry_host(ctx, &at, "Reviews.").unwrap(), "reviews");
            assert_eq!(
                entry_host(ctx, &at, "*.Example.com").unwrap(),
                "*.example.com"
            );
            assert!(entry_host(ctx, &at, "*").is_err());
            assert!(entry_host(ctx, &at, "bad host").is_err());
            assert_eq!(gateway_host(ctx, &at, "*").unwrap(), "*");
            assert_eq!(
                gateway_host(ctx, &at, "*.Example.com").unwrap(),
                "*.example.com"
            );
            assert_eq!(
                gateway_host(ctx, &at, "productpage").unwrap(),
                "productpage"
            );
            assert!(gateway_host(ctx, &at, "*.bad host").is_err());
            let e = required_port(ctx, &at, 0).unwrap_err().to_string();
            assert!(e.ends_with(": expected a port number, 1 to 65535"), "{e}");
            assert_eq!(required_port(ctx, &at, 443).unwrap(), 443);
        });
    }
}
