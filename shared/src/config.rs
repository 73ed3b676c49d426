//! Configuration: which adapters back the ports. Without configuration everything is embedded
//! under one state directory (`--state-dir`, env `BROKER_STATE_DIR`, default `.broker`); the
//! AWS backend will be chosen here too, and nowhere else.

use crate::adapters::embedded::{Db, DirStore, SqliteBus, SqliteQueue};
use std::path::{Path, PathBuf};

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = ".broker";
/// Queue names and the bus name, the same on every backend.
pub const JOBS_QUEUE: &str = "jobs";
pub const EVENTS_QUEUE: &str = "events";
pub const BUS: &str = "experiment-broker";
/// A job received this many times without completing is dead-lettered.
pub const MAX_RECEIVE_COUNT: u32 = 3;

/// A setting given in seconds (a command-line flag or its environment variable): finite, more
/// than 0 and at most a day. Both binaries parse their seconds options with it.
pub fn positive_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(value)
    } else {
        Err(format!(
            "`{text}` must be more than 0 and at most 86400 seconds"
        ))
    }
}

/// The embedded ports, all under one state directory.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub state_dir: PathBuf,
    pub jobs: SqliteQueue,
    pub events: SqliteQueue,
    pub bus: SqliteBus,
    pub store: DirStore,
}

impl Embedded {
    /// Open (creating if needed) the state directory: `broker.db` and `store/`. Completion
    /// events are routed to the events queue, as the EventBridge rule does on AWS.
    pub async fn open(state_dir: &Path) -> Result<Embedded, String> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            format!(
                "cannot create the state directory {}: {e}",
                state_dir.display()
            )
        })?;
        let db_path = state_dir.join("broker.db");
        let db =
            Db::open(&db_path).map_err(|e| format!("cannot open {}: {e}", db_path.display()))?;
        let bus = SqliteBus::new(db.clone(), BUS);
        for detail_type in crate::fleet::events::DetailType::ALL {
            bus.subscribe(detail_type.as_str(), EVENTS_QUEUE)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(Embedded {
            state_dir: state_dir.to_path_buf(),
            jobs: SqliteQueue::new(db.clone(), JOBS_QUEUE, MAX_RECEIVE_COUNT),
            events: SqliteQueue::new(db, EVENTS_QUEUE, MAX_RECEIVE_COUNT),
            bus,
            store: DirStore::new(state_dir.join("store")),
        })
    }
}
