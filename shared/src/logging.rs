//! Logging for the binaries: `tracing` to stderr, filtered by `RUST_LOG` (a level, or
//! `target=level,...`). `Targets` parses without compiling regexes, which keeps start-up short;
//! a `RUST_LOG` that does not parse is reported and the default level used.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Install the subscriber; `default` applies when `RUST_LOG` is unset or invalid.
pub fn init(default: LevelFilter) {
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
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact();
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .init();
    if let Some(warning) = bad {
        tracing::warn!("{warning}");
    }
}
