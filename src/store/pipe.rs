//! The store as the cycle uses it: written in place, or, for a backtest with group commit, by a
//! writer thread while the next cycles run.
//!
//! A backtest's main thread was the bound of its speed, and ~15% of it went to SQLite. Grouped
//! units are not on disk before the cycle goes on anyway (see `group.rs`), so nothing is lost by
//! writing them on the other core: the writer applies the units in the order the cycle made
//! them, each the same all-or-nothing unit as before, handed over 32 at a time. A failed unit
//! stops the writer (the units after it are not written) and its error is returned by a later
//! call: with up to 32 units being gathered and 4 hand-overs queued, up to ~190 units later
//! than it would in place. The committed prefix is the same: the units before the failed one.
//!
//! Anything else (reads, alerts, reload records, recovery) waits until the writer has caught
//! up and then runs in place ([`StorePipe::with`]).

use super::{CycleRecord, Store, StoreError};
use crate::domain::Order;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Units handed to the writer at a time: waking it for each cycle cost the cycle's thread
/// more than the write it saved.
const BATCH_UNITS: usize = 32;
/// Batches queued ahead of the writer, so memory stays flat.
const QUEUED_BATCHES: usize = 4;

/// What completes a cycle's record before it is written (its fingerprint, its explain inputs):
/// on the writer thread when there is one, so the cycle does not wait for it.
pub type Finish = Box<dyn FnOnce(&mut CycleRecord) + Send>;

enum Unit {
    Cycle(Box<CycleRecord>, Option<Finish>),
    Orders(Vec<Order>),
    ScriptStates(i64, Vec<(String, String)>),
    /// Answered once every unit before it is written.
    CaughtUp(SyncSender<()>),
}

struct Writer {
    units: SyncSender<Vec<Unit>>,
    batch: Vec<Unit>,
    thread: Option<JoinHandle<()>>,
    failure: Arc<Mutex<Option<StoreError>>>,
    /// The group state the writer will be in once it has written what was sent: the store's
    /// `next_unit_closes_group` as the cycle must see it.
    every: u32,
    pending: u32,
}

/// The cycle's store (see the module docs).
pub struct StorePipe {
    store: Arc<Mutex<Store>>,
    writer: Option<Writer>,
    /// A writer failure was reported once; everything after it fails.
    stopped: bool,
}

fn stopped(detail: &str) -> StoreError {
    StoreError::WriterStopped {
        detail: detail.to_string(),
    }
}

fn lock(store: &Mutex<Store>) -> Result<MutexGuard<'_, Store>, StoreError> {
    store
        .lock()
        .map_err(|_| stopped("the database writer panicked"))
}

fn write(store: &Mutex<Store>, unit: Unit) -> Result<(), StoreError> {
    let mut store = lock(store)?;
    match unit {
        Unit::Cycle(mut record, finish) => {
            if let Some(finish) = finish {
                finish(&mut record);
            }
            store.commit_cycle(&record)
        }
        Unit::Orders(orders) => store.upsert_orders(&orders),
        Unit::ScriptStates(cycle_id, rows) => store.save_script_states(cycle_id, &rows),
        Unit::CaughtUp(_) => Ok(()),
    }
}

fn run_writer(
    store: &Mutex<Store>,
    batches: &Receiver<Vec<Unit>>,
    failure: &Mutex<Option<StoreError>>,
) {
    let mut failed = false;
    for unit in batches.iter().flatten() {
        if let Unit::CaughtUp(answer) = unit {
            let _ = answer.send(());
            continue;
        }
        if failed {
            continue;
        }
        if let Err(e) = write(store, unit) {
            failed = true;
            if let Ok(mut slot) = failure.lock() {
                *slot = Some(e);
            }
        }
    }
}

impl StorePipe {
    /// Writes in place.
    pub fn new(store: Store) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            writer: None,
            stopped: false,
        }
    }

    /// Groups `every` units per transaction (see [`Store::group_commits`]) and, with `every`
    /// above 1, writes them on a writer thread (in place when no thread can start).
    ///
    /// # Errors
    /// When the units already written cannot be committed.
    pub fn group_commits(&mut self, every: u32) -> Result<(), StoreError> {
        self.with(|s| s.group_commits(every))?;
        self.stop_writer()?;
        if every <= 1 {
            return Ok(());
        }
        let (units, received) = sync_channel::<Vec<Unit>>(QUEUED_BATCHES);
        let failure = Arc::new(Mutex::new(None));
        let (store, slot) = (Arc::clone(&self.store), Arc::clone(&failure));
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(&store, &received, &slot));
        match thread {
            Ok(thread) => {
                self.writer = Some(Writer {
                    units,
                    batch: Vec::with_capacity(BATCH_UNITS),
                    thread: Some(thread),
                    failure,
                    every,
                    pending: 0,
                });
            }
            Err(e) => tracing::warn!("store: writing on the cycle's thread ({e})"),
        }
        Ok(())
    }

    /// The writer's first failure, once; after it every call fails.
    fn check(&mut self) -> Result<(), StoreError> {
        if self.stopped {
            return Err(stopped("after an earlier write failed"));
        }
        let failure = match &self.writer {
            Some(w) => w.failure.lock().map_or_else(
                |_| Some(stopped("the database writer panicked")),
                |mut slot| slot.take(),
            ),
            None => None,
        };
        match failure {
            Some(e) => {
                self.stopped = true;
                Err(e)
            }
            None => Ok(()),
        }
    }

    fn send(&mut self, unit: Unit) -> Result<(), StoreError> {
        self.check()?;
        let Some(w) = self.writer.as_mut() else {
            return write(&self.store, unit);
        };
        let caught_up = matches!(unit, Unit::CaughtUp(_));
        w.batch.push(unit);
        if (caught_up || w.batch.len() >= BATCH_UNITS)
            && w.units
                .send(std::mem::replace(
                    &mut w.batch,
                    Vec::with_capacity(BATCH_UNITS),
                ))
                .is_err()
        {
            self.stopped = true;
            return Err(stopped("the database writer is gone"));
        }
        if caught_up {
            return Ok(());
        }
        w.pending += 1;
        if w.pending >= w.every {
            w.pending = 0;
        }
        Ok(())
    }

    /// Waits until the writer has written every unit sent so far.
    fn catch_up(&mut self) -> Result<(), StoreError> {
        if self.writer.is_some() {
            let (answer, caught_up) = sync_channel(1);
            self.send(Unit::CaughtUp(answer))?;
            if caught_up.recv().is_err() {
                self.stopped = true;
                return Err(stopped("the database writer is gone"));
            }
        }
        self.check()
    }

    /// Runs `f` on the store once every unit sent before is written.
    ///
    /// # Errors
    /// A failure of an earlier unit, or `f`'s.
    pub fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.catch_up()?;
        let mut store = lock(&self.store)?;
        let out = f(&mut store);
        if let Some(w) = self.writer.as_mut() {
            w.pending = store.group_pending();
        }
        out
    }

    /// See [`Store::upsert_orders`].
    ///
    /// # Errors
    /// As it, or an earlier unit's failure.
    pub fn upsert_orders(&mut self, orders: &[Order]) -> Result<(), StoreError> {
        self.send(Unit::Orders(orders.to_vec()))
    }

    /// See [`Store::commit_cycle`]; `finish` completes the record first.
    ///
    /// # Errors
    /// As it, or an earlier unit's failure.
    pub fn commit_cycle(
        &mut self,
        record: CycleRecord,
        finish: Option<Finish>,
    ) -> Result<(), StoreError> {
        self.send(Unit::Cycle(Box::new(record), finish))
    }

    /// See [`Store::save_script_states`].
    ///
    /// # Errors
    /// As it, or an earlier unit's failure.
    pub fn save_script_states(
        &mut self,
        cycle_id: i64,
        rows: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        self.send(Unit::ScriptStates(cycle_id, rows))
    }

    /// See [`Store::next_unit_closes_group`]: the group the next unit sent will be in.
    pub fn next_unit_closes_group(&self) -> bool {
        match &self.writer {
            Some(w) => w.pending + 1 >= w.every,
            None => lock(&self.store).is_ok_and(|s| s.next_unit_closes_group()),
        }
    }

    /// Writes what is queued and commits the open group.
    ///
    /// # Errors
    /// An earlier unit's failure, or the commit's.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.with(Store::flush)
    }

    /// Lets the writer finish what was sent and stops it; writes go in place after this.
    fn stop_writer(&mut self) -> Result<(), StoreError> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        let failure = w.failure.lock().ok().and_then(|mut slot| slot.take());
        let batch = std::mem::take(&mut w.batch);
        let _ = w.units.send(batch);
        drop(w.units);
        let joined = w.thread.take().map(JoinHandle::join);
        let late = w.failure.lock().ok().and_then(|mut slot| slot.take());
        match (failure.or(late), joined) {
            (Some(e), _) => Err(e),
            (None, Some(Err(_))) => Err(stopped("the database writer panicked")),
            _ => Ok(()),
        }
    }
}

impl Drop for StorePipe {
    fn drop(&mut self) {
        if let Err(e) = self.stop_writer() {
            tracing::error!("store: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;
    use crate::store::group::tests::record;

    fn open(path: &std::path::Path) -> StorePipe {
        StorePipe::new(Store::open(path, Durability::Normal).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn piped_units_are_written_in_order_and_the_group_state_matches_the_store() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = tmp.path().join("p.db");
        let mut piped = open(&path);
        piped.group_commits(4).unwrap_or_else(|e| panic!("{e}"));
        let mut in_place = Store::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        in_place.group_commits(4).unwrap_or_else(|e| panic!("{e}"));
        for id in 1..=10 {
            assert_eq!(
                piped.next_unit_closes_group(),
                in_place.next_unit_closes_group(),
                "before cycle {id}"
            );
            piped
                .commit_cycle(record(id), None)
                .unwrap_or_else(|e| panic!("{e}"));
            in_place
                .commit_cycle(&record(id))
                .unwrap_or_else(|e| panic!("{e}"));
            if id % 3 == 0 {
                piped
                    .save_script_states(id, vec![("strategy".into(), "{}".into())])
                    .unwrap_or_else(|e| panic!("{e}"));
                in_place
                    .save_script_states(id, &[("strategy".into(), "{}".into())])
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        piped.flush().unwrap_or_else(|e| panic!("{e}"));
        let last = piped
            .with(|s| s.last_cycle_id())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last, Some(10));
    }

    #[test]
    fn a_failed_unit_is_reported_by_the_next_call_and_nothing_after_it_is_written() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = tmp.path().join("p.db");
        let mut piped = open(&path);
        piped.group_commits(256).unwrap_or_else(|e| panic!("{e}"));
        piped
            .commit_cycle(record(1), None)
            .unwrap_or_else(|e| panic!("{e}"));
        piped
            .commit_cycle(record(2), None)
            .unwrap_or_else(|e| panic!("{e}"));
        // Cycles are append-only: the writer fails on the duplicate.
        piped
            .commit_cycle(record(2), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = piped.commit_cycle(record(3), None);
        let err = piped.flush().expect_err("the duplicate must surface");
        assert!(
            matches!(err, StoreError::DuplicateCycle { cycle_id: 2 }),
            "{err}"
        );
        let again = piped.commit_cycle(record(4), None).expect_err("stopped");
        assert!(again.to_string().contains("writer stopped"), "{again}");
        drop(piped);
        let store = Store::open_read_only(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.last_cycle_id().unwrap_or_else(|e| panic!("{e}")),
            Some(2)
        );
    }
}
