//! Decisions: one append-only row per intent with its risk verdict and what the engine did.

use super::codec::{Cols, dec, query_all, seq, u64_to_sql};
use super::{Store, StoreError};
use crate::domain::{Intent, Qty, Side, Symbol, Verdict};
use rusqlite::{Connection, params};
use rust_decimal::Decimal;

/// One intent of a cycle, its verdict and its outcome, as the engine hands it to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub intent: Intent,
    pub verdict: Verdict,
    /// After resize/quantize; `None` when rejected or dropped.
    pub final_qty: Option<Qty>,
    /// What the engine did: `placed`, `dry_run`, `dropped:<reason>`, `rejected`.
    pub action: String,
    pub script: String,
    pub function: String,
    pub rule_hash: String,
    pub operations: u64,
    pub eval_us: u64,
}

/// One stored decision, flattened for reports. `seq` is the 0-based position of the intent in
/// its cycle; `verdict` is `accept`, `resize` or `reject`; `reason_code` is
/// [`Verdict::reason_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    pub cycle_id: i64,
    pub seq: u32,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub tag: String,
    pub verdict: String,
    pub reason_code: String,
    pub final_qty: Option<Decimal>,
    pub action: String,
    pub rule_hash: String,
    pub script: String,
    pub function: String,
    pub operations: u64,
    pub eval_us: u64,
}

const SELECT: &str =
    "SELECT * FROM decisions WHERE (?1 IS NULL OR cycle_id = ?1) ORDER BY cycle_id, seq";
const SELECT_SHADOW: &str =
    "SELECT * FROM shadow_decisions WHERE (?1 IS NULL OR cycle_id = ?1) ORDER BY cycle_id, seq";

pub(super) fn decode_row(c: &Cols<'_, '_>) -> Result<DecisionRow, StoreError> {
    Ok(DecisionRow {
        cycle_id: c.i64("cycle_id")?,
        seq: c.u32("seq")?,
        symbol: c.symbol("symbol")?,
        side: c.side("side")?,
        price: c.decimal("price")?,
        qty: c.decimal("qty")?,
        tag: c.text("tag")?,
        verdict: c.text("verdict")?,
        reason_code: c.text("reason_code")?,
        final_qty: c.opt_decimal("final_qty")?,
        action: c.text("action")?,
        rule_hash: c.text("rule_hash")?,
        script: c.text("script")?,
        function: c.text("function")?,
        operations: c.u64("operations")?,
        eval_us: c.u64("eval_us")?,
    })
}

impl Store {
    /// Stored decisions of one cycle or (with `None`) of all, by cycle then position.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn decisions(&self, cycle_id: Option<i64>) -> Result<Vec<DecisionRow>, StoreError> {
        query_all(
            &self.conn,
            "decisions",
            SELECT,
            params![cycle_id],
            decode_row,
        )
    }

    /// The shadow rule set's verdicts ("would have" rows) of one cycle or (with `None`) of all.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn shadow_decisions(&self, cycle_id: Option<i64>) -> Result<Vec<DecisionRow>, StoreError> {
        query_all(
            &self.conn,
            "shadow_decisions",
            SELECT_SHADOW,
            params![cycle_id],
            decode_row,
        )
    }

    /// The decisions of one cycle rebuilt as the engine wrote them (typed intent and verdict),
    /// in order. For audits and replay comparisons.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode into its domain type.
    pub fn decision_records(&self, cycle_id: i64) -> Result<Vec<DecisionRecord>, StoreError> {
        query_all(&self.conn, "decisions", SELECT, params![cycle_id], |c| {
            Ok(DecisionRecord {
                intent: Intent {
                    symbol: c.symbol("symbol")?,
                    side: c.side("side")?,
                    price: c.price("price")?,
                    qty: c.qty("qty")?,
                    tag: c.text("tag")?,
                },
                verdict: decode_verdict(c)?,
                final_qty: c.opt_qty("final_qty")?,
                action: c.text("action")?,
                script: c.text("script")?,
                function: c.text("function")?,
                rule_hash: c.text("rule_hash")?,
                operations: c.u64("operations")?,
                eval_us: c.u64("eval_us")?,
            })
        })
    }
}

fn decode_verdict(c: &Cols<'_, '_>) -> Result<Verdict, StoreError> {
    let kind = c.text("verdict")?;
    match kind.as_str() {
        "accept" => Ok(Verdict::Accept),
        "resize" => match c.opt_qty("verdict_qty")? {
            Some(qty) => Ok(Verdict::Resize { qty }),
            None => Err(StoreError::corrupt(
                "decisions",
                "verdict_qty",
                "missing for a resize verdict",
            )),
        },
        "reject" => Ok(Verdict::Reject {
            reason: c.text("reason_code")?,
        }),
        _ => Err(StoreError::corrupt(
            "decisions",
            "verdict",
            format!("{kind:?} is not a verdict"),
        )),
    }
}

pub(crate) fn insert_all(
    conn: &Connection,
    cycle_id: i64,
    list: &[DecisionRecord],
) -> Result<(), StoreError> {
    insert_into(conn, "decisions", cycle_id, list)
}

/// `table` is `decisions` or `shadow_decisions` (same layout).
pub(crate) fn insert_into(
    conn: &Connection,
    table: &'static str,
    cycle_id: i64,
    list: &[DecisionRecord],
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "INSERT INTO {table} (cycle_id, seq, symbol, side, price, qty, tag, verdict, \
             reason_code, verdict_qty, final_qty, action, script, function, rule_hash, \
             operations, eval_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ))
        .map_err(StoreError::sql("prepare decision insert"))?;
    for (i, d) in list.iter().enumerate() {
        let verdict_qty = match &d.verdict {
            Verdict::Resize { qty } => Some(dec(qty.value())),
            Verdict::Accept | Verdict::Reject { .. } => None,
        };
        let operations = u64_to_sql("decision operations", d.operations)?;
        let eval_us = u64_to_sql("decision eval_us", d.eval_us)?;
        stmt.execute(params![
            cycle_id,
            seq("decision", i)?,
            d.intent.symbol.as_str(),
            d.intent.side.as_str(),
            dec(d.intent.price.value()),
            dec(d.intent.qty.value()),
            d.intent.tag,
            d.verdict.kind(),
            d.verdict.reason_code(),
            verdict_qty,
            d.final_qty.map(|q| dec(q.value())),
            d.action,
            d.script,
            d.function,
            d.rule_hash,
            operations,
            eval_us,
        ])
        .map_err(StoreError::sql("insert decision"))?;
    }
    Ok(())
}
