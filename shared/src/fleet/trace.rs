//! The trace context across processes: the W3C `traceparent` a job message carries, read from
//! and given to `tracing` spans through hooks the binaries' subscriber offers when it exports
//! traces (`cli::telemetry`). Without them (no exporter set up) nothing is read or written,
//! and a job message's `traceparent` is ignored.

use tracing::Span;

/// What a subscriber that exports traces offers, found through `Dispatch::downcast_ref`: a
/// span's context as a `traceparent`, and a span (not yet entered) taking one as its parent.
#[derive(Debug, Clone, Copy)]
pub struct Propagation {
    pub inject: fn(&Span) -> Option<String>,
    pub adopt: fn(&Span, &str),
}

fn hooks() -> Option<Propagation> {
    tracing::dispatcher::get_default(|d| d.downcast_ref::<Propagation>().copied())
}

/// `span`'s trace context as a `traceparent`, when traces are exported.
pub fn traceparent(span: &Span) -> Option<String> {
    hooks().and_then(|p| (p.inject)(span))
}

/// Make `span` (before it is first entered) a child of the span `traceparent` names, when
/// traces are exported and it names one.
pub fn adopt(span: &Span, traceparent: Option<&str>) {
    if let (Some(p), Some(parent)) = (hooks(), traceparent) {
        (p.adopt)(span, parent);
    }
}
