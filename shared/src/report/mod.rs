//! Reports of what happened, for people and CI: a suite run (or loose journals) as one
//! self-contained HTML page, Markdown for pull requests and wikis, or JUnit XML; and the
//! resilience score. Pure: plain data in (a suite's status document and its jobs' journals),
//! text out; the binaries read the store and write the file.
//!
//! One job per file: `score` (the 0–100 score and its formula), `facts` (what a report shows
//! of one journal), `timeline` (the SVG of waves, jobs, activities and fault windows), `html`,
//! `markdown`, `junit` (the formats), `text` (escaping and the shared wording of times).
//! Journals are masked when they are written; a report shows them as they are and never
//! unmasks anything. Everything that comes from an experiment or a suite is escaped.

pub mod facts;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod score;
pub mod text;
pub mod timeline;

#[cfg(test)]
mod tests;

use crate::fleet::outcome::{JobOutcome, SuiteOutcome, SuiteStatus};
use crate::model::Journal;
use facts::Facts;
use score::Tally;
use serde_json::Value;

/// A report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    Junit,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "html" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Markdown),
            "junit" | "xml" => Ok(Format::Junit),
            other => Err(format!(
                "`{other}` is not a report format: html, md or junit"
            )),
        }
    }
}

/// A link to a journal: what people read, and where a browser goes (none for an `s3://` URI).
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub text: String,
    pub href: Option<String>,
}

impl Link {
    /// A link to a file on this machine (absolute path: a `file://` URL) or anything else (text
    /// only).
    pub fn to_path(text: &str) -> Link {
        let href = text.starts_with('/').then(|| {
            let mut url = String::from("file://");
            for c in text.chars() {
                match c {
                    'A'..='Z' | 'a'..='z' | '0'..='9' | '/' | '-' | '_' | '.' | '~' => url.push(c),
                    c => {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            url.push_str(&format!("%{b:02X}"));
                        }
                    }
                }
            }
            url
        });
        Link {
            text: text.to_string(),
            href,
        }
    }
}

/// One job of the report.
#[derive(Debug, Clone)]
pub struct Job {
    pub run_id: String,
    pub wave: usize,
    pub source: String,
    /// `pending`, `enqueued` or `completed`.
    pub state: String,
    /// How it ended (from the suite's state, else from its journal); `None`: not run yet.
    pub outcome: Option<JobOutcome>,
    /// Where the journal is in the store.
    pub journal_key: Option<String>,
    pub journal: Option<Journal>,
    /// Why the journal is not shown (it could not be read).
    pub journal_problem: Option<String>,
    pub link: Option<Link>,
}

/// One wave of the report.
#[derive(Debug, Clone)]
pub struct Wave {
    pub on_failure: Option<String>,
    pub jobs: Vec<Job>,
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub suite_run_id: Option<String>,
    pub source: Option<String>,
    /// `None` for loose journals (`worker report`).
    pub status: Option<SuiteStatus>,
    pub outcome: Option<SuiteOutcome>,
    pub problems: Vec<String>,
    pub waves: Vec<Wave>,
    /// When the report was made, as the footer says.
    pub generated: String,
}

impl Report {
    /// A suite run as its status document (`producer status --json`) says, journals not yet
    /// read (fill `journal` and `link` of each job from `journal_key`). Lenient: a field
    /// missing reads as empty.
    pub fn from_status(doc: &Value) -> Report {
        let string = |v: &Value| v.as_str().map(str::to_string);
        let waves = doc["waves"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(w, wave)| Wave {
                on_failure: string(&wave["on_failure"]),
                jobs: wave["jobs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|j| Job {
                        run_id: string(&j["run_id"]).unwrap_or_default(),
                        wave: w,
                        source: string(&j["experiment_source"]).unwrap_or_default(),
                        state: string(&j["state"]).unwrap_or_default(),
                        outcome: serde_json::from_value(j["outcome"].clone()).ok(),
                        journal_key: string(&j["journal_key"]),
                        journal: None,
                        journal_problem: None,
                        link: None,
                    })
                    .collect(),
            })
            .collect();
        let status: Option<SuiteStatus> = serde_json::from_value(doc["status"].clone()).ok();
        let mut waves: Vec<Wave> = waves;
        if status.is_some_and(|s| s != SuiteStatus::Running) {
            // the suite ended: a job without an outcome never ran
            for job in waves.iter_mut().flat_map(|w| w.jobs.iter_mut()) {
                if job.outcome.is_none() {
                    job.state = "not run".into();
                }
            }
        }
        Report {
            name: string(&doc["name"]).unwrap_or_default(),
            suite_run_id: string(&doc["suite_run_id"]),
            source: string(&doc["source"]),
            status,
            outcome: serde_json::from_value(doc["outcome"].clone()).ok(),
            problems: doc["problems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(string)
                .collect(),
            waves,
            generated: crate::clock::now_iso(),
        }
    }

    /// Loose journals (`worker report`): one wave, a job per journal, named after the one
    /// experiment or counted.
    pub fn from_journals(journals: Vec<(Link, Journal)>) -> Report {
        let name = match journals.as_slice() {
            [(_, j)] => j.experiment["title"]
                .as_str()
                .unwrap_or("(untitled experiment)")
                .to_string(),
            many => format!("{} experiments", many.len()),
        };
        let jobs: Vec<Job> = journals
            .into_iter()
            .enumerate()
            .map(|(i, (link, journal))| Job {
                run_id: format!("j{}", i + 1),
                wave: 0,
                source: link.text.clone(),
                state: "completed".into(),
                outcome: Some(JobOutcome::of(&journal)),
                journal_key: None,
                journal: Some(journal),
                journal_problem: None,
                link: Some(link),
            })
            .collect();
        let worst = jobs.iter().filter_map(|j| j.outcome).max();
        Report {
            name,
            suite_run_id: None,
            source: None,
            status: None,
            outcome: worst.map(SuiteOutcome::from),
            problems: Vec::new(),
            waves: vec![Wave {
                on_failure: None,
                jobs,
            }],
            generated: crate::clock::now_iso(),
        }
    }

    /// Every job, wave by wave.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.waves.iter().flat_map(|w| w.jobs.iter())
    }

    /// Every job, to fill in journals and links.
    pub fn jobs_mut(&mut self) -> impl Iterator<Item = &mut Job> {
        self.waves.iter_mut().flat_map(|w| w.jobs.iter_mut())
    }

    pub fn tally(&self) -> Tally {
        Tally::of(self.jobs().map(|j| j.outcome))
    }

    /// The suite's score (loose journals score as an ended suite).
    pub fn score(&self) -> Option<u8> {
        score::suite_score(self.status.unwrap_or(SuiteStatus::Completed), &self.tally())
    }

    /// The report as text in `format`.
    pub fn render(&self, format: Format) -> String {
        let view = View::of(self);
        match format {
            Format::Html => html::render(&view),
            Format::Markdown => markdown::render(&view),
            Format::Junit => junit::render(&view),
        }
    }
}

/// A report with each journal read once, for the renderers.
pub struct View<'a> {
    pub report: &'a Report,
    /// Each job with the facts of its journal, wave by wave.
    pub jobs: Vec<(&'a Job, Option<Facts>)>,
}

impl<'a> View<'a> {
    pub fn of(report: &'a Report) -> View<'a> {
        View {
            report,
            jobs: report
                .jobs()
                .map(|j| (j, j.journal.as_ref().map(Facts::of)))
                .collect(),
        }
    }

    /// The first and last instants of the suite run.
    pub fn span(&self) -> Option<(f64, f64)> {
        self.jobs
            .iter()
            .filter_map(|(_, f)| f.as_ref()?.span())
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    }

    /// A job's title: its experiment's, else its source.
    pub fn title(job: &Job, facts: Option<&Facts>) -> String {
        match facts {
            Some(f) => f.title.clone(),
            None if job.source.is_empty() => job.run_id.clone(),
            None => job.source.clone(),
        }
    }

    /// The word for how a job stands: its outcome, else its state.
    pub fn word(job: &Job) -> &str {
        match job.outcome {
            Some(o) => o.as_str(),
            None if job.state.is_empty() => "not run",
            None => job.state.as_str(),
        }
    }
}
