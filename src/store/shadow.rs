//! Shadow mode's per-cycle rows and the summarized inputs of each cycle (for `btcbot explain`).
//! Both are written inside the cycle's transaction.

use super::codec::{Cols, query_all, query_each, to_json};
use super::{DecisionRecord, Store, StoreError, decisions};
use crate::domain::Mode;
use rusqlite::{Connection, params};

/// What the shadow (candidate) rule set decided in one cycle. Never acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowRecord {
    pub rule_hash: String,
    pub mode: Mode,
    pub mode_reasons: Vec<String>,
    pub decisions: Vec<DecisionRecord>,
    /// Orders the candidate would have placed.
    pub would_place: u32,
}

/// One stored shadow cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowCycleRow {
    pub cycle_id: i64,
    pub rule_hash: String,
    pub mode: Mode,
    pub mode_reasons: Vec<String>,
    pub intents: u32,
    pub would_place: u32,
}

/// A cycle with a shadow row, beside what the active rules did in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowComparison {
    pub active_mode: Mode,
    pub shadow_mode: Mode,
    pub active_placed: u32,
    pub would_place: u32,
}

/// A cycle's inputs, summarized as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleInputsRecord {
    /// `[{symbol, bid, ask, bid_qty, ask_qty, age_ms}]`.
    pub markets_json: String,
    /// The stats object the rules saw.
    pub stats_json: String,
    pub open_orders: u32,
}

pub(super) fn insert_shadow(
    tx: &Connection,
    cycle_id: i64,
    s: &ShadowRecord,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO shadow_cycles (cycle_id, rule_hash, mode, mode_reasons, intents, \
         would_place) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            cycle_id,
            s.rule_hash,
            s.mode.as_str(),
            to_json("shadow mode reasons", &s.mode_reasons).unwrap_or_else(|_| "[]".into()),
            u32::try_from(s.decisions.len()).unwrap_or(u32::MAX),
            s.would_place,
        ])
    })
    .map_err(StoreError::sql("insert shadow cycle"))?;
    decisions::insert_into(tx, "shadow_decisions", cycle_id, &s.decisions)
}

pub(super) fn insert_inputs(
    tx: &Connection,
    cycle_id: i64,
    i: &CycleInputsRecord,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO cycle_inputs (cycle_id, markets, stats, open_orders) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            cycle_id,
            i.markets_json,
            i.stats_json,
            i.open_orders
        ])
    })
    .map_err(StoreError::sql("insert cycle inputs"))?;
    Ok(())
}

impl Store {
    /// Every shadow cycle, by cycle id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn shadow_cycles(&self) -> Result<Vec<ShadowCycleRow>, StoreError> {
        query_all(
            &self.conn,
            "shadow_cycles",
            "SELECT * FROM shadow_cycles ORDER BY cycle_id",
            [],
            |c: &Cols<'_, '_>| {
                Ok(ShadowCycleRow {
                    cycle_id: c.i64("cycle_id")?,
                    rule_hash: c.text("rule_hash")?,
                    mode: c.mode("mode")?,
                    mode_reasons: c.json("mode_reasons")?,
                    intents: c.u32("intents")?,
                    would_place: c.u32("would_place")?,
                })
            },
        )
    }

    /// Every shadow cycle that has an active cycle, joined with it in SQLite and handed to
    /// `each` a row at a time, by cycle id: the summary of a long run holds none of its cycles.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn each_shadow_comparison(
        &self,
        each: impl FnMut(ShadowComparison),
    ) -> Result<(), StoreError> {
        query_each(
            &self.conn,
            "shadow_cycles",
            "SELECT c.mode AS active_mode, s.mode AS shadow_mode, \
             c.orders_placed AS active_placed, s.would_place \
             FROM shadow_cycles s JOIN cycles c ON c.cycle_id = s.cycle_id ORDER BY s.cycle_id",
            [],
            |c| {
                Ok(ShadowComparison {
                    active_mode: c.mode("active_mode")?,
                    shadow_mode: c.mode("shadow_mode")?,
                    active_placed: c.u32("active_placed")?,
                    would_place: c.u32("would_place")?,
                })
            },
            each,
        )
    }

    /// The stored inputs of one cycle, if recorded.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn cycle_inputs(&self, cycle_id: i64) -> Result<Option<CycleInputsRecord>, StoreError> {
        Ok(query_all(
            &self.conn,
            "cycle_inputs",
            "SELECT * FROM cycle_inputs WHERE cycle_id = ?1",
            params![cycle_id],
            |c| {
                Ok(CycleInputsRecord {
                    markets_json: c.text("markets")?,
                    stats_json: c.text("stats")?,
                    open_orders: c.u32("open_orders")?,
                })
            },
        )?
        .pop())
    }
}
