//! Tag and attribute patterns: `*` (any run of characters) and `?` (one character), as EC2 tag
//! filters have them.

use super::{Candidate, Selector};

/// `*` and `?` glob match over characters.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    pi = bp + 1;
                    ti = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub(super) fn matches_selector(c: &Candidate, s: &Selector) -> bool {
    s.tags
        .iter()
        .all(|(k, pattern)| c.tags.get(k).is_some_and(|v| matches(pattern, v)))
        && s.filters.iter().all(|(attr, accepted)| {
            c.attributes
                .get(attr)
                .is_some_and(|v| accepted.iter().any(|p| matches(p, v)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns_match_as_ec2_tag_filters_do() {
        for (pattern, text, expected) in [
            ("web-*", "web-1", true),
            ("web-*", "web-", true),
            ("web-*", "db-1", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("w?b-1", "web-1", true),
            ("w?b-1", "wb-1", false),
            ("*-1", "web-1", true),
            ("*b*1", "web-1", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**", "anything", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("é*", "été", true),
        ] {
            assert_eq!(matches(pattern, text), expected, "{pattern:?} ~ {text:?}");
        }
    }
}
