//! Secret masking: every secret value becomes `***` wherever it would be written.
//!
//! The reference copies secrets into journals (an action that echoes a token leaves it in
//! `stdout`). Ours never does: what the engine journals or logs passes through a `Redactor`
//! built from the run's resolved secrets. Tolerances still see the real values; only what
//! leaves the engine is masked. Masking applies to values written by users and activities
//! (the experiment, outputs, errors) — their strings and their map keys — never to the
//! journal's own keys, statuses or timestamps, so a short secret cannot corrupt the journal's
//! structure.
//!
//! A system under test echoes a secret in more forms than the raw one: JSON-escaped (an HTTP
//! body, a process printing JSON) or URL-encoded (a request URL); `forms` lists them. All the
//! forms of all the secrets go into one Aho-Corasick automaton (leftmost-longest, so a secret
//! that contains another is masked whole), built once per `Redactor`: masking a text costs one
//! pass over it however many secrets there are.
//!
//! A text cut by an output cap (`providers::output`) may end with the first part of a secret;
//! that part is masked too.

mod forms;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::{Map, Value};
use std::borrow::Cow;

pub use forms::forms;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    matcher: Matcher,
    /// Every form of every secret, sorted: for numbers (masked when equal to one) and for the
    /// start of a secret left at the end of a cut text.
    forms: Vec<String>,
}

#[derive(Debug, Clone, Default)]
enum Matcher {
    /// No secrets: nothing to mask.
    #[default]
    None,
    Automaton(AhoCorasick),
    /// The automaton could not be built (beyond its size limits): everything is masked, since
    /// nothing can be shown safely.
    Unbuildable,
}

impl Redactor {
    pub fn new(secrets: Vec<String>) -> Self {
        let mut all: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
        all.sort();
        all.dedup();
        if all.is_empty() {
            return Redactor::default();
        }
        let matcher = match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&all)
        {
            Ok(ac) => Matcher::Automaton(ac),
            Err(e) => {
                tracing::error!(
                    "cannot build the secret matcher ({e}): every journaled text is masked whole"
                );
                Matcher::Unbuildable
            }
        };
        Redactor {
            matcher,
            forms: all,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self.matcher, Matcher::None)
    }

    pub fn text(&self, text: &str) -> String {
        self.mask(text).into_owned()
    }

    /// `text`, which something else cut at its end (SSM keeps the first 24,000 characters of
    /// a command's output), masked: the start of a secret at its end is masked too.
    pub fn text_cut(&self, text: &str) -> String {
        self.mask_parts(text, true).into_owned()
    }

    /// `text` masked; borrowed when there was nothing to mask. A text ending with an output
    /// cap's marker was cut just before it.
    fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match crate::providers::output::cut_point(text) {
            None => self.mask_parts(text, false),
            Some(at) => {
                let (kept, marker) = text.split_at(at);
                let mut out = self.mask_parts(kept, true).into_owned();
                out.push_str(marker);
                Cow::Owned(out)
            }
        }
    }

    /// `text` masked; with `cut`, also the start of a secret at its end.
    fn mask_parts<'a>(&self, text: &'a str, cut: bool) -> Cow<'a, str> {
        let ac = match &self.matcher {
            Matcher::None => return Cow::Borrowed(text),
            Matcher::Unbuildable => return Cow::Owned(MASK.to_string()),
            Matcher::Automaton(ac) => ac,
        };
        let partial = |t: &str| if cut { self.partial_tail(t) } else { 0 };
        if !ac.is_match(text) && partial(text) == 0 {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        ac.replace_all_with(text, &mut out, |_, _, dst| {
            dst.push_str(MASK);
            true
        });
        let tail = partial(&out);
        if tail > 0 {
            out.truncate(out.len() - tail);
            out.push_str(MASK);
        }
        Cow::Owned(out)
    }

    /// The length of the longest end of `text` that is the start (and not the whole) of a
    /// secret's form: what remains of a secret cut in two.
    fn partial_tail(&self, text: &str) -> usize {
        let longest = self.forms.iter().map(String::len).max().unwrap_or(0);
        let mut from = text.len().saturating_sub(longest.saturating_sub(1));
        while !text.is_char_boundary(from) {
            from += 1;
        }
        for (i, _) in text[from..].char_indices() {
            let tail = &text[from + i..];
            // the forms starting with `tail` follow it in sorted order
            let at = self.forms.partition_point(|f| f.as_str() < tail);
            let longer = self.forms[at..]
                .iter()
                .take(2)
                .any(|f| f.len() > tail.len() && f.starts_with(tail));
            if longer {
                return tail.len();
            }
        }
        0
    }

    fn contains_secret(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::None => false,
            Matcher::Unbuildable => true,
            Matcher::Automaton(ac) => {
                ac.is_match(text) || crate::providers::output::cut_point(text).is_some()
            }
        }
    }

    /// A journal entry with its activity, output and error masked.
    pub fn run(&self, mut run: crate::model::Run) -> crate::model::Run {
        if self.is_empty() {
            return run;
        }
        self.value(&mut run.activity);
        self.value(&mut run.output);
        if let Some(lines) = &mut run.exception {
            for line in lines.iter_mut() {
                *line = self.text(line);
            }
        }
        run
    }

    /// Mask in place, in every string of the value and every key of its maps (a system under
    /// test may answer `{"<token>": ...}`). Two keys masked alike stay two entries (`***`,
    /// `***#2`).
    pub fn value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.mask(s) {
                    *s = masked;
                }
            }
            Value::Number(n) => {
                let text = n.to_string();
                if self.forms.binary_search(&text).is_ok() {
                    *value = Value::String(MASK.to_string());
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(map) => {
                map.values_mut().for_each(|v| self.value(v));
                if map.keys().any(|k| self.contains_secret(k)) {
                    *map = self.keys(std::mem::take(map));
                }
            }
            _ => {}
        }
    }

    /// `map` with its keys masked, in the same order.
    fn keys(&self, map: Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::with_capacity(map.len());
        for (key, v) in map {
            let masked = self.text(&key);
            let mut unique = masked.clone();
            let mut n = 1;
            while out.contains_key(&unique) {
                n += 1;
                unique = format!("{masked}#{n}");
            }
            out.insert(unique, v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_everywhere_longest_first() {
        let r = Redactor::new(vec!["tok".into(), "tok-123".into(), "".into()]);
        let mut v =
            json!({"stdout": "user tok-123 and tok\n", "list": ["tok-123"], "tok": 1, "n": 5});
        r.value(&mut v);
        // map keys are masked too (issue 11: a system under test may answer {"<token>": ...})
        assert_eq!(
            v,
            json!({"stdout": "user *** and ***\n", "list": ["***"], "***": 1, "n": 5})
        );
        assert_eq!(r.text("Bearer tok-123"), "Bearer ***");
    }

    #[test]
    fn url_encoded_forms_are_masked() {
        let r = Redactor::new(vec!["s3cr3t tok/en".into()]);
        assert_eq!(
            r.text("GET /health?token=s3cr3t+tok%2Fen"),
            "GET /health?token=***"
        );
        assert_eq!(
            r.text("GET /health?token=s3cr3t%20tok%2Fen"),
            "GET /health?token=***"
        );
    }

    /// Every form a system under test plausibly echoes, in the text around it.
    #[test]
    fn every_echoed_form_is_masked() {
        let cases: &[(&str, &str)] = &[
            // (secret, text that carries it)
            ("pa\"ss", r#"{"password": "pa\"ss"}"#),
            ("back\\slash", r#"{"p": "back\\slash"}"#),
            ("two\nlines", r#"{"p": "two\nlines"}"#),
            ("ctl\u{1}x", r#"{"p": "ctl\u0001x"}"#),
            ("gehäim", r#"{"p": "geh\u00e4im"}"#),
            ("gehäim", r#"{"p": "geh\u00E4im"}"#),
            ("gehäim", "{\"p\": \"gehäim\"}"),
            ("key🔑", r#"{"p": "key\ud83d\udd11"}"#),
            ("a/b", r#"{"p": "a\/b"}"#),
            ("x<y>&z", r#"{"p": "x\u003cy\u003e\u0026z"}"#),
            ("s3cr3t tok/en", "GET /?t=s3cr3t+tok%2fen"),
            ("s3cr3t tok/en", "GET /?t=s3cr3t%20tok/en"),
            ("gehäim", "GET /?t=geh%c3%a4im"),
            ("it's(1)!", "GET /?t=it's(1)!"),
        ];
        for (secret, text) in cases {
            let r = Redactor::new(vec![secret.to_string()]);
            let masked = r.text(text);
            assert!(masked.contains(MASK), "{secret:?} in {text:?} → {masked:?}");
            for form in forms(secret) {
                assert!(!masked.contains(&form), "{form:?} left in {masked:?}");
            }
        }
    }

    /// The forms a JSON encoder writes, found in the encoder's real output.
    #[test]
    fn a_process_printing_json_has_its_secrets_masked() {
        let secrets = ["pa\"ss\\word", "gehäim🔑", "tab\tand\u{1}"];
        let r = Redactor::new(secrets.iter().map(|s| s.to_string()).collect());
        let printed =
            serde_json::to_string(&json!({"a": secrets[0], "b": secrets[1], "c": secrets[2]}))
                .unwrap();
        assert_eq!(r.text(&printed), r#"{"a":"***","b":"***","c":"***"}"#);
    }

    #[test]
    fn secrets_in_map_keys_are_masked_and_keys_stay_distinct() {
        let r = Redactor::new(vec!["hunter2".into()]);
        let mut v = json!({"hunter2": 1, "user hunter2": {"hunter2": [2]}, "***": 3, "ok": 4});
        r.value(&mut v);
        assert_eq!(
            v,
            json!({"***": 1, "user ***": {"***": [2]}, "***#2": 3, "ok": 4})
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["***", "user ***", "***#2", "ok"], "order kept");
    }

    #[test]
    fn a_secret_cut_by_an_output_cap_is_masked_in_part() {
        use crate::providers::output::marker;
        let r = Redactor::new(vec!["tok-very-secret".into()]);
        let cut = format!("token tok-very-se{}", marker(12));
        assert_eq!(r.text(&cut), format!("token ***{}", marker(12)));
        // a text not cut keeps what merely looks like the start of a secret
        assert_eq!(r.text("ends in tok"), "ends in tok");
        assert_eq!(r.text_cut("ends in tok"), "ends in ***");
        assert_eq!(r.text_cut("ends in tok-very-secret"), "ends in ***");
        assert_eq!(r.text_cut("ends in nothing"), "ends in nothing");
        let whole = format!("token tok-very-secret and{}", marker(3));
        assert_eq!(r.text(&whole), format!("token *** and{}", marker(3)));
    }

    #[test]
    fn many_secrets_mask_in_one_matcher() {
        let secrets: Vec<String> = (0..1000).map(|i| format!("secret-{i:04}-x")).collect();
        let r = Redactor::new(secrets.clone());
        let text = secrets.join(" | ");
        let masked = r.text(&text);
        assert_eq!(masked, vec![MASK; 1000].join(" | "));
    }

    #[test]
    fn runs_are_masked_but_keep_their_shape() {
        let r = Redactor::new(vec!["node".into(), "hunter2".into()]);
        let run = crate::model::Run {
            activity: json!({"name": "echo", "arguments": ["hunter2"]}),
            output: json!({"status": 0, "stdout": "hunter2 on node\n"}),
            start: "2026-01-01T00:00:00.000000+00:00".into(),
            status: crate::model::RunStatus::Succeeded,
            end: String::new(),
            duration: 0.0,
            exception: Some(vec!["failed for hunter2\n".into()]),
            tolerance_met: None,
        };
        let run = r.run(run);
        assert_eq!(run.activity["arguments"][0], "***");
        assert_eq!(run.output, json!({"status": 0, "stdout": "*** on ***\n"}));
        assert_eq!(run.exception.unwrap()[0], "failed for ***\n");
    }

    #[test]
    fn numeric_secrets_are_masked_too() {
        let r = Redactor::new(vec!["4242".into()]);
        let mut v = json!({"pin": 4242, "other": 42});
        r.value(&mut v);
        assert_eq!(v, json!({"pin": "***", "other": 42}));
    }

    #[test]
    fn no_secrets_mask_nothing() {
        let r = Redactor::new(vec![]);
        assert!(r.is_empty());
        let mut v = json!({"a": "b"});
        r.value(&mut v);
        assert_eq!(v, json!({"a": "b"}));
        assert_eq!(r.text("plain"), "plain");
    }
}
