//! The load actions' arguments → a `Plan` (target URL, arrival rate, how long or how many),
//! and the checks `validate` runs on each argument's value.
//!
//! How the seed's arguments map (its functions were stubs; the mapping follows how its
//! experiments use them):
//! - `load_generate(load, count)`: `count` is the arrival rate in requests per second (the
//!   seed's experiments name `count: 1000` "Establish load of 1000 tps"); `load` is the target
//!   URL, else the experiment's `configuration.load_target` (the seed's experiments give no
//!   target). Ours adds `duration` (seconds, default 60) and `requests` (stop after that many).
//! - `load_generate_demo(target, intensity, load_duration)`: `target` is a host name (the
//!   seed's `experiment-demo.example.com`) requested as `https://<target>/`, or a whole
//!   `http(s)://` URL; `intensity` is the rate in requests per second; `load_duration` seconds
//!   (default 75, as the seed).
//! - Both take `timeout` (seconds per request, default 10) and `max_in_flight` (requests
//!   awaiting an answer at once, default 1,000): a request due when that many are in flight is
//!   not sent and is counted `missed`.

use super::super::arguments::ArgKind;
use serde_json::{Map, Value};
use std::time::Duration;

/// The highest arrival rate accepted, requests per second.
pub const MAX_RATE: f64 = 100_000.0;
/// The longest run of one generator, seconds (a day).
pub const MAX_DURATION: u64 = 86_400;
/// The most requests in flight at once.
pub const MAX_IN_FLIGHT: u64 = 10_000;
/// The most requests one generator sends: it keeps a 16-byte record of each for the probes.
pub const MAX_REQUESTS: u64 = 5_000_000;
/// The configuration key `load_generate` takes its target from when `load` is not given.
pub const TARGET_KEY: &str = "load_target";

pub const DEFAULT_TIMEOUT: f64 = 10.0;
pub const DEFAULT_IN_FLIGHT: u64 = 1_000;
pub const DEFAULT_GENERATE_RATE: f64 = 100.0;
pub const DEFAULT_GENERATE_DURATION: f64 = 60.0;
pub const DEFAULT_DEMO_DURATION: f64 = 75.0;

/// What one generator does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub url: url::Url,
    /// Requests per second, at evenly spaced intended send times.
    pub rate: f64,
    pub duration: Duration,
    /// How many requests are scheduled: `rate × duration`, or fewer when `requests` says so.
    pub requests: u64,
    pub timeout: Duration,
    pub max_in_flight: usize,
}

/// A number given as a number or as a string of one (the seed's experiments quote them).
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn bounded(value: &Value, min_exclusive: f64, max: f64) -> Result<f64, String> {
    match number(value) {
        Some(n) if n > min_exclusive && n <= max => Ok(n),
        Some(_) => Err(format!("is {value}, out of range")),
        None => Err(format!("is {value}, not a number")),
    }
}

pub fn check_rate(value: &Value) -> Result<(), String> {
    bounded(value, 0.0, MAX_RATE).map(drop)
}
pub fn check_duration(value: &Value) -> Result<(), String> {
    bounded(value, 0.0, MAX_DURATION as f64).map(drop)
}
pub fn check_timeout(value: &Value) -> Result<(), String> {
    bounded(value, 0.0, 300.0).map(drop)
}
pub fn check_whole(value: &Value, max: u64) -> Result<u64, String> {
    let n = bounded(value, 0.0, max as f64)?;
    if n.fract() != 0.0 {
        return Err(format!("is {value}, not a whole number"));
    }
    Ok(n as u64)
}
pub fn check_in_flight(value: &Value) -> Result<(), String> {
    check_whole(value, MAX_IN_FLIGHT).map(drop)
}
pub fn check_requests(value: &Value) -> Result<(), String> {
    check_whole(value, MAX_REQUESTS).map(drop)
}

pub const RATE: ArgKind = ArgKind::Checked {
    expected: "requests per second: a number above 0, at most 100000",
    check: check_rate,
};
pub const DURATION: ArgKind = ArgKind::Checked {
    expected: "seconds: a number above 0, at most 86400",
    check: check_duration,
};
pub const TIMEOUT: ArgKind = ArgKind::Checked {
    expected: "seconds per request: a number above 0, at most 300",
    check: check_timeout,
};
pub const IN_FLIGHT: ArgKind = ArgKind::Checked {
    expected: "a whole number of requests from 1 to 10000",
    check: check_in_flight,
};
pub const REQUESTS: ArgKind = ArgKind::Checked {
    expected: "a whole number of requests from 1 to 5000000",
    check: check_requests,
};
pub const URL: ArgKind = ArgKind::Parsed {
    expected: "an http:// or https:// URL with a host",
    parse: |s| target_url(s, false).map(drop),
};
pub const HOST_OR_URL: ArgKind = ArgKind::Parsed {
    expected: "a host name (requested as https://<host>/) or an http:// or https:// URL",
    parse: |s| target_url(s, true).map(drop),
};

/// A target as a URL; with `bare_host`, a text without `://` is a host requested over HTTPS.
pub fn target_url(text: &str, bare_host: bool) -> Result<url::Url, String> {
    let text = text.trim();
    let whole = if bare_host && !text.contains("://") {
        format!("https://{text}/")
    } else {
        text.to_string()
    };
    let url = url::Url::parse(&whole).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no host"));
    }
    Ok(url)
}

/// Which of the two actions a plan is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Generate,
    Demo,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Generate => "load_generate",
            Action::Demo => "load_generate_demo",
        }
    }
}

/// `arguments` (already substituted) → a plan, or a message naming the argument at fault.
pub fn plan(
    action: Action,
    arguments: &Map<String, Value>,
    configuration: &Map<String, Value>,
) -> Result<Plan, String> {
    let given = |name: &str| arguments.get(name).filter(|v| !v.is_null());
    let at = |name: &str, e: String| format!("{}: argument `{name}` {e}", action.name());
    let (url, rate_key, duration_key, default_duration) = match action {
        Action::Generate => {
            let url = match (given("load"), configuration.get(TARGET_KEY)) {
                (Some(v), _) => v
                    .as_str()
                    .ok_or_else(|| at("load", format!("is {v}, not a URL")))
                    .and_then(|s| target_url(s, false).map_err(|e| at("load", e)))?,
                (None, Some(Value::String(s))) => target_url(s, false)
                    .map_err(|e| format!("load_generate: configuration `{TARGET_KEY}`: {e}"))?,
                (None, _) => {
                    return Err(format!(
                        "load_generate needs a target: give the argument `load` (a URL) or the configuration key `{TARGET_KEY}`"
                    ));
                }
            };
            (url, "count", "duration", DEFAULT_GENERATE_DURATION)
        }
        Action::Demo => {
            let url = match given("target") {
                Some(Value::String(s)) => target_url(s, true).map_err(|e| at("target", e))?,
                Some(v) => return Err(at("target", format!("is {v}, not a host or URL"))),
                None => return Err(at("target", "is missing".into())),
            };
            (url, "intensity", "load_duration", DEFAULT_DEMO_DURATION)
        }
    };
    let num = |key: &str, default: f64, check: fn(&Value) -> Result<(), String>| match given(key) {
        Some(v) => check(v)
            .map_err(|e| at(key, e))
            .map(|()| number(v).unwrap_or(default)),
        None => Ok(default),
    };
    let rate = match (action, given(rate_key)) {
        (Action::Demo, None) => return Err(at(rate_key, "is missing".into())),
        _ => num(rate_key, DEFAULT_GENERATE_RATE, check_rate)?,
    };
    let seconds = num(duration_key, default_duration, check_duration)?;
    let timeout = num("timeout", DEFAULT_TIMEOUT, check_timeout)?;
    let max_in_flight = match given("max_in_flight") {
        Some(v) => check_whole(v, MAX_IN_FLIGHT).map_err(|e| at("max_in_flight", e))?,
        None => DEFAULT_IN_FLIGHT,
    };
    let scheduled = (rate * seconds).floor() as u64;
    let requests = match given("requests").filter(|_| action == Action::Generate) {
        Some(v) => check_whole(v, MAX_REQUESTS)
            .map_err(|e| at("requests", e))?
            .min(scheduled),
        None => scheduled,
    };
    if requests > MAX_REQUESTS {
        return Err(format!(
            "{}: {rate} requests/s for {seconds} s is {requests} requests, more than the {MAX_REQUESTS} one generator keeps records of: lower the rate or the duration, or run several actions one after the other",
            action.name()
        ));
    }
    if requests == 0 {
        return Err(format!(
            "{}: {rate} requests/s for {seconds} s schedules no request",
            action.name()
        ));
    }
    Ok(Plan {
        url,
        rate,
        duration: Duration::from_secs_f64(seconds),
        requests,
        timeout: Duration::from_secs_f64(timeout),
        max_in_flight: max_in_flight as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_seeds_arguments_map_to_a_url_and_a_rate() {
        let p = plan(
            Action::Generate,
            &map(json!({"count": 1000})),
            &map(json!({"load_target": "http://127.0.0.1:8080/health"})),
        )
        .unwrap();
        assert_eq!(p.url.as_str(), "http://127.0.0.1:8080/health");
        assert_eq!((p.rate, p.requests), (1000.0, 60_000));
        let p = plan(
            Action::Demo,
            &map(json!({"target": "demo.example.com", "intensity": "50", "load_duration": 2})),
            &Map::new(),
        )
        .unwrap();
        assert_eq!(p.url.as_str(), "https://demo.example.com/");
        assert_eq!((p.rate, p.requests, p.duration.as_secs()), (50.0, 100, 2));
        let p = plan(
            Action::Generate,
            &map(json!({"load": "http://h/", "count": 10, "requests": 5})),
            &Map::new(),
        )
        .unwrap();
        assert_eq!(
            p.requests, 5,
            "requests caps what the rate and duration schedule"
        );
    }

    #[test]
    fn a_bad_argument_is_named_with_what_is_wrong() {
        let cases = [
            (Action::Generate, json!({"count": 5}), "needs a target"),
            (
                Action::Generate,
                json!({"load": "ftp://h/"}),
                "argument `load` \"ftp://h/\" is not an http:// or https:// URL",
            ),
            (
                Action::Generate,
                json!({"load": "http://h/", "count": -1}),
                "argument `count` is -1, out of range",
            ),
            (
                Action::Generate,
                json!({"load": "http://h/", "count": 100000, "duration": 86400}),
                "more than the 5000000",
            ),
            (
                Action::Demo,
                json!({"target": "h", "intensity": "lots"}),
                "argument `intensity` is \"lots\", not a number",
            ),
            (
                Action::Demo,
                json!({"target": "h", "intensity": 5, "max_in_flight": 1.5}),
                "argument `max_in_flight` is 1.5, not a whole number",
            ),
            (
                Action::Demo,
                json!({"intensity": 5}),
                "argument `target` is missing",
            ),
        ];
        for (action, args, message) in cases {
            let err = plan(action, &map(args.clone()), &Map::new()).unwrap_err();
            assert!(err.contains(message), "{args}: {err}");
        }
    }
}
