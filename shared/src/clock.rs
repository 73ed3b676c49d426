//! Time as journals write it and as experiments give it: the reference's timestamps and
//! seconds as a `Duration`. Below the engine, the providers and the fleet, which all use them.

use std::time::Duration;

/// A UTC timestamp as the reference writes them (Python's `isoformat()`:
/// `2026-11-25T16:28:42.737616+00:00`), which Chaos Toolkit tooling parses.
pub fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    now.format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Seconds from an experiment or the command line as a `Duration`: negative or NaN is zero,
/// too large to represent is "forever" (never a panic).
pub fn seconds(value: f64) -> Duration {
    if value.is_nan() || value <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_python_isoformat() {
        let t = now_iso();
        assert_eq!(t.len(), "2026-11-25T16:28:42.737616+00:00".len(), "{t}");
        assert!(
            t.ends_with("+00:00") && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.',
            "{t}"
        );
    }

    #[test]
    fn seconds_never_panic() {
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
        assert_eq!(seconds(-1.0), Duration::ZERO);
        assert_eq!(seconds(f64::NAN), Duration::ZERO);
        assert_eq!(seconds(1e300), Duration::MAX);
        assert_eq!(seconds(f64::INFINITY), Duration::MAX);
    }
}
