//! A deployment for fleet tests, on either backend: the environment the binaries run with, the
//! store to inspect, and an audit queue subscribed to every broker event (beside the
//! producer's own events queue). The scenarios in `scenarios.rs` run on both.

#![allow(dead_code)]

use aws::{Queue, Store, provision};
use serde_json::Value;
use shared::ports::{JobQueue, ObjectStore};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

// the worker's hostile documents and measure, shared
#[path = "../../../../worker/tests/it/util/hostile.rs"]
pub mod hostile;
pub mod scenarios;

pub const PRODUCER: &str = env!("CARGO_BIN_EXE_producer");

pub fn worker_bin() -> PathBuf {
    // the worker binary is built beside this one (same workspace target directory)
    let p = Path::new(PRODUCER).with_file_name("worker");
    assert!(
        p.exists(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        p.display()
    );
    p
}

pub struct Deployment {
    pub rt: tokio::runtime::Runtime,
    pub env: Vec<(String, String)>,
    pub store: Store,
    pub audit: Queue,
    /// The AWS resources, on moto.
    pub aws: Option<(aws_config::SdkConfig, aws::AwsSettings)>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Deployment {
    /// The embedded backend in `state`.
    pub fn embedded(state: &Path) -> Deployment {
        let rt = runtime();
        let (store, audit) = rt.block_on(async {
            let e = shared::config::Embedded::open(state).await.unwrap();
            for t in provision::ROUTED_DETAIL_TYPES {
                e.bus.subscribe(t, "audit").await.unwrap();
            }
            let db = shared::adapters::embedded::Db::open(&state.join("broker.db")).unwrap();
            (
                Store::Dir(e.store),
                Queue::Sqlite(shared::adapters::embedded::SqliteQueue::new(db, "audit", 3)),
            )
        });
        Deployment {
            rt,
            env: vec![
                ("BROKER_BACKEND".into(), "local".into()),
                ("BROKER_STATE_DIR".into(), state.display().to_string()),
            ],
            store,
            audit,
            aws: None,
        }
    }

    /// A fresh deployment on the moto server `scripts/test.sh` started (its URL in
    /// `BROKER_TEST_AWS_ENDPOINT`): queues, bucket with upload notifications, bus and rule.
    pub fn moto(prefix: &str) -> Deployment {
        let endpoint = std::env::var("BROKER_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
            panic!(
                "BROKER_TEST_AWS_ENDPOINT is not set: run the tests through scripts/test.sh, \
                 which installs and starts the moto server on 127.0.0.1"
            )
        });
        let prefix = format!("{prefix}-{}", std::process::id());
        let rt = runtime();
        let (sdk, settings, audit) = rt.block_on(async {
            let sdk = aws::sdk::emulator(&endpoint).await;
            let settings = provision::deployment(&sdk, &prefix).await.unwrap();
            let audit = provision::queue(&sdk, &format!("{prefix}-audit"), None)
                .await
                .unwrap();
            provision::subscribe(
                &sdk,
                &settings.event_bus,
                &format!("{prefix}-audit"),
                &provision::ROUTED_DETAIL_TYPES,
                &audit,
            )
            .await
            .unwrap();
            (sdk, settings, audit)
        });
        let store = Store::S3(aws::S3Store::new(
            aws::sdk::s3_client(&sdk),
            &settings.bucket,
        ));
        let audit = Queue::Sqs(aws::SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), &audit));
        let mut env: Vec<(String, String)> = [
            ("BROKER_BACKEND", "aws"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            // never reach for an instance metadata service: tests talk to 127.0.0.1 only
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("BROKER_JOBS_QUEUE_URL", settings.jobs_queue_url.as_str()),
            ("BROKER_BUCKET", settings.bucket.as_str()),
            ("BROKER_EVENT_BUS", settings.event_bus.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.push((
            "BROKER_EVENTS_QUEUE_URL".into(),
            settings.events_queue_url.clone().unwrap_or_default(),
        ));
        env.push((
            "BROKER_TRIGGERS_QUEUE_URL".into(),
            settings.triggers_queue_url.clone().unwrap_or_default(),
        ));
        Deployment {
            rt,
            env,
            store,
            audit,
            aws: Some((sdk, settings)),
        }
    }

    /// A command for one of the binaries, with this deployment's environment only.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("BROKER_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn producer(&self, args: &[&str], dir: &Path) -> std::process::Output {
        self.command(PRODUCER, dir).args(args).output().unwrap()
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.rt.block_on(self.store.get(key)).unwrap()
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        self.rt.block_on(self.store.put(key, bytes)).unwrap()
    }

    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.rt.block_on(self.store.list(prefix)).unwrap()
    }

    /// Every event on the audit queue until `done` says the stream is complete.
    pub fn audit_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(60);
        let mut events = Vec::new();
        while !done(&events) {
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}; events so far: {events:#?}"
            );
            let got = self
                .rt
                .block_on(
                    self.audit
                        .receive(10, Duration::from_secs(600), Duration::from_secs(1)),
                )
                .unwrap();
            for m in got {
                let event: Value = serde_json::from_str(&m.body).unwrap();
                check_schema(&event);
                events.push(event);
            }
        }
        events
    }

    /// `producer status --json`.
    pub fn status(&self, dir: &Path, id: &str) -> Value {
        let out = self.producer(&["status", id, "--json"], dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Poll `producer status` until the suite run leaves `running`.
    pub fn wait_for_end(&self, dir: &Path, id: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let doc = self.status(dir, id);
            if doc["status"] != "running" {
                return doc;
            }
            assert!(Instant::now() < until, "the suite did not finish: {doc}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Check an event against the published JSON Schemas (`docs/schemas/events/`): the envelope,
/// then the detail by its type.
pub fn check_schema(event: &Value) {
    let schema = |name: &str| -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/schemas/events")
            .join(format!("{name}.schema.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let check = |schema: Value, value: &Value, what: &str| {
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{what} does not match its schema: {errors:?}\n{value:#}"
        );
    };
    check(schema("envelope"), event, "the envelope");
    let slug = event["detail-type"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .replace(' ', "-");
    check(
        schema(&slug),
        &event["detail"],
        &format!("the {slug} detail"),
    );
}
