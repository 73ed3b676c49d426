//! The exit codes of both binaries, one table for every command, so a script or a CI gate
//! reads them the same way whichever command it ran.

use std::process::ExitCode;

/// How a command ended, as its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every experiment held, or the command did what it was asked.
    Held,
    /// 1: an experiment deviated or failed, or an input (experiment, suite, variable) is
    /// invalid.
    Failed,
    /// 2: the tool or the cloud failed: a setting, the command line, a backend that cannot be
    /// opened, a journal that cannot be written, an AWS call. Nothing says whether the
    /// experiments held.
    Error,
    /// 3: gave up waiting (`producer submit --wait --timeout`); the work goes on.
    Timeout,
    /// 130: stopped by SIGINT or SIGTERM.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Held => 0,
            Exit::Failed => 1,
            Exit::Error => 2,
            Exit::Timeout => 3,
            Exit::Interrupted => 130,
        }
    }

    /// `Held` if `held`, else `Failed`.
    pub fn held_if(held: bool) -> Exit {
        if held { Exit::Held } else { Exit::Failed }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn the_codes_are_those_the_documentation_promises() {
        let codes = [
            Exit::Held,
            Exit::Failed,
            Exit::Error,
            Exit::Timeout,
            Exit::Interrupted,
        ]
        .map(Exit::code);
        assert_eq!(codes, [0, 1, 2, 3, 130]);
        assert_eq!(Exit::held_if(true), Exit::Held);
        assert_eq!(Exit::held_if(false), Exit::Failed);
    }
}
