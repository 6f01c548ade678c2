//! Bad input: each error names the file, the document, the resource, the
//! line and the field, and says what was expected.

use super::*;

#[test]
fn yaml_syntax_errors_name_the_line() {
    let e = error(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: Service\nmetadata: {name: 'a}\n",
    );
    assert!(
        e.starts_with("test.yaml, document 2, line 7: the YAML does not parse"),
        "{e}"
    );
    assert!(
        e.contains("while scanning a quoted scalar at line 6"),
        "{e}"
    );
}

#[test]
fn a_negative_weight_names_its_field() {
    let e = error(&vs(
        "  http:\n  - route:\n    - destination: {host: reviews}\n      weight: -10\n",
    ));
    assert!(
        e.starts_with("test.yaml, document 1 (VirtualService default/reviews), line 9:"),
        "{e}"
    );
    assert!(
        e.contains("spec.http[0].route[0].weight: invalid type: integer `-10`, expected u32"),
        "{e}"
    );
}

#[test]
fn bad_durations() {
    for (value, reason) in [
        ("3 s", "unknown unit"),
        ("\"5\"", "without a unit"),
        ("7", "without a unit"),
        ("-1s", "negative"),
        ("1d", "unknown unit"),
    ] {
        let e = error(&vs(&format!(
            "  http:\n  - route: [{{destination: {{host: reviews}}}}]\n    timeout: {value}\n"
        )));
        assert!(e.contains(", line 8: "), "{value}: {e}");
        assert!(
            e.contains("spec.http[0].timeout: invalid duration"),
            "{value}: {e}"
        );
        assert!(e.contains(reason), "{value}: {e}");
    }
}

#[test]
fn a_null_header_match_is_an_error() {
    let e = error(&vs(
        "  http:\n  - match:\n    - headers:\n        end-user:\n    route: [{destination: {host: reviews}}]\n",
    ));
    assert_eq!(
        e,
        "test.yaml, document 1 (VirtualService default/reviews), line 9, spec.http[0].match[0].headers.end-user: a match cannot be null; expected exact, prefix or regex, or {} for presence"
    );
}

#[test]
fn a_string_match_with_two_kinds_is_an_error() {
    let e = error(&vs(
        "  http:\n  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: reviews}}]\n",
    ));
    assert!(
        e.ends_with("line 7, spec.http[0].match[0].uri: expected one of exact, prefix and regex, not several"),
        "{e}"
    );
}

#[test]
fn an_invalid_regex_names_the_pattern() {
    let e = error(&vs(
        "  http:\n  - match:\n    - uri:\n        regex: /reviews/(\n    route: [{destination: {host: reviews}}]\n",
    ));
    assert!(
        e.starts_with("test.yaml, document 1 (VirtualService default/reviews), line 9, spec.http[0].match[0].uri.regex: invalid route setting: invalid regex \"/reviews/(\""),
        "{e}"
    );
}

#[test]
fn weights_that_are_all_zero() {
    let e = error(
        &(vs(
            "  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n    - destination: {host: reviews, subset: v2}\n",
        ) + DR),
    );
    assert!(
        e.contains("line 8, spec.http[0].route: every destination has weight 0"),
        "{e}"
    );
}

#[test]
fn undefined_subsets() {
    let body = "  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n";
    let e = error(&vs(body));
    assert!(
        e.ends_with("line 8, spec.http[0].route[0].destination.subset: subset \"v3\" of reviews.default.svc.cluster.local is not defined: no DestinationRule has host reviews.default.svc.cluster.local"),
        "{e}"
    );
    let e = error(&(vs(body) + DR));
    assert!(
        e.ends_with("subset \"v3\" of reviews.default.svc.cluster.local is not defined by DestinationRule default/reviews (it defines v1, v2)"),
        "{e}"
    );
}

#[test]
fn unknown_fields_are_warned_about_not_dropped() {
    let (resources, warnings) = read(&vs(
        "  http:\n  - match:\n    - uri: {prefix: /}\n      sourceLabel: {app: x}\n    route: [{destination: {host: reviews}}]\n    retry: {attempts: 3}\nstatus: {}\n",
    ));
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "test.yaml, document 1 (VirtualService default/reviews), line 9, spec.http[0].match[0].sourceLabel: unknown field; ignored",
            "test.yaml, document 1 (VirtualService default/reviews), line 11, spec.http[0].retry: unknown field; ignored",
        ]
    );
    assert_eq!(warnings[0].location.document, Some(1));
    assert_eq!(warnings[0].location.line, Some(9));
    assert!(resources.to_mesh_config().is_ok());
}

#[test]
fn kubernetes_bookkeeping_is_not_warned_about() {
    let (_, warnings) = read(
        "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  name: r\n  uid: 1\n  resourceVersion: \"7\"\n  annotations: {a: b}\nspec: {host: r}\nstatus: {observedGeneration: 1}\n",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn resources_that_are_not_read() {
    let e = error(
        "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: a}\nspec: {}\n",
    );
    assert!(
        e.starts_with("test.yaml, document 1 (VirtualService default/a), line 1, apiVersion: apiVersion networking.istio.io/v2 is not read"),
        "{e}"
    );
    let e = error("metadata: {name: a}\n");
    assert!(
        e.contains("expected a Kubernetes resource with apiVersion and kind"),
        "{e}"
    );
    let e = error("just text\n");
    assert!(
        e.contains("a Kubernetes resource (a map with apiVersion and kind)"),
        "{e}"
    );
    let e = error(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ''}\nspec: {hosts: [a]}\n",
    );
    assert!(e.ends_with("line 3, metadata.name: expected a name"), "{e}");
    // Empty documents are fine.
    assert!(read("---\n---\n").0.virtual_services.is_empty());
}

/// The error of the VirtualService `reviews` in document 1, at `line` and
/// `path`.
fn at(line: usize, path: &str, message: &str) -> String {
    format!(
        "test.yaml, document 1 (VirtualService default/reviews), line {line}, {path}: {message}"
    )
}

#[test]
fn what_the_client_cannot_honour_is_an_error() {
    for (body, line, path, message) in [
        (
            "  http:\n  - match: [{scheme: {exact: https}}]\n    route: [{destination: {host: reviews}}]\n",
            7,
            "spec.http[0].match[0].scheme",
            "matching on the scheme is not supported by the client; without it the route would match every scheme",
        ),
        (
            "  http:\n  - match: [{headers: {\"@request.auth.claims.group\": {exact: a}}}]\n    route: [{destination: {host: reviews}}]\n",
            7,
            "spec.http[0].match[0].headers.@request.auth.claims.group",
            "matching on JWT claims is not supported by the client; without it the route would match every request",
        ),
        (
            "  http:\n  - delegate: {name: other}\n",
            7,
            "spec.http[0].delegate",
            "delegation is not supported by the client; write the delegate's routes here",
        ),
        (
            "  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 50\n      headers: {request: {set: {x: y}}}\n    - destination: {host: reviews, subset: v2}\n      weight: 50\n",
            10,
            "spec.http[0].route[0].headers",
            "header changes of one destination among several are not supported by the client; move them to the route's headers",
        ),
    ] {
        let e = error(&(vs(body) + DR));
        assert_eq!(e, at(line, path, message));
    }
}

#[test]
fn istio_validation_rules() {
    for (body, line, path, message) in [
        (
            "  http:\n  - {}\n",
            7,
            "spec.http[0]",
            "expected route, redirect or directResponse",
        ),
        (
            "  http:\n  - route: [{destination: {host: reviews}}]\n    redirect: {uri: /x}\n",
            7,
            "spec.http[0]",
            "expected one of route, redirect and directResponse, not several",
        ),
        (
            "  http:\n  - redirect: {uri: /x}\n    rewrite: {uri: /y}\n",
            8,
            "spec.http[0].rewrite",
            "rewrite applies only to forwarded requests, not to redirect or directResponse",
        ),
        (
            "  http:\n  - redirect: {uri: /x, redirectCode: 200}\n",
            7,
            "spec.http[0].redirect.redirectCode",
            "200 is not a redirect status; expected 301, 302, 303, 307 or 308",
        ),
        (
            "  http:\n  - directResponse: {status: 99}\n",
            7,
            "spec.http[0].directResponse.status",
            "99 is not a status from 200 to 599",
        ),
        (
            "  http:\n  - route: [{destination: {host: reviews}}]\n    retries: {attempts: 2, retryOn: \"5xx,bogus\"}\n",
            8,
            "spec.http[0].retries.retryOn",
            "invalid retryOn: unknown retry condition \"bogus\" in \"5xx,bogus\" (expected one of: 5xx, gateway-error, reset, connect-failure, refused-stream, retriable-4xx, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)",
        ),
        (
            "  http:\n  - route: [{destination: {host: reviews}}]\n    fault: {abort: {grpcStatus: NOPE, percentage: {value: 5}}}\n",
            8,
            "spec.http[0].fault.abort.grpcStatus",
            "\"NOPE\" is not a gRPC status; expected a name such as UNAVAILABLE",
        ),
        (
            "  http:\n  - route: [{destination: {host: reviews}}]\n    fault: {delay: {fixedDelay: 1s, percentage: {value: 101}}}\n",
            8,
            "spec.http[0].fault.delay.percentage.value",
            "invalid route setting: invalid percentage 101: must be between 0 and 100",
        ),
        (
            "  http:\n  - route: [{destination: {host: reviews}}]\n    mirror: {host: reviews}\n    mirrors: [{destination: {host: reviews}}]\n",
            9,
            "spec.http[0].mirrors",
            "expected mirror or mirrors, not both",
        ),
        (
            "  http:\n  - route: [{destination: {host: \"*.reviews\"}}]\n",
            7,
            "spec.http[0].route[0].destination.host",
            "\"*.reviews\" is a wildcard; expected the name of one service",
        ),
        (
            "  http:\n  - route: [{destination: {host: reviews, port: {number: 70000}}}]\n",
            7,
            "spec.http[0].route[0].destination.port.number",
            "port 70000 is out of range; expected 1 to 65535",
        ),
    ] {
        let e = error(&vs(body));
        assert_eq!(e, at(line, path, message));
    }
    let e = error(
        &vs("  http:\n  - route: [{destination: {host: reviews}}]\n").replace("[reviews]", "['*']"),
    );
    assert_eq!(
        e,
        at(
            5,
            "spec.hosts[0]",
            "the host `*` is allowed only on gateways; name the hosts the rules are for"
        )
    );
}
