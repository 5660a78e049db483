//! Intents, verdicts, orders and their lifecycle, fills, anomalies and degrade modes.

use super::{Price, Qty, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
    /// # Errors
    /// When the text is neither `buy` nor `sell` (any case).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            other => Err(format!("side must be \"buy\" or \"sell\", got {other:?}")),
        }
    }
}
impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Degrade mode, ordered from the loosest to the most careful. Combining two modes takes the
/// maximum, so a mode can only ever be tightened by combination.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Normal,
    ReduceOnly,
    ObserveOnly,
    Halt,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Normal,
        Mode::ReduceOnly,
        Mode::ObserveOnly,
        Mode::Halt,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::ReduceOnly => "reduce_only",
            Mode::ObserveOnly => "observe_only",
            Mode::Halt => "halt",
        }
    }
    /// # Errors
    /// When the text names no mode.
    pub fn parse(text: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| {
                format!("mode must be one of normal, reduce_only, observe_only, halt; got {text:?}")
            })
    }
    /// The more careful of the two.
    pub fn tighten(self, other: Mode) -> Mode {
        self.max(other)
    }
    /// Whether a new order on `side` may be placed in this mode (cancels are always allowed).
    pub fn allows(self, side: Side) -> bool {
        match self {
            Mode::Normal => true,
            Mode::ReduceOnly => side == Side::Sell,
            Mode::ObserveOnly | Mode::Halt => false,
        }
    }
}
impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
    /// # Errors
    /// When the text names no severity.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warn" | "warning" => Ok(Severity::Warn),
            "error" => Ok(Severity::Error),
            other => Err(format!(
                "severity must be info, warn or error; got {other:?}"
            )),
        }
    }
}

/// Something unusual the anomaly rules (or the engine itself) noticed this cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub code: String,
    pub severity: Severity,
    pub symbol: Option<Symbol>,
    /// Named details, values as text (money stays exact).
    pub detail: Vec<(String, String)>,
}

/// What the strategy would like to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub symbol: Symbol,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub tag: String,
}

impl Intent {
    pub fn notional(&self) -> Decimal {
        self.price.value() * self.qty.value()
    }
}

/// Risk's answer to one intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Accept,
    Resize { qty: Qty },
    Reject { reason: String },
}

impl Verdict {
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Resize { .. } => "resize",
            Verdict::Reject { .. } => "reject",
        }
    }
    /// The reason code recorded for this verdict (`ACCEPT`, `RESIZE` or the rejection's code).
    pub fn reason_code(&self) -> &str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Resize { .. } => "RESIZE",
            Verdict::Reject { reason } => reason,
        }
    }
}

/// Order lifecycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Planned,
    Submitting,
    Open,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
    /// Sent but no answer; resolved by reconciliation.
    Unknown,
    /// A cancel was accepted by the venue (BTCTurk's cancel is asynchronous: a 200 only means
    /// accepted); the order may still fill until the venue confirms.
    CancelRequested,
}

/// Illegal lifecycle move; stored and logged, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal order transition {from:?} -> {to:?}")]
pub struct TransitionError {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 10] = [
        OrderStatus::Planned,
        OrderStatus::Submitting,
        OrderStatus::Open,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
        OrderStatus::Unknown,
        OrderStatus::CancelRequested,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Planned => "planned",
            OrderStatus::Submitting => "submitting",
            OrderStatus::Open => "open",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Expired => "expired",
            OrderStatus::Unknown => "unknown",
            OrderStatus::CancelRequested => "cancel_requested",
        }
    }
    /// # Errors
    /// When the text names no status.
    pub fn parse(text: &str) -> Result<Self, String> {
        OrderStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown order status {text:?}"))
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Rejected
                | OrderStatus::Expired
        )
    }
    pub fn is_live(self) -> bool {
        matches!(
            self,
            OrderStatus::Submitting
                | OrderStatus::Open
                | OrderStatus::PartiallyFilled
                | OrderStatus::Unknown
                | OrderStatus::CancelRequested
        )
    }

    /// The one transition table. Every legal pair is listed; anything else is an error.
    ///
    /// # Errors
    /// [`TransitionError`] when `to` is not reachable from `self`.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, TransitionError> {
        use OrderStatus::*;
        let legal = matches!(
            (self, to),
            (Planned, Submitting)
                | (Planned, Canceled) // dropped before sending (gate or shutdown)
                | (Submitting, Open)
                | (Submitting, PartiallyFilled)
                | (Submitting, Filled) // marketable order filled on arrival
                | (Submitting, Rejected)
                | (Submitting, Unknown) // sent, no answer
                | (Unknown, Open)
                | (Unknown, PartiallyFilled)
                | (Unknown, Filled)
                | (Unknown, Canceled)
                | (Unknown, Rejected) // lookup proved it never reached the book
                | (Open, PartiallyFilled)
                | (Open, Filled)
                | (Open, Canceled)
                | (Open, Expired)
                | (PartiallyFilled, PartiallyFilled) // another partial fill
                | (PartiallyFilled, Filled)
                | (PartiallyFilled, Canceled)
                | (PartiallyFilled, Expired)
                | (Open, CancelRequested)
                | (PartiallyFilled, CancelRequested)
                | (Unknown, CancelRequested)
                | (CancelRequested, PartiallyFilled) // fills race the cancel
                | (CancelRequested, Filled)
                | (CancelRequested, Canceled)
                | (CancelRequested, Expired)
        );
        if legal {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

/// An order the bot placed (or adopted), as the bot tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub client_id: String,
    pub exchange_id: Option<String>,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub filled_qty: Qty,
    pub status: OrderStatus,
    pub cycle_id: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Order {
    pub fn remaining(&self) -> Decimal {
        self.qty.value() - self.filled_qty.value()
    }
}

/// One execution, immutable once recorded. `trade_id` is unique per exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub trade_id: String,
    pub client_order_id: String,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub fee: Decimal,
    pub fee_asset: String,
    pub maker: bool,
    pub ts_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_only_tighten() {
        assert_eq!(Mode::Normal.tighten(Mode::ReduceOnly), Mode::ReduceOnly);
        assert_eq!(Mode::ObserveOnly.tighten(Mode::Normal), Mode::ObserveOnly);
        assert!(Mode::ReduceOnly.allows(Side::Sell));
        assert!(!Mode::ReduceOnly.allows(Side::Buy));
        assert!(!Mode::ObserveOnly.allows(Side::Sell));
    }

    #[test]
    fn terminal_states_accept_no_transition() {
        for from in OrderStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in OrderStatus::ALL {
                assert!(from.transition(to).is_err(), "{from:?} -> {to:?}");
            }
        }
    }

    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = OrderStatus> {
        proptest::sample::select(OrderStatus::ALL.to_vec())
    }

    proptest! {
        /// Whatever sequence of requested moves arrives, the order only ever takes legal steps:
        /// an illegal request is an error and leaves the status unchanged, nothing leaves a
        /// terminal state, and every status reached is reachable from `planned`.
        #[test]
        fn no_sequence_of_events_reaches_an_illegal_state(moves in proptest::collection::vec(status(), 0..40)) {
            let mut current = OrderStatus::Planned;
            let mut seen_terminal = false;
            for to in moves {
                match current.transition(to) {
                    Ok(next) => {
                        prop_assert!(!current.is_terminal(), "{current:?} -> {to:?} left a terminal state");
                        prop_assert_eq!(next, to);
                        current = next;
                    }
                    Err(e) => {
                        prop_assert_eq!(e, TransitionError { from: current, to });
                    }
                }
                if current.is_terminal() {
                    seen_terminal = true;
                }
                prop_assert!(!seen_terminal || current.is_terminal());
            }
        }
    }

    #[test]
    fn every_status_is_reachable_from_planned() {
        let mut reached = vec![OrderStatus::Planned];
        let mut i = 0;
        while i < reached.len() {
            let from = reached[i];
            for to in OrderStatus::ALL {
                if from.transition(to).is_ok() && !reached.contains(&to) {
                    reached.push(to);
                }
            }
            i += 1;
        }
        assert_eq!(
            reached.len(),
            OrderStatus::ALL.len(),
            "unreachable: {reached:?}"
        );
    }

    #[test]
    fn happy_path_is_legal() {
        let s = OrderStatus::Planned
            .transition(OrderStatus::Submitting)
            .and_then(|s| s.transition(OrderStatus::Open))
            .and_then(|s| s.transition(OrderStatus::PartiallyFilled))
            .and_then(|s| s.transition(OrderStatus::Filled));
        assert_eq!(s, Ok(OrderStatus::Filled));
    }
}
