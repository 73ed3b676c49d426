//! Durable file writes: a file that is written survives a crash whole or not at all.
//!
//! Journals (`worker run --journal-path`) and the directory store's objects are written the
//! same way: the bytes go to a temporary file created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`,
//! random name) in the target's own directory, the file is fsynced, renamed (or hard-linked,
//! for create-if-absent) over the target, and the directory is fsynced so the new name is on
//! disk too. Exclusive creation refuses any existing name, a symlink planted at the temporary
//! name included, so a write never goes through a link to somewhere else; the rename replaces
//! a symlink at the target itself rather than following it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Temporary files start with this; the directory store skips them when listing.
pub const TEMP_PREFIX: &str = ".tmp-";

/// How many fresh names to try before giving up (a name is only taken by a collision of 128
/// random bits or by something planted there).
const ATTEMPTS: usize = 8;

/// The directory `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replace `path` with `bytes`: readers see the old file or the new one, and after a crash
/// the file is one of the two, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, bytes, random_names())
}

/// Create `path` with `bytes` only if it does not exist (`AlreadyExists` otherwise): the
/// fsynced temporary file is hard-linked to `path`, which the file system refuses atomically
/// when the name is taken, so one of any number of concurrent creators wins.
pub fn create_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let tmp = write_temp_with(dir, bytes, random_names())?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    sync_dir(dir)
}

/// Check that `path` can be written: it is not a directory, and a file can be created in its
/// directory (a temporary file is created there exclusively and removed); the error says why
/// not (no such directory, not a directory, read-only, ...).
pub fn check_writable(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        ));
    }
    let dir = parent_dir(path);
    let (tmp, file) = create_temp(dir, random_names())?;
    drop(file);
    std::fs::remove_file(tmp)
}

/// Write `bytes` to a new, fsynced temporary file in `dir`; the caller renames or links it
/// into place (then calls `sync_dir`) and removes it on failure.
pub fn write_temp(dir: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    write_temp_with(dir, bytes, random_names())
}

/// Fsync a directory, making the names created, renamed or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    names: impl Iterator<Item = String>,
) -> io::Result<()> {
    let dir = parent_dir(path);
    let tmp = write_temp_with(dir, bytes, names)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

fn write_temp_with(
    dir: &Path,
    bytes: &[u8],
    names: impl Iterator<Item = String>,
) -> io::Result<PathBuf> {
    let (tmp, mut file) = create_temp(dir, names)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Create a new file in `dir` under the first free name of `names`; never opens an existing
/// file or follows a symlink.
fn create_temp(dir: &Path, names: impl Iterator<Item = String>) -> io::Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name");
    for name in names.take(ATTEMPTS) {
        let tmp = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn random_names() -> impl Iterator<Item = String> {
    std::iter::repeat_with(|| format!("{TEMP_PREFIX}{}", crate::ids::random_id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        std::fs::write(&path, "old contents, longer than the new ones").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names_in(dir.path()), vec!["journal.json"]);
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("journal.json")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/j.json")), Path::new("/"));
        assert_eq!(parent_dir(Path::new("a/j.json")), Path::new("a"));
    }

    #[test]
    fn a_symlink_planted_at_the_temporary_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = format!("{TEMP_PREFIX}planted");
        std::os::unix::fs::symlink(&victim, dir.path().join(&planted)).unwrap();
        let path = dir.path().join("journal.json");
        // the first name is taken by the symlink: the write moves on to a fresh name
        let names = [planted.clone(), format!("{TEMP_PREFIX}fresh")].into_iter();
        write_atomically_with(&path, b"journal", names).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"journal");
        assert!(
            std::fs::symlink_metadata(dir.path().join(&planted))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // only the planted name: the write fails rather than follow it
        let err = write_atomically_with(&path, b"other", [planted].into_iter()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"journal");
    }

    #[test]
    fn a_dangling_symlink_at_the_temporary_name_creates_nothing_at_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("created-through-link");
        let planted = format!("{TEMP_PREFIX}dangling");
        std::os::unix::fs::symlink(&target, dir.path().join(&planted)).unwrap();
        let path = dir.path().join("out");
        assert!(write_atomically_with(&path, b"x", [planted].into_iter()).is_err());
        assert!(!target.exists());
        assert!(!path.exists());
    }

    #[test]
    fn create_atomically_refuses_an_existing_file_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        create_atomically(&path, b"first").unwrap();
        let err = create_atomically(&path, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(names_in(dir.path()), vec!["key"]);
    }

    #[test]
    fn an_unwritable_directory_is_reported_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("journal.json")).unwrap();
        assert!(names_in(dir.path()).is_empty(), "the probe file is removed");
        let missing = dir.path().join("missing").join("journal.json");
        assert_eq!(
            check_writable(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // a directory path through a regular file cannot be written, even by root
        std::fs::write(dir.path().join("file.txt"), "").unwrap();
        assert!(check_writable(&dir.path().join("file.txt").join("journal.json")).is_err());
        assert!(write_atomically(&missing, b"x").is_err());
        // a directory at the path itself could never be replaced by the file
        assert_eq!(
            check_writable(dir.path()).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
    }
}
