//! [`OtlpExporter`]: spans exported over OTLP (feature `otlp`), gRPC or
//! HTTP with protobuf bodies, with OpenTelemetry's own exporter, to any
//! OpenTelemetry collector, Jaeger or vendor backend.

use std::borrow::Cow;
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext as OtelContext, SpanId as OtelSpanId, SpanKind as OtelKind, Status, TraceFlags,
    TraceId as OtelTraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use tokio::sync::mpsc;

use super::export::{SpanKind, SpanRecord, SpanSink};
use crate::lossy::Losses;

/// How many spans wait to be exported at most.
const QUEUE: usize = 2048;

/// How many spans go in one export.
const BATCH: usize = 512;

/// The OTLP exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OTLP exporter for {endpoint}: {reason}")]
pub struct OtlpError {
    endpoint: String,
    reason: String,
}

/// How spans go to the collector, as `OTEL_EXPORTER_OTLP_PROTOCOL` names
/// it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `grpc`: the trace service over gRPC (port 4317 by convention).
    #[default]
    Grpc,
    /// `http/protobuf`: `POST /v1/traces` with a protobuf body (port
    /// 4318), in plain text.
    HttpProtobuf,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(format!(
                "{other:?} is no OTLP protocol here: grpc or http/protobuf"
            )),
        }
    }
}

/// Exports spans over OTLP.
#[derive(Debug)]
pub struct OtlpExporter;

impl OtlpExporter {
    /// A sink whose spans a task of the current Tokio runtime exports
    /// over OTLP/gRPC to the collector at `endpoint`
    /// (`http://127.0.0.1:4317`), as the service `service_name`.
    pub fn spawn(endpoint: &str, service_name: &str) -> Result<SpanSink, OtlpError> {
        Self::spawn_with(endpoint, service_name, OtlpProtocol::Grpc)
    }

    /// As [`spawn`](Self::spawn), over `protocol`: for
    /// [`HttpProtobuf`](OtlpProtocol::HttpProtobuf) `endpoint` is the
    /// whole URL spans are posted to (`http://127.0.0.1:4318/v1/traces`).
    pub fn spawn_with(
        endpoint: &str,
        service_name: &str,
        protocol: OtlpProtocol,
    ) -> Result<SpanSink, OtlpError> {
        let fail = |reason: String| OtlpError {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let timeout = Duration::from_secs(10);
        let builder = opentelemetry_otlp::SpanExporter::builder();
        let built = match protocol {
            OtlpProtocol::Grpc => builder
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build(),
            OtlpProtocol::HttpProtobuf => {
                if !endpoint.starts_with("http://") {
                    return Err(fail(
                        "OTLP over HTTP is plain text here: the URL is http://HOST:PORT/PATH"
                            .into(),
                    ));
                }
                builder
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(endpoint)
                    .with_timeout(timeout)
                    .build()
            }
        };
        let mut exporter = built.map_err(|e| fail(e.to_string()))?;
        let resource = Resource::builder_empty()
            .with_service_name(service_name.to_owned())
            .build();
        exporter.set_resource(&resource);
        let (sink, rx, losses) = SpanSink::counted(QUEUE);
        tokio::spawn(export(rx, exporter, endpoint.to_owned(), losses));
        Ok(sink)
    }
}

/// Exports what comes, in batches. A batch the collector at `endpoint`
/// does not take is counted as lost, and a warning says so when exports
/// start failing.
async fn export(
    mut rx: mpsc::Receiver<SpanRecord>,
    exporter: impl SpanExporter,
    endpoint: String,
    mut losses: Losses,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let spans: Vec<_> = batch.drain(..).map(span_data).collect();
        let count = spans.len();
        if let Some(error) = losses.outcome(count, exporter.export(spans).await) {
            tracing::warn!(%error, %endpoint, spans = count, "spans not exported");
        }
    }
}

/// A record as OpenTelemetry's span data.
fn span_data(r: SpanRecord) -> SpanData {
    let flags = if r.context.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let context = OtelContext::new(
        OtelTraceId::from(r.context.trace_id.0),
        OtelSpanId::from(r.context.span_id.0),
        flags,
        false,
        TraceState::default(),
    );
    SpanData {
        span_context: context,
        parent_span_id: r
            .parent
            .map_or(OtelSpanId::INVALID, |p| OtelSpanId::from(p.0)),
        parent_span_is_remote: r.kind == SpanKind::Server && r.parent.is_some(),
        span_kind: match r.kind {
            SpanKind::Server => OtelKind::Server,
            SpanKind::Client => OtelKind::Client,
        },
        name: Cow::Owned(r.name),
        start_time: r.start,
        end_time: r.end,
        attributes: r
            .attributes
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if r.error {
            Status::error("")
        } else {
            Status::Unset
        },
        instrumentation_scope: InstrumentationScope::builder("mesh").build(),
    }
}
