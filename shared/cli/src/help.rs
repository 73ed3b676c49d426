//! What both command lines' help shares: the exit-code table, and the rule every argument a
//! user can pass says what it is for (`--help` never shows a bare name); the binaries' unit
//! tests walk their `clap` command tree with [`undocumented`].

/// The exit codes (`cli::Exit`), for the end of both binaries' `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    held: every experiment held, or the command did what it was asked
  1    deviated, failed or invalid
  2    a tool or cloud error (a setting, the backend, an AWS call)
  3    timed out waiting (submit --wait --timeout)
  130  interrupted (SIGINT/SIGTERM)";

/// Every argument of `command` and its subcommands, at any depth, that has no help text, as
/// `command subcommand --flag` (or `<NAME>` for a positional one).
pub fn undocumented(command: &clap::Command) -> Vec<String> {
    let mut found = Vec::new();
    walk(command, command.get_name(), &mut found);
    found
}

fn walk(command: &clap::Command, path: &str, found: &mut Vec<String>) {
    for arg in command.get_arguments() {
        let built_in = matches!(arg.get_id().as_str(), "help" | "version");
        let helped = arg
            .get_help()
            .or(arg.get_long_help())
            .is_some_and(|h| !h.to_string().trim().is_empty());
        if !built_in && !helped {
            let name = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("<{}>", arg.get_id()),
            };
            found.push(format!("{path} {name}"));
        }
    }
    for sub in command.get_subcommands() {
        walk(sub, &format!("{path} {}", sub.get_name()), found);
    }
}

#[cfg(test)]
mod tests {
    use super::undocumented;
    use clap::{Arg, Command};

    #[test]
    fn an_argument_without_help_is_found_at_any_depth() {
        let cmd = Command::new("tool")
            .arg(Arg::new("quiet").long("quiet").help("Say less."))
            .subcommand(
                Command::new("go")
                    .arg(Arg::new("target"))
                    .arg(Arg::new("fast").long("fast").help("")),
            );
        assert_eq!(undocumented(&cmd), ["tool go <target>", "tool go --fast"]);
    }
}
