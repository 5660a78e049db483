//! Single-instance lock: an exclusive advisory lock on `<db>.lock`, held by an open file inside
//! the `Store`. The operating system drops the lock when the process dies, so a crash never
//! leaves a stale lock behind; the pid written into the file only serves the error message.

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub(crate) struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// The sidecar path for a database: the file name with `.lock` appended.
    pub(crate) fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock for `db` or reports who holds it.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another open file (this or another process) holds it;
    /// [`StoreError::LockFile`] when the sidecar cannot be created, locked or written.
    pub(crate) fn acquire(db: &Path) -> Result<InstanceLock, StoreError> {
        let path = Self::path_for(db);
        let io_err = |source| StoreError::LockFile {
            path: path.clone(),
            source,
        };
        // No truncate on open: the holder's pid must survive a failed attempt.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: db.to_path_buf(),
                    holder_pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_err(source)),
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        file.flush().map_err(io_err)?;
        Ok(InstanceLock { _file: file })
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let first = InstanceLock::acquire(&db).unwrap();
        assert_eq!(
            InstanceLock::path_for(&db),
            dir.path().join("state.db.lock")
        );
        match InstanceLock::acquire(&db) {
            Err(StoreError::Locked { holder_pid, path }) => {
                assert_eq!(holder_pid, Some(std::process::id()));
                assert_eq!(path, db);
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(InstanceLock::acquire(&db).is_ok());
    }
}
