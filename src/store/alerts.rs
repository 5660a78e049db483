//! Operator alerts: raised, resolved and acknowledged rows (at most one active per name).
//!
//! Alerts are written from three places: the cycle (through [`Store`]), the no-cycle watchdog
//! and `btcbot alerts --ack` (both through an [`AlertBook`], a second connection that does not
//! take the single-instance lock; WAL lets it write beside the running bot). Every write is one
//! statement, so the writers never interleave halfway.

use super::codec::query_all;
use super::{Store, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// One raise of an alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub detail: String,
    pub raised_wall_ms: i64,
    pub raised_cycle_id: Option<i64>,
    pub raised_market_ms: Option<i64>,
    pub resolved_wall_ms: Option<i64>,
    pub acked_wall_ms: Option<i64>,
}

/// What raising an alert records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRaise<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub detail: &'a str,
    pub wall_ms: i64,
    pub cycle_id: Option<i64>,
    pub market_ms: Option<i64>,
}

/// Inserts a raise unless `name` is already active; the new row's id, or `None`.
fn raise(conn: &Connection, a: &AlertRaise<'_>) -> Result<Option<i64>, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO alerts (name, kind, detail, raised_wall_ms, raised_cycle_id, \
             raised_market_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS \
             (SELECT 1 FROM alerts WHERE name = ?1 AND resolved_wall_ms IS NULL)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                a.name,
                a.kind,
                a.detail,
                a.wall_ms,
                a.cycle_id,
                a.market_ms
            ])
        })
        .map_err(StoreError::sql("raise alert"))?;
    Ok((inserted == 1).then(|| conn.last_insert_rowid()))
}

/// Resolves the active raise of `name`; whether there was one.
fn resolve(conn: &Connection, name: &str, wall_ms: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE alerts SET resolved_wall_ms = ?2 WHERE name = ?1 AND resolved_wall_ms IS NULL",
        )
        .and_then(|mut stmt| stmt.execute(params![name, wall_ms]))
        .map_err(StoreError::sql("resolve alert"))?;
    Ok(n > 0)
}

fn list(conn: &Connection, active_only: bool) -> Result<Vec<AlertRow>, StoreError> {
    let sql = if active_only {
        "SELECT * FROM alerts WHERE resolved_wall_ms IS NULL ORDER BY id"
    } else {
        "SELECT * FROM alerts ORDER BY id"
    };
    query_all(conn, "alerts", sql, [], |c| {
        Ok(AlertRow {
            id: c.i64("id")?,
            name: c.text("name")?,
            kind: c.text("kind")?,
            detail: c.text("detail")?,
            raised_wall_ms: c.i64("raised_wall_ms")?,
            raised_cycle_id: c.opt_i64("raised_cycle_id")?,
            raised_market_ms: c.opt_i64("raised_market_ms")?,
            resolved_wall_ms: c.opt_i64("resolved_wall_ms")?,
            acked_wall_ms: c.opt_i64("acked_wall_ms")?,
        })
    })
}

impl Store {
    /// Raises `a.name` unless it is already active; the new row's id, or `None`.
    ///
    /// # Errors
    /// [`StoreError::Busy`] / [`StoreError::Sqlite`] when SQLite fails.
    pub fn raise_alert(&mut self, a: &AlertRaise<'_>) -> Result<Option<i64>, StoreError> {
        raise(&self.conn, a)
    }

    /// Resolves the active raise of `name`; whether there was one.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn resolve_alert(&mut self, name: &str, wall_ms: i64) -> Result<bool, StoreError> {
        resolve(&self.conn, name, wall_ms)
    }

    /// Alerts, oldest first (`active_only`: unresolved ones).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn alerts(&self, active_only: bool) -> Result<Vec<AlertRow>, StoreError> {
        list(&self.conn, active_only)
    }
}

/// A lock-free writer for alerts beside a running bot (the watchdog, `btcbot alerts --ack`).
pub struct AlertBook {
    conn: Connection,
}

impl AlertBook {
    /// Opens an existing, migrated database.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file is missing; [`StoreError::SchemaOutdated`] /
    /// [`StoreError::SchemaTooNew`] when its schema is not this build's.
    pub fn open(path: &Path) -> Result<AlertBook, StoreError> {
        let conn = super::open_current(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        Ok(AlertBook { conn })
    }

    /// See [`Store::raise_alert`].
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn raise(&self, a: &AlertRaise<'_>) -> Result<Option<i64>, StoreError> {
        raise(&self.conn, a)
    }

    /// See [`Store::resolve_alert`].
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn resolve(&self, name: &str, wall_ms: i64) -> Result<bool, StoreError> {
        resolve(&self.conn, name, wall_ms)
    }

    /// See [`Store::alerts`].
    ///
    /// # Errors
    /// When SQLite fails or a value does not decode.
    pub fn list(&self, active_only: bool) -> Result<Vec<AlertRow>, StoreError> {
        list(&self.conn, active_only)
    }

    /// Acknowledges alert `id` (it stays active until its condition clears); `false` when no
    /// such alert exists.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn ack(&self, id: i64, wall_ms: i64) -> Result<bool, StoreError> {
        let exists: Option<i64> = self
            .conn
            .query_row("SELECT id FROM alerts WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(StoreError::sql("find alert"))?;
        if exists.is_none() {
            return Ok(false);
        }
        self.conn
            .execute(
                "UPDATE alerts SET acked_wall_ms = ?2 WHERE id = ?1 AND acked_wall_ms IS NULL",
                params![id, wall_ms],
            )
            .map_err(StoreError::sql("ack alert"))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raise_at<'a>(name: &'a str, wall_ms: i64) -> AlertRaise<'a> {
        AlertRaise {
            name,
            kind: "mode_at_least",
            detail: "mode reduce_only",
            wall_ms,
            cycle_id: Some(3),
            market_ms: Some(1_000),
        }
    }

    #[test]
    fn one_active_raise_per_name_then_resolve_then_raise_again() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("a.db");
        let mut store =
            Store::open(&path, super::super::Durability::Normal).unwrap_or_else(|e| panic!("{e}"));
        let first = store.raise_alert(&raise_at("mode", 10)).unwrap_or_default();
        assert!(first.is_some());
        assert_eq!(store.raise_alert(&raise_at("mode", 11)).ok(), Some(None));
        // A second connection sees the same row and cannot raise it twice either.
        let book = AlertBook::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(book.raise(&raise_at("mode", 12)).ok(), Some(None));
        assert_eq!(book.list(true).map(|v| v.len()).ok(), Some(1));
        assert!(book.ack(first.unwrap_or(0), 13).unwrap_or(false));
        assert!(!book.ack(999, 13).unwrap_or(true));
        assert!(store.resolve_alert("mode", 20).unwrap_or(false));
        assert!(!store.resolve_alert("mode", 21).unwrap_or(true));
        assert!(store.alerts(true).unwrap_or_default().is_empty());
        assert!(
            store
                .raise_alert(&raise_at("mode", 30))
                .unwrap_or_default()
                .is_some()
        );
        let all = store.alerts(false).unwrap_or_default();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].acked_wall_ms, Some(13));
        assert_eq!(all[0].resolved_wall_ms, Some(20));
        assert_eq!(all[1].resolved_wall_ms, None);
    }
}
