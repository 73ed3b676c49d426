//! `worker report`: journals on this machine as one report (HTML, Markdown or JUnit). A file
//! that is not a journal is an error naming it; nothing is written then.

use crate::args::ReportArgs;
use anyhow::Context;
use cli::Exit;
use shared::model::Journal;
use shared::report::{Link, Report};
use std::io::Write;

pub fn report(args: ReportArgs) -> anyhow::Result<Exit> {
    let mut journals = Vec::new();
    for path in &args.journals {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let journal: Journal = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a Chaos Toolkit journal", path.display()))?;
        // an absolute path links from wherever the report is opened
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        journals.push((Link::to_path(&shown.display().to_string()), journal));
    }
    let text = Report::from_journals(journals).render(args.format);
    match &args.output {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("writing the report to {}", path.display()))?;
            eprintln!("{} written", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(Exit::Held)
}
