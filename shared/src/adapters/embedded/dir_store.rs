//! The object store on a directory: one file per key under the root.
//!
//! `put` writes a temporary file and renames it over the key (readers see the old or the new
//! object, never half of one); `put_if_absent` writes a temporary file and hard-links it to the
//! key, which the file system refuses atomically when the key exists, so exactly one of any
//! number of concurrent creators wins, across processes.

use crate::ports::store::{ObjectStore, StoreError, check_key};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn backend(key: &str, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend {
        key: key.to_string(),
        message: format!("{what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// Run file-system work on the blocking pool; a panicked task is a backend error on `key`.
async fn blocking<T: Send + 'static>(
    key: &str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend {
            key: key.to_string(),
            message: e.to_string(),
            source: None,
        })?
}

/// Write `bytes` to a fresh temporary file beside `path`.
fn write_temp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", super::db::random_id()));
    std::fs::write(&tmp, bytes)?;
    Ok(tmp)
}

impl ObjectStore for DirStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(key, "reading", e)),
        }
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let (owned, bytes) = (key.to_string(), bytes.to_vec());
        blocking(key, move || {
            let tmp = write_temp(&path, &bytes).map_err(|e| backend(&owned, "writing", e))?;
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                backend(&owned, "renaming into place", e)
            })
        })
        .await
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let (owned, bytes) = (key.to_string(), bytes.to_vec());
        blocking(key, move || {
            let tmp = write_temp(&path, &bytes).map_err(|e| backend(&owned, "writing", e))?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(StoreError::AlreadyExists { key: owned })
                }
                Err(e) => Err(backend(&owned, "creating", e)),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend(key, "deleting", e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let owned = prefix.to_string();
        blocking(prefix, move || {
            let prefix = owned;
            let mut keys = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(backend(&prefix, "listing", e)),
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let name = entry.file_name();
                    if name.to_string_lossy().starts_with(".tmp-") {
                        continue;
                    }
                    if path.is_dir() {
                        dirs.push(path);
                    } else if let Ok(rel) = path.strip_prefix(&root) {
                        let key = rel
                            .to_string_lossy()
                            .replace(std::path::MAIN_SEPARATOR, "/");
                        if key.starts_with(&prefix) {
                            keys.push(key);
                        }
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
    }
}
