//! The SQLite state store: numbered migrations, a single-instance lock, and typed repositories
//! (one file each) that take and return domain types, never rows.
//!
//! What it owns: the file's schema and its durability settings (WAL, `synchronous`, foreign keys,
//! busy timeout), and the one-transaction-per-cycle write in [`Store::commit_cycle`].
//!
//! What it must never do: decide anything. It does not check order transitions, compute PnL or
//! choose a cursor; it stores what the engine hands it, exactly (money is `Decimal` stored as
//! TEXT), and reports a value it cannot decode as [`StoreError::Corrupt`] rather than panicking.
//!
//! Append-only: cycles, anomalies, decisions, fills and reloads. Re-committing a cycle id is
//! [`StoreError::DuplicateCycle`]: a cycle commit is atomic, so after a crash a cycle is either
//! fully present or absent, and the engine resumes at `last_cycle_id() + 1`; a second write for
//! the same id can only be a bug (two writers or a reset counter) and must not overwrite history.
//! Orders are upserted by client id (they change status); script states and the fill cursor are
//! overwritten with the latest value.

mod alerts;
mod codec;
mod cycles;
mod decisions;
mod error;
mod export;
mod fills;
mod group;
pub mod health;
mod lock;
mod meta;
mod migrations;
mod orders;
mod pipe;
mod recoveries;
mod reloads;
mod script_state;
mod shadow;
mod snapshots;
mod streams;
#[cfg(test)]
mod tests;

pub use alerts::{AlertBook, AlertRaise, AlertRow};
pub use cycles::{AnomalyRow, CycleRecord, CycleRow};
pub use decisions::{DecisionRecord, DecisionRow};
pub use error::StoreError;
pub use export::{Cell, EXPORTABLE};
pub use pipe::{Finish, StorePipe};
pub use recoveries::RecoveryRecord;
pub use reloads::ReloadRecord;
pub use shadow::{CycleInputsRecord, ShadowComparison, ShadowCycleRow, ShadowRecord};
pub use snapshots::EquitySnapshot;
pub use streams::{Rows, TradeKey, Trades};

use lock::InstanceLock;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: a power cut may lose the last commits, never corrupt the file.
    /// For dry-run, paper and replay.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it returns. For live trading.
    Full,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// How long a write waits for another connection's lock before failing with
/// [`StoreError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open, migrated database. For a file, also the holder of its single-instance lock.
pub struct Store {
    // Field order matters: the connection closes before the lock is released.
    conn: Connection,
    path: Option<PathBuf>,
    /// Set by [`Store::group_commits`] (backtests).
    group: Option<group::GroupCommit>,
    _lock: Option<InstanceLock>,
}

/// Opens an existing database file beside any running bot (no instance lock) and checks that its
/// schema is exactly this build's.
///
/// # Errors
/// [`StoreError::Open`] when the file is missing or unreadable; [`StoreError::SchemaTooNew`] /
/// [`StoreError::SchemaOutdated`] when its schema is not the one this build knows.
pub(crate) fn open_current(
    path: &Path,
    access: rusqlite::OpenFlags,
) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let flags =
        access | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let found = migrations::current(&conn)?;
    let known = migrations::latest();
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    if found < known {
        return Err(StoreError::SchemaOutdated { found, known });
    }
    Ok(conn)
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`: creates the parent directory, takes
    /// the single-instance lock on `<path>.lock`, turns on WAL and foreign keys, sets the busy
    /// timeout and `synchronous` per `durability`, and applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another live process has the database open;
    /// [`StoreError::CreateDir`], [`StoreError::LockFile`], [`StoreError::Open`] for IO and
    /// SQLite failures; [`StoreError::Migrate`] / [`StoreError::SchemaTooNew`] for the schema.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let lock = InstanceLock::acquire(path)?;
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let journal: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !journal.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), journal, "SQLite refused WAL journal mode");
        }
        Self::configure(conn, Some(path.to_path_buf()), Some(lock), durability)
    }

    /// Opens an existing database for reading only, without the single-instance lock, so
    /// `report`, `export` and `db count` can read while the bot runs (WAL lets readers and the
    /// one writer work side by side). Applies no migrations; every write fails.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file is missing or unreadable;
    /// [`StoreError::SchemaTooNew`] / [`StoreError::SchemaOutdated`] when its schema is not the
    /// one this build knows.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let conn = open_current(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(Store {
            conn,
            path: Some(path.to_path_buf()),
            group: None,
            _lock: None,
        })
    }

    /// A private database in memory (tests, one-shot backtests). No lock, no WAL.
    ///
    /// # Errors
    /// When SQLite cannot allocate the database or a migration fails.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::configure(conn, None, None, Durability::Normal)
    }

    fn configure(
        conn: Connection,
        path: Option<PathBuf>,
        lock: Option<InstanceLock>,
        durability: Durability,
    ) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.clone().unwrap_or_else(|| PathBuf::from(":memory:")),
            source,
        };
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        // The cycle commit alone uses a dozen statements; the default cache of 16 thrashed.
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "synchronous", durability.pragma())
            .map_err(open_err)?;
        let mut store = Store {
            conn,
            path,
            group: None,
            _lock: lock,
        };
        migrations::apply(&mut store.conn)?;
        Ok(store)
    }

    /// The file this store was opened from; `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The applied schema version (the number of the last migration).
    ///
    /// # Errors
    /// When SQLite cannot read the version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::current(&self.conn)
    }

    /// `value → rows` of one column of a table (`cycles.mode`, `decisions.reason_code`,
    /// `orders.status`), counted by SQLite.
    ///
    /// # Errors
    /// An unknown (table, column) pair, or when SQLite fails.
    pub fn count_by(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<Vec<(String, usize)>, StoreError> {
        const ALLOWED: [(&str, &str); 3] = [
            ("cycles", "mode"),
            ("decisions", "reason_code"),
            ("orders", "status"),
        ];
        if !ALLOWED.contains(&(table, column)) {
            return Err(StoreError::InvalidInput {
                what: "count_by",
                detail: format!("{table}.{column} is not countable"),
            });
        }
        codec::query_all(
            &self.conn,
            table,
            &format!(
                "SELECT {column} AS v, COUNT(*) AS n FROM {table} GROUP BY {column} ORDER BY {column}"
            ),
            [],
            |c| {
                Ok((
                    c.text("v")?,
                    usize::try_from(c.i64("n")?).unwrap_or(usize::MAX),
                ))
            },
        )
    }

    /// Committed cycles and the market time of the first and last.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn cycle_span(&self) -> Result<(usize, i64, i64), StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(MIN(market_ts_ms), 0), COALESCE(MAX(market_ts_ms), 0) FROM cycles",
                [],
                |r| Ok((usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?, r.get(2)?)),
            )
            .map_err(StoreError::sql("read cycle span"))
    }

    /// Rows per table (every table of the schema, by name), for `db count`.
    ///
    /// # Errors
    /// When a table cannot be counted.
    pub fn table_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let names = codec::query_all(
            &self.conn,
            "sqlite_schema",
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
            [],
            |c| c.text("name"),
        )?;
        names
            .into_iter()
            .map(|name| {
                let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
                let n: i64 = self
                    .conn
                    .query_row(&sql, [], |row| row.get(0))
                    .map_err(StoreError::sql("count rows"))?;
                Ok((name, n))
            })
            .collect()
    }
}
