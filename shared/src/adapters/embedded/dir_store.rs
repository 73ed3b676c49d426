//! The object store on a directory: one file per key under the root.
//!
//! `put` writes a temporary file and renames it over the key (readers see the old or the new
//! object, never half of one); `put_if_absent` writes a temporary file and hard-links it to the
//! key, which the file system refuses atomically when the key exists, so exactly one of any
//! number of concurrent creators wins, across processes. Temporary files are created
//! exclusively and fsynced, and the directory is fsynced after the rename or link
//! (`crate::durable`), so a crash leaves each object whole: old or new.
//!
//! Versioned writes (compare-and-swap) must be atomic across the processes sharing the
//! directory. Every write that replaces or removes an existing object (`put`, `replace_if`,
//! `delete`, `delete_if`) holds an exclusive `flock` on the directory's `.dir-store.lock`
//! while it reads, compares and renames or unlinks; `put_if_absent` needs no lock, since it
//! only acts while the key is absent and a compare-and-swap only acts while it is present. The
//! kernel drops a `flock` when its holder's file closes or its process dies, so a crashed
//! writer never leaves the directory locked (a lock file of our own making, or link/rename
//! tricks, would leave a stale lock or a window without the object). An object's version is a
//! digest of its bytes, computed from one read of one file (files are never written in place),
//! so the bytes and their version always belong together.

use crate::ports::store::{ObjectStore, StoreError, Version, check_key};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The per-directory lock file that serializes replacing writes (never a key).
const DIR_LOCK: &str = ".dir-store.lock";

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
        if key.rsplit('/').next() == Some(DIR_LOCK) {
            return Err(StoreError::InvalidKey {
                key: key.to_string(),
                reason: "ends in .dir-store.lock, which the directory store keeps for itself",
            });
        }
        Ok(self.root.join(key))
    }
}

/// The directory under the root that holds every key starting with `prefix`: its segments
/// before the last `/`, all of them plain names (otherwise the root itself).
fn listed_dir(prefix: &str) -> PathBuf {
    let Some((dir, _)) = prefix.rsplit_once('/') else {
        return PathBuf::new();
    };
    if dir
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'))
    {
        return PathBuf::new();
    }
    PathBuf::from(dir)
}

/// An object's version on this store: two independent 64-bit digests of its bytes and their
/// length. `DefaultHasher::new()` hashes alike within one build, and a version never leaves
/// the process that read it, so versions compare equal exactly when the bytes do (up to a
/// 2^-128 chance).
fn version_of(bytes: &[u8]) -> Version {
    use std::hash::{DefaultHasher, Hasher};
    let digest = |salt: u8| {
        let mut h = DefaultHasher::new();
        h.write_u8(salt);
        h.write(bytes);
        h.finish()
    };
    Version::new(format!(
        "{}-{:016x}{:016x}",
        bytes.len(),
        digest(0),
        digest(1)
    ))
}

/// Hold the exclusive lock on `path`'s directory until the returned file is dropped; `None`
/// when the directory does not exist (so neither does the key).
fn lock_dir(path: &Path) -> std::io::Result<Option<File>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(DIR_LOCK))
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    file.lock()?;
    Ok(Some(file))
}

/// The bytes at `path`, `None` when missing.
fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn mismatch(key: &str, expected: &Version) -> StoreError {
    StoreError::VersionMismatch {
        key: key.to_string(),
        expected: expected.as_str().to_string(),
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

/// Write `bytes` to a fresh, fsynced temporary file beside `path`, created exclusively (never
/// through a symlink); see `crate::durable`.
fn write_temp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    crate::durable::write_temp(dir, bytes)
}

/// Make a rename or link into `path`'s directory durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    crate::durable::sync_dir(path.parent().unwrap_or(Path::new(".")))
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
            let renamed = lock_dir(&path).and_then(|_held| std::fs::rename(&tmp, &path));
            renamed.map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                backend(&owned, "renaming into place", e)
            })?;
            sync_parent(&path).map_err(|e| backend(&owned, "syncing the directory", e))
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
                Ok(()) => {
                    sync_parent(&path).map_err(|e| backend(&owned, "syncing the directory", e))
                }
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
        let owned = key.to_string();
        blocking(key, move || {
            let Some(_held) = lock_dir(&path).map_err(|e| backend(&owned, "locking", e))? else {
                return Ok(());
            };
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(backend(&owned, "deleting", e)),
            }
        })
        .await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        Ok(self.get(key).await?.map(|bytes| {
            let version = version_of(&bytes);
            (bytes, version)
        }))
    }

    async fn replace_if(
        &self,
        key: &str,
        bytes: &[u8],
        version: &Version,
    ) -> Result<Version, StoreError> {
        let path = self.path(key)?;
        let (owned, bytes, expected) = (key.to_string(), bytes.to_vec(), version.clone());
        blocking(key, move || {
            let Some(_held) = lock_dir(&path).map_err(|e| backend(&owned, "locking", e))? else {
                return Err(mismatch(&owned, &expected));
            };
            let current = read(&path).map_err(|e| backend(&owned, "reading", e))?;
            if current.as_deref().map(version_of) != Some(expected.clone()) {
                return Err(mismatch(&owned, &expected));
            }
            let tmp = write_temp(&path, &bytes).map_err(|e| backend(&owned, "writing", e))?;
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                backend(&owned, "renaming into place", e)
            })?;
            sync_parent(&path).map_err(|e| backend(&owned, "syncing the directory", e))?;
            Ok(version_of(&bytes))
        })
        .await
    }

    async fn delete_if(&self, key: &str, version: &Version) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let (owned, expected) = (key.to_string(), version.clone());
        blocking(key, move || {
            let Some(_held) = lock_dir(&path).map_err(|e| backend(&owned, "locking", e))? else {
                return Ok(());
            };
            match read(&path).map_err(|e| backend(&owned, "reading", e))? {
                None => Ok(()),
                Some(current) if version_of(&current) != expected => {
                    Err(mismatch(&owned, &expected))
                }
                Some(_) => match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(backend(&owned, "deleting", e)),
                },
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let owned = prefix.to_string();
        blocking(prefix, move || {
            let prefix = owned;
            let mut keys = Vec::new();
            // only the directory the prefix names is walked, not the whole store: listing a
            // suite run's records costs what they are, whatever else the store holds
            let mut dirs = vec![root.join(listed_dir(&prefix))];
            while let Some(dir) = dirs.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(backend(&prefix, "listing", e)),
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with(crate::durable::TEMP_PREFIX) || name == DIR_LOCK {
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
