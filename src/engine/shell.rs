//! The cycle's IO shell: observe the exchange, bring orders and the ledger up to date, run the
//! pure core (`decide`, `plan`), execute, and commit everything in one SQLite transaction.

use super::decide::{CycleInput, CycleStats, Decision, decide, decide_traced};
use super::fingerprint::FingerprintParts;
use super::plan::{Action, Gates, plan};
use super::valuation::{EquityTracker, Valuation, value};
use crate::domain::{
    Anomaly, Fill, MarketSnapshot, Mode, Order, OrderStatus, Qty, Severity, Symbol, SymbolSpec,
};
use crate::exchange::{Exchange, ExchangeError, OrderRequest};
use crate::ledger::Ledger;
use crate::rules::RuleSet;
use crate::rules::convert::state_rows;
use crate::store::{CycleInputsRecord, CycleRecord, EquitySnapshot, Finish, StorePipe};
use rhai::Dynamic;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Instant;

/// State the shell carries from cycle to cycle.
pub struct Shell {
    pub exchange: Box<dyn Exchange>,
    pub store: StorePipe,
    pub ledger: Ledger,
    pub symbols: Vec<Symbol>,
    pub specs: BTreeMap<Symbol, SymbolSpec>,
    /// Orders the bot believes live, by client id.
    pub live_orders: BTreeMap<String, Order>,
    pub states: [Dynamic; 4],
    pub fill_cursor: u64,
    pub last_stats: CycleStats,
    pub order_ttl_ms: i64,
    pub unknown_orders: crate::config::UnknownOrderPolicy,
    pub gates: Gates,
    pub last_markets: BTreeMap<Symbol, MarketSnapshot>,
    /// Peak and period-start equity, carried between cycles.
    pub equity: EquityTracker,
    /// Per symbol: its base asset and the venue balance of it when this database first started
    /// (holdings that are not the bot's). The ledger's position should equal venue − baseline.
    pub base_baselines: BTreeMap<Symbol, (String, Decimal)>,
    /// Cycle time is the machine's clock (live, paper), so book timestamps measure clock skew.
    pub wall_clock: bool,
    /// The candidate rule set of rules.yaml `shadow`, if any.
    pub shadow: Option<super::shadow::Shadow>,
    /// While the kill switch is on, cancel every open order (bot.yaml `kill_switch.cancel_all`).
    pub kill_cancel_all: bool,
    /// See `RunOptions::throwaway_db`.
    pub throwaway_db: bool,
    /// Record each cycle in the Prometheus metrics: not in a study (`RunOptions::study`) or a
    /// throwaway run, which serve no metrics.
    pub record_metrics: bool,
}

/// What a cycle accumulates before its commit.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Orders created or changed this cycle, by client id (upserted at commit).
    pub changed: BTreeMap<String, Order>,
    /// Anomalies the engine observed (exchange errors, unknown venue orders).
    pub anomalies: Vec<Anomaly>,
    pub stats: CycleStats,
}

impl Scratch {
    pub fn exchange_error(&mut self, e: &ExchangeError) {
        self.anomalies.push(exchange_anomaly(e));
        self.stats.exchange_errors_last_cycle += 1;
    }
}

/// What one cycle did, for the run summary.
#[derive(Debug, Clone, Default)]
pub struct CycleOutcome {
    pub decision: Option<Decision>,
    pub actions: Vec<Action>,
    pub placed: u32,
    pub canceled: u32,
    pub rejected_by_exchange: u32,
    pub new_fills: u32,
    /// The portfolio as marked this cycle (alerts read today's PnL from it).
    pub valuation: Option<Valuation>,
}

/// A failure that stops the run (the data can no longer be trusted).
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("ledger: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("{0}")]
    Exchange(ExchangeError),
}

pub(super) fn exchange_anomaly(e: &ExchangeError) -> Anomaly {
    Anomaly {
        code: "EXCHANGE_ERROR".into(),
        severity: Severity::Warn,
        symbol: None,
        detail: vec![("error".into(), e.to_string())],
    }
}

impl Shell {
    /// Runs one cycle at market time `now_ms` with cycle id `cycle_id` and engine floor `floor`.
    ///
    /// # Errors
    /// Store or ledger failures: the run must stop rather than lose a record.
    pub async fn run_cycle(
        &mut self,
        rules: &RuleSet,
        cycle_id: i64,
        now_ms: i64,
        floor: Mode,
    ) -> Result<CycleOutcome, CycleError> {
        let mut outcome = CycleOutcome::default();
        let mut sc = Scratch::default();

        // observe
        let started = Instant::now();
        let markets = match self.exchange.market(&self.symbols).await {
            Ok(m) => m,
            Err(e) => {
                sc.exchange_error(&e);
                Vec::new()
            }
        };
        let (free_cash, venue_cash_total, venue_base) = match self.exchange.account().await {
            Ok(a) => {
                let quote = a.balance(&self.ledger.quote_asset);
                let base: BTreeMap<Symbol, Decimal> = self
                    .base_baselines
                    .iter()
                    .map(|(s, (asset, baseline))| {
                        let total = a.balance(asset).map_or(Decimal::ZERO, |b| b.total());
                        (s.clone(), total - baseline)
                    })
                    .collect();
                (
                    quote.map_or(Decimal::ZERO, |b| b.free),
                    Some(quote.map_or(Decimal::ZERO, |b| b.total())),
                    Some(base),
                )
            }
            Err(e) => {
                sc.exchange_error(&e);
                (Decimal::ZERO, None, None) // fail closed: no known cash, no buys
            }
        };
        let mut fills_unread = false;
        let fills: Vec<(u64, Fill)> = match self.exchange.fills_since(self.fill_cursor).await {
            Ok(f) => f,
            Err(e) => {
                sc.exchange_error(&e);
                fills_unread = true;
                Vec::new()
            }
        };
        // Read after the fills, so an order that filled in between is seen with its fills.
        let venue_open = match self.exchange.open_orders().await {
            Ok(o) => Some(o),
            Err(e) => {
                sc.exchange_error(&e);
                None
            }
        };
        sc.stats.observe_latency_ms =
            i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        for m in &markets {
            self.last_markets.insert(m.symbol.clone(), m.clone());
        }
        if self.wall_clock {
            sc.stats.clock_skew_ms = markets
                .iter()
                .map(|m| (m.received_ts_ms - m.exchange_ts_ms).abs())
                .min()
                .unwrap_or(0);
        }
        // The venue reports more filled than the fills we read: the fill feed is stalled.
        let venue_filled_ahead = venue_open.as_ref().is_some_and(|open| {
            open.iter().any(|v| {
                self.live_orders
                    .values()
                    .find(|o| o.exchange_id.is_some() && o.exchange_id == v.exchange_id)
                    .is_some_and(|o| v.filled_qty > o.filled_qty)
            })
        });

        // account: fills into the ledger and onto their orders
        let mut new_fills = Vec::new();
        for (seq, fill) in fills {
            if self.ledger.apply(&fill)? {
                if let Some(order) = self.live_orders.get_mut(&fill.client_order_id) {
                    let filled = order.filled_qty.value() + fill.qty.value();
                    order.filled_qty = Qty::new(filled).unwrap_or(order.filled_qty);
                    let to = if filled >= order.qty.value() {
                        OrderStatus::Filled
                    } else {
                        OrderStatus::PartiallyFilled
                    };
                    self.move_order(fill.client_order_id.clone(), to, now_ms, &mut sc);
                }
                new_fills.push(fill);
            }
            self.fill_cursor = self.fill_cursor.max(seq);
        }
        outcome.new_fills = u32::try_from(new_fills.len()).unwrap_or(u32::MAX);
        let orders_reach_venue = self.gates.live_armed || self.gates.simulated_venue;
        let stalled = orders_reach_venue
            && !self.live_orders.is_empty()
            && (fills_unread || (new_fills.is_empty() && venue_filled_ahead));
        sc.stats.cursor_stall_cycles = if stalled {
            self.last_stats.cursor_stall_cycles + 1
        } else {
            0
        };
        if let Some(open) = &venue_open {
            self.reconcile(open, now_ms, &mut sc).await;
        }

        // decide (pure) and plan (pure)
        let open_orders: Vec<Order> = self.live_orders.values().cloned().collect();
        let mut portfolio = self.ledger.portfolio(now_ms, free_cash, venue_cash_total);
        if let Some(venue_base) = venue_base {
            portfolio.qty_mismatch = venue_base
                .into_iter()
                .filter_map(|(s, venue_qty)| {
                    let ledger_qty = self
                        .ledger
                        .positions
                        .get(&s)
                        .map_or(Decimal::ZERO, |p| p.qty);
                    let diff = venue_qty - ledger_qty;
                    (!diff.is_zero()).then_some((s, diff))
                })
                .collect();
        }
        self.equity.prepare(now_ms, &mut portfolio);
        let input = CycleInput {
            cycle_id,
            now_ms,
            symbols: self.symbols.clone(),
            markets,
            specs: self.specs.clone(),
            portfolio,
            open_orders,
            // Counters of what the previous cycle did; measurements of this cycle's observation.
            stats: CycleStats {
                observe_latency_ms: sc.stats.observe_latency_ms,
                cursor_stall_cycles: sc.stats.cursor_stall_cycles,
                clock_skew_ms: sc.stats.clock_skew_ms,
                ..self.last_stats.clone()
            },
            engine_mode: floor,
            engine_anomalies: std::mem::take(&mut sc.anomalies),
            // Moved, not cloned: the decision returns the next state, which replaces it.
            states: std::mem::take(&mut self.states),
            intents_override: None,
        };
        let decide_started = Instant::now();
        // A shadow deciding from this cycle's very state reuses what it provably shares.
        let (mut decision, trace) = if self.shadow.as_ref().is_some_and(|sh| sh.mirror_state) {
            let (decision, trace) = decide_traced(rules, &input);
            (decision, Some(trace))
        } else {
            (decide(rules, &input), None)
        };
        if self.gates.kill_switch {
            // Recorded with the cycle, so `explain` and reports say why nothing traded.
            let reason = super::kill_switch::KILL_SWITCH_REASON.to_string();
            decision.mode_reasons.insert(0, reason);
        }
        let eval_us = u64::try_from(decide_started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let actions = plan(
            cycle_id,
            &decision.judged,
            decision.mode,
            &self.specs,
            &input.open_orders,
            self.gates,
        );

        // execute. Stale orders are canceled in normal and reduce_only; in observe_only nothing
        // reaches the exchange, unless the kill switch asks for cancels.
        if matches!(decision.mode, Mode::Normal | Mode::ReduceOnly) || self.gates.kill_switch {
            outcome.canceled = self.cancel_stale(now_ms, &mut sc).await;
        }
        if self.gates.kill_switch && self.kill_cancel_all {
            outcome.canceled += self.cancel_all_open(now_ms, &mut sc).await;
        }
        // Each order is stored (outbox) before it is sent.
        for action in &actions {
            let Action::Place(p) = action else { continue };
            let order = Order {
                client_id: p.client_id.clone(),
                exchange_id: None,
                symbol: p.symbol.clone(),
                side: p.side,
                price: p.price,
                qty: p.qty,
                filled_qty: Qty::ZERO,
                status: OrderStatus::Submitting,
                cycle_id,
                created_ms: now_ms,
                updated_ms: now_ms,
            };
            self.store.upsert_orders(std::slice::from_ref(&order))?;
            crash_point("after_outbox");
            self.live_orders.insert(order.client_id.clone(), order);
            let request = OrderRequest {
                client_id: p.client_id.clone(),
                symbol: p.symbol.clone(),
                side: p.side,
                price: p.price,
                qty: p.qty,
            };
            let answer = self.exchange.submit(&request).await;
            crash_point("after_send");
            match answer {
                Ok(ack) => {
                    if let Some(o) = self.live_orders.get_mut(&p.client_id) {
                        o.exchange_id = Some(ack.exchange_id);
                    }
                    self.move_order(p.client_id.clone(), OrderStatus::Open, now_ms, &mut sc);
                    outcome.placed += 1;
                }
                Err(ExchangeError::Rejected { .. }) => {
                    self.move_order(p.client_id.clone(), OrderStatus::Rejected, now_ms, &mut sc);
                    outcome.rejected_by_exchange += 1;
                    sc.stats.rejects_last_cycle += 1;
                }
                Err(e) => {
                    // Sent, no answer: reconciliation decides what happened.
                    sc.stats.exchange_errors_last_cycle += 1;
                    tracing::warn!(client_id = %p.client_id, "submit failed: {e}");
                    self.move_order(p.client_id.clone(), OrderStatus::Unknown, now_ms, &mut sc);
                }
            }
        }

        // commit: one transaction. In a grouped backtest only the unit that closes a group
        // stores the script state: the units between would be overwritten before anyone could
        // read them (the run's end stores the last state, `store_script_states`).
        let store_states = !self.throwaway_db && self.store.next_unit_closes_group();
        let mut script_states = Vec::new();
        if store_states {
            script_states = state_rows("", &decision.states);
        }
        let decisions = super::shadow::decision_records(rules, &decision, &actions, Action::label);
        let mut shadow_states = None;
        let (specs, gates) = (&self.specs, self.gates);
        let shadow = self.shadow.as_mut().map(|sh| {
            let active = trace.as_ref().map(|t| (rules, t));
            let (record, states) = sh.evaluate(&input, specs, gates, active);
            // A shadow that mirrors the active state never reads its own back.
            if !sh.mirror_state && store_states {
                script_states.extend(state_rows(super::shadow::STATE_PREFIX, &states));
            }
            shadow_states = Some(states);
            record
        });
        let valuation = value(&input.portfolio, &input.markets);
        let snapshot = snapshot_of(cycle_id, now_ms, &input, &valuation);
        // The fingerprint and the explain inputs are made from the input, which the cycle no
        // longer needs: a backtest's writer thread makes them while the next cycle runs.
        let finish = (!self.throwaway_db).then(|| {
            let parts = FingerprintParts::new(input, &decision, &actions);
            Box::new(move |record: &mut CycleRecord| {
                record.inputs = Some(inputs_record(&parts.input));
                record.fingerprint = parts.hash();
            }) as Finish
        });
        let record = CycleRecord {
            cycle_id,
            market_ts_ms: now_ms,
            rule_hash: rules.hash.clone(),
            mode: decision.mode,
            mode_reasons: decision.mode_reasons.clone(),
            anomalies: decision.anomalies.clone(),
            decisions,
            orders: std::mem::take(&mut sc.changed).into_values().collect(),
            fills: new_fills,
            fill_cursor: self.fill_cursor,
            script_states,
            equity: valuation.equity,
            snapshot: Some(snapshot),
            shadow,
            inputs: None,
            realized_pnl: self.ledger.realized_pnl,
            fees: self.ledger.fees,
            intents: u32::try_from(decision.judged.len()).unwrap_or(u32::MAX),
            orders_placed: outcome.placed,
            orders_canceled: outcome.canceled,
            eval_us,
            fingerprint: String::new(),
        };
        crash_point("before_commit");
        let fills = record.fills.len();
        // Metrics describe the cycle as committed; the record itself goes to the store.
        let for_metrics = self.record_metrics.then(|| record.clone());
        self.store.commit_cycle(record, finish)?;
        self.equity.update(now_ms, &valuation);
        if let (Some(sh), Some(states)) = (self.shadow.as_mut(), shadow_states) {
            sh.states = states;
        }
        // Moved, not cloned: nothing after the commit reads the decision's states.
        self.states = std::mem::take(&mut decision.states);
        sc.stats.rule_errors_last_cycle = i64::try_from(
            decision
                .anomalies
                .iter()
                .filter(|a| a.code == "RULE_ERROR")
                .count(),
        )
        .unwrap_or(i64::MAX);
        self.last_stats = sc.stats;
        self.live_orders.retain(|_, o| o.status.is_live());
        if let Some(record) = &for_metrics {
            crate::metrics::record::cycle(
                record,
                &decision,
                &valuation,
                started.elapsed(),
                self.live_orders.len(),
                self.ledger.cash,
            );
        }
        tracing::debug!(
            mode = decision.mode.as_str(),
            intents = decision.judged.len(),
            placed = outcome.placed,
            canceled = outcome.canceled,
            fills,
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "cycle committed"
        );
        outcome.valuation = Some(valuation);
        outcome.actions = actions;
        outcome.decision = Some(decision);
        Ok(outcome)
    }

    /// Stores the script state of the last cycle (`cycle_id`) when the cycles did not (see the
    /// commit in `run_cycle`); the run calls it before its final flush.
    ///
    /// # Errors
    /// When the store cannot write.
    pub fn store_script_states(&mut self, cycle_id: i64) -> Result<(), CycleError> {
        if self.throwaway_db {
            return Ok(());
        }
        let mut rows = state_rows("", &self.states);
        if let Some(sh) = self.shadow.as_ref().filter(|sh| !sh.mirror_state) {
            rows.extend(state_rows(super::shadow::STATE_PREFIX, &sh.states));
        }
        self.store.save_script_states(cycle_id, rows)?;
        Ok(())
    }

    /// Moves an order through the lifecycle table; an illegal move is logged, never applied.
    pub(super) fn move_order(
        &mut self,
        client_id: String,
        to: OrderStatus,
        now_ms: i64,
        sc: &mut Scratch,
    ) {
        let Some(order) = self.live_orders.get_mut(&client_id) else {
            return;
        };
        if order.status != to || to == OrderStatus::PartiallyFilled {
            match order.status.transition(to) {
                Ok(s) => order.status = s,
                Err(e) => {
                    tracing::warn!(client_id = %client_id, "{e}");
                    return;
                }
            }
        }
        order.updated_ms = now_ms;
        sc.changed.insert(client_id, order.clone());
    }
}

/// Crash-test hook: when `BTCBOT_CRASH_AT` names this point (`after_outbox`, `after_send`,
/// `before_commit`), the process aborts there, as a power cut would. Unset in normal runs.
fn inputs_record(input: &CycleInput) -> CycleInputsRecord {
    /// One market as `btcbot explain` shows it (decimals as text, so nothing is rounded).
    #[derive(serde::Serialize)]
    struct MarketLine<'a> {
        symbol: &'a str,
        bid: String,
        ask: String,
        bid_qty: String,
        ask_qty: String,
        age_ms: i64,
    }
    let markets: Vec<MarketLine<'_>> = input
        .markets
        .iter()
        .map(|m| MarketLine {
            symbol: m.symbol.as_str(),
            bid: m.bid.value().to_string(),
            ask: m.ask.value().to_string(),
            bid_qty: m.bid_qty.value().to_string(),
            ask_qty: m.ask_qty.value().to_string(),
            age_ms: input.now_ms.saturating_sub(m.exchange_ts_ms),
        })
        .collect();
    CycleInputsRecord {
        markets_json: serde_json::to_string(&markets).unwrap_or_else(|_| "[]".into()),
        stats_json: serde_json::to_string(&input.stats).unwrap_or_else(|_| "{}".into()),
        open_orders: u32::try_from(input.open_orders.len()).unwrap_or(u32::MAX),
    }
}

pub(super) fn snapshot_of(
    cycle_id: i64,
    now_ms: i64,
    input: &CycleInput,
    v: &Valuation,
) -> EquitySnapshot {
    let p = &input.portfolio;
    EquitySnapshot {
        cycle_id,
        ts_ms: now_ms,
        cash: p.cash_total,
        positions_value: v.positions_value,
        equity: v.equity,
        realized_pnl: p.realized_pnl,
        unrealized_pnl: v.unrealized_pnl,
        fees: p.fees,
        peak_equity: v.peak_equity,
        drawdown: v.drawdown,
        day_start_equity: p.day_start_equity.unwrap_or(v.equity),
        week_start_equity: p.week_start_equity.unwrap_or(v.equity),
        gross_exposure: v.gross_exposure,
        positions_json: serde_json::to_string(&v.positions).unwrap_or_else(|_| "[]".into()),
    }
}

fn crash_point(name: &str) {
    if std::env::var("BTCBOT_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("BTCBOT_CRASH_AT={name}: aborting");
        std::process::abort();
    }
}
