//! Escaping for each format (titles, sources and errors are user input) and the wording of
//! durations and times every format shares.

/// Text safe in HTML content and in quoted attributes.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text safe in XML 1.0 content and attributes: characters XML cannot carry become U+FFFD.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if c < ' ' || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text safe in a Markdown table cell or line: markup characters escaped, HTML neutralised,
/// one line.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `1 h 02 min`.
pub fn seconds(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "–".into();
    }
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round() as u64);
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let whole = secs.round() as u64;
    if whole < 3600 {
        return format!("{} min {:02} s", whole / 60, whole % 60);
    }
    format!("{} h {:02} min", whole / 3600, (whole % 3600) / 60)
}

/// The UTC time of day of an instant: `16:28:42`.
pub fn clock(at: f64) -> String {
    let s = at.floor().rem_euclid(86_400.0) as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// An instant as people read it in a report: `2026-11-25 16:28:42 UTC`.
pub fn instant(at: f64) -> String {
    let days = (at / 86_400.0).floor() as i64;
    // civil date from days since the epoch, after H. Hinnant
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {} UTC", clock(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_escapes_what_would_be_markup() {
        let hostile = "<script>alert('x')</script> & \"q\" | *b* [l](u)\u{0}\n";
        assert_eq!(
            html(hostile),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot; | *b* [l](u)\u{FFFD}\n"
        );
        assert_eq!(
            xml(hostile),
            "&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; &quot;q&quot; | *b* [l](u)\u{FFFD}\n"
        );
        assert_eq!(
            markdown(hostile),
            "&lt;script&gt;alert('x')&lt;/script&gt; &amp; \"q\" \\| \\*b\\* \\[l\\](u)\u{FFFD} "
        );
    }

    #[test]
    fn durations_and_instants_read_as_people_write_them() {
        for (secs, text) in [
            (0.0, "0 ms"),
            (0.8504, "850 ms"),
            (12.34, "12.3 s"),
            (245.0, "4 min 05 s"),
            (3725.0, "1 h 02 min"),
            (-1.0, "–"),
            (f64::NAN, "–"),
        ] {
            assert_eq!(seconds(secs), text, "{secs}");
        }
        assert_eq!(instant(1_795_624_122.7), "2026-11-25 16:28:42 UTC");
        assert_eq!(instant(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(instant(0.0), "1970-01-01 00:00:00 UTC");
    }
}
