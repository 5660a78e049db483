//! Probes for `btcbot doctor` and `btcbot health`. Each opens its own connection without the
//! single-instance lock, so they work beside a running bot (WAL lets a reader and the one writer
//! share the file), and none applies migrations: a probe never changes the file.

use super::{StoreError, migrations};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// Milliseconds since the epoch from the machine's clock (the commit time of a cycle).
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The schema version of a database file and the one this build migrates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    pub found: i64,
    pub known: i64,
}

/// The newest committed cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCycle {
    pub cycle_id: i64,
    pub market_ts_ms: i64,
    /// When it was committed (machine clock); `None` for a cycle committed before schema 6.
    pub committed_wall_ms: Option<i64>,
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    // SQLite would create a missing file; a probe must not.
    if !path.is_file() {
        return Err(open_err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some("no such database file".into()),
        )));
    }
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(open_err)?;
    Ok(conn)
}

/// Reads the schema version of the file at `path` (read-only).
///
/// # Errors
/// A missing or unreadable file.
pub fn schema_status(path: &Path) -> Result<SchemaStatus, StoreError> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(SchemaStatus {
        found: migrations::current(&conn)?,
        known: migrations::latest(),
    })
}

/// Proves the database takes writes: a row written to `meta` inside a transaction that is
/// rolled back, so nothing changes. Waits up to 2 s for the running bot's write lock.
///
/// # Errors
/// A missing, read-only or locked file, a full disk.
pub fn probe_write(path: &Path) -> Result<(), StoreError> {
    let mut conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::sql("begin probe write"))?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('health_probe', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [wall_ms().to_string()],
    )
    .map_err(StoreError::sql("probe write"))?;
    tx.rollback()
        .map_err(StoreError::sql("roll back probe write"))
}

/// The newest committed cycle, if any (read-only). Works on any schema from 1 on.
///
/// # Errors
/// A missing or unreadable file.
pub fn last_cycle(path: &Path) -> Result<Option<LastCycle>, StoreError> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has_wall = migrations::current(&conn)? >= 6;
    let sql = if has_wall {
        "SELECT cycle_id, market_ts_ms, committed_wall_ms FROM cycles ORDER BY cycle_id DESC LIMIT 1"
    } else {
        "SELECT cycle_id, market_ts_ms, NULL FROM cycles ORDER BY cycle_id DESC LIMIT 1"
    };
    conn.query_row(sql, [], |r| {
        Ok(LastCycle {
            cycle_id: r.get(0)?,
            market_ts_ms: r.get(1)?,
            committed_wall_ms: r.get(2)?,
        })
    })
    .optional()
    .map_err(StoreError::sql("read the last cycle"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CycleRecord, Durability, Store};

    #[test]
    fn probes_read_version_last_cycle_and_write_without_changing_anything() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = tmp.path().join("h.db");
        assert!(schema_status(&path).is_err(), "a missing file is an error");
        assert!(!path.exists(), "and the probe did not create it");
        let mut store = Store::open(&path, Durability::Normal).unwrap_or_else(|e| panic!("{e}"));
        let st = schema_status(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (st.found, st.known),
            (migrations::latest(), migrations::latest())
        );
        assert_eq!(last_cycle(&path).unwrap_or_else(|e| panic!("{e}")), None);
        let before = wall_ms();
        store
            .commit_cycle(&CycleRecord {
                cycle_id: 7,
                market_ts_ms: 1_000,
                ..CycleRecord::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let last = last_cycle(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no cycle"));
        assert_eq!((last.cycle_id, last.market_ts_ms), (7, 1_000));
        assert!(
            last.committed_wall_ms
                .is_some_and(|t| t >= before && t <= wall_ms())
        );
        // The probe writes while the bot holds the file open, and leaves no trace.
        probe_write(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.meta_value("health_probe").ok().flatten(), None);
    }
}
