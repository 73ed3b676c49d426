//! The selection modes as experiments write them: `ALL`, `COUNT(n)`, `PERCENT(n)`, `RANDOM`,
//! `NAMED_LIST`.

use super::Mode;

/// Why a selection mode is refused; each names the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// `COUNT(n)` or `PERCENT(n)` whose `number` is not a whole number.
    #[error("{text:?}: {number:?} is not a whole number")]
    NotANumber { text: String, number: String },
    #[error("{text:?}: a percentage is at most 100")]
    OverHundred { text: String },
    #[error(
        "unknown selection mode {text:?} (expected ALL, COUNT(n), PERCENT(n), RANDOM or NAMED_LIST)"
    )]
    Unknown { text: String },
    #[error("NAMED_LIST names no target")]
    NoTargets,
}

impl ModeError {
    /// Whether `text` is in the message (tests and callers that only look).
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }
}

impl Mode {
    /// `ALL`, `COUNT(2)`, `PERCENT(25)`, `RANDOM`, `NAMED_LIST` (with `ids`); case-insensitive.
    pub fn parse(text: &str, ids: &[String]) -> Result<Mode, ModeError> {
        let upper = text.trim().to_ascii_uppercase();
        let number = |inner: &str| -> Result<u32, ModeError> {
            inner
                .trim()
                .parse::<u32>()
                .map_err(|_| ModeError::NotANumber {
                    text: text.to_string(),
                    number: inner.to_string(),
                })
        };
        let mode = match upper.as_str() {
            "ALL" => Mode::All,
            "RANDOM" => Mode::Random,
            "NAMED_LIST" | "IDS" => Mode::Ids(ids.to_vec()),
            u if u.starts_with("COUNT(") && u.ends_with(')') => {
                Mode::Count(number(&u[6..u.len() - 1])?)
            }
            u if u.starts_with("PERCENT(") && u.ends_with(')') => {
                let n = number(&u[8..u.len() - 1])?;
                if n > 100 {
                    return Err(ModeError::OverHundred {
                        text: text.to_string(),
                    });
                }
                Mode::Percent(n)
            }
            _ => {
                return Err(ModeError::Unknown {
                    text: text.to_string(),
                });
            }
        };
        if matches!(&mode, Mode::Ids(ids) if ids.is_empty()) {
            return Err(ModeError::NoTargets);
        }
        Ok(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_written_in_experiments() {
        let ids = vec!["i-1".to_string()];
        for (text, expected) in [
            ("ALL", Ok(Mode::All)),
            ("all", Ok(Mode::All)),
            ("RANDOM", Ok(Mode::Random)),
            ("COUNT(2)", Ok(Mode::Count(2))),
            ("count( 3 )", Ok(Mode::Count(3))),
            ("PERCENT(25)", Ok(Mode::Percent(25))),
            ("NAMED_LIST", Ok(Mode::Ids(ids.clone()))),
        ] {
            assert_eq!(Mode::parse(text, &ids), expected, "{text}");
        }
        for (text, needle) in [
            ("SOME", "unknown selection mode"),
            ("COUNT(x)", "not a whole number"),
            ("COUNT(-1)", "not a whole number"),
            ("PERCENT(101)", "at most 100"),
            ("COUNT(2", "unknown selection mode"),
        ] {
            assert!(
                Mode::parse(text, &ids).unwrap_err().contains(needle),
                "{text}"
            );
        }
        assert!(
            Mode::parse("NAMED_LIST", &[])
                .unwrap_err()
                .contains("names no target")
        );
    }
}
