//! The forms a secret takes when a system under test echoes it back.
//!
//! Masking only the raw value is not enough: an HTTP service answering JSON, or a process
//! printing JSON, writes the secret JSON-escaped (`\"`, `\\`, `\n`, `\u00e4`...), and a
//! request URL carries it percent-encoded. Each encoder has its own habits, so every secret is
//! expanded into the forms the common ones write (duplicates removed): a secret made only of
//! letters and digits has one form, itself.
//!
//! - JSON: `"` and `\` escaped; control characters as `\n`/`\t`/`\r`/`\b`/`\f` or `\u00XX`;
//!   non-ASCII raw (serde_json, JavaScript, Python `ensure_ascii=False`) or `\uXXXX` with
//!   surrogate pairs beyond the BMP (Python's default `ensure_ascii=True`, PHP, Jackson);
//!   lower- and upper-case hex; `/` as `\/` (PHP); `<`, `>`, `&`, U+2028/U+2029 as `\u003c`...
//!   (Go's HTML-safe default).
//! - URL: percent-encoded with upper- or lower-case hex, a space as `+` or `%20`, and the safe
//!   sets of form encoding (WHATWG), RFC 3986 (Python `quote_plus`, Go `QueryEscape`), Python's
//!   `quote` (keeps `/`), JavaScript's `encodeURIComponent` and `encodeURI`.

/// How one JSON encoder escapes a string.
#[derive(Debug, Clone, Copy)]
struct JsonStyle {
    /// Non-ASCII (and DEL) as `\uXXXX`, as `ensure_ascii=True` does.
    ascii: bool,
    upper_hex: bool,
    /// `/` as `\/`.
    slash: bool,
    /// `<`, `>`, `&`, U+2028, U+2029 as `\uXXXX`.
    html: bool,
}

fn push_u(out: &mut String, unit: u16, upper: bool) {
    if upper {
        out.push_str(&format!("\\u{unit:04X}"));
    } else {
        out.push_str(&format!("\\u{unit:04x}"));
    }
}

/// `secret` as it appears between the quotes of a JSON string written in `style`.
fn json_escaped(secret: &str, style: JsonStyle) -> String {
    let mut out = String::with_capacity(secret.len() + 8);
    for c in secret.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if style.slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => push_u(&mut out, c as u16, style.upper_hex),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if style.html => {
                push_u(&mut out, c as u16, style.upper_hex)
            }
            c if style.ascii && (c as u32) >= 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u(&mut out, *unit, style.upper_hex);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Bytes besides ASCII letters and digits that a percent-encoder leaves as they are.
const URL_SAFE_SETS: &[&[u8]] = &[
    b"*-._",                 // application/x-www-form-urlencoded (WHATWG, `url` crate)
    b"-._~",                 // RFC 3986 unreserved: Python quote_plus, Go QueryEscape
    b"-._~/",                // Python quote (safe='/')
    b"-_.!~*'()",            // JavaScript encodeURIComponent
    b"-_.!~*'();/?:@&=+$,#", // JavaScript encodeURI
];

/// `secret` percent-encoded, leaving letters, digits and `safe` as they are.
fn percent_encoded(secret: &str, safe: &[u8], space_plus: bool, upper_hex: bool) -> String {
    let mut out = String::with_capacity(secret.len() * 3);
    for &b in secret.as_bytes() {
        if b.is_ascii_alphanumeric() || safe.contains(&b) {
            out.push(b as char);
        } else if b == b' ' && space_plus {
            out.push('+');
        } else if upper_hex {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Every form of `secret` to mask: itself, JSON-escaped and URL-encoded, each once. Empty for
/// an empty secret.
pub fn forms(secret: &str) -> Vec<String> {
    if secret.is_empty() {
        return Vec::new();
    }
    let mut out = vec![secret.to_string()];
    for bits in 0u8..16 {
        out.push(json_escaped(
            secret,
            JsonStyle {
                ascii: bits & 1 != 0,
                upper_hex: bits & 2 != 0,
                slash: bits & 4 != 0,
                html: bits & 8 != 0,
            },
        ));
    }
    for safe in URL_SAFE_SETS {
        for space_plus in [true, false] {
            for upper_hex in [true, false] {
                let encoded = percent_encoded(secret, safe, space_plus, upper_hex);
                if safe.contains(&b'/') && encoded.contains('/') {
                    // a URL inside a PHP-written JSON string
                    out.push(encoded.replace('/', "\\/"));
                }
                out.push(encoded);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(secret: &str, form: &str) -> bool {
        forms(secret).iter().any(|f| f == form)
    }

    /// What real encoders write, checked against the forms (serde_json is one of them).
    #[test]
    fn json_forms_cover_the_common_encoders() {
        let cases: &[(&str, &str, &str)] = &[
            // (secret, encoder, form it writes between the quotes)
            ("pa\"ss", "serde_json / json.dumps", "pa\\\"ss"),
            ("back\\slash", "serde_json / json.dumps", "back\\\\slash"),
            (
                "two\nlines\tand\r",
                "serde_json / json.dumps",
                "two\\nlines\\tand\\r",
            ),
            ("ctl\u{1}x", "serde_json / json.dumps", "ctl\\u0001x"),
            ("ctl\u{1f}x", "Jackson (upper-case hex)", "ctl\\u001Fx"),
            ("bell\u{8}ff\u{c}", "serde_json", "bell\\bff\\f"),
            ("gehäim", "serde_json / ensure_ascii=False", "gehäim"),
            ("gehäim", "json.dumps ensure_ascii=True", "geh\\u00e4im"),
            ("gehäim", "Jackson ESCAPE_NON_ASCII", "geh\\u00E4im"),
            ("key🔑", "json.dumps ensure_ascii=True", "key\\ud83d\\udd11"),
            ("del\u{7f}", "json.dumps ensure_ascii=True", "del\\u007f"),
            ("a/b", "PHP json_encode", "a\\/b"),
            ("ä/b", "PHP json_encode", "\\u00e4\\/b"),
            ("x<y>&z", "Go encoding/json", "x\\u003cy\\u003e\\u0026z"),
            ("line\u{2028}sep", "Go encoding/json", "line\\u2028sep"),
        ];
        for (secret, encoder, form) in cases {
            assert!(has(secret, form), "{encoder}: {secret:?} as {form:?}");
        }
        // and serde_json's own output, whatever it is
        for secret in ["pa\"ss", "x\u{1}\u{1f}\u{7f}ä🔑\\/", "tab\there"] {
            let written = serde_json::to_string(secret).unwrap();
            assert!(has(secret, &written[1..written.len() - 1]), "{written}");
        }
    }

    #[test]
    fn url_forms_cover_the_common_encoders() {
        let cases: &[(&str, &str, &str)] = &[
            ("s3cr3t tok/en", "form (url crate)", "s3cr3t+tok%2Fen"),
            ("s3cr3t tok/en", "path, upper hex", "s3cr3t%20tok%2Fen"),
            ("s3cr3t tok/en", "lower hex", "s3cr3t%20tok%2fen"),
            ("s3cr3t tok/en", "Python quote", "s3cr3t%20tok/en"),
            ("a~b*c", "form keeps *", "a%7Eb*c"),
            ("a~b*c", "RFC 3986 keeps ~", "a~b%2Ac"),
            ("it's(1)!", "encodeURIComponent", "it's(1)!"),
            ("k=v&x", "encodeURI", "k=v&x"),
            ("gehäim", "UTF-8 bytes", "geh%C3%A4im"),
            ("gehäim", "UTF-8 bytes, lower hex", "geh%c3%a4im"),
        ];
        for (secret, encoder, form) in cases {
            assert!(has(secret, form), "{encoder}: {secret:?} as {form:?}");
        }
    }

    #[test]
    fn a_plain_secret_has_one_form_and_an_empty_one_none() {
        assert_eq!(forms("Abc123"), vec!["Abc123".to_string()]);
        assert!(forms("").is_empty());
    }
}
