//! Write units and group commit.
//!
//! Every write the cycle makes (a cycle commit, an order's outbox row) is one all-or-nothing
//! unit. Normally a unit is its own transaction, so it is on disk before the cycle goes on.
//! A backtest has nothing to lose to a crash (the run is simply repeated) and writes thousands
//! of cycles a second, so it may group units: each one becomes a savepoint inside a transaction
//! that is committed every `every` units and when the run ends ([`Store::flush`], or the drop of
//! the store). A unit that fails is rolled back to its savepoint, so the units before it are
//! still committed.

use super::{Store, StoreError};
use rusqlite::{Connection, TransactionBehavior};

/// The open group transaction of a store with group commit on.
#[derive(Debug)]
pub(super) struct GroupCommit {
    every: u32,
    pending: u32,
    open: bool,
}

impl Store {
    /// Groups up to `every` write units into one transaction (for backtests: a crash loses the
    /// uncommitted units, which a repeated run writes again). `every` ≤ 1 turns grouping off.
    ///
    /// # Errors
    /// When committing the units already grouped fails.
    pub fn group_commits(&mut self, every: u32) -> Result<(), StoreError> {
        self.flush()?;
        self.group = (every > 1).then_some(GroupCommit {
            every,
            pending: 0,
            open: false,
        });
        Ok(())
    }

    /// Commits the grouped units written so far (nothing to do without group commit).
    ///
    /// # Errors
    /// When SQLite cannot commit.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(g) = self.group.as_mut().filter(|g| g.open) {
            self.conn
                .execute_batch("COMMIT")
                .map_err(StoreError::sql("commit grouped writes"))?;
            g.open = false;
            g.pending = 0;
        }
        Ok(())
    }

    /// Whether the next write unit is the last of its group, so committed with it (always true
    /// without group commit): what only a group's end needs is written with that unit.
    pub fn next_unit_closes_group(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.pending + 1 >= g.every)
    }

    /// Units written in the open group (0 without group commit).
    pub(crate) fn group_pending(&self) -> u32 {
        self.group.as_ref().map_or(0, |g| g.pending)
    }

    /// Runs `write` as one all-or-nothing unit (`what` names it in errors).
    pub(super) fn write_unit<T>(
        &mut self,
        what: &'static str,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(group) = self.group.as_mut() else {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::sql(what))?;
            let out = write(&tx)?;
            tx.commit().map_err(StoreError::sql(what))?;
            return Ok(out);
        };
        let result = Self::grouped_unit(&mut self.conn, group, what, write);
        if result.is_err() {
            // An error may have ended the whole transaction (SQLite rolls back on a full disk or
            // an IO error): follow SQLite, so the next unit starts a new group rather than
            // writing outside one. A failed COMMIT that left it open is retried by the flush.
            group.open = !self.conn.is_autocommit();
            if !group.open {
                group.pending = 0;
            }
        }
        result
    }

    fn grouped_unit<T>(
        conn: &mut Connection,
        group: &mut GroupCommit,
        what: &'static str,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !group.open {
            conn.execute_batch("BEGIN IMMEDIATE")
                .map_err(StoreError::sql(what))?;
            group.open = true;
        }
        // Dropped on an error: rolls back to the savepoint, keeping the earlier units.
        let unit = conn.savepoint().map_err(StoreError::sql(what))?;
        let out = write(&unit)?;
        unit.commit().map_err(StoreError::sql(what))?;
        group.pending += 1;
        if group.pending >= group.every {
            conn.execute_batch("COMMIT")
                .map_err(StoreError::sql(what))?;
            group.open = false;
            group.pending = 0;
        }
        Ok(out)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("store: grouped writes not committed: {e}");
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::{CycleRecord, Durability};

    /// A minimal cycle record (also used by the pipe's tests).
    pub(in crate::store) fn record(cycle_id: i64) -> CycleRecord {
        CycleRecord {
            cycle_id,
            market_ts_ms: 1_000 * cycle_id,
            rule_hash: "h".into(),
            fingerprint: format!("f{cycle_id}"),
            ..CycleRecord::default()
        }
    }

    fn committed(path: &std::path::Path) -> Option<i64> {
        Store::open_read_only(path)
            .and_then(|s| s.last_cycle_id())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_unit_that_closes_a_group_is_known_before_it_is_written() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store = Store::open(&tmp.path().join("g.db"), Durability::Normal)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            store.next_unit_closes_group(),
            "every unit, without grouping"
        );
        store.group_commits(3).unwrap_or_else(|e| panic!("{e}"));
        let mut closing = Vec::new();
        for id in 1..=7 {
            closing.push(store.next_unit_closes_group());
            store
                .commit_cycle(&record(id))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(closing, [false, false, true, false, false, true, false]);
        store.flush().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !store.next_unit_closes_group(),
            "a fresh group after the flush"
        );
    }

    #[test]
    fn grouped_cycles_reach_other_readers_every_n_units_and_on_flush() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("g.db");
        let mut store = Store::open(&path, Durability::Normal).unwrap_or_else(|e| panic!("{e}"));
        store.group_commits(3).unwrap_or_else(|e| panic!("{e}"));
        for id in 1..=4 {
            store
                .commit_cycle(&record(id))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // Three units were committed together; the fourth waits in the open transaction.
        assert_eq!(committed(&path), Some(3));
        assert_eq!(store.last_cycle_id().ok().flatten(), Some(4));
        store.flush().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(committed(&path), Some(4));
        store
            .commit_cycle(&record(5))
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        assert_eq!(committed(&path), Some(5), "dropping the store commits");
    }

    fn order(qty: &str) -> crate::domain::Order {
        use crate::domain::{Order, OrderStatus, Price, Qty, Side, Symbol};
        let d = |v: &str| {
            v.parse::<rust_decimal::Decimal>()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        Order {
            client_id: "c1".into(),
            exchange_id: None,
            symbol: Symbol::new("BTCTRY").unwrap_or_else(|e| panic!("{e}")),
            side: Side::Buy,
            price: Price::new(d("100")).unwrap_or_else(|e| panic!("{e}")),
            qty: Qty::new(d(qty)).unwrap_or_else(|e| panic!("{e}")),
            filled_qty: Qty::ZERO,
            status: OrderStatus::Open,
            cycle_id: 1,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    #[test]
    fn a_failed_unit_is_rolled_back_and_the_units_before_it_are_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("g.db");
        let mut store = Store::open(&path, Durability::Normal).unwrap_or_else(|e| panic!("{e}"));
        store.group_commits(100).unwrap_or_else(|e| panic!("{e}"));
        let mut first = record(1);
        first.orders = vec![order("1")];
        store.commit_cycle(&first).unwrap_or_else(|e| panic!("{e}"));
        // The order upsert fails after cycle 2's row is written: the whole unit goes.
        let mut conflicting = record(2);
        conflicting.orders = vec![order("2")];
        assert!(matches!(
            store.commit_cycle(&conflicting),
            Err(StoreError::OrderConflict { .. })
        ));
        store
            .commit_cycle(&record(3))
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let reader = Store::open_read_only(&path).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<i64> = reader
            .cycles()
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|c| c.cycle_id)
            .collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(reader.orders().unwrap_or_else(|e| panic!("{e}")).len(), 1);
    }
}
