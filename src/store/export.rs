//! Streaming a table out for `btcbot export`: every row with its column names, values as
//! SQLite holds them (money stays the exact TEXT it was written as).

use super::{Store, StoreError};
use rusqlite::types::ValueRef;

/// The tables `btcbot export --what` can name, and the table each reads.
pub const EXPORTABLE: [(&str, &str); 5] = [
    ("cycles", "cycles"),
    ("decisions", "decisions"),
    ("orders", "orders"),
    ("fills", "fills"),
    ("equity", "equity_snapshots"),
];

/// One exported value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl Store {
    /// Calls `row` with the column names and each row of `what` (see [`EXPORTABLE`]) in
    /// primary-key order.
    ///
    /// # Errors
    /// An unknown `what`, or when SQLite fails.
    pub fn export_table(
        &self,
        what: &str,
        mut row: impl FnMut(&[String], Vec<Cell>) -> Result<(), String>,
    ) -> Result<(), StoreError> {
        let table = EXPORTABLE
            .iter()
            .find(|(name, _)| *name == what)
            .map(|(_, t)| *t)
            .ok_or_else(|| StoreError::InvalidInput {
                what: "export",
                detail: format!(
                    "unknown table {what:?} (one of: {})",
                    EXPORTABLE.map(|(n, _)| n).join(", ")
                ),
            })?;
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .map_err(StoreError::sql("prepare export"))?;
        let columns: Vec<String> = stmt.column_names().map(ToString::to_string).collect();
        let mut rows = stmt.query([]).map_err(StoreError::sql("export"))?;
        while let Some(r) = rows.next().map_err(StoreError::sql("export row"))? {
            let mut cells = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let cell = match r.get_ref(i).map_err(StoreError::sql("export value"))? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Text(v.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Cell::Text(String::from_utf8_lossy(t).into_owned())
                    }
                };
                cells.push(cell);
            }
            row(&columns, cells).map_err(|detail| StoreError::InvalidInput {
                what: "export",
                detail,
            })?;
        }
        Ok(())
    }
}
