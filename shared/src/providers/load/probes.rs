//! `load_probe_absolute` / `load_probe_relative`: did fewer than `missed_percent` % of the
//! requests sent in a time window miss the SLA?
//!
//! The seed queried a private transaction database behind a login (`query-url`); ours reads the
//! records the run's own load generators keep in the run's memory: every request whose
//! intended send time is in the window, from every `load_generate`/`load_generate_demo` of the
//! same run (a background one still running included). A request misses the SLA when it was
//! not served (status 400 or above, timeout, connection error, or not sent for want of a slot)
//! or when its answer came more than `sla` milliseconds after its intended send time. Requests
//! still awaiting an answer when the probe runs are not counted yet.
//!
//! The output is the verdict, `true` when the share missed is strictly below `missed_percent`
//! (as the seed's comparison), so a `tolerance: true` reads it; the figures go to the log. The
//! seed's functions printed the verdict and returned nothing. A window with no request of this
//! run is a failed probe that says so (the seed printed "No test metadata exists"). `testday`
//! (the seed's database table) is accepted and not used.
//!
//! Times: `teststart`/`testend` as the seed writes them (`2026-12-01 20:15:00.123456`, which
//! Python's `str(datetime.now())` gives) or RFC 3339 (`2026-12-01T20:15:00Z`, `+01:00`); a time
//! without an offset is UTC.

use super::super::arguments::ArgKind;
use super::plan::number;
use super::records::RunLoads;
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The verdict and the figures it is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub total: usize,
    pub missed: usize,
    pub missed_percent: f64,
    pub passed: bool,
}

/// Judge the requests of `loads` sent within `[from_us, to_us]` against `sla_ms` and the
/// largest share missed allowed, `allowed_percent`.
pub fn judge(
    loads: &RunLoads,
    from_us: i64,
    to_us: i64,
    sla_ms: f64,
    allowed_percent: f64,
) -> Result<Verdict, String> {
    let records = loads.within(from_us, to_us);
    if records.is_empty() {
        return Err(format!(
            "no request of this run's load generators was sent between {} and {} ({} generator(s) in this run): the load probes judge the requests load_generate / load_generate_demo of the same run sent",
            show(from_us),
            show(to_us),
            loads.generators()
        ));
    }
    let sla_us = (sla_ms * 1000.0).round() as u64;
    let missed = records.iter().filter(|r| r.missed_sla(sla_us)).count();
    let share = missed as f64 * 100.0 / records.len() as f64;
    Ok(Verdict {
        total: records.len(),
        missed,
        missed_percent: (share * 100.0).round() / 100.0,
        passed: allowed_percent > share,
    })
}

fn show(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_else(|_| us.to_string())
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A time as the seed writes it or RFC 3339 → microseconds since the Unix epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a time like 2026-12-01 20:15:00 or 2026-12-01T20:15:00Z");
    let t = text.trim();
    let (date, rest) = t.split_at_checked(10).ok_or_else(bad)?;
    let rest = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('T'))
        .ok_or_else(bad)?;
    let field = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    // the clock part, then an optional offset: Z, +HH:MM or -HH:MM
    let (clock, offset_s) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let offset_secs: i32 = match offset_s {
        "" | "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (h, m) = o[1..].split_once(':').ok_or_else(bad)?;
            sign * (field(h)? as i32 * 3600 + field(m)? as i32 * 60)
        }
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let c: Vec<&str> = hms.split(':').collect();
    let (h, mi, s) = match c.as_slice() {
        [h, m] => (field(h)?, field(m)?, 0),
        [h, m, s] => (field(h)?, field(m)?, field(s)?),
        _ => return Err(bad()),
    };
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return Err(bad());
    }
    let micros: u32 = format!("{frac:0<6}")[..6].parse().map_err(|_| bad())?;
    let month = time::Month::try_from(field(mo)? as u8).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(field(y)? as i32, month, field(da)? as u8)
        .map_err(|_| bad())?;
    let clock =
        time::Time::from_hms_micro(h as u8, mi as u8, s as u8, micros).map_err(|_| bad())?;
    let offset = time::UtcOffset::from_whole_seconds(offset_secs).map_err(|_| bad())?;
    let at = time::PrimitiveDateTime::new(date, clock).assume_offset(offset);
    Ok((at.unix_timestamp_nanos() / 1000) as i64)
}

pub fn check_sla(value: &Value) -> Result<(), String> {
    match number(value) {
        Some(n) if n > 0.0 => Ok(()),
        _ => Err(format!("is {value}")),
    }
}
pub fn check_percent(value: &Value) -> Result<(), String> {
    match number(value) {
        Some(n) if (0.0..=100.0).contains(&n) => Ok(()),
        _ => Err(format!("is {value}")),
    }
}
pub fn check_minutes(value: &Value) -> Result<(), String> {
    match number(value) {
        Some(n) if n > 0.0 && n <= 10_080.0 => Ok(()),
        _ => Err(format!("is {value}")),
    }
}

pub const SLA: ArgKind = ArgKind::Checked {
    expected: "milliseconds: a number above 0",
    check: check_sla,
};
pub const PERCENT: ArgKind = ArgKind::Checked {
    expected: "a percentage from 0 to 100",
    check: check_percent,
};
pub const MINUTES: ArgKind = ArgKind::Checked {
    expected: "minutes: a number above 0, at most 10080 (a week)",
    check: check_minutes,
};
pub const TIME: ArgKind = ArgKind::Parsed {
    expected: "a time like 2026-12-01 20:15:00 (UTC) or RFC 3339",
    parse: |s| parse_time(s).map(drop),
};

/// Which probe, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Absolute,
    Relative,
}

/// The window `[from_us, to_us]`, the SLA in ms and the share allowed, from the arguments.
pub fn window(window: Window, args: &Map<String, Value>) -> Result<(i64, i64, f64, f64), String> {
    let name = match window {
        Window::Absolute => "load_probe_absolute",
        Window::Relative => "load_probe_relative",
    };
    let get = |key: &str, check: fn(&Value) -> Result<(), String>| match args.get(key) {
        None | Some(Value::Null) => Err(format!("{name}: argument `{key}` is missing")),
        Some(v) => check(v)
            .map_err(|e| format!("{name}: argument `{key}` {e}"))
            .and_then(|()| number(v).ok_or_else(|| format!("{name}: `{key}` is not a number"))),
    };
    let sla = get("sla", check_sla)?;
    let percent = get("missed_percent", check_percent)?;
    let (from, to) = match window {
        Window::Relative => {
            let minutes = get("minutes", check_minutes)?;
            let now = now_us();
            (now - (minutes * 60e6).round() as i64, now)
        }
        Window::Absolute => {
            let time = |key: &str| match args.get(key) {
                Some(Value::String(s)) => {
                    parse_time(s).map_err(|e| format!("{name}: argument `{key}`: {e}"))
                }
                other => Err(format!(
                    "{name}: argument `{key}` is {}, not a time",
                    other.map_or_else(|| "missing".into(), Value::to_string)
                )),
            };
            let (from, to) = (time("teststart")?, time("testend")?);
            if to < from {
                return Err(format!("{name}: `testend` is before `teststart`"));
            }
            (from, to)
        }
    };
    Ok((from, to, sla, percent))
}

#[cfg(test)]
mod tests {
    use super::super::records::{Log, Outcome, Record};
    use super::*;
    use std::sync::Arc;

    #[test]
    fn times_read_as_the_seed_writes_them_and_as_rfc_3339() {
        let base = parse_time("2026-12-01T20:15:00Z").unwrap();
        assert_eq!(base, 1_796_156_100_000_000);
        assert_eq!(parse_time("2026-12-01 20:15:00").unwrap(), base);
        assert_eq!(parse_time("2026-12-01 20:15").unwrap(), base);
        assert_eq!(
            parse_time("2026-12-01 20:15:00.25").unwrap(),
            base + 250_000
        );
        assert_eq!(
            parse_time("2026-12-01 20:15:00.123456").unwrap(),
            base + 123_456
        );
        assert_eq!(parse_time("2026-12-01T21:15:00+01:00").unwrap(), base);
        assert_eq!(parse_time("2026-12-01T19:45:00-00:30").unwrap(), base);
        for bad in [
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-12-01",
            "2026-12-01 25:00",
        ] {
            assert!(
                parse_time(bad).unwrap_err().contains("is not a time"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_share_missed_must_be_strictly_below_the_allowed_percent() {
        let loads = RunLoads::default();
        let log = Arc::new(Log::default());
        // 10 requests at t = 0..9 s: 2 late (300 ms against a 250 ms SLA), 1 refused
        for i in 0..10 {
            log.push(Record {
                intended_us: i * 1_000_000,
                latency_us: if i < 2 { 300_000 } else { 20_000 },
                outcome: if i == 9 {
                    Outcome::Status(503)
                } else {
                    Outcome::Status(200)
                },
            });
        }
        loads.add(log);
        let v = judge(&loads, 0, 9_000_000, 250.0, 30.0).unwrap();
        assert_eq!(
            (v.total, v.missed, v.missed_percent, v.passed),
            (10, 3, 30.0, false)
        );
        assert!(judge(&loads, 0, 9_000_000, 250.0, 30.5).unwrap().passed);
        // only the window's requests: t = 2..8 s, none late, none refused
        let v = judge(&loads, 2_000_000, 8_000_000, 250.0, 1.0).unwrap();
        assert_eq!((v.total, v.missed, v.passed), (7, 0, true));
        let err = judge(&loads, 20_000_000, 30_000_000, 250.0, 50.0).unwrap_err();
        assert!(
            err.contains("no request of this run's load generators"),
            "{err}"
        );
    }
}
