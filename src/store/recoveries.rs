//! Start-up recovery reports: what was found unresolved at start and what became of it.

use super::{Store, StoreError};
use rusqlite::params;

/// One start's recovery: orders found in `submitting`/`unknown`, how many were resolved, and a
/// line per order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRecord {
    pub ts_ms: i64,
    pub found: u32,
    pub resolved: u32,
    pub lines: Vec<String>,
}

impl Store {
    /// Appends a recovery report (its own transaction).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn record_recovery(&mut self, r: &RecoveryRecord) -> Result<(), StoreError> {
        let report = serde_json::to_string(&r.lines).map_err(|e| StoreError::InvalidInput {
            what: "recovery report",
            detail: e.to_string(),
        })?;
        self.conn
            .execute(
                "INSERT INTO recoveries (ts_ms, found, resolved, report) VALUES (?1, ?2, ?3, ?4)",
                params![r.ts_ms, r.found, r.resolved, report],
            )
            .map_err(StoreError::sql("record recovery"))?;
        Ok(())
    }

    /// Every recovery report, oldest first.
    ///
    /// # Errors
    /// When SQLite fails or a stored report is not a JSON array of strings.
    pub fn recoveries(&self) -> Result<Vec<RecoveryRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT ts_ms, found, resolved, report FROM recoveries ORDER BY id")
            .map_err(StoreError::sql("read recoveries"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, u32>(1)?,
                    row.get::<_, u32>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(StoreError::sql("read recoveries"))?;
        let mut out = Vec::new();
        for row in rows {
            let (ts_ms, found, resolved, report) =
                row.map_err(StoreError::sql("read recoveries"))?;
            let lines: Vec<String> =
                serde_json::from_str(&report).map_err(|e| StoreError::Corrupt {
                    table: "recoveries",
                    column: "report",
                    detail: e.to_string(),
                })?;
            out.push(RecoveryRecord {
                ts_ms,
                found,
                resolved,
                lines,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips() {
        let mut s = Store::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let r = RecoveryRecord {
            ts_ms: 5,
            found: 2,
            resolved: 1,
            lines: vec!["a: open".into(), "b: still unknown".into()],
        };
        s.record_recovery(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.recoveries().unwrap_or_else(|e| panic!("{e}")), vec![r]);
        assert_eq!(
            s.schema_version().unwrap_or_else(|e| panic!("{e}")),
            super::super::migrations::latest()
        );
    }
}
