//! Numbered schema migrations, compiled in with `include_str!` and applied in order. The applied
//! version lives in `PRAGMA user_version`; each migration and its version bump run in one
//! transaction, so a failed migration leaves the previous version intact.

use super::StoreError;
use rusqlite::Connection;

/// `(version, sql)`, strictly increasing from 1. Append new files; never edit an applied one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_recoveries.sql")),
    (3, include_str!("migrations/0003_equity_snapshots.sql")),
    (4, include_str!("migrations/0004_shadow_and_inputs.sql")),
    (5, include_str!("migrations/0005_alerts.sql")),
    (6, include_str!("migrations/0006_cycle_commit_time.sql")),
];

/// The newest schema version this build knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

pub(crate) fn current(conn: &Connection) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(StoreError::sql("read schema version"))
}

/// Brings the schema up to [`latest`]. A no-op on an up-to-date database.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] when the file is ahead of this build; [`StoreError::Migrate`]
/// when a migration fails (it is rolled back).
pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let found = current(conn)?;
    let known = latest();
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let fail = |source| StoreError::Migrate { version, source };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i64 + 1);
        }
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        match apply(&mut conn) {
            Err(StoreError::SchemaTooNew { found, known }) => {
                assert_eq!((found, known), (latest() + 1, latest()));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
