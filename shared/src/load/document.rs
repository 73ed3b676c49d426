//! Text → JSON value, plus where every field sits in the text.
//!
//! JSON is parsed by `serde_json` (exact JSON semantics). YAML is parsed from `yaml-rust2`'s
//! event stream into the same `serde_json::Value`, resolving plain scalars the way PyYAML does
//! (YAML 1.1: `yes`/`no`/`on`/`off` are booleans, `1.0.0` is a string), because the reference
//! reads YAML with PyYAML. Both formats then go through the same event walk to record the line
//! and column of every field path, which is what lets validation errors point at the source.

use super::problem::Problem;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::Event;
use yaml_rust2::parser::{MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

/// A parsed document and the (line, column) of each field path, both 1-based.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub value: Value,
    pub spans: HashMap<String, (usize, usize)>,
    /// JSON text whose spans are not computed yet: locations are only needed to report
    /// problems, so a valid JSON document never pays for the walk.
    pending: Option<String>,
}

impl Document {
    /// Compute the spans of a JSON document, if not done yet.
    pub fn ensure_spans(&mut self) {
        if let Some(text) = self.pending.take() {
            // a JSON document YAML cannot read (rare) simply has no spans
            self.spans = walk_yaml(&text, true).map(|b| b.spans).unwrap_or_default();
        }
    }

    /// Where a field is, or else where its nearest present parent is.
    pub fn locate(&self, field: &str) -> Option<(usize, usize)> {
        let mut path = field;
        loop {
            if let Some(span) = self.spans.get(path) {
                return Some(*span);
            }
            if path.is_empty() {
                return None;
            }
            // a missing top-level field points at the start of the document
            path = path.rfind(['.', '[']).map_or("", |cut| &path[..cut]);
        }
    }
}

/// Parse `text` as `format`.
pub fn parse(text: &str, format: Format) -> Result<Document, Problem> {
    // a UTF-8 byte order mark is not part of the document
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(
            Problem::new("", "the file is empty").expected("a Chaos Toolkit experiment document")
        );
    }
    match format {
        Format::Json => {
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
                spans: HashMap::new(),
                pending: Some(text.to_string()),
            })
        }
        Format::Yaml => {
            let built = walk_yaml(text, false).map_err(|e| {
                let m = e.marker();
                Problem::new("", format!("invalid YAML: {}", e.info())).at(m.line(), m.col() + 1)
            })?;
            if built.documents > 1 {
                return Err(Problem::new(
                    "",
                    format!("the file holds {} YAML documents", built.documents),
                )
                .expected("a single document (no `---` separating several)"));
            }
            if built.too_large {
                return Err(Problem::new(
                    "",
                    format!(
                        "the document expands to more than {MAX_NODES} values through YAML aliases"
                    ),
                )
                .expected("a document of a reasonable size"));
            }
            Ok(Document {
                value: built.value.unwrap_or(Value::Null),
                spans: built.spans,
                pending: None,
            })
        }
    }
}

/// The most values a document may expand to through aliases (a "billion laughs" guard).
const MAX_NODES: usize = 1_000_000;

fn walk_yaml(text: &str, spans_only: bool) -> Result<Builder, yaml_rust2::ScanError> {
    let mut builder = Builder {
        spans_only,
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true)?;
    Ok(builder)
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

enum Frame {
    Seq {
        items: Vec<Value>,
        path: String,
        anchor: usize,
    },
    /// `located`: whether the mapping's own span is known; block mappings report their start
    /// late (at the first `:`), so the first key's position is used instead.
    Map {
        map: Map<String, Value>,
        path: String,
        anchor: usize,
        key: Option<String>,
        located: bool,
    },
}

/// Builds values from YAML events while recording the location of every path.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    spans: HashMap<String, (usize, usize)>,
    value: Option<Value>,
    /// Only locations are wanted: skip resolving scalars.
    spans_only: bool,
    /// Documents in the stream; only the first is used, and more than one is refused.
    documents: usize,
    /// Values built so far (aliases count their whole size), and each anchor's size.
    nodes: usize,
    anchor_sizes: HashMap<usize, usize>,
    too_large: bool,
}

impl Builder {
    /// The path the next node will have, or `None` when the next node is a mapping key.
    fn next_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, path, .. }) => Some(format!("{path}[{}]", items.len())),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map {
                key: Some(k), path, ..
            }) => Some(if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            }),
        }
    }

    /// Attach a finished node to its parent (or make it the document).
    fn push(&mut self, value: Value, anchor: usize) {
        if self.documents > 1 {
            return;
        }
        self.nodes += 1;
        if anchor > 0 {
            self.anchor_sizes.insert(anchor, count_nodes(&value));
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.value = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => match key.take() {
                None => *key = Some(key_text(&value)),
                Some(k) if k == "<<" => merge_into(map, value),
                Some(k) => {
                    map.insert(k, value);
                }
            },
        }
    }
}

fn key_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => crate::pyvalue::py_str(other),
    }
}

/// YAML merge keys (`<<: *defaults`): keys already present win.
fn merge_into(map: &mut Map<String, Value>, value: Value) {
    let sources = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for source in sources {
        if let Value::Object(src) = source {
            for (k, v) in src {
                map.entry(k).or_insert(v);
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let here = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(path) = self.next_path() {
                    self.spans.entry(path).or_insert(here);
                } else if let Some(Frame::Map { path, located, .. }) = self.stack.last_mut() {
                    // a key: its own line is where the field is
                    let p = if path.is_empty() {
                        text.clone()
                    } else {
                        format!("{path}.{text}")
                    };
                    if !*located {
                        *located = true;
                        self.spans.entry(path.clone()).or_insert(here);
                    }
                    self.spans.insert(p, here);
                }
                let is_key = self.next_path().is_none();
                let value = if is_key {
                    Value::String(text)
                } else if self.spans_only {
                    Value::Null
                } else {
                    resolve_scalar(text, style, tag.as_ref().map(|t| t.suffix.as_str()))
                };
                self.push(value, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.next_path().unwrap_or_default();
                self.spans.entry(path.clone()).or_insert(here);
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    path,
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                let path = self.next_path().unwrap_or_default();
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    path,
                    anchor,
                    key: None,
                    located: false,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (value, anchor) = match frame {
                        Frame::Seq { items, anchor, .. } => (Value::Array(items), anchor),
                        Frame::Map {
                            map,
                            anchor,
                            path,
                            located,
                            ..
                        } => {
                            if !located {
                                self.spans.entry(path).or_insert(here);
                            }
                            (Value::Object(map), anchor)
                        }
                    };
                    self.push(value, anchor);
                }
            }
            Event::Alias(id) => {
                let size = self.anchor_sizes.get(&id).copied().unwrap_or(1);
                let value = if self.nodes + size > MAX_NODES {
                    self.too_large = true;
                    Value::Null
                } else {
                    self.nodes += size - 1;
                    self.anchors.get(&id).cloned().unwrap_or(Value::Null)
                };
                self.push(value, 0);
            }
            Event::DocumentStart => self.documents += 1,
            _ => {}
        }
    }
}

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
        assert_eq!(d.spans.get("title"), Some(&(1, 1)));
        assert_eq!(d.spans.get("method"), Some(&(2, 1)));
        assert_eq!(d.spans.get("method[0]"), Some(&(3, 5)));
        assert_eq!(d.spans.get("method[0].provider.path"), Some(&(5, 7)));
        assert_eq!(d.locate("method[0].provider.missing"), Some((4, 5)));
    }

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
        assert_eq!(d.spans.get("method"), Some(&(3, 3)));
        assert_eq!(d.spans.get("method[0].name"), Some(&(4, 6)));
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
}
