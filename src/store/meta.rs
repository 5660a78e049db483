//! Small key/value facts: the exchange fill cursor.

use super::{Store, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

const FILL_CURSOR: &str = "fill_cursor";

impl Store {
    /// The fill cursor committed with the last cycle; 0 when none was ever stored.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the stored value is not an unsigned integer.
    pub fn fill_cursor(&self) -> Result<u64, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [FILL_CURSOR],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| match e {
                rusqlite::Error::InvalidColumnType(_, _, ty) => StoreError::corrupt(
                    "meta",
                    "value",
                    format!("unexpected {ty} value for {FILL_CURSOR}"),
                ),
                other => StoreError::sql("read fill cursor")(other),
            })?;
        match text {
            None => Ok(0),
            Some(t) => t.parse().map_err(|_| {
                StoreError::corrupt(
                    "meta",
                    "value",
                    format!("{FILL_CURSOR} {t:?} is not an unsigned integer"),
                )
            }),
        }
    }
}

/// Stored as text so the whole `u64` range fits.
pub(crate) fn set_fill_cursor(conn: &Connection, cursor: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute(params![FILL_CURSOR, cursor.to_string()]))
    .map_err(StoreError::sql("store fill cursor"))?;
    Ok(())
}

impl Store {
    /// A small fact stored under `key` (e.g. the ledger's starting balance), if any.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn meta_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(StoreError::sql("read meta"))
    }

    /// Stores `value` under `key` (its own transaction), replacing any previous value.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn set_meta_value(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(StoreError::sql("write meta"))?;
        Ok(())
    }
}
