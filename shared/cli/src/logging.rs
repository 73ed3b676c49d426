//! Logging for the binaries: `tracing` to stderr, filtered by `RUST_LOG` (a level, or
//! `target=level,...`). `Targets` parses without compiling regexes, which keeps start-up short;
//! a `RUST_LOG` that does not parse is reported and the default level used. Colour only on a
//! terminal, and never when `NO_COLOR` is set to anything (<https://no-color.org>).

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
        .with_ansi(colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR"),
        ))
        .compact();
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .init();
    if let Some(warning) = bad {
        tracing::warn!("{warning}");
    }
}

/// Whether logs are coloured: on a terminal, unless `NO_COLOR` is set and not empty. Pure.
pub fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
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
