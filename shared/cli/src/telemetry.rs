//! OpenTelemetry traces over OTLP (HTTP/protobuf), for both binaries, when the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set; otherwise
//! nothing here is built (no exporter, no thread, no layer). The `tracing` spans the fleet and
//! the engine open (suite → wave → job → activity) become the trace's spans; of the events,
//! only those with target `shared::engine::TRACE_EVENT` (a fault on record, a tripwire that
//! stopped a run) become span events, so no log line, which may quote an activity's output,
//! goes into a trace. The hooks of `shared::fleet::trace` carry the context in the job message
//! (`traceparent`), so a suite run is one trace across the producer and its workers.
//!
//! The exporter posts with the workspace's reqwest (blocking, on the SDK's batch thread: no
//! second HTTP client or TLS stack). `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are
//! honoured; without a service name the binary's name is used. The rest of the OTLP exporter
//! settings (`..._HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`) are the SDK's.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use shared::engine::TRACE_EVENT;
use shared::fleet::trace::Propagation;
use std::any::TypeId;
use std::collections::HashMap;
use tracing::{Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

/// Whether traces are to be exported: an OTLP endpoint is set (and not empty).
pub fn wanted() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|e| !e.trim().is_empty()))
}

/// Layers of a subscriber built at start, as `logging` composes them.
pub type Layers<S> = Vec<Box<dyn Layer<S> + Send + Sync>>;

/// The running export: ended (its last spans sent) by `shutdown`.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Send the spans not sent yet and stop the export thread. Blocks; call it off the async
    /// runtime.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: traces: the last spans may not have been exported: {e}");
        }
    }
}

/// The export and the layers that feed it, for the binary `service` (the default service
/// name). `Err`: why the exporter cannot be built (the binary goes on without traces).
pub fn start<S>(service: &str) -> Result<(Telemetry, Layers<S>), String>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .is_ok_and(|p| p.trim() != "http/protobuf" && !p.trim().is_empty())
    {
        eprintln!(
            "warning: traces: only the OTLP protocol http/protobuf is supported; exporting with it"
        );
    }
    // built on a thread of its own: the blocking client starts a runtime of its own, which
    // cannot be done from inside another
    let client = std::thread::spawn(|| {
        reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
    })
    .join()
    .map_err(|_| "the HTTP client could not be built".to_string())?
    .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(Client(client))
        .build()
        .map_err(|e| e.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !names_the_service() {
        resource = resource.with_service_name(service.to_string());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("experiment-broker");
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_filter(filter_fn(|m| m.is_span() || m.target() == TRACE_EVENT));
    let layers: Layers<S> = vec![Box::new(spans), Box::new(Hooks::new())];
    Ok((Telemetry { provider }, layers))
}

/// Whether the environment names the service (`OTEL_SERVICE_NAME`, or `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`); the SDK reads both.
fn names_the_service() -> bool {
    std::env::var("OTEL_SERVICE_NAME").is_ok_and(|n| !n.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| {
            a.split(',').any(|kv| {
                kv.split('=')
                    .next()
                    .is_some_and(|k| k.trim() == "service.name")
            })
        })
}

/// The OTLP exporter's HTTP client: the workspace's reqwest, blocking (the SDK's batch
/// processor exports on a thread of its own, outside any async runtime).
#[derive(Debug)]
struct Client(reqwest::blocking::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Client {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let status = response.status();
        let bytes = response.bytes()?;
        Ok(opentelemetry_http::Response::builder()
            .status(status)
            .body(bytes)?)
    }
}

/// A layer that does nothing but hand `shared::fleet::trace` its hooks, through
/// `Dispatch::downcast_ref::<Propagation>()`.
struct Hooks {
    propagation: Propagation,
}

impl Hooks {
    fn new() -> Hooks {
        Hooks {
            propagation: Propagation { inject, adopt },
        }
    }
}

impl<S: Subscriber> Layer<S> for Hooks {
    // SAFETY: each pointer is to a value of the type `id` names, which lives as long as the
    // subscriber (the contract of `downcast_raw`)
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<Propagation>() {
            Some(&self.propagation as *const Propagation as *const ())
        } else {
            None
        }
    }
}

fn inject(span: &Span) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

fn adopt(span: &Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    // a malformed traceparent extracts an empty context: the span starts a trace of its own
    let _ = span.set_parent(parent);
}
