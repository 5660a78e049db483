//! `cycle.evaluate: per_quote` (replay only): strategy.rhai's `on_quote(q)` runs on every quote
//! event of the dataset. The strategy call is lean (a `Quote` with the EMAs the engine keeps in
//! Rust); an intent then goes through the same path as in a cycle — `decide` with the intent
//! (anomaly, degrade, budget, risk), `plan` (quantize, gates) — and fills against the quote:
//! a marketable limit fills in full at its limit price at once, a resting one when a later quote
//! crosses it. Every quote with a decision or a fill is committed as a cycle (decisions, orders,
//! fills), so reports, parity and exports read it like any run.

use super::decide::{CycleInput, Decision, decide};
use super::fingerprint::fingerprint;
use super::plan::{Action, Gates, plan};
use super::quote_shadow::QuoteShadow;
use super::shadow::decision_records;
use crate::domain::{
    Fill, MarketSnapshot, Mode, Order, OrderStatus, Price, Qty, Side, Symbol, SymbolSpec,
};
use crate::exchange::replay::{EventKind, open_dataset};
use crate::ledger::Ledger;
use crate::rules::api::{ParamsView, QuoteView};
use crate::rules::outputs::parse_intents;
use crate::rules::ruleset::ON_QUOTE_ENTRY;
use crate::rules::sandbox::call;
use crate::rules::{RuleSet, Stage};
use crate::store::{CycleRecord, Store};
use rhai::{Dynamic, INT, ImmutableString};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

/// Cycles written per SQLite transaction: a backtest's writes are batched.
const WRITE_BATCH: usize = 512;

/// What a per-quote run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerQuoteSummary {
    pub quotes: u64,
    pub intents: u64,
    pub orders: u64,
    pub fills: u64,
    pub rule_errors: u64,
    /// Beside a candidate (`rules diff`): why it could not judge on this run's quotes.
    pub shadow_unavailable: Option<String>,
    /// The candidate's failed `on_quote` calls.
    pub shadow_rule_errors: u64,
}

struct SymbolState {
    name: ImmutableString,
    /// `(period, 2 / (period + 1), ema, quotes seen)`.
    emas: Vec<(INT, Decimal, Option<Decimal>, INT)>,
}

/// The EMA periods the strategy asked for in `strategy.yaml: params.ema_periods`.
pub(super) fn ema_periods(params: &ParamsView) -> Vec<INT> {
    params
        .value("ema_periods")
        .and_then(|v| v.read_lock::<rhai::Array>().map(|a| a.clone()))
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_int().ok())
                .filter(|n| *n > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// The intents an `on_quote` call returned: `()` is none.
pub(super) fn on_quote_intents(
    result: Result<Dynamic, crate::rules::sandbox::ScriptError>,
) -> Result<Vec<crate::domain::Intent>, String> {
    let value = result.map_err(|e| e.to_string())?;
    if value.is_unit() {
        Ok(Vec::new())
    } else {
        parse_intents(value)
    }
}

fn fee(notional: Decimal, bps: Decimal) -> Decimal {
    notional * bps / Decimal::from(10_000)
}

/// Runs `rules` over every quote of `dataset` into `store`, starting with `starting_cash`.
///
/// The quotes are evaluated on this thread while a second one commits the records, a batch of
/// [`WRITE_BATCH`] at a time and in order, so SQLite's work is off the evaluation's path.
///
/// # Errors
/// A dataset that cannot be read, a strategy without `on_quote`, or a store failure.
pub fn run(
    rules: &RuleSet,
    store: &mut Store,
    dataset: &Path,
    starting_cash: Decimal,
    window: (Option<i64>, Option<i64>),
    shadow: Option<&mut QuoteShadow>,
) -> Result<PerQuoteSummary, String> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Vec<CycleRecord>>(2);
        let writer = std::thread::Builder::new()
            .name("per-quote-writer".into())
            .spawn_scoped(scope, move || {
                for batch in rx {
                    store.commit_cycles(&batch).map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
            .map_err(|e| format!("cannot start the database writer: {e}"))?;
        let evaluated = evaluate(rules, &tx, dataset, starting_cash, window, shadow);
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| "the database writer panicked".to_string())?;
        // When the writer failed, evaluation stopped at a closed channel: the write is the cause.
        written?;
        evaluated
    })
}

#[allow(clippy::too_many_lines)] // one loop over the quotes, read top to bottom
fn evaluate(
    rules: &RuleSet,
    writes: &SyncSender<Vec<CycleRecord>>,
    dataset: &Path,
    starting_cash: Decimal,
    window: (Option<i64>, Option<i64>),
    mut shadow: Option<&mut QuoteShadow>,
) -> Result<PerQuoteSummary, String> {
    let send = |batch: Vec<CycleRecord>| {
        writes
            .send(batch)
            .map_err(|_| "the database writer stopped".to_string())
    };
    if !rules.has_on_quote {
        return Err(format!(
            "{}: cycle.evaluate is per_quote but the strategy has no `fn on_quote(q)`",
            rules.script(Stage::Strategy).source
        ));
    }
    let bot = &rules.config.bot;
    let ds = open_dataset(dataset).map_err(|e| e.to_string())?;
    let specs: BTreeMap<Symbol, SymbolSpec> = ds
        .specs()
        .into_iter()
        .map(|s| (s.symbol.clone(), s))
        .collect();
    let strategy = rules.script(Stage::Strategy);
    let periods = ema_periods(&strategy.params);
    let gates = Gates {
        simulated_venue: true,
        live_armed: false,
        kill_switch: false,
    };
    let (maker_bps, taker_bps) = (bot.fees.maker_bps, bot.fees.taker_bps);
    let quote_asset = bot.quote_asset.clone();
    let mut ledger = Ledger::new(&quote_asset, starting_cash);
    let mut symbols: HashMap<Symbol, SymbolState> = HashMap::new();
    let mut resting: Vec<Order> = Vec::new();
    let mut strategy_state = Dynamic::from_map(rhai::Map::new());
    let mut states: [Dynamic; 4] = Default::default();
    let mut summary = PerQuoteSummary::default();
    let mut trade_seq = 0u64;
    let (from, to) = window;
    // The last book of every symbol, to mark positions in the stored equity snapshots.
    let mut last_books: BTreeMap<Symbol, MarketSnapshot> = BTreeMap::new();
    let mut equity = super::valuation::EquityTracker::default();
    let mut pending_writes: Vec<CycleRecord> = Vec::with_capacity(WRITE_BATCH);
    let mut ema_buffer: Arc<Vec<(INT, Decimal, Decimal, INT)>> =
        Arc::new(Vec::with_capacity(periods.len()));

    let events =
        crate::exchange::replay::Prefetched::start(ds.events().map_err(|e| e.to_string())?);
    for event in events {
        let event = event.map_err(|e| e.to_string())?;
        let EventKind::Quote {
            bid,
            bid_qty,
            ask,
            ask_qty,
        } = event.kind
        else {
            continue;
        };
        let ts = event.ts_ms;
        if from.is_some_and(|f| ts < f) || !bot.symbols.contains(&event.symbol) {
            continue;
        }
        if to.is_some_and(|t| ts > t) {
            break;
        }
        summary.quotes += 1;
        let cycle_id = i64::try_from(summary.quotes).unwrap_or(i64::MAX);
        let (bid, ask) = (bid.value(), ask.value());
        let mid = (bid + ask) / Decimal::TWO;

        // Resting orders this quote crosses fill in full at their limit.
        let mut new_fills: Vec<Fill> = Vec::new();
        let mut changed: Vec<Order> = Vec::new();
        resting.retain_mut(|o| {
            let crosses = o.symbol == event.symbol
                && match o.side {
                    Side::Buy => ask <= o.price.value(),
                    Side::Sell => bid >= o.price.value(),
                };
            if !crosses {
                return true;
            }
            trade_seq += 1;
            let notional = o.price.value() * o.qty.value();
            new_fills.push(Fill {
                trade_id: format!("pq-{trade_seq}"),
                client_order_id: o.client_id.clone(),
                symbol: o.symbol.clone(),
                side: o.side,
                price: o.price,
                qty: o.qty,
                fee: fee(notional, maker_bps),
                fee_asset: quote_asset.clone(),
                maker: true,
                ts_ms: ts,
            });
            o.filled_qty = o.qty;
            o.status = OrderStatus::Filled;
            o.updated_ms = ts;
            changed.push(o.clone());
            false
        });

        // The EMAs of the mid, before and after this quote.
        if !symbols.contains_key(&event.symbol) {
            symbols.insert(
                event.symbol.clone(),
                SymbolState {
                    name: event.symbol.as_str().into(),
                    emas: periods
                        .iter()
                        .map(|p| (*p, Decimal::TWO / Decimal::from(*p + 1), None, 0))
                        .collect(),
                },
            );
        }
        let Some(state) = symbols.get_mut(&event.symbol) else {
            continue;
        };
        // One buffer for the whole run: the script's view of it is gone after each call.
        let emas = Arc::make_mut(&mut ema_buffer);
        emas.clear();
        for (period, alpha, ema, seen) in &mut state.emas {
            let alpha = *alpha;
            let before = ema.unwrap_or(mid);
            let after = match ema {
                Some(prev) => *prev + alpha * (mid - *prev),
                None => mid,
            };
            *ema = Some(after);
            *seen += 1;
            emas.push((*period, after, before, *seen));
        }
        let held = ledger
            .positions
            .get(&event.symbol)
            .map_or(Decimal::ZERO, |p| p.qty);
        let pending = resting.iter().any(|o| o.symbol == event.symbol);
        let view = QuoteView {
            symbol: state.name.clone(),
            ts_ms: ts,
            bid,
            ask,
            bid_qty: bid_qty.value(),
            ask_qty: ask_qty.value(),
            mid,
            held,
            pending,
            emas: Arc::clone(&ema_buffer),
            params: strategy.params.clone(),
        };
        // The candidate of a diff first, from the base's state as it is before the base's call
        // (unless its on_quote is provably the base's: then its intents are the base's).
        let own_shadow_intents = match shadow.as_deref_mut() {
            Some(candidate) if !candidate.shares_strategy => {
                Some(candidate.intents(&view, strategy_state.clone()))
            }
            _ => None,
        };
        let (result, _cost) = call(
            &rules.engine,
            &strategy.ast,
            &strategy.source,
            ON_QUOTE_ENTRY,
            &mut strategy_state,
            (view,),
            rules.timeout,
        );
        let intents = match on_quote_intents(result) {
            Ok(list) => list,
            Err(e) => {
                // Fail closed: no intent from a failing strategy; counted and logged.
                summary.rule_errors += 1;
                tracing::warn!(cycle_id, "on_quote failed: {e}");
                Vec::new()
            }
        };
        let shadow_intents = match (shadow.as_deref(), own_shadow_intents) {
            (_, Some(own)) => own,
            (Some(_), None) => intents.clone(),
            (None, None) => Vec::new(),
        };
        let market = MarketSnapshot {
            symbol: event.symbol.clone(),
            bid: Price::new(bid).map_err(|e| e.to_string())?,
            bid_qty,
            ask: Price::new(ask).map_err(|e| e.to_string())?,
            ask_qty,
            last_trade: None,
            exchange_ts_ms: ts,
            received_ts_ms: ts,
        };
        // Only the candidate acting: the base's cycle is recorded bare (its rules are not
        // called, as a run without a candidate would not call them) for the candidate's rows.
        let base_idle = intents.is_empty() && new_fills.is_empty();
        if base_idle && shadow_intents.is_empty() {
            last_books.insert(event.symbol.clone(), market);
            continue;
        }
        last_books.insert(event.symbol.clone(), market.clone());
        for f in &new_fills {
            ledger.apply(f).map_err(|e| e.to_string())?;
        }

        // An intent takes the cycle's path: decide (with the intent), plan, execute.
        let locked: Decimal = resting
            .iter()
            .filter(|o| o.side == Side::Buy)
            .map(|o| o.price.value() * o.qty.value())
            .sum();
        let mut portfolio = ledger.portfolio(ts, ledger.cash - locked, Some(ledger.cash));
        equity.prepare(ts, &mut portfolio);
        let input = CycleInput {
            cycle_id,
            now_ms: ts,
            symbols: vec![event.symbol.clone()],
            markets: vec![market],
            specs: specs.clone(),
            portfolio,
            open_orders: resting.clone(),
            engine_mode: Mode::Normal,
            states: states.clone(),
            intents_override: Some(intents),
            ..CycleInput::default()
        };
        let decision = if base_idle {
            Decision {
                anomalies: Vec::new(),
                mode: Mode::Normal,
                mode_reasons: Vec::new(),
                judged: Vec::new(),
                states: states.clone(),
                costs: Default::default(),
                rule_hash: rules.hash.clone(),
            }
        } else {
            decide(rules, &input)
        };
        let shadow_record = shadow
            .as_deref_mut()
            .map(|candidate| candidate.judge(&input, shadow_intents, &specs, gates));
        let actions = plan(
            cycle_id,
            &decision.judged,
            decision.mode,
            &specs,
            &resting,
            gates,
        );
        summary.intents += decision.judged.len() as u64;
        for action in &actions {
            let Action::Place(p) = action else { continue };
            summary.orders += 1;
            let mut order = Order {
                client_id: p.client_id.clone(),
                exchange_id: Some(format!("pq-order-{}", summary.orders)),
                symbol: p.symbol.clone(),
                side: p.side,
                price: p.price,
                qty: p.qty,
                filled_qty: Qty::ZERO,
                status: OrderStatus::Open,
                cycle_id,
                created_ms: ts,
                updated_ms: ts,
            };
            let marketable = match p.side {
                Side::Buy => p.price.value() >= ask,
                Side::Sell => p.price.value() <= bid,
            };
            if marketable {
                trade_seq += 1;
                let fill = Fill {
                    trade_id: format!("pq-{trade_seq}"),
                    client_order_id: p.client_id.clone(),
                    symbol: p.symbol.clone(),
                    side: p.side,
                    price: p.price,
                    qty: p.qty,
                    fee: fee(p.price.value() * p.qty.value(), taker_bps),
                    fee_asset: quote_asset.clone(),
                    maker: false,
                    ts_ms: ts,
                };
                ledger.apply(&fill).map_err(|e| e.to_string())?;
                new_fills.push(fill);
                order.filled_qty = order.qty;
                order.status = OrderStatus::Filled;
            } else {
                resting.push(order.clone());
            }
            changed.push(order);
        }
        summary.fills += new_fills.len() as u64;
        states = decision.states.clone();
        // The snapshot marks every position at its symbol's last book, after this quote's fills.
        let mut after = input.clone();
        after.portfolio = ledger.portfolio(ts, ledger.cash, Some(ledger.cash));
        after.portfolio.peak_equity = input.portfolio.peak_equity;
        after.portfolio.day_start_equity = input.portfolio.day_start_equity;
        after.portfolio.week_start_equity = input.portfolio.week_start_equity;
        after.markets = last_books.values().cloned().collect();
        let valuation = super::valuation::value(&after.portfolio, &after.markets);
        // A bare cycle adds no point to the base's equity curve: its report stays the run's own.
        let snapshot =
            (!base_idle).then(|| super::shell::snapshot_of(cycle_id, ts, &after, &valuation));
        if !base_idle {
            equity.update(ts, &valuation);
        }
        let record = CycleRecord {
            cycle_id,
            market_ts_ms: ts,
            rule_hash: rules.hash.clone(),
            mode: decision.mode,
            mode_reasons: decision.mode_reasons.clone(),
            anomalies: decision.anomalies.clone(),
            decisions: decision_records(rules, &decision, &actions, Action::label),
            orders: changed,
            fills: new_fills,
            fill_cursor: trade_seq,
            script_states: Vec::new(),
            equity: valuation.equity,
            realized_pnl: ledger.realized_pnl,
            fees: ledger.fees,
            snapshot,
            shadow: shadow_record,
            inputs: None,
            intents: u32::try_from(decision.judged.len()).unwrap_or(u32::MAX),
            orders_placed: u32::try_from(
                actions
                    .iter()
                    .filter(|a| matches!(a, Action::Place(_)))
                    .count(),
            )
            .unwrap_or(u32::MAX),
            orders_canceled: 0,
            eval_us: 0,
            fingerprint: fingerprint(&input, &decision, &actions),
        };
        pending_writes.push(record);
        if pending_writes.len() >= WRITE_BATCH {
            send(std::mem::replace(
                &mut pending_writes,
                Vec::with_capacity(WRITE_BATCH),
            ))?;
        }
    }
    if !pending_writes.is_empty() {
        send(pending_writes)?;
    }
    Ok(summary)
}
