//! PyYAML's (YAML 1.1) implicit typing of plain scalars: `yes`/`no`/`on`/`off` are booleans,
//! `0x1f` and `010` are integers, `1.0.0` and `1e3` are strings, because the reference reads
//! YAML with PyYAML and an experiment must mean the same thing to both.

use serde_json::{Number, Value};
use yaml_rust2::scanner::TScalarStyle;

/// `[-+]?(0|[1-9][0-9_]*)`
fn is_decimal_int(s: &str) -> bool {
    let d = s.strip_prefix(['-', '+']).unwrap_or(s);
    d == "0"
        || (d.starts_with(|c: char| matches!(c, '1'..='9'))
            && d.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
}

/// `[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0[0-7_]+)`
fn is_prefixed_int(s: &str) -> bool {
    let d = s.strip_prefix(['-', '+']).unwrap_or(s);
    let all = |rest: &str, ok: fn(u8) -> bool| {
        !rest.is_empty() && rest.bytes().all(|b| ok(b) || b == b'_')
    };
    if let Some(r) = d.strip_prefix("0b") {
        all(r, |b| b == b'0' || b == b'1')
    } else if let Some(r) = d.strip_prefix("0x") {
        all(r, |b| b.is_ascii_hexdigit())
    } else if let Some(r) = d.strip_prefix('0') {
        all(r, |b| (b'0'..=b'7').contains(&b))
    } else {
        false
    }
}

/// `[-+]?([0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)([eE][-+][0-9]+)?`: PyYAML's float, where a dot is
/// required and an exponent needs its sign.
fn is_float(s: &str) -> bool {
    let d = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match d.find(['e', 'E']) {
        Some(i) => (&d[..i], Some(&d[i + 1..])),
        None => (d, None),
    };
    let Some((int, frac)) = mantissa.split_once('.') else {
        return false;
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mantissa_ok = if int.is_empty() {
        frac.starts_with(|c: char| c.is_ascii_digit()) && digits(frac)
    } else {
        int.starts_with(|c: char| c.is_ascii_digit()) && digits(int) && digits(frac)
    };
    let exponent_ok = exponent.is_none_or(|e| {
        e.strip_prefix(['-', '+'])
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    mantissa_ok && exponent_ok
}

/// PyYAML's (YAML 1.1) implicit resolution of a scalar.
pub fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text),
        Some("int") | Some("float") | Some("bool") | Some("null") => {}
        Some(_) => return Value::String(text),
        None if style != TScalarStyle::Plain => return Value::String(text),
        None => {}
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            // JSON has no infinities or NaN: keep the text, as a string, rather than lose it
            return Value::String(text);
        }
        _ => {}
    }
    if is_decimal_int(&text) {
        let clean = text.replace('_', "");
        if let Ok(i) = clean.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(f) = clean.parse::<f64>()
            && let Some(n) = Number::from_f64(f)
        {
            return Value::Number(n);
        }
    }
    if is_prefixed_int(&text) {
        let clean = text.replace('_', "");
        let (neg, digits) = match clean.as_bytes()[0] {
            b'-' => (true, &clean[1..]),
            b'+' => (false, &clean[1..]),
            _ => (false, &clean[..]),
        };
        let parsed = if let Some(b) = digits.strip_prefix("0b") {
            i64::from_str_radix(b, 2)
        } else if let Some(h) = digits.strip_prefix("0x") {
            i64::from_str_radix(h, 16)
        } else {
            i64::from_str_radix(&digits[1..], 8)
        };
        if let Ok(i) = parsed {
            return Value::Number((if neg { -i } else { i }).into());
        }
    }
    if is_float(&text)
        && let Ok(f) = text.replace('_', "").parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_shapes() {
        for s in [
            "1.5",
            "-1.5",
            "+.5",
            "1.",
            "1_000.5",
            "1.0e+3",
            "6.8523015e-5",
        ] {
            assert!(is_float(s), "{s}");
        }
        for s in ["1e3", "1.0e3", ".", "1.0.0", "e", "1.5x", ".e+1"] {
            assert!(!is_float(s), "{s}");
        }
        assert!(is_decimal_int("-12_3") && is_decimal_int("0"));
        assert!(!is_decimal_int("012") && !is_decimal_int("1a") && !is_decimal_int("-"));
        assert!(is_prefixed_int("0x1F") && is_prefixed_int("0b101") && is_prefixed_int("017"));
        assert!(!is_prefixed_int("019") && !is_prefixed_int("0x"));
    }
}
