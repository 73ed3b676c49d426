//! Logging for the binaries: `tracing` to stderr, filtered by `RUST_LOG` (a level, or
//! `target=level,...`). `Targets` parses without compiling regexes, which keeps start-up short;
//! a `RUST_LOG` that does not parse is reported and the default level used. Colour only on a
//! terminal, and never when `NO_COLOR` is set to anything (<https://no-color.org>).
//!
//! `--log-format json` (`BROKER_LOG_FORMAT=json`) writes one JSON object a line: `timestamp`,
//! `level`, `message`, the event's fields, and the fields of every span it is in, flattened
//! (`suite_run_id`, `wave`, `run_id`, `experiment`, `activity`, `kind`), with `span` naming the
//! innermost; so CloudWatch Logs Insights can filter one job of a fleet. The spans are kept
//! whatever the level, so a warning inside a job carries its ids. When an OTLP endpoint is set,
//! the same spans are exported as traces (`telemetry`).

use crate::telemetry::{self, Telemetry};
use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::{LookupSpan, Registry};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one compact line an event, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object a line, with the ids of the job and activity it is in.
    Json,
}

/// The logging options both binaries take.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines on stderr are written: `text`, or `json` (one object a line, with the
    /// suite run, job and activity they belong to; see docs/observability.md).
    #[arg(long, global = true, env = "BROKER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = "Logging")]
    pub log_format: LogFormat,
}

/// Install the subscriber; `default` applies when `RUST_LOG` is unset or invalid. `service`
/// names the binary in traces. The trace export, when an OTLP endpoint is set: the shell ends
/// it after the command.
pub fn init(default: LevelFilter, format: LogFormat, service: &str) -> Option<Telemetry> {
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match spec.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (
                Targets::new().with_default(default),
                Some(format!("ignoring RUST_LOG={spec:?}: {e}")),
            ),
        },
        _ => (Targets::new().with_default(default), None),
    };
    let mut layers: telemetry::Layers<Registry> = Vec::new();
    match format {
        LogFormat::Text => {
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(colour(
                    std::io::IsTerminal::is_terminal(&std::io::stderr()),
                    std::env::var_os("NO_COLOR"),
                ))
                .compact();
            // text lines stay as they were: no span prefix
            let events = filter_fn(|m| !m.is_span());
            layers.push(Box::new(fmt.with_filter(filter.and(events))));
        }
        LogFormat::Json => {
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(JsonLine)
                .fmt_fields(JsonFields);
            // every span, whatever the level: a warning in a job carries the job's ids
            let spans = filter_fn(|m| m.is_span());
            layers.push(Box::new(fmt.with_filter(filter.or(spans))));
        }
    }
    let mut problems = bad.into_iter().collect::<Vec<_>>();
    let telemetry = if telemetry::wanted() {
        match telemetry::start::<Registry>(service) {
            Ok((telemetry, more)) => {
                layers.extend(more);
                Some(telemetry)
            }
            Err(e) => {
                problems.push(format!("traces are not exported: {e}"));
                None
            }
        }
    } else {
        None
    };
    tracing_subscriber::registry().with(layers).init();
    for warning in problems {
        tracing::warn!("{warning}");
    }
    telemetry
}

/// Whether logs are coloured: on a terminal, unless `NO_COLOR` is set and not empty. Pure.
pub fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Fields as a JSON object: numbers and booleans as themselves, the rest as text.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

/// A span's fields, kept as a JSON object's text (what `JsonLine` flattens into a line).
struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut map = Map::new();
        fields.record(&mut Fields(&mut map));
        write!(writer, "{}", Value::Object(map))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut map = match serde_json::from_str(&current.fields) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        fields.record(&mut Fields(&mut map));
        current.fields = Value::Object(map).to_string();
        Ok(())
    }
}

/// One JSON object a line: time, level, the fields of the spans the event is in (outermost
/// first, so an inner span's field wins), `span` (the innermost's name), then the event's.
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert("timestamp".into(), shared::clock::now_iso().into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str(&fields.fields)
                {
                    line.extend(map);
                }
                line.insert("span".into(), span.name().into());
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        for (terminal, no_color, coloured) in [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (true, Some("0"), false),
            (false, None, false),
            (false, Some("1"), false),
        ] {
            assert_eq!(
                colour(terminal, no_color.map(Into::into)),
                coloured,
                "terminal {terminal}, NO_COLOR {no_color:?}"
            );
        }
    }
}
