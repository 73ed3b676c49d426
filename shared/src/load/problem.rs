//! A problem found in an input file, with its location as data.
//!
//! Every loader error is a `Problem`: the file, the line and column where known, the field path
//! in the document (`method[2].provider.path`), what is wrong and what was expected. The loader
//! collects all of them rather than stopping at the first, so one `validate` shows everything.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Path of the field in the document, e.g. `method[2].provider.path`; empty for the whole file.
    pub field: String,
    pub message: String,
    pub expected: Option<String>,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            file: None,
            line: None,
            column: None,
            field: field.into(),
            message: message.into(),
            expected: None,
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = u32::try_from(line).ok();
        self.column = u32::try_from(column).ok();
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}", file.display())?,
            None => write!(f, "<input>")?,
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, " (expected {expected})")?;
        }
        Ok(())
    }
}

/// All the problems of one file; the error type of the loader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_field_and_expectation() {
        let mut p = Problem::new("method[2].provider.path", "missing")
            .expected("a path to an executable")
            .at(12, 9);
        p.file = Some(PathBuf::from("exp.json"));
        assert_eq!(
            p.to_string(),
            "exp.json:12:9: method[2].provider.path: missing (expected a path to an executable)"
        );
    }
}
