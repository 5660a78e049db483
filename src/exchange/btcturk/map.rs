//! Wire types → domain types, and the fill sequence numbers.
//!
//! **Fill sequence.** BTCTurk has no account-wide trade sequence, and its trade-id formats have
//! changed over time (`552887776` in 2021 samples, `1181163798924649598` in 2022 ones), so the id
//! is not trusted to grow with time. The seq is derived from the trade's timestamp:
//! `seq = timestamp_ms * 1000 + rank`, where `rank` (0..=999) orders the trades of the same
//! millisecond by trade id (numerically when the ids are numbers). It grows with time, is the same
//! on every read, and fits a u64 for 5.8e11 years.

use super::endpoint::Endpoint;
use super::wire::{BalanceRow, OrderBook, PublicTrade, UserTrade, WireOrder, WireSide, WireStatus};
use crate::domain::{
    AccountSnapshot, Balance, Fill, MarketSnapshot, Order, OrderStatus, Price, Qty, Side, Symbol,
    TradePrint,
};
use crate::exchange::ExchangeError;
use rust_decimal::Decimal;

fn bad_data(ep: Endpoint, message: String) -> ExchangeError {
    ExchangeError::Permanent {
        endpoint: ep.name().to_string(),
        message,
    }
}

/// A known side, or an error naming the endpoint and field.
///
/// # Errors
/// `Permanent` for a side this client does not know.
pub fn side(ep: Endpoint, field: &str, s: &WireSide) -> Result<Side, ExchangeError> {
    match s {
        WireSide::Buy => Ok(Side::Buy),
        WireSide::Sell => Ok(Side::Sell),
        WireSide::Other(o) => Err(bad_data(ep, format!("{field}: unknown order side {o:?}"))),
    }
}

/// The top of `book` as a snapshot; `None` when either side is empty or a top level is not
/// positive (no usable market).
pub fn snapshot(
    symbol: &Symbol,
    book: &OrderBook,
    last_trade: Option<TradePrint>,
    received_ts_ms: i64,
) -> Option<MarketSnapshot> {
    // Bids best first (highest), asks best first (lowest); take the best either way.
    let bid = book.bids.iter().max_by(|a, b| a.price.cmp(&b.price))?;
    let ask = book.asks.iter().min_by(|a, b| a.price.cmp(&b.price))?;
    Some(MarketSnapshot {
        symbol: symbol.clone(),
        bid: Price::new(bid.price).ok()?,
        bid_qty: Qty::new(bid.qty).ok()?,
        ask: Price::new(ask.price).ok()?,
        ask_qty: Qty::new(ask.qty).ok()?,
        last_trade,
        exchange_ts_ms: book.timestamp_ms,
        received_ts_ms,
    })
}

/// The newest trade of a `trades` answer as a print.
pub fn last_print(trades: &[PublicTrade]) -> Option<TradePrint> {
    let t = trades.iter().max_by_key(|t| t.date_ms)?;
    Some(TradePrint {
        price: Price::new(t.price).ok()?,
        qty: Qty::new(t.amount.abs()).ok()?,
        side: match t.side {
            Some(WireSide::Buy) => Some(Side::Buy),
            Some(WireSide::Sell) => Some(Side::Sell),
            _ => None,
        },
        ts_ms: t.date_ms,
    })
}

pub fn account(rows: &[BalanceRow]) -> AccountSnapshot {
    AccountSnapshot {
        balances: rows
            .iter()
            .map(|r| Balance {
                asset: r.asset.clone(),
                free: r.free.normalize(),
                locked: r.locked.normalize(),
            })
            .collect(),
    }
}

/// The client id BTCTurk reports for an order, or `btcturk:<id>` when it reports none.
pub fn client_id_or_placeholder(client_id: Option<&str>, order_id: &str) -> String {
    match client_id {
        Some(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => format!("btcturk:{order_id}"),
    }
}

/// An open order as the bot tracks it. The pair comes from the order (`pairSymbol` or
/// `pairsymbol`) or, when absent, from the pair that was asked for.
///
/// # Errors
/// `Permanent` naming the field: an unknown side, a non-positive price, a negative quantity.
pub fn open_order(
    ep: Endpoint,
    path: &str,
    w: &WireOrder,
    asked: Option<&Symbol>,
) -> Result<Order, ExchangeError> {
    let symbol = match (&w.pair_symbol, asked) {
        (Some(p), _) => {
            Symbol::new(p).map_err(|e| bad_data(ep, format!("{path}.pairSymbol: {e}")))?
        }
        (None, Some(s)) => s.clone(),
        (None, None) => return Err(bad_data(ep, format!("{path}.pairSymbol: missing"))),
    };
    let price = Price::new(w.price).map_err(|e| bad_data(ep, format!("{path}.price: {e}")))?;
    let qty = Qty::new(w.amount).map_err(|e| bad_data(ep, format!("{path}.amount: {e}")))?;
    let left = w
        .left_amount
        .unwrap_or(w.amount)
        .clamp(Decimal::ZERO, w.amount);
    let filled = (w.amount - left).normalize();
    let status = if filled > Decimal::ZERO || w.status == Some(WireStatus::Partial) {
        OrderStatus::PartiallyFilled
    } else {
        OrderStatus::Open
    };
    let updated = w.update_time_ms.unwrap_or(0);
    let created = w.time_ms.filter(|t| *t > 0).unwrap_or(updated);
    Ok(Order {
        client_id: client_id_or_placeholder(w.client_id.as_deref(), &w.id),
        exchange_id: Some(w.id.clone()),
        symbol,
        side: side(ep, &format!("{path}.type"), &w.side)?,
        price,
        qty,
        filled_qty: Qty::new(filled).unwrap_or(Qty::ZERO),
        status,
        cycle_id: 0,
        created_ms: created,
        updated_ms: updated.max(created),
    })
}

/// An order from `allOrders` or `order/{id}`, open or finished: the status comes from BTCTurk's
/// `status` (`Closed`/`Filled` → filled, `Canceled`, `Partial`, `Untouched`), or from
/// `leftAmount` when absent. A closed order without `leftAmount` counts as fully filled.
///
/// # Errors
/// As [`open_order`], and an unknown `status`.
pub fn any_order(
    ep: Endpoint,
    path: &str,
    w: &WireOrder,
    asked: Option<&Symbol>,
) -> Result<Order, ExchangeError> {
    let mut o = open_order(ep, path, w, asked)?;
    let done = w.left_amount.is_some_and(|l| l <= Decimal::ZERO);
    o.status = match &w.status {
        Some(WireStatus::Closed | WireStatus::Filled) => {
            if w.left_amount.is_none() {
                o.filled_qty = o.qty;
            }
            OrderStatus::Filled
        }
        Some(WireStatus::Canceled) => OrderStatus::Canceled,
        Some(WireStatus::Partial) => OrderStatus::PartiallyFilled,
        Some(WireStatus::Untouched) => o.status,
        None if done => OrderStatus::Filled,
        None => o.status,
        Some(WireStatus::Other(s)) => {
            return Err(bad_data(
                ep,
                format!("{path}.status: unknown order status {s:?}"),
            ));
        }
    };
    Ok(o)
}

/// The pair of a user trade (`numeratorSymbol` + `denominatorSymbol`).
///
/// # Errors
/// `Permanent` when the currencies do not make a symbol.
pub fn trade_symbol(t: &UserTrade) -> Result<Symbol, ExchangeError> {
    Symbol::new(&format!("{}{}", t.numerator, t.denominator)).map_err(|e| {
        bad_data(
            Endpoint::UserTrades,
            format!("trade {}: numeratorSymbol/denominatorSymbol: {e}", t.id),
        )
    })
}

/// A user trade as a fill. Fee = |fee| + |tax|, in the quote currency (BTCTurk charges both
/// there). BTCTurk does not say whether the trade was maker or taker: `maker` is `false`.
///
/// # Errors
/// `Permanent` naming the trade: an unknown side, a bad pair, a non-positive price.
pub fn fill(t: &UserTrade, client_order_id: String) -> Result<Fill, ExchangeError> {
    let ep = Endpoint::UserTrades;
    let at = |f: &str| format!("trade {}: {f}", t.id);
    Ok(Fill {
        trade_id: t.id.clone(),
        client_order_id,
        symbol: trade_symbol(t)?,
        side: side(ep, &at("orderType"), &t.side)?,
        price: Price::new(t.price).map_err(|e| bad_data(ep, at(&format!("price: {e}"))))?,
        qty: Qty::new(t.qty()).map_err(|e| bad_data(ep, at(&format!("amount: {e}"))))?,
        fee: t.total_fee(),
        fee_asset: t.denominator.clone(),
        maker: false,
        ts_ms: t.timestamp_ms,
    })
}

/// The trades with their seq (see the module docs), oldest first.
pub fn with_seqs(trades: &[UserTrade]) -> Vec<(u64, &UserTrade)> {
    let mut sorted: Vec<&UserTrade> = trades.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |t: &UserTrade| (t.timestamp_ms, t.id.parse::<u64>().unwrap_or(u64::MAX));
        key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
    });
    let mut out = Vec::with_capacity(sorted.len());
    let mut rank: u64 = 0;
    let mut prev_ts = None;
    for t in sorted {
        rank = if prev_ts == Some(t.timestamp_ms) {
            (rank + 1).min(999)
        } else {
            0
        };
        prev_ts = Some(t.timestamp_ms);
        let ms = u64::try_from(t.timestamp_ms).unwrap_or(0);
        out.push((ms.saturating_mul(1000).saturating_add(rank), t));
    }
    out
}

/// The timestamp part of a seq.
pub fn seq_ms(seq: u64) -> i64 {
    i64::try_from(seq / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::btcturk::wire::{Level, parse_open_orders, parse_user_trades};
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn trade(id: &str, ts: i64) -> UserTrade {
        UserTrade {
            id: id.into(),
            timestamp_ms: ts,
            amount: d("-1"),
            precise_amount: None,
            fee: d("-0.1"),
            tax: d("-0.02"),
            price: d("100"),
            numerator: "BTC".into(),
            denominator: "TRY".into(),
            side: WireSide::Sell,
            order_id: "9".into(),
            order_client_id: Some("c9".into()),
        }
    }

    #[test]
    fn seqs_follow_time_then_id_and_are_stable() {
        let trades = vec![
            trade("30", 2000),
            trade("11", 1000),
            trade("9", 1000),
            trade("x", 1000),
        ];
        let seqs: Vec<(u64, &str)> = with_seqs(&trades)
            .into_iter()
            .map(|(s, t)| (s, t.id.as_str()))
            .collect();
        assert_eq!(
            seqs,
            [
                (1_000_000, "9"),
                (1_000_001, "11"),
                (1_000_002, "x"),
                (2_000_000, "30")
            ]
        );
        assert_eq!(seq_ms(1_000_002), 1000);
    }

    #[test]
    fn user_trade_becomes_a_fill_with_fee_and_tax_in_quote() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/btcturk/trcrypto/user-trades.json"
        ))
        .unwrap();
        let t = &parse_user_trades(&body).unwrap()[0];
        let f = fill(t, "c1".into()).unwrap();
        assert_eq!(f.trade_id, "1181163798924649598");
        assert_eq!((f.symbol.as_str(), f.side), ("ETHWTRY", Side::Sell));
        assert_eq!(
            (f.price.value(), f.qty.value()),
            (d("122"), d("0.33840811"))
        );
        assert_eq!((f.fee, f.fee_asset.as_str()), (d("0.07431424"), "TRY"));
        assert_eq!(f.ts_ms, 1_663_848_223_334);
        let mut odd = t.clone();
        odd.side = WireSide::Other("swap".into());
        let e = fill(&odd, "c1".into()).unwrap_err();
        assert!(
            e.to_string()
                .contains("orderType: unknown order side \"swap\""),
            "{e}"
        );
    }

    #[test]
    fn open_orders_map_fills_status_and_symbol_fallback() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/btcturk/mss1451/open_orders.json"
        ))
        .unwrap();
        let wrapped = format!(r#"{{"success":true,"code":0,"data":{body}}}"#);
        let o = parse_open_orders(&wrapped).unwrap();
        let ep = Endpoint::OpenOrders;
        let partial = open_order(ep, "data.asks[1]", &o.asks[1], None).unwrap();
        assert_eq!(partial.status, OrderStatus::PartiallyFilled);
        assert_eq!(partial.filled_qty.value(), d("0.00848454"));
        assert_eq!(partial.created_ms, 1_591_286_411_913); // time 0 → updateTime
        assert_eq!(partial.exchange_id.as_deref(), Some("16060237"));
        let open = open_order(ep, "data.bids[0]", &o.bids[0], None).unwrap();
        assert_eq!((open.status, open.side), (OrderStatus::Open, Side::Buy));
        assert_eq!(open.client_id, "da593000-6eb3-4a1c-ba26-c616122a0210");
        let mut w = o.bids[0].clone();
        w.pair_symbol = None;
        w.client_id = None;
        let btc = Symbol::new("BTCTRY").unwrap();
        let m = open_order(ep, "p", &w, Some(&btc)).unwrap();
        assert_eq!(
            (m.symbol.as_str(), m.client_id.as_str()),
            ("BTCTRY", "btcturk:16071095")
        );
        w.side = WireSide::Other("hold".into());
        let e = open_order(ep, "data.bids[0]", &w, Some(&btc)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "GET /api/v1/openOrders: data.bids[0].type: unknown order side \"hold\""
        );
    }

    #[test]
    fn finished_orders_take_their_status_from_btcturk() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/btcturk/trcrypto/all-orders.json"
        ))
        .unwrap();
        let mut w = crate::exchange::btcturk::wire::parse_all_orders(&body).unwrap()[0].clone();
        let ep = Endpoint::AllOrders;
        let o = any_order(ep, "data[0]", &w, None).unwrap();
        assert_eq!(
            (o.status, o.client_id.as_str()),
            (OrderStatus::Open, "test")
        );
        w.status = Some(WireStatus::Closed);
        let o = any_order(ep, "data[0]", &w, None).unwrap();
        assert_eq!(
            (o.status, o.filled_qty.value()),
            (OrderStatus::Filled, d("0.001"))
        );
        w.status = Some(WireStatus::Canceled);
        w.left_amount = Some(d("0.0004"));
        let o = any_order(ep, "data[0]", &w, None).unwrap();
        assert_eq!(
            (o.status, o.filled_qty.value()),
            (OrderStatus::Canceled, d("0.0006"))
        );
        w.status = Some(WireStatus::Other("Frozen".into()));
        let e = any_order(ep, "data[0]", &w, None).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("data[0].status: unknown order status \"Frozen\""),
            "{e}"
        );
    }

    #[test]
    fn snapshot_needs_both_sides() {
        let s = Symbol::new("BTCTRY").unwrap();
        let lvl = |p: &str, q: &str| Level {
            price: d(p),
            qty: d(q),
        };
        let book = OrderBook {
            timestamp_ms: 7,
            bids: vec![lvl("99", "1"), lvl("98", "2")],
            asks: vec![lvl("101", "3")],
        };
        let m = snapshot(&s, &book, None, 9).unwrap();
        assert_eq!((m.bid.value(), m.ask_qty.value()), (d("99"), d("3")));
        assert_eq!((m.exchange_ts_ms, m.received_ts_ms), (7, 9));
        let empty = OrderBook {
            asks: vec![],
            ..book
        };
        assert!(snapshot(&s, &empty, None, 9).is_none());
    }
}
