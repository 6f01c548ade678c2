use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

#[test]
fn w3c_is_read_with_its_state() {
    let h = headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]);
    let ctx = SpanContext::extract(&h).unwrap();
    assert_eq!(ctx.trace_id.to_string(), TRACE);
    assert_eq!(ctx.span_id.to_string(), SPAN);
    assert!(ctx.sampled);
    assert_eq!(ctx.tracestate.unwrap(), "congo=t61rcWkgMzE");
    let unsampled = headers(&[("traceparent", &format!("00-{TRACE}-{SPAN}-00"))]);
    assert!(!SpanContext::extract(&unsampled).unwrap().sampled);
    // A later version may carry more fields.
    let later = headers(&[("traceparent", &format!("01-{TRACE}-{SPAN}-01-extra"))]);
    assert!(SpanContext::extract(&later).is_some());
}

#[test]
fn b3_is_read_in_both_forms() {
    let single = headers(&[("b3", &format!("{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90"))]);
    let ctx = SpanContext::extract(&single).unwrap();
    assert_eq!(
        (ctx.trace_id.to_string(), ctx.sampled),
        (TRACE.into(), true)
    );
    let short = headers(&[("b3", &format!("a3ce929d0e0e4736-{SPAN}-0"))]);
    let ctx = SpanContext::extract(&short).unwrap();
    assert_eq!(ctx.trace_id, TraceId(0xa3ce929d0e0e4736));
    assert!(!ctx.sampled);
    let multi = headers(&[
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "1"),
    ]);
    assert!(SpanContext::extract(&multi).unwrap().sampled);
    // Without a sampled field, B3 leaves the decision to the receiver.
    let undecided = headers(&[("b3", &format!("{TRACE}-{SPAN}"))]);
    assert_eq!(SpanContext::extract_decision(&undecided).unwrap().1, None);
    let undecided = headers(&[("x-b3-traceid", TRACE), ("x-b3-spanid", SPAN)]);
    assert_eq!(SpanContext::extract_decision(&undecided).unwrap().1, None);
    let no = headers(&[
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-sampled", "0"),
    ]);
    assert_eq!(SpanContext::extract_decision(&no).unwrap().1, Some(false));
    let debug = headers(&[
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-flags", "1"),
    ]);
    assert!(SpanContext::extract(&debug).unwrap().sampled);
    // W3C wins when both come.
    let both = headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("x-b3-traceid", "0000000000000000000000000000abcd"),
        ("x-b3-spanid", SPAN),
    ]);
    assert_eq!(
        SpanContext::extract(&both).unwrap().trace_id.to_string(),
        TRACE
    );
}

#[test]
fn malformed_context_is_ignored() {
    let zero_trace = "0".repeat(32);
    let zero_span = "0".repeat(16);
    for bad in [
        format!("00-{TRACE}-{SPAN}"),                     // no flags
        format!("00-{}-{SPAN}-01", &TRACE[1..]),          // wrong length
        format!("00-{TRACE}-{SPAN}-0g"),                  // bad hex
        format!("00-{TRACE}-+0f067aa0ba902b-01"),         // sign is not hex
        format!("ff-{TRACE}-{SPAN}-01"),                  // version ff
        format!("FF-{TRACE}-{SPAN}-01"),                  // version ff, upper case
        format!("00-{}-{SPAN}-01", TRACE.to_uppercase()), // upper-case hex
        format!("00-{zero_trace}-{SPAN}-01"),             // all-zero trace
        format!("00-{TRACE}-{zero_span}-01"),             // all-zero span
        format!("00-{TRACE}-{SPAN}-01-extra"),            // version 00 with more
        "garbage".to_owned(),
    ] {
        assert_eq!(
            SpanContext::extract(&headers(&[("traceparent", &bad)])),
            None,
            "{bad}"
        );
    }
    for bad in [
        "1",
        "0",
        "d",
        &format!("{TRACE}-{SPAN}-x"),
        &format!("{TRACE}-{zero_span}"),
    ] {
        assert_eq!(
            SpanContext::extract(&headers(&[("b3", bad)])),
            None,
            "{bad}"
        );
    }
    let no_span = headers(&[("x-b3-traceid", TRACE)]);
    assert_eq!(SpanContext::extract(&no_span), None);
    // A bad W3C header falls back to a good B3 one.
    let fallback = headers(&[
        ("traceparent", "00-nope"),
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
    ]);
    assert_eq!(
        SpanContext::extract(&fallback)
            .unwrap()
            .trace_id
            .to_string(),
        TRACE
    );
}

#[test]
fn an_injected_context_reads_back_in_either_form() {
    let ctx = SpanContext {
        trace_id: TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        span_id: SpanId(0x00f0_67aa_0ba9_02b7),
        sampled: true,
        tracestate: Some(HeaderValue::from_static("congo=t61rcWkgMzE")),
    };
    let mut h = headers(&[("b3", "stale"), ("x-b3-flags", "1")]);
    ctx.inject(Some(SpanId(7)), &mut h);
    assert_eq!(h["traceparent"], format!("00-{TRACE}-{SPAN}-01").as_str());
    assert_eq!(h["x-b3-parentspanid"], "0000000000000007");
    assert!(!h.contains_key("b3") && !h.contains_key("x-b3-flags"));
    assert_eq!(SpanContext::extract(&h), Some(ctx.clone()));
    h.remove("traceparent");
    let b3 = SpanContext::extract(&h).unwrap();
    assert_eq!(
        (b3.trace_id, b3.span_id, b3.sampled),
        (ctx.trace_id, ctx.span_id, true)
    );
}

#[test]
fn one_form_is_written_and_the_others_stale_headers_go() {
    let ctx = SpanContext {
        trace_id: TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        span_id: SpanId(0x00f0_67aa_0ba9_02b7),
        sampled: false,
        tracestate: Some(HeaderValue::from_static("congo=t61rcWkgMzE")),
    };
    let stale = [
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("tracestate", "old=1"),
        ("x-b3-traceid", "0af7651916cd43dd8448eb211c80319c"),
        ("x-b3-spanid", "b7ad6b7169203331"),
        ("x-b3-sampled", "1"),
        ("x-b3-parentspanid", "0000000000000001"),
        ("b3", "stale"),
    ];
    let mut w3c = headers(&stale);
    ctx.inject_as(None, &mut w3c, Propagation::W3c);
    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        n.sort_unstable();
        n
    }
    assert_eq!(names(&w3c), ["traceparent", "tracestate"]);
    assert_eq!(SpanContext::extract(&w3c), Some(ctx.clone()));

    let mut b3 = headers(&stale);
    ctx.inject_as(Some(SpanId(7)), &mut b3, Propagation::B3);
    assert_eq!(
        names(&b3),
        [
            "x-b3-parentspanid",
            "x-b3-sampled",
            "x-b3-spanid",
            "x-b3-traceid"
        ]
    );
    let read = SpanContext::extract(&b3).unwrap();
    assert_eq!(
        (read.trace_id, read.span_id, read.sampled),
        (ctx.trace_id, ctx.span_id, false)
    );
}
