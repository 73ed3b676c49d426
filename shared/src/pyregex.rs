//! Python `re` patterns on a Rust regex engine.
//!
//! Regex tolerances are written for Python's `re.search`. `fancy-regex` covers Python's syntax
//! (look-around, backreferences); the differences that change results are translated here:
//! Python's `$` also matches before a final newline (so `v1.2.3$` matches `"v1.2.3\n"`, which
//! is what a process's stdout looks like), `\Z` is Rust's `\z`, and `(?P=name)` is `\k<name>`.

use fancy_regex::Regex;

/// Compile a Python pattern, or say why it is invalid.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate(pattern)).map_err(|e| e.to_string())
}

/// Rewrite the parts of a Python pattern whose meaning differs in `fancy-regex`.
pub fn translate(pattern: &str) -> String {
    let multiline = pattern.starts_with("(?") && {
        let flags: String = pattern[2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        flags.contains('m')
    };
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // a `]` right after `[` or `[^` is a literal in both dialects
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '$' if !in_class && !multiline => out.push_str("(?=\\n?\\z)"),
            '(' if !in_class && chars.peek() == Some(&'?') => {
                let rest: String = chars.clone().take(3).collect();
                if rest == "?P=" {
                    chars.nth(2);
                    let name: String = chars.by_ref().take_while(|c| *c != ')').collect();
                    out.push_str(&format!("\\k<{name}>"));
                } else {
                    out.push('(');
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(p: &str, text: &str) -> bool {
        compile(p).unwrap().is_match(text).unwrap()
    }

    #[test]
    fn dollar_matches_before_a_final_newline() {
        assert!(search(
            r"healthy v\d+\.\d+\.\d+$",
            "service is healthy v1.2.3\n"
        ));
        assert!(search(r"^OK$", "OK"));
        assert!(!search(r"^OK$", "OK\n\n"));
        assert!(search(r"[$]", "cost $5"), "a $ in a class stays literal");
        assert!(search(r"\$5", "cost $5"), "an escaped $ stays literal");
    }

    #[test]
    fn multiline_patterns_keep_line_anchors() {
        assert!(search(r"(?m)^b$", "a\nb\nc"));
    }

    #[test]
    fn python_only_syntax() {
        assert!(search(r"end\Z", "the end"));
        assert!(!search(r"end\Z", "the end\n"));
        assert!(search(r"(?P<w>ab)-(?P=w)", "ab-ab"));
        assert!(search(r"foo(?=bar)", "foobar"));
        assert!(search(r"[]a]", "]"));
    }

    #[test]
    fn invalid_patterns_are_reported() {
        assert!(compile("(unclosed").is_err());
    }
}
