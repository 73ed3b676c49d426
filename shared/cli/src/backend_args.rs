//! The choice of adapters, as both binaries take it: backend settings from flags, environment and one optional config file, in that order of
//! precedence: `--backend aws|local` (`BROKER_BACKEND`), the AWS resources
//! (`BROKER_JOBS_QUEUE_URL`, `BROKER_EVENTS_QUEUE_URL`, `BROKER_TRIGGERS_QUEUE_URL`,
//! `BROKER_BUCKET`, `BROKER_EVENT_BUS`), the embedded state directory (`BROKER_STATE_DIR`), and
//! `--config FILE` (`BROKER_CONFIG`), a YAML or JSON mapping with the same names in lower case
//! without the `BROKER_` prefix. Credentials, region and endpoint come from the standard AWS
//! chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, instance and task roles).

use aws::{AwsSettings, Backend, Role};
use shared::load::Problem;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Embedded: a SQLite file and a directory under the state directory.
    Local,
    /// SQS, S3 and EventBridge.
    Aws,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackendArgs {
    /// Where the ports live: `local` (embedded, the default) or `aws`.
    #[arg(long, env = "BROKER_BACKEND", value_enum, value_name = "KIND")]
    pub backend: Option<BackendKind>,
    /// The embedded backend's directory (queue, bus and store) [default: .broker].
    #[arg(long, env = "BROKER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// AWS: the jobs queue URL.
    #[arg(long, env = "BROKER_JOBS_QUEUE_URL", value_name = "URL")]
    pub jobs_queue_url: Option<String>,
    /// AWS: the events queue URL (the rule's target; the producer consumes it).
    #[arg(long, env = "BROKER_EVENTS_QUEUE_URL", value_name = "URL")]
    pub events_queue_url: Option<String>,
    /// AWS: the triggers queue URL (schedules, S3 uploads, pipelines).
    #[arg(long, env = "BROKER_TRIGGERS_QUEUE_URL", value_name = "URL")]
    pub triggers_queue_url: Option<String>,
    /// AWS: the bucket for experiments, suites, plans and journals.
    #[arg(long, env = "BROKER_BUCKET", value_name = "NAME")]
    pub bucket: Option<String>,
    /// AWS: the EventBridge bus the broker publishes to.
    #[arg(long, env = "BROKER_EVENT_BUS", value_name = "NAME")]
    pub event_bus: Option<String>,
    /// AWS: the kill switch's SSM parameter (`true` = halted), read by workers beside the
    /// store's flag and written by `producer halt`/`resume`.
    #[arg(long, env = "BROKER_HALT_PARAMETER", value_name = "NAME")]
    pub halt_parameter: Option<String>,
    /// A YAML or JSON file with any of the settings above (lower case, no BROKER_ prefix);
    /// flags and environment win over it.
    #[arg(long, env = "BROKER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The settings after merging, before anything is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Local(PathBuf),
    Aws(AwsSettings),
}

const KEYS: [&str; 8] = [
    "backend",
    "state_dir",
    "jobs_queue_url",
    "events_queue_url",
    "triggers_queue_url",
    "bucket",
    "event_bus",
    "halt_parameter",
];

impl BackendArgs {
    /// Merge flags/env with the config file and check that `role` has what it needs.
    pub fn resolve(&self, role: Role) -> Result<Resolved, String> {
        let mut merged = self.clone();
        if let Some(path) = &self.config {
            let file = read_config(path).map_err(|problems| {
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            merged = merged.or(file);
        }
        merged.check(role)
    }

    /// The kill switch's SSM parameter, from flags/env or the config file (errors in the file
    /// are reported by `resolve`).
    pub fn halt_parameter(&self) -> Option<String> {
        let from_file = || {
            self.config
                .as_ref()
                .and_then(|p| read_config(p).ok())
                .and_then(|f| f.halt_parameter)
        };
        self.halt_parameter
            .clone()
            .or_else(from_file)
            .filter(|p| !p.trim().is_empty())
    }

    fn or(self, file: BackendArgs) -> BackendArgs {
        BackendArgs {
            backend: self.backend.or(file.backend),
            state_dir: self.state_dir.or(file.state_dir),
            jobs_queue_url: self.jobs_queue_url.or(file.jobs_queue_url),
            events_queue_url: self.events_queue_url.or(file.events_queue_url),
            triggers_queue_url: self.triggers_queue_url.or(file.triggers_queue_url),
            bucket: self.bucket.or(file.bucket),
            event_bus: self.event_bus.or(file.event_bus),
            halt_parameter: self.halt_parameter.or(file.halt_parameter),
            config: self.config,
        }
    }

    fn check(self, role: Role) -> Result<Resolved, String> {
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match self.backend.unwrap_or(BackendKind::Local) {
            BackendKind::Local => {
                Ok(Resolved::Local(self.state_dir.unwrap_or_else(|| {
                    PathBuf::from(shared::config::DEFAULT_STATE_DIR)
                })))
            }
            BackendKind::Aws => {
                let mut missing = Vec::new();
                let mut need = |value: &Option<String>, flag: &str, env: &str| {
                    if !present(value) {
                        missing.push(format!("--{flag} (env {env})"));
                    }
                };
                need(
                    &self.jobs_queue_url,
                    "jobs-queue-url",
                    "BROKER_JOBS_QUEUE_URL",
                );
                if role == Role::Producer {
                    need(
                        &self.events_queue_url,
                        "events-queue-url",
                        "BROKER_EVENTS_QUEUE_URL",
                    );
                }
                need(&self.bucket, "bucket", "BROKER_BUCKET");
                need(&self.event_bus, "event-bus", "BROKER_EVENT_BUS");
                if !missing.is_empty() {
                    return Err(format!(
                        "the AWS backend needs {} (the CloudFormation stack's outputs; see infra/README.md)",
                        missing.join(", ")
                    ));
                }
                Ok(Resolved::Aws(AwsSettings {
                    jobs_queue_url: self.jobs_queue_url.unwrap_or_default(),
                    events_queue_url: self.events_queue_url.filter(|s| !s.trim().is_empty()),
                    triggers_queue_url: self.triggers_queue_url.filter(|s| !s.trim().is_empty()),
                    bucket: self.bucket.unwrap_or_default(),
                    event_bus: self.event_bus.unwrap_or_default(),
                }))
            }
        }
    }

    /// Resolve and open the backend.
    pub async fn open(&self, role: Role) -> Result<Backend, String> {
        match self.resolve(role)? {
            Resolved::Local(dir) => Backend::local(&dir).await,
            Resolved::Aws(settings) => Backend::aws(&settings, &aws::sdk::load().await, role).await,
        }
    }
}

/// Read a config file; every problem is reported with its line and column.
pub fn read_config(path: &Path) -> Result<BackendArgs, Vec<Problem>> {
    use shared::load::document::{Format, parse};
    let located = |mut p: Problem| {
        p.file = Some(path.to_path_buf());
        p
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![located(Problem::new(
            "",
            format!("cannot read the config file: {e}"),
        ))]
    })?;
    let mut doc = parse(&text, Format::detect(path, &text)).map_err(|p| vec![located(p)])?;
    let Some(map) = doc.value.as_object().cloned() else {
        return Err(vec![located(
            Problem::new("", "not a mapping").expected("a mapping of settings"),
        )]);
    };
    let mut problems = Vec::new();
    let mut args = BackendArgs::default();
    for (key, value) in &map {
        let at = |doc: &mut shared::load::document::Document, p: Problem| {
            doc.ensure_spans();
            let p = match doc.locate(key) {
                Some((line, col)) => p.at(line, col),
                None => p,
            };
            located(p)
        };
        let Some(text) = value.as_str().map(str::to_string) else {
            problems.push(at(
                &mut doc,
                Problem::new(key.as_str(), "not a string").expected("a string"),
            ));
            continue;
        };
        match key.as_str() {
            "backend" => match text.as_str() {
                "local" => args.backend = Some(BackendKind::Local),
                "aws" => args.backend = Some(BackendKind::Aws),
                _ => problems.push(at(
                    &mut doc,
                    Problem::new(key.as_str(), format!("unknown backend {text:?}"))
                        .expected("local or aws"),
                )),
            },
            "state_dir" => args.state_dir = Some(PathBuf::from(text)),
            "jobs_queue_url" => args.jobs_queue_url = Some(text),
            "events_queue_url" => args.events_queue_url = Some(text),
            "triggers_queue_url" => args.triggers_queue_url = Some(text),
            "bucket" => args.bucket = Some(text),
            "event_bus" => args.event_bus = Some(text),
            "halt_parameter" => args.halt_parameter = Some(text),
            _ => problems.push(at(
                &mut doc,
                Problem::new(key.as_str(), "unknown setting")
                    .expected(format!("one of {}", KEYS.join(", "))),
            )),
        }
    }
    if problems.is_empty() {
        Ok(args)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_args() -> BackendArgs {
        BackendArgs {
            backend: Some(BackendKind::Aws),
            jobs_queue_url: Some("http://q/jobs".into()),
            events_queue_url: Some("http://q/events".into()),
            bucket: Some("b".into()),
            event_bus: Some("bus".into()),
            ..BackendArgs::default()
        }
    }

    #[test]
    fn without_settings_the_backend_is_local_in_the_default_directory() {
        assert_eq!(
            BackendArgs::default().resolve(Role::Producer).unwrap(),
            Resolved::Local(PathBuf::from(".broker"))
        );
    }

    #[test]
    fn aws_names_every_missing_setting_for_the_role() {
        let err = BackendArgs {
            backend: Some(BackendKind::Aws),
            ..BackendArgs::default()
        }
        .resolve(Role::Producer)
        .unwrap_err();
        for name in [
            "BROKER_JOBS_QUEUE_URL",
            "BROKER_EVENTS_QUEUE_URL",
            "BROKER_BUCKET",
            "BROKER_EVENT_BUS",
        ] {
            assert!(err.contains(name), "{err}");
        }
        let worker = BackendArgs {
            events_queue_url: None,
            ..aws_args()
        };
        assert!(
            worker.resolve(Role::Worker).is_ok(),
            "a worker needs no events queue"
        );
        assert!(
            worker
                .resolve(Role::Producer)
                .unwrap_err()
                .contains("BROKER_EVENTS_QUEUE_URL")
        );
    }

    #[test]
    fn flags_win_over_the_config_file_which_fills_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.yaml");
        std::fs::write(
            &path,
            "backend: aws\nbucket: from-file\nevent_bus: file-bus\njobs_queue_url: http://q/jobs\n",
        )
        .unwrap();
        let args = BackendArgs {
            bucket: Some("from-flag".into()),
            config: Some(path),
            ..BackendArgs::default()
        };
        let Resolved::Aws(s) = args.resolve(Role::Worker).unwrap() else {
            panic!("aws expected")
        };
        assert_eq!(
            (s.bucket.as_str(), s.event_bus.as_str()),
            ("from-flag", "file-bus")
        );
    }

    #[test]
    fn config_file_problems_name_the_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.yaml");
        std::fs::write(&path, "backend: cloud\nbuckit: x\nevent_bus: 3\n").unwrap();
        let problems: Vec<String> = read_config(&path)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains("broker.yaml:1:") && problems[0].contains("local or aws"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains(":2:") && problems[1].contains("buckit"),
            "{problems:?}"
        );
        assert!(
            problems[2].contains(":3:") && problems[2].contains("a string"),
            "{problems:?}"
        );
    }
}
