//! Wire types of the private order endpoints: open orders, all orders, order by id and user
//! trades. Shares the envelope and scalar readers of `wire.rs`.

use super::endpoint::Endpoint;
use super::wire::{WireError, array_of, each, enveloped};
use super::wire_value::{FieldError, Fields, WireMethod, WireSide, WireStatus};
use rust_decimal::Decimal;
use serde_json::Value;

/// One order as `openOrders`, `allOrders` and `order/{id}` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireOrder {
    pub id: String,
    pub price: Decimal,
    /// Original quantity (`amount`; `quantity` when `amount` is absent).
    pub amount: Decimal,
    pub quantity: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    /// `pairSymbol` or the older lowercase `pairsymbol`.
    pub pair_symbol: Option<String>,
    pub pair_symbol_normalized: Option<String>,
    pub side: WireSide,
    pub method: Option<WireMethod>,
    /// `orderClientId` (`newOrderClientId` accepted too).
    pub client_id: Option<String>,
    /// Creation time; `0` in some samples.
    pub time_ms: Option<i64>,
    pub update_time_ms: Option<i64>,
    pub status: Option<WireStatus>,
    /// Quantity still open; absent from older payloads.
    pub left_amount: Option<Decimal>,
}

impl WireOrder {
    /// # Errors
    /// A missing `id`/`price`/`amount`/`type`, or a malformed field.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, FieldError> {
        let f = Fields::of(v, path)?;
        let quantity = f.opt_decimal(&["quantity"])?;
        let amount = match f.opt_decimal(&["amount"])? {
            Some(a) => a,
            None => quantity.ok_or_else(|| FieldError::missing(format!("{path}.amount")))?,
        };
        Ok(Self {
            id: f.id(&["id", "orderId"])?,
            price: f.decimal(&["price"])?,
            amount,
            quantity,
            stop_price: f.opt_decimal(&["stopPrice"])?,
            pair_symbol: f.opt_text(&["pairSymbol", "pair"])?,
            pair_symbol_normalized: f.opt_text(&["pairSymbolNormalized"])?,
            side: WireSide::parse(&f.text(&["type", "orderType"])?),
            method: f
                .opt_text(&["method", "orderMethod"])?
                .map(|s| WireMethod::parse(&s)),
            client_id: f.opt_text(&["orderClientId", "newOrderClientId"])?,
            time_ms: f.opt_ts(&["time", "datetime"])?,
            update_time_ms: f.opt_ts(&["updateTime"])?,
            status: f.opt_text(&["status"])?.map(|s| WireStatus::parse(&s)),
            left_amount: f.opt_decimal(&["leftAmount"])?,
        })
    }

    /// `data` as an array of orders.
    ///
    /// # Errors
    /// As [`WireOrder::from_value`].
    pub fn list_from_data(data: &Value) -> Result<Vec<Self>, FieldError> {
        each(array_of(data, "data")?, Self::from_value)
    }
    /// `data` as one order.
    ///
    /// # Errors
    /// As [`WireOrder::from_value`].
    pub fn from_data(data: &Value) -> Result<Self, FieldError> {
        Self::from_value(data, "data")
    }
}

/// `GET /api/v1/openOrders`: `{bids: [...], asks: [...]}`; a missing side is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOrders {
    pub bids: Vec<WireOrder>,
    pub asks: Vec<WireOrder>,
}

impl OpenOrders {
    /// # Errors
    /// `data` missing or not an object, or a malformed order.
    pub fn from_data(data: &Value) -> Result<Self, FieldError> {
        let f = Fields::of(data, "data")?;
        Ok(Self {
            bids: each(f.opt_array(&["bids"])?, WireOrder::from_value)?,
            asks: each(f.opt_array(&["asks"])?, WireOrder::from_value)?,
        })
    }
    /// Bids then asks.
    pub fn all(&self) -> impl Iterator<Item = &WireOrder> {
        self.bids.iter().chain(&self.asks)
    }
}

/// # Errors
/// See [`WireError`].
pub fn parse_open_orders(body: &str) -> Result<OpenOrders, WireError> {
    enveloped(Endpoint::OpenOrders, body, OpenOrders::from_data)
}

/// # Errors
/// See [`WireError`].
pub fn parse_all_orders(body: &str) -> Result<Vec<WireOrder>, WireError> {
    enveloped(Endpoint::AllOrders, body, WireOrder::list_from_data)
}

/// # Errors
/// See [`WireError`]; an unknown id is a `Failure` with code 1152.
pub fn parse_order_by_id(body: &str) -> Result<WireOrder, WireError> {
    enveloped(Endpoint::OrderById, body, WireOrder::from_data)
}

/// One of this account's trades from `GET /api/v1/users/transactions/trade`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTrade {
    /// A JSON integer above 2^53 on the live API; kept as its digits.
    pub id: String,
    pub timestamp_ms: i64,
    /// Signed: negative for sells.
    pub amount: Decimal,
    /// The unrounded amount (a JSON number with 16 decimals), when sent.
    pub precise_amount: Option<Decimal>,
    /// Signed (negative), in the quote currency; zero when absent.
    pub fee: Decimal,
    /// Signed (negative), in the quote currency; zero when absent.
    pub tax: Decimal,
    pub price: Decimal,
    pub numerator: String,
    pub denominator: String,
    pub side: WireSide,
    pub order_id: String,
    /// `orderClientId`; `null` for orders placed without one.
    pub order_client_id: Option<String>,
}

impl UserTrade {
    /// # Errors
    /// A missing `id`/`timestamp`/`amount`/`price`/symbols/`orderType`/`orderId`, or a malformed
    /// field.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, FieldError> {
        let f = Fields::of(v, path)?;
        Ok(Self {
            id: f.id(&["id"])?,
            timestamp_ms: f.ts(&["timestamp"])?,
            amount: f.decimal(&["amount"])?,
            precise_amount: f.opt_decimal(&["preciseAmount"])?,
            fee: f.opt_decimal(&["fee"])?.unwrap_or(Decimal::ZERO),
            tax: f.opt_decimal(&["tax"])?.unwrap_or(Decimal::ZERO),
            price: f.decimal(&["price"])?,
            numerator: f
                .text(&["numeratorSymbol", "numerator"])?
                .to_ascii_uppercase(),
            denominator: f
                .text(&["denominatorSymbol", "denominator"])?
                .to_ascii_uppercase(),
            side: WireSide::parse(&f.text(&["orderType", "type"])?),
            order_id: f.id(&["orderId"])?,
            order_client_id: f.opt_text(&["orderClientId", "newOrderClientId"])?,
        })
    }
    /// # Errors
    /// As [`UserTrade::from_value`].
    pub fn list_from_data(data: &Value) -> Result<Vec<Self>, FieldError> {
        each(array_of(data, "data")?, Self::from_value)
    }
    /// The traded quantity: `|preciseAmount|` when sent (the `amount` string can be rounded,
    /// e.g. `-0.3384` for `-0.33840811`), else `|amount|`.
    pub fn qty(&self) -> Decimal {
        self.precise_amount.unwrap_or(self.amount).abs()
    }
    /// Fee plus tax as a positive amount of the quote currency.
    pub fn total_fee(&self) -> Decimal {
        self.fee.abs() + self.tax.abs()
    }
}

/// # Errors
/// See [`WireError`].
pub fn parse_user_trades(body: &str) -> Result<Vec<UserTrade>, WireError> {
    enveloped(Endpoint::UserTrades, body, UserTrade::list_from_data)
}
