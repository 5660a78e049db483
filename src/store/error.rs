//! The store's one error type. Every message is one line and names what failed: the path for
//! open/lock problems, the migration version, or the table and column of a corrupt value.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The parent directory of the database could not be created.
    #[error("cannot create directory {path} for the database: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `<db>.lock` sidecar could not be created, locked or written.
    #[error("cannot use lock file {path}: {source}")]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another live process holds the database's single-instance lock.
    #[error("database {path} is in use by another btcbot ({})", pid_text(*.holder_pid))]
    Locked {
        path: PathBuf,
        /// The pid the holder wrote into the lock file, when it could be read.
        holder_pid: Option<u32>,
    },
    /// SQLite could not open the file or apply the connection settings.
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A numbered migration failed; nothing of it was applied.
    #[error("database migration {version} failed: {source}")]
    Migrate {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer btcbot.
    #[error("database schema version {found} is newer than this btcbot knows (up to {known})")]
    SchemaTooNew { found: i64, known: i64 },
    /// A read-only open found a schema this build would still migrate.
    #[error(
        "database schema version {found} is older than this btcbot's ({known}); \
         open it read-write once to migrate"
    )]
    SchemaOutdated { found: i64, known: i64 },
    /// Another connection kept the database busy past the busy timeout (transient: retry).
    #[error("database busy during {op}: {source}")]
    Busy {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// Any other SQLite failure.
    #[error("database {op} failed: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value does not decode into its domain type.
    #[error("corrupt value in {table}.{column}: {detail}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        detail: String,
    },
    /// Cycles are append-only: this cycle id is already committed.
    #[error("cycle {cycle_id} is already committed (cycles are append-only)")]
    DuplicateCycle { cycle_id: i64 },
    /// An upsert would change what an existing order is (client order id collision).
    #[error(
        "order {client_id} already exists with a different {field}: stored {stored}, new {new}"
    )]
    OrderConflict {
        client_id: String,
        field: &'static str,
        stored: String,
        new: String,
    },
    /// A backtest's database writer thread stopped (see `store/pipe.rs`).
    #[error("database writer stopped: {detail}")]
    WriterStopped { detail: String },
    /// A value handed to the store cannot be stored as given.
    #[error("cannot store {what}: {detail}")]
    InvalidInput { what: &'static str, detail: String },
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

impl StoreError {
    /// `true` when retrying the same call later may succeed (the database was busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }

    /// Maps a SQLite error met during `op`, telling a busy database apart from everything else.
    pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy { op, source }
            }
            _ => StoreError::Sqlite { op, source },
        }
    }

    pub(crate) fn corrupt(
        table: &'static str,
        column: &'static str,
        detail: impl Into<String>,
    ) -> StoreError {
        StoreError::Corrupt {
            table,
            column,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let e = StoreError::Locked {
            path: PathBuf::from("/tmp/x.db"),
            holder_pid: Some(42),
        };
        assert_eq!(
            e.to_string(),
            "database /tmp/x.db is in use by another btcbot (pid 42)"
        );
        let e = StoreError::corrupt("cycles", "equity", "\"abc\" is not a decimal");
        assert_eq!(
            e.to_string(),
            "corrupt value in cycles.equity: \"abc\" is not a decimal"
        );
        assert!(!e.to_string().contains('\n'));
    }
}
