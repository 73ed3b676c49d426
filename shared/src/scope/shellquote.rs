//! Quoting a value for a spot in a `/bin/sh` command line.
//!
//! A `process` activity whose `arguments` is one string runs through `/bin/sh -c`. A value that
//! came from a probe (dynamic configuration: an HTTP body, a command's output) is data from
//! the system under test, so it is quoted for the exact spot it lands in: the line built so far
//! is scanned to know whether that spot is bare, inside '…' or inside "…", and the value is
//! written so that the shell reads it back as one literal piece of text in that spot
//! (POSIX single quotes when bare, `'\''` for a quote inside '…', backslashes before `$`, `` ` ``,
//! `"` and `\` inside "…"). Spots where no quoting is reliable (inside backticks, right after a
//! backslash) are refused rather than guessed. What a command does with its own arguments (say
//! `sh -c "$1"`) is beyond any quoting: the `worker validate` warning says so.

/// Where the next character of a command line lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Bare words: the top level, or the inside of `$(…)`; counts open `(` of subshells.
    Bare(u32),
    Single,
    Double,
    Backtick,
}

/// The quoting state of a command line read from its start.
#[derive(Debug, Clone)]
pub struct ShellLexer {
    stack: Vec<Frame>,
    /// The previous character was an unquoted or double-quoted backslash.
    escaped: bool,
    /// The previous character was a `$` that may start an expansion with what follows.
    dollar: bool,
}

impl Default for ShellLexer {
    fn default() -> Self {
        ShellLexer {
            stack: vec![Frame::Bare(0)],
            escaped: false,
            dollar: false,
        }
    }
}

impl ShellLexer {
    fn top(&self) -> Frame {
        *self.stack.last().unwrap_or(&Frame::Bare(0))
    }

    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            *top = frame;
        }
    }

    /// Read `text` as the next part of the command line.
    pub fn feed(&mut self, text: &str) {
        for c in text.chars() {
            self.feed_char(c);
        }
    }

    fn feed_char(&mut self, c: char) {
        let after_dollar = std::mem::replace(&mut self.dollar, false);
        if self.escaped {
            self.escaped = false;
            return;
        }
        match (self.top(), c) {
            (Frame::Single, '\'') => {
                self.stack.pop();
            }
            (Frame::Single, _) => {}
            (Frame::Backtick, '\\') => self.escaped = true,
            (Frame::Backtick, '`') => {
                self.stack.pop();
            }
            (Frame::Backtick, _) => {}
            (Frame::Double, '\\') => self.escaped = true,
            (Frame::Double, '"') => {
                self.stack.pop();
            }
            (Frame::Double, '`') => self.stack.push(Frame::Backtick),
            (Frame::Double, '(') if after_dollar => self.stack.push(Frame::Bare(0)),
            (Frame::Double, '$') => self.dollar = true,
            (Frame::Double, _) => {}
            (Frame::Bare(_), '\\') => self.escaped = true,
            (Frame::Bare(_), '\'') => self.stack.push(Frame::Single),
            (Frame::Bare(_), '"') => self.stack.push(Frame::Double),
            (Frame::Bare(_), '`') => self.stack.push(Frame::Backtick),
            (Frame::Bare(_), '$') => self.dollar = true,
            (Frame::Bare(_), '(') if after_dollar => self.stack.push(Frame::Bare(0)),
            (Frame::Bare(open), '(') => self.set_top(Frame::Bare(open + 1)),
            (Frame::Bare(0), ')') if self.stack.len() > 1 => {
                self.stack.pop();
            }
            (Frame::Bare(open), ')') => self.set_top(Frame::Bare(open.saturating_sub(1))),
            (Frame::Bare(_), _) => {}
        }
    }

    /// `value` written so that, at the current spot, the shell reads it back literally; the
    /// lexer's state is the same after it as before. `Err` names why the spot cannot be quoted.
    pub fn quote(&self, value: &str) -> Result<String, &'static str> {
        if self.escaped {
            return Err("it follows a backslash");
        }
        if self.stack.contains(&Frame::Backtick) {
            return Err("it is inside a `…` command substitution");
        }
        Ok(match self.top() {
            // `''` first: after a `$`, an opening quote would make `$'…'` (ANSI-C quoting in bash)
            Frame::Bare(_) => {
                let prefix = if self.dollar { "''" } else { "" };
                format!("{prefix}'{}'", value.replace('\'', r"'\''"))
            }
            Frame::Single => value.replace('\'', r"'\''"),
            Frame::Double => {
                // `""` first: after a `$`, the value's first character would start an expansion
                let mut out = String::from(if self.dollar { "\"\"" } else { "" });
                for c in value.chars() {
                    if matches!(c, '$' | '`' | '"' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            }
            Frame::Backtick => unreachable!("refused above"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh` prints for `printf %s <line>` where the line is `before`, the quoted value,
    /// then `after`.
    fn through_sh(before: &str, value: &str, after: &str) -> String {
        let mut lexer = ShellLexer::default();
        lexer.feed(before);
        let line = format!("{before}{}{after}", lexer.quote(value).unwrap());
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {line}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}");
        String::from_utf8(out.stdout).unwrap()
    }

    const HOSTILE: &[&str] = &[
        "plain",
        "it's",
        "x; touch /tmp/eb-never",
        "$(touch /tmp/eb-never)",
        "`touch /tmp/eb-never`",
        "a\"b\\c$HOME'd",
        "line\nbreak",
        "'",
        "''\\'",
        "",
        "(x)",
        "${HOME}",
    ];

    #[test]
    fn a_quoted_value_reads_back_literally_in_every_spot() {
        for value in HOSTILE {
            for (before, after, expected) in [
                ("", "", value.to_string()),
                ("pre-", "-post", format!("pre-{value}-post")),
                ("'in single ", "'", format!("in single {value}")),
                ("\"in double ", "\"", format!("in double {value}")),
                ("\"$(printf %s ", ")\"", value.to_string()),
                ("$(printf %s ", ")", value.split_whitespace().collect()),
                ("'a'\"b\"\\' ", "", format!("ab'{value}")),
                ("$", "", format!("${value}")),
                ("\"$", "\"", format!("${value}")),
            ] {
                let got = through_sh(before, value, after);
                if before == "$" {
                    // dash keeps the `$`; bash reads `$''` as an empty ANSI-C string
                    assert!(got == expected || got == *value, "{got:?}");
                } else if before == "$(printf %s " {
                    // unquoted $(…) output is split into words, then printf %s joins them
                    assert_eq!(got.split_whitespace().collect::<String>(), expected);
                } else {
                    assert_eq!(got, expected, "{before:?} {value:?} {after:?}");
                }
            }
        }
        assert!(!std::path::Path::new("/tmp/eb-never").exists());
    }

    #[test]
    fn spots_without_reliable_quoting_are_refused() {
        for before in ["`echo ", "\"`echo ", "\\", "\"\\"] {
            let mut lexer = ShellLexer::default();
            lexer.feed(before);
            assert!(lexer.quote("x").is_err(), "{before:?}");
        }
    }

    #[test]
    fn the_lexer_follows_quotes_and_substitutions() {
        let state = |text: &str| {
            let mut l = ShellLexer::default();
            l.feed(text);
            (l.top(), l.stack.len())
        };
        assert_eq!(state("echo 'a"), (Frame::Single, 2));
        assert_eq!(state("echo 'a\"'"), (Frame::Bare(0), 1));
        assert_eq!(state("echo \"a'"), (Frame::Double, 2));
        assert_eq!(state("echo \"a\\\"b"), (Frame::Double, 2));
        assert_eq!(state("echo \\'"), (Frame::Bare(0), 1));
        assert_eq!(state("echo $(a (b"), (Frame::Bare(1), 2));
        assert_eq!(state("echo $(a (b) c)"), (Frame::Bare(0), 1));
        assert_eq!(state("echo \"$(a 'b"), (Frame::Single, 4));
        assert_eq!(state("echo `a"), (Frame::Backtick, 2));
        assert_eq!(state("echo (a)"), (Frame::Bare(0), 1));
    }
}
