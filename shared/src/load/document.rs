//! Text → JSON value, plus where every field sits in the text, within bounded time and memory.
//!
//! JSON is parsed by `serde_json` (exact JSON semantics). YAML is parsed from `yaml-rust2`'s
//! event stream into the same `serde_json::Value`, resolving plain scalars the way PyYAML does
//! (`scalars`), because the reference reads YAML with PyYAML. Both formats then go through the
//! same event walk (`walk`) to record where each node is (`spans`), which is what lets
//! validation errors point at the source.
//!
//! Files, S3 objects and messages are untrusted: every document is held to `Limits` (size,
//! nesting depth, number of values, aliases expanded) before anything is built from it, and a
//! document past a limit is a located problem, never a crash.

mod repeats;
mod scalars;
mod spans;
mod walk;

use super::problem::Problem;
pub use scalars::resolve_scalar;
use serde_json::Value;
pub use spans::Spans;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// By extension, falling back to the content: a document opening with `{` is JSON.
    pub fn detect(path: &std::path::Path, text: &str) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("yaml" | "yml") => Format::Yaml,
            _ if text.trim_start().starts_with('{') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// The environment variable that changes the document size cap (a number of bytes).
pub const MAX_DOCUMENT_BYTES_ENV: &str = "BROKER_MAX_DOCUMENT_BYTES";
/// The default size cap: 10 MiB, far above any experiment or suite.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
/// Nested lists and mappings, at most. `serde_json` refuses 128, so the cap sits below it and
/// both formats stop at the same depth; real experiments nest about 8 deep.
pub const MAX_DEPTH: usize = 100;
/// Values (keys included) in a document, at most, aliases expanded: a "billion laughs" guard,
/// and the bound on memory (a small mapping costs about 500 bytes once parsed; a real
/// experiment holds a few thousand values).
pub const MAX_NODES: usize = 100_000;

/// What a document may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
        }
    }
}

impl Limits {
    /// The defaults, with the size cap from `BROKER_MAX_DOCUMENT_BYTES` when it is set (read
    /// once per process). A value that is not a positive number of bytes is a problem.
    pub fn from_env() -> Result<Limits, Problem> {
        static CAP: OnceLock<Result<usize, String>> = OnceLock::new();
        let cap = CAP.get_or_init(|| match std::env::var(MAX_DOCUMENT_BYTES_ENV) {
            Err(_) => Ok(DEFAULT_MAX_DOCUMENT_BYTES),
            Ok(raw) => parse_byte_count(&raw).ok_or(raw),
        });
        match cap {
            Ok(max_bytes) => Ok(Limits {
                max_bytes: *max_bytes,
                ..Limits::default()
            }),
            Err(raw) => Err(Problem::new(
                "",
                format!("{MAX_DOCUMENT_BYTES_ENV} is `{raw}`, which is not a size"),
            )
            .expected("a positive number of bytes, e.g. 20971520")),
        }
    }
}

/// A positive whole number of bytes (`_` allowed as a separator).
fn parse_byte_count(raw: &str) -> Option<usize> {
    let n: usize = raw.trim().replace('_', "").parse().ok()?;
    (n > 0).then_some(n)
}

/// A parsed document and where its fields are.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub value: Value,
    spans: Spans,
    /// JSON text whose spans are not computed yet: locations are only needed to report
    /// problems, so a valid JSON document never pays for the walk.
    pending: Option<String>,
}

impl Document {
    /// Compute the spans of a JSON document, if not done yet.
    pub fn ensure_spans(&mut self) {
        if let Some(text) = self.pending.take() {
            // a JSON document YAML cannot read (rare) simply has no spans
            self.spans = walk::walk(&text, true, &Limits::default())
                .map(|w| w.spans)
                .unwrap_or_default();
        }
    }

    /// The (line, column), both 1-based, of exactly this field path (`method[0].name`).
    pub fn span(&self, field: &str) -> Option<(usize, usize)> {
        self.spans.get(field)
    }

    /// Where a field is, or else where its nearest present parent is.
    pub fn locate(&self, field: &str) -> Option<(usize, usize)> {
        self.spans.locate(field)
    }

    /// Every key written twice in one mapping, as a warning naming both lines (`repeats`).
    pub fn repeated_keys(&mut self) -> Vec<Problem> {
        if let Some(text) = &self.pending
            && !repeats::json_repeats_a_key(text)
        {
            return Vec::new(); // a JSON document pays for the walk only when it repeats a key
        }
        self.ensure_spans();
        repeats::warnings(self.spans.repeated())
    }
}

/// Read a file as document text: at most the size cap, UTF-8, each refusal a problem naming
/// the file. `what` names the document in a read error ("the experiment").
pub fn read_text(path: &Path, what: &str) -> Result<String, Problem> {
    let named = |mut p: Problem| {
        p.file = Some(path.to_path_buf());
        p
    };
    let limits = Limits::from_env().map_err(named)?;
    let cannot = |e: std::io::Error| named(Problem::new("", format!("cannot read {what}: {e}")));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    // one byte more than allowed is enough to know it is too large (a FIFO or /dev/zero too)
    file.take(limits.max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > limits.max_bytes {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        return Err(named(too_large(&bytes, size, &limits)));
    }
    text_from_bytes(bytes).map_err(named)
}

/// Bytes → text: UTF-8 (a BOM is fine); UTF-16/32 and invalid bytes are located problems.
pub fn text_from_bytes(bytes: Vec<u8>) -> Result<String, Problem> {
    let wide = match bytes.as_slice() {
        [0, 0, 0xFE, 0xFF, ..] | [0xFF, 0xFE, 0, 0, ..] => Some("UTF-32"),
        [0xFE, 0xFF, ..] | [0xFF, 0xFE, ..] => Some("UTF-16"),
        _ => None,
    };
    if let Some(encoding) = wide {
        return Err(Problem::new("", format!("the file is {encoding} text"))
            .at(1, 1)
            .expected("UTF-8 text (convert it, e.g. with `iconv -t UTF-8`)"));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let bad = e.utf8_error().valid_up_to();
        let (line, col) = line_col(&bytes[..bad]);
        Problem::new("", format!("byte 0x{:02X} is not valid UTF-8", bytes[bad]))
            .at(line, col)
            .expected("UTF-8 text")
    })
}

/// The 1-based line and column (in characters) just after `before`.
fn line_col(before: &[u8]) -> (usize, usize) {
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    // count characters, not bytes: UTF-8 continuation bytes are 0b10xxxxxx
    let col = 1 + before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count();
    (line, col)
}

/// The problem for a document of `size` bytes (0: unknown) over the cap; `text` holds at
/// least its first `max_bytes` bytes, to say where the cap is crossed.
fn too_large(text: &[u8], size: u64, limits: &Limits) -> Problem {
    let (line, col) = line_col(&text[..limits.max_bytes.min(text.len())]);
    let how_big = if size > limits.max_bytes as u64 {
        format!("{size} bytes")
    } else {
        format!("more than {} bytes", limits.max_bytes)
    };
    Problem::new(
        "",
        format!(
            "the document is {how_big}, over the {} byte limit",
            limits.max_bytes
        ),
    )
    .at(line, col)
    .expected(format!(
        "at most {} bytes (set {MAX_DOCUMENT_BYTES_ENV} to allow more)",
        limits.max_bytes
    ))
}

/// Parse `text` as `format`, within the limits of the environment.
pub fn parse(text: &str, format: Format) -> Result<Document, Problem> {
    parse_within(text, format, &Limits::from_env()?)
}

/// Parse `text` as `format`, refusing it past `limits`.
pub fn parse_within(text: &str, format: Format, limits: &Limits) -> Result<Document, Problem> {
    if text.len() > limits.max_bytes {
        return Err(too_large(text.as_bytes(), text.len() as u64, limits));
    }
    // a UTF-8 byte order mark is not part of the document
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(
            Problem::new("", "the file is empty").expected("a Chaos Toolkit experiment document")
        );
    }
    match format {
        Format::Json => {
            check_json_shape(text, limits)?;
            let value: Value = serde_json::from_str(text).map_err(|e| {
                // serde_json's message ends with its own "at line L column C": keep it as data
                let text = e.to_string();
                let message = text
                    .rfind(" at line ")
                    .map_or(text.as_str(), |i| &text[..i]);
                Problem::new("", format!("invalid JSON: {message}")).at(e.line(), e.column())
            })?;
            Ok(Document {
                value,
                spans: Spans::default(),
                pending: Some(text.to_string()),
            })
        }
        Format::Yaml => {
            let walked = walk::walk(text, false, limits)?;
            if walked.documents > 1 {
                return Err(Problem::new(
                    "",
                    format!("the file holds {} YAML documents", walked.documents),
                )
                .expected("a single document (no `---` separating several)"));
            }
            Ok(Document {
                value: walked.value,
                spans: walked.spans,
                pending: None,
            })
        }
    }
}

/// A JSON message (a job, a trigger) → value, within the limits of the environment: a message
/// is as untrusted as a file. Syntax errors read `not JSON: …`; a message past a limit names
/// the limit and where it is crossed.
pub fn parse_json_message(body: &str) -> Result<Value, String> {
    let limits = Limits::from_env().map_err(|p| p.message)?;
    let refused = |p: Problem| {
        let mut text = p.message;
        if let (Some(line), Some(col)) = (p.line, p.column) {
            text.push_str(&format!(" at line {line} column {col}"));
        }
        if let Some(expected) = p.expected {
            text.push_str(&format!(" (expected {expected})"));
        }
        text
    };
    if body.len() > limits.max_bytes {
        return Err(refused(too_large(
            body.as_bytes(),
            body.len() as u64,
            &limits,
        )));
    }
    check_json_shape(body, &limits).map_err(refused)?;
    serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))
}

/// Depth and value count of JSON text, in one pass over its bytes before `serde_json` builds
/// anything. Values are bounded by the separators: each value but a container's first follows
/// a `,` and each key precedes a `:`, so `1 + containers + commas + colons` is at least the
/// number of values and keys, as the YAML walk counts them.
fn check_json_shape(text: &str, limits: &Limits) -> Result<(), Problem> {
    let (mut depth, mut values) = (0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        let refused = match b {
            b'"' => {
                in_string = true;
                None
            }
            b'[' | b'{' => {
                depth += 1;
                values += 1;
                (depth > limits.max_depth).then(|| walk::too_deep(limits))
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                None
            }
            b',' | b':' => {
                values += 1;
                None
            }
            _ => None,
        };
        let refused = refused.or_else(|| {
            (values > limits.max_nodes).then(|| {
                Problem::new(
                    "",
                    format!("the document holds more than {} values", limits.max_nodes),
                )
                .expected(format!("at most {} values", limits.max_nodes))
            })
        });
        if let Some(p) = refused {
            let (line, col) = line_col(&text.as_bytes()[..i]);
            return Err(p.at(line, col));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Document {
        parse(text, Format::Yaml).unwrap()
    }

    #[test]
    fn yaml_scalars_resolve_like_pyyaml() {
        let d = yaml(
            "a: 1\nb: 1.5\nc: 1.0.0\nd: yes\ne: 'yes'\nf: ~\ng: 0x1f\nh: 1e3\ni: -2\nj: 010\nk: 1_000\n",
        );
        assert_eq!(
            d.value,
            json!({"a": 1, "b": 1.5, "c": "1.0.0", "d": true, "e": "yes", "f": null, "g": 31, "h": "1e3", "i": -2, "j": 8, "k": 1000})
        );
    }

    #[test]
    fn yaml_spans_point_at_keys_and_items() {
        let d = yaml("title: t\nmethod:\n  - type: action\n    provider:\n      path: /bin/true\n");
        assert_eq!(d.span("title"), Some((1, 1)));
        assert_eq!(d.span("method"), Some((2, 1)));
        assert_eq!(d.span("method[0]"), Some((3, 5)));
        assert_eq!(d.span("method[0].provider.path"), Some((5, 7)));
        assert_eq!(d.locate("method[0].provider.missing"), Some((4, 5)));
    }

    #[test]
    fn json_spans_come_from_the_same_walk() {
        let mut d = parse(
            "{\n  \"title\": \"t\",\n  \"method\": [\n    {\"name\": \"x\"}\n  ]\n}\n",
            Format::Json,
        )
        .unwrap();
        assert_eq!(d.value, json!({"title": "t", "method": [{"name": "x"}]}));
        assert!(
            d.spans.is_empty(),
            "computed only when a problem needs them"
        );
        d.ensure_spans();
        assert_eq!(d.span("method"), Some((3, 3)));
        assert_eq!(d.span("method[0].name"), Some((4, 6)));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let d = yaml("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n");
        assert_eq!(d.value["use"], json!({"x": 1, "y": 2}));
        assert_eq!(d.value["merged"], json!({"y": 3, "x": 1}));
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let e = parse(
            "title: broken\ndescription: [unclosed\nmethod:\n  - type: action\n",
            Format::Yaml,
        )
        .unwrap_err();
        assert!(e.line.is_some(), "{e}");
        assert!(e.message.starts_with("invalid YAML"), "{e}");
        let e = parse("{\"title\": }", Format::Json).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn empty_files_are_refused_clearly() {
        let e = parse("  \n", Format::Yaml).unwrap_err();
        assert_eq!(e.message, "the file is empty");
    }

    #[test]
    fn format_detection() {
        use std::path::Path;
        assert_eq!(Format::detect(Path::new("a.json"), "x: 1"), Format::Json);
        assert_eq!(Format::detect(Path::new("a.YML"), "{}"), Format::Yaml);
        assert_eq!(
            Format::detect(Path::new("exp"), "  {\"a\": 1}"),
            Format::Json
        );
        assert_eq!(Format::detect(Path::new("exp"), "a: 1"), Format::Yaml);
    }

    fn refused(text: &str, format: Format) -> Problem {
        parse_within(text, format, &Limits::default()).unwrap_err()
    }

    /// `depth` block sequences inside each other, one level per line.
    fn block_nesting(depth: usize) -> String {
        (0..depth)
            .map(|i| format!("{}-\n", " ".repeat(i)))
            .collect::<String>()
            + &" ".repeat(depth)
            + "x\n"
    }

    #[test]
    fn nesting_up_to_the_cap_is_read_and_one_more_level_is_refused_where_it_opens() {
        for (text, format) in [
            (block_nesting(MAX_DEPTH), Format::Yaml),
            (
                format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)),
                Format::Yaml,
            ),
            (
                format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)),
                Format::Json,
            ),
        ] {
            parse_within(&text, format, &Limits::default()).unwrap();
        }
        let e = refused(&block_nesting(MAX_DEPTH + 1), Format::Yaml);
        assert_eq!((e.line, e.column), (Some(101), Some(101)), "{e}");
        assert!(e.message.contains("deeper than 100 levels"), "{e}");
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        for format in [Format::Yaml, Format::Json] {
            let e = refused(&deep, format);
            assert_eq!((e.line, e.column), (Some(1), Some(101)), "{e}");
            assert!(e.message.contains("deeper than 100 levels"), "{e}");
        }
        // brackets inside JSON strings are not nesting
        let quoted = format!("{{\"a\": \"{}\\\"[\"}}", "[".repeat(500));
        parse_within(&quoted, Format::Json, &Limits::default()).unwrap();
    }

    #[test]
    fn very_deep_files_are_refused_without_exhausting_the_stack() {
        let deep = 1_000_000;
        let flow = format!("{}{}", "[".repeat(deep), "]".repeat(deep));
        refused(&flow, Format::Yaml);
        refused(&flow, Format::Json);
        refused(&"- ".repeat(deep), Format::Yaml);
        refused(&"{a: ".repeat(deep), Format::Yaml);
    }

    #[test]
    fn alias_bombs_stop_at_the_value_cap_at_the_alias_that_crosses_it() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = refused(&bomb, Format::Yaml);
        assert!(
            e.message.contains(&format!("more than {MAX_NODES} values")),
            "{e}"
        );
        // a0..a3 hold ~12k values; a4 is 10 aliases of a3 (11111 values each)
        assert_eq!(e.line, Some(5), "{e}");
        // a legitimate alias is expanded
        let d = yaml("base: &b [1, 2]\nuse: [*b, *b]\n");
        assert_eq!(d.value["use"], json!([[1, 2], [1, 2]]));
    }

    #[test]
    fn aliases_cannot_nest_past_the_depth_cap() {
        // each anchor is 60 deep; an alias to it inside another 60 levels is 120
        let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(60), "]".repeat(60));
        let text = format!("a: &a {}\nb: {}\n", deep("1"), deep("*a"));
        let e = refused(&text, Format::Yaml);
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("alias nests the document deeper"), "{e}");
    }

    #[test]
    fn documents_over_the_size_cap_are_refused_where_the_cap_is_crossed() {
        let limits = Limits {
            max_bytes: 20,
            ..Limits::default()
        };
        let e =
            parse_within("title: t\ndescription: too long\n", Format::Yaml, &limits).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(12)), "{e}");
        assert!(
            e.message.contains("31 bytes, over the 20 byte limit"),
            "{e}"
        );
        assert!(
            e.expected
                .as_deref()
                .unwrap()
                .contains(MAX_DOCUMENT_BYTES_ENV),
            "{e}"
        );
        parse_within("title: t\n", Format::Yaml, &limits).unwrap();
    }

    #[test]
    fn byte_counts_for_the_size_cap() {
        for (raw, n) in [
            ("1048576", Some(1_048_576)),
            (" 20_971_520 ", Some(20_971_520)),
        ] {
            assert_eq!(parse_byte_count(raw), n, "{raw}");
        }
        for raw in ["0", "-1", "10MiB", "", "1.5"] {
            assert_eq!(parse_byte_count(raw), None, "{raw}");
        }
    }

    #[test]
    fn non_utf8_text_is_refused_with_its_encoding_or_the_bad_byte() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("title: t\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let e = text_from_bytes(utf16).unwrap_err();
        assert_eq!(e.message, "the file is UTF-16 text");
        let e = text_from_bytes(b"title: t\ndesc: \xC3\xA4 \xFF\n".to_vec()).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(9)), "{e}");
        assert!(e.message.contains("0xFF"), "{e}");
        assert_eq!(text_from_bytes(b"a: 1".to_vec()).unwrap(), "a: 1");
    }
}
