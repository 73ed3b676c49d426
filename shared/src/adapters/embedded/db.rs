//! The shared SQLite file: opened in WAL mode with a busy timeout, schema applied once.
//!
//! rusqlite is synchronous; every call runs on Tokio's blocking pool (`Db::call`) so a slow
//! lock never stalls the async runtime. A send in this process wakes this process's receivers
//! at once (`sent`); a commit by another process shows as a new `data_version`, which a
//! waiting receiver checks every few milliseconds (a read of shared memory, no transaction). Timestamps come from the wall clock in milliseconds,
//! because leases must mean the same instant to every process sharing the file.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct Db {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    sent: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Open (creating if needed) the database file and apply the schema.
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(include_str!("migrations/0001_init.sql"))?;
        Ok(Db {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            sent: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Wakes the receivers of this process waiting on this file: call after committing a send.
    pub fn sent(&self) -> &tokio::sync::Notify {
        &self.sent
    }

    /// SQLite's `data_version`: it changes when another connection (another process) commits.
    pub async fn data_version(&self) -> rusqlite::Result<i64> {
        self.call(|conn| conn.query_row("PRAGMA data_version", [], |r| r.get(0)))
            .await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .unwrap_or_else(|e| Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub use crate::ids::random_id;
