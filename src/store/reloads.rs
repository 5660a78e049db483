//! Rule-set reload attempts, good and failed, append-only.

use super::codec::query_all;
use super::{Store, StoreError};
use rusqlite::params;

/// One reload attempt: the new set's hash when it built, and the error when it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadRecord {
    pub ts_ms: i64,
    pub rule_hash: Option<String>,
    pub ok: bool,
    pub error: Option<String>,
}

impl Store {
    /// Appends a reload attempt (its own transaction).
    ///
    /// # Errors
    /// [`StoreError::Busy`] / [`StoreError::Sqlite`] when SQLite fails.
    pub fn record_reload(&mut self, r: &ReloadRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO rule_reloads (ts_ms, rule_hash, ok, error) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![r.ts_ms, r.rule_hash, r.ok, r.error]))
            .map_err(StoreError::sql("record reload"))?;
        Ok(())
    }

    /// Every reload attempt, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn reloads(&self) -> Result<Vec<ReloadRecord>, StoreError> {
        query_all(
            &self.conn,
            "rule_reloads",
            "SELECT * FROM rule_reloads ORDER BY id",
            [],
            |c| {
                Ok(ReloadRecord {
                    ts_ms: c.i64("ts_ms")?,
                    rule_hash: c.opt_text("rule_hash")?,
                    ok: c.bool("ok")?,
                    error: c.opt_text("error")?,
                })
            },
        )
    }
}
