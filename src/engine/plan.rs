//! Plan and gate (pure): turn accepted verdicts into orders on the exchange's grid, drop what
//! cannot or must not be sent, and give every order a deterministic client id.

use super::decide::Judged;
use crate::domain::{Mode, Order, Price, Qty, Side, Symbol, SymbolSpec, Verdict};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What the engine does with one judged intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this order.
    Place(PlannedOrder),
    /// Would have been sent, but the run is a dry run against a real venue.
    DryRun(PlannedOrder),
    /// Not sent; the reason code says why.
    Dropped(String),
    /// Risk rejected it.
    Rejected,
}

impl Action {
    /// Text stored in the decision log.
    pub fn label(&self) -> String {
        match self {
            Action::Place(_) => "placed".into(),
            Action::DryRun(_) => "dry_run".into(),
            Action::Dropped(reason) => format!("dropped:{reason}"),
            Action::Rejected => "rejected".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOrder {
    pub client_id: String,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
}

/// The gates the engine (never a script) enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gates {
    /// The venue cannot spend real money (replay, sim): orders go to it even in dry run.
    pub simulated_venue: bool,
    /// All live-arming conditions hold.
    pub live_armed: bool,
    pub kill_switch: bool,
}

impl Gates {
    /// Whether orders and cancels may reach the venue at all: live armed, or a venue that
    /// cannot spend real money. Otherwise the run is a dry run and sends nothing.
    pub fn orders_reach_venue(self) -> bool {
        self.simulated_venue || self.live_armed
    }
}

/// A client id ≤ 50 characters (BTCTurk's limit), the same for the same cycle and intent.
pub fn client_order_id(
    cycle_id: i64,
    index: usize,
    symbol: &Symbol,
    side: Side,
    price: Decimal,
    qty: Decimal,
) -> String {
    let mut h = Sha256::new();
    h.update(format!("{cycle_id}|{index}|{symbol}|{side}|{price}|{qty}"));
    let digest = hex::encode(h.finalize());
    let id = format!("bb{cycle_id}-{index}-{}", &digest[..12]);
    id.chars().take(50).collect()
}

/// Quantizes, dedupes and gates every judged intent, in order.
pub fn plan(
    cycle_id: i64,
    judged: &[Judged],
    mode: Mode,
    specs: &BTreeMap<Symbol, SymbolSpec>,
    live_orders: &[Order],
    gates: Gates,
) -> Vec<Action> {
    let mut taken: Vec<(Symbol, Side, Decimal)> = live_orders
        .iter()
        .filter(|o| o.status.is_live())
        .map(|o| (o.symbol.clone(), o.side, o.price.value()))
        .collect();
    judged
        .iter()
        .enumerate()
        .map(|(index, j)| {
            let qty = match &j.verdict {
                Verdict::Reject { .. } => return Action::Rejected,
                Verdict::Accept => j.intent.qty.value(),
                Verdict::Resize { qty } => qty.value(),
            };
            let intent = &j.intent;
            let Some(spec) = specs.get(&intent.symbol) else {
                return Action::Dropped("UNKNOWN_SYMBOL".into());
            };
            if !spec.trading {
                return Action::Dropped("SYMBOL_NOT_TRADING".into());
            }
            let price = spec.quantize_price(intent.price.value(), intent.side == Side::Sell);
            let qty = spec.quantize_qty(qty);
            let (Ok(price), Ok(qty)) = (Price::new(price), Qty::new(qty)) else {
                return Action::Dropped("ROUNDS_TO_ZERO".into());
            };
            if qty.value().is_zero() {
                return Action::Dropped("ROUNDS_TO_ZERO".into());
            }
            if price.value() * qty.value() < spec.min_notional {
                return Action::Dropped("BELOW_EXCHANGE_MIN_NOTIONAL".into());
            }
            let key = (intent.symbol.clone(), intent.side, price.value());
            if taken.contains(&key) {
                return Action::Dropped("DUPLICATE_OF_LIVE_ORDER".into());
            }
            if gates.kill_switch {
                return Action::Dropped("KILL_SWITCH".into());
            }
            if !mode.allows(intent.side) {
                return Action::Dropped(format!("MODE_{}", mode.as_str().to_ascii_uppercase()));
            }
            taken.push(key);
            let order = PlannedOrder {
                client_id: client_order_id(
                    cycle_id,
                    index,
                    &intent.symbol,
                    intent.side,
                    price.value(),
                    qty.value(),
                ),
                symbol: intent.symbol.clone(),
                side: intent.side,
                price,
                qty,
            };
            if gates.orders_reach_venue() {
                Action::Place(order)
            } else {
                Action::DryRun(order)
            }
        })
        .collect()
}
