//! Cycles and their anomalies (append-only), and the one-transaction cycle commit.

use super::codec::{self, Cols, dec, query_all, to_json, u64_to_sql};
use super::{DecisionRecord, Store, StoreError, decisions, fills, meta, orders, script_state};
use crate::domain::{Anomaly, Fill, Mode, Order};
use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;

/// Everything one cycle writes, committed in one transaction by [`Store::commit_cycle`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleRecord {
    pub cycle_id: i64,
    pub market_ts_ms: i64,
    pub rule_hash: String,
    pub mode: Mode,
    pub mode_reasons: Vec<String>,
    pub anomalies: Vec<Anomaly>,
    pub decisions: Vec<DecisionRecord>,
    /// New or changed orders: upserted by client id.
    pub orders: Vec<Order>,
    /// New fills; one whose trade id is already stored is skipped.
    pub fills: Vec<Fill>,
    /// The exchange fill cursor after this cycle. Stored as given (pass the current value every
    /// cycle; the store does not keep a maximum).
    pub fill_cursor: u64,
    /// `(script, json)`: the latest persisted state of each script that changed.
    pub script_states: Vec<(String, String)>,
    pub equity: Decimal,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    /// The portfolio marked at this cycle's books (`None` writes no snapshot row).
    pub snapshot: Option<super::EquitySnapshot>,
    /// The shadow rule set's "would have" decisions (`None` without a shadow).
    pub shadow: Option<super::ShadowRecord>,
    /// The cycle's inputs, summarized for `btcbot explain`.
    pub inputs: Option<super::CycleInputsRecord>,
    pub intents: u32,
    pub orders_placed: u32,
    pub orders_canceled: u32,
    /// Wall time of `decide()`; not part of any fingerprint.
    pub eval_us: u64,
    /// Hash of inputs and decisions, computed by the engine.
    pub fingerprint: String,
}

/// One stored cycle, as read back. `anomalies` is the number of anomaly rows of the cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleRow {
    pub cycle_id: i64,
    pub market_ts_ms: i64,
    pub rule_hash: String,
    pub mode: Mode,
    pub mode_reasons: Vec<String>,
    pub anomalies: u32,
    pub intents: u32,
    pub orders_placed: u32,
    pub orders_canceled: u32,
    pub equity: Decimal,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub fingerprint: String,
}

/// One stored anomaly with its cycle and position (0-based) in that cycle's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyRow {
    pub cycle_id: i64,
    pub seq: u32,
    pub anomaly: Anomaly,
}

impl Store {
    /// Writes a whole cycle in one transaction: the cycle row, its anomalies and decisions, the
    /// order upserts, new fills (duplicates by trade id skipped), script states and the fill
    /// cursor. On any error nothing of the cycle is written.
    ///
    /// # Errors
    /// [`StoreError::DuplicateCycle`] when the cycle id is already committed;
    /// [`StoreError::OrderConflict`] when an upsert would change an order's symbol, side, price
    /// or quantity; [`StoreError::InvalidInput`] for a value that cannot be stored (a counter
    /// above `i64::MAX`, a script state that is not JSON); [`StoreError::Busy`] /
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn commit_cycle(&mut self, rec: &CycleRecord) -> Result<(), StoreError> {
        self.commit_cycles(std::slice::from_ref(rec))
    }

    /// Writes several cycles in one transaction (a backtest batches its writes this way); all
    /// or none of them are written.
    ///
    /// # Errors
    /// As [`Store::commit_cycle`].
    pub fn commit_cycles(&mut self, records: &[CycleRecord]) -> Result<(), StoreError> {
        let skipped = self.write_unit("commit cycle", |tx| {
            let mut skipped = 0;
            for rec in records {
                insert_cycle(tx, rec)?;
                insert_anomalies(tx, rec.cycle_id, &rec.anomalies)?;
                decisions::insert_all(tx, rec.cycle_id, &rec.decisions)?;
                orders::upsert_all(tx, &rec.orders)?;
                skipped += fills::insert_all(tx, rec.cycle_id, &rec.fills)?;
                script_state::upsert_all(tx, rec.cycle_id, &rec.script_states)?;
                meta::set_fill_cursor(tx, rec.fill_cursor)?;
                if let Some(snapshot) = &rec.snapshot {
                    super::snapshots::insert(tx, snapshot)?;
                }
                if let Some(shadow) = &rec.shadow {
                    super::shadow::insert_shadow(tx, rec.cycle_id, shadow)?;
                }
                if let Some(inputs) = &rec.inputs {
                    super::shadow::insert_inputs(tx, rec.cycle_id, inputs)?;
                }
            }
            Ok(skipped)
        })?;
        if skipped > 0 {
            tracing::debug!(skipped, "skipped already stored fills");
        }
        Ok(())
    }

    /// The highest committed cycle id; `None` on a fresh database.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn last_cycle_id(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT MAX(cycle_id) FROM cycles", [], |row| row.get(0))
            .map_err(StoreError::sql("read last cycle id"))
    }

    /// The rule-set hash of the first committed cycle; `None` on a fresh database.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn first_rule_hash(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT rule_hash FROM cycles ORDER BY cycle_id LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(StoreError::sql("read first rule hash"))
    }

    /// Every committed cycle, by cycle id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn cycles(&self) -> Result<Vec<CycleRow>, StoreError> {
        query_all(
            &self.conn,
            "cycles",
            "SELECT c.*, (SELECT COUNT(*) FROM anomalies a WHERE a.cycle_id = c.cycle_id) \
             AS anomaly_count FROM cycles c ORDER BY c.cycle_id",
            [],
            decode_cycle,
        )
    }

    /// One committed cycle.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn cycle(&self, cycle_id: i64) -> Result<Option<CycleRow>, StoreError> {
        Ok(query_all(
            &self.conn,
            "cycles",
            "SELECT c.*, (SELECT COUNT(*) FROM anomalies a WHERE a.cycle_id = c.cycle_id) \
             AS anomaly_count FROM cycles c WHERE c.cycle_id = ?1",
            params![cycle_id],
            decode_cycle,
        )?
        .pop())
    }

    /// Stored anomalies, of one cycle or (with `None`) of all, by cycle then position.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn anomalies(&self, cycle_id: Option<i64>) -> Result<Vec<AnomalyRow>, StoreError> {
        query_all(
            &self.conn,
            "anomalies",
            "SELECT * FROM anomalies WHERE (?1 IS NULL OR cycle_id = ?1) ORDER BY cycle_id, seq",
            params![cycle_id],
            |c| {
                Ok(AnomalyRow {
                    cycle_id: c.i64("cycle_id")?,
                    seq: c.u32("seq")?,
                    anomaly: Anomaly {
                        code: c.text("code")?,
                        severity: c.severity("severity")?,
                        symbol: c.opt_symbol("symbol")?,
                        detail: c.json("detail")?,
                    },
                })
            },
        )
    }

    /// The `eval_us` of every committed cycle, smallest first: what the rules cost per cycle
    /// over a whole run (`btcbot bench` prints its median and total).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value is negative.
    pub fn eval_us_sorted(&self) -> Result<Vec<u64>, StoreError> {
        query_all(
            &self.conn,
            "cycles",
            "SELECT eval_us FROM cycles ORDER BY eval_us",
            [],
            |c| {
                let v = c.i64("eval_us")?;
                u64::try_from(v).map_err(|_| {
                    StoreError::corrupt("cycles", "eval_us", format!("{v} is negative"))
                })
            },
        )
    }

    /// Wall milliseconds from the first cycle's commit to the last one's (`None` without two
    /// stamped cycles): a run's pace without its start-up and final report.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn commit_span_ms(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT max(committed_wall_ms) - min(committed_wall_ms) FROM cycles \
                 HAVING count(committed_wall_ms) >= 2",
                [],
                |row| row.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(StoreError::sql("read the commit span"))
    }

    /// The `eval_us` of a committed cycle (kept out of [`CycleRow`]: it is not an outcome).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the stored value is negative.
    pub fn cycle_eval_us(&self, cycle_id: i64) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT eval_us FROM cycles WHERE cycle_id = ?1",
                [cycle_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(StoreError::sql("read cycle eval_us"))?;
        v.map(|v| {
            u64::try_from(v)
                .map_err(|_| StoreError::corrupt("cycles", "eval_us", format!("{v} is negative")))
        })
        .transpose()
    }
}

fn decode_cycle(c: &Cols<'_, '_>) -> Result<CycleRow, StoreError> {
    Ok(CycleRow {
        cycle_id: c.i64("cycle_id")?,
        market_ts_ms: c.i64("market_ts_ms")?,
        rule_hash: c.text("rule_hash")?,
        mode: c.mode("mode")?,
        mode_reasons: c.json("mode_reasons")?,
        anomalies: c.u32("anomaly_count")?,
        intents: c.u32("intents")?,
        orders_placed: c.u32("orders_placed")?,
        orders_canceled: c.u32("orders_canceled")?,
        equity: c.decimal("equity")?,
        realized_pnl: c.decimal("realized_pnl")?,
        fees: c.decimal("fees")?,
        fingerprint: c.text("fingerprint")?,
    })
}

fn insert_cycle(conn: &Connection, rec: &CycleRecord) -> Result<(), StoreError> {
    // Cached: `Connection::query_row` parses its SQL on every call, once per cycle here.
    let exists = conn
        .prepare_cached("SELECT 1 FROM cycles WHERE cycle_id = ?1")
        .and_then(|mut stmt| stmt.query_row([rec.cycle_id], |_| Ok(())).optional())
        .map_err(StoreError::sql("check cycle id"))?;
    if exists.is_some() {
        return Err(StoreError::DuplicateCycle {
            cycle_id: rec.cycle_id,
        });
    }
    let reasons = to_json("cycle mode reasons", &rec.mode_reasons)?;
    let eval_us = u64_to_sql("cycle eval_us", rec.eval_us)?;
    conn.prepare_cached(
        "INSERT INTO cycles (cycle_id, market_ts_ms, rule_hash, mode, mode_reasons, intents, \
         orders_placed, orders_canceled, equity, realized_pnl, fees, eval_us, fingerprint, \
         committed_wall_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            rec.cycle_id,
            rec.market_ts_ms,
            rec.rule_hash,
            rec.mode.as_str(),
            reasons,
            rec.intents,
            rec.orders_placed,
            rec.orders_canceled,
            dec(rec.equity),
            dec(rec.realized_pnl),
            dec(rec.fees),
            eval_us,
            rec.fingerprint,
            super::health::wall_ms(),
        ])
    })
    .map_err(StoreError::sql("insert cycle"))?;
    Ok(())
}

fn insert_anomalies(conn: &Connection, cycle_id: i64, list: &[Anomaly]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO anomalies (cycle_id, seq, code, severity, symbol, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(StoreError::sql("prepare anomaly insert"))?;
    for (seq, a) in list.iter().enumerate() {
        let detail = to_json("anomaly detail", &a.detail)?;
        stmt.execute(params![
            cycle_id,
            codec::seq("anomaly", seq)?,
            a.code,
            a.severity.as_str(),
            a.symbol.as_ref().map(|s| s.as_str()),
            detail,
        ])
        .map_err(StoreError::sql("insert anomaly"))?;
    }
    Ok(())
}
