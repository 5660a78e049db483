//! Order validation for the matching engine: BTCTurk-like rejection codes, the price grid, and
//! overflow-safe amounts.

use crate::domain::{Side, SymbolSpec};
use crate::exchange::OrderRequest;
use rust_decimal::Decimal;

/// Why the engine refused a request: a BTCTurk-like code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: String,
    pub message: String,
}

impl Reject {
    pub(super) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// A request that passed validation: what to lock, and the normalised quantity.
pub(super) struct Checked {
    pub(super) asset: String,
    pub(super) need: Decimal,
    pub(super) qty: Decimal,
}

/// Validates `req` against its pair (`None` = unknown pair) and works out what it locks: a
/// buy locks `price × qty` plus the fee reserve at `reserve_bps`, a sell locks `qty`.
pub(super) fn check_request(
    spec: Option<&SymbolSpec>,
    req: &OrderRequest,
    reserve_bps: Decimal,
) -> Result<Checked, Reject> {
    let spec =
        spec.ok_or_else(|| Reject::new("1037", format!("Pair {} does not exists.", req.symbol)))?;
    if !spec.trading {
        return Err(Reject::new(
            "SYMBOL_NOT_TRADING",
            format!("{} is not trading", req.symbol),
        ));
    }
    let price = req.price.value();
    if !on_grid(spec, price) {
        return Err(Reject::new(
            "1126",
            format!(
                "FAILED_INVALID_PRICE_SCALE: price {price} is not on the {} tick grid (tick {})",
                spec.symbol, spec.tick_size
            ),
        ));
    }
    let qty = req.qty.value().normalize();
    if qty.scale() > spec.qty_scale {
        return Err(Reject::new(
            "1127",
            format!(
                "FAILED_INVALID_QUANTITY_SCALE: quantity {qty} has more than {} decimals",
                spec.qty_scale
            ),
        ));
    }
    if qty <= Decimal::ZERO {
        return Err(Reject::new(
            "FAILED_ORDER_PARAMETER",
            "quantity must be > 0",
        ));
    }
    let too_big = || Reject::new("FAILED_ORDER_PARAMETER", "price x quantity is too large");
    let notional = price.checked_mul(qty).ok_or_else(too_big)?;
    if notional < spec.min_notional {
        return Err(Reject::new(
            "1123",
            format!(
                "FAILED_MIN_TOTAL_AMOUNT: {price} x {qty} = {} is below the minimum {} {}",
                notional.normalize(),
                spec.min_notional,
                spec.quote
            ),
        ));
    }
    let (asset, need) = match req.side {
        Side::Buy => (
            spec.quote.clone(),
            checked_bps(notional, reserve_bps)
                .and_then(|fee| notional.checked_add(fee))
                .ok_or_else(too_big)?,
        ),
        Side::Sell => (spec.base.clone(), qty),
    };
    Ok(Checked { asset, need, qty })
}

/// `value × bps / 10000`, or `None` on overflow.
pub(super) fn checked_bps(value: Decimal, bps: Decimal) -> Option<Decimal> {
    value.checked_mul(bps)?.checked_div(Decimal::from(10_000))
}

/// Whether `price` is a multiple of the pair's effective price step (the tick size, at least
/// one unit of the price scale, and at least 1 when prices must be integers) — the same grid
/// as [`SymbolSpec::quantize_price`], computed without any operation that can overflow.
fn on_grid(spec: &SymbolSpec, price: Decimal) -> bool {
    let scale_step = if spec.has_fraction {
        Decimal::new(1, spec.price_scale.min(28))
    } else {
        Decimal::ONE
    };
    let mut step = spec.tick_size;
    if !spec.has_fraction && step < Decimal::ONE {
        step = Decimal::ONE;
    }
    if step <= Decimal::ZERO || step < scale_step {
        step = scale_step;
    }
    price.checked_rem(step).is_some_and(|r| r.is_zero())
}
