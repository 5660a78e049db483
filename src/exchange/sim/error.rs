//! BTCTurk-style error answers: `{"success":false,"message":...,"code":...,"data":null}`.
//!
//! Messages and codes follow `shared/reference/btcturk-api.md`. Where BTCTurk documents a message
//! but no numeric code, the nearest documented code is reused and the comment says so; the
//! message is always BTCTurk's. The simulator's own explanation goes in an extra `details`
//! field (BTCTurk's 429 body has one too).

use super::json::J;
use crate::exchange::replay::Reject;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    pub code: i64,
    pub details: Option<String>,
}

impl ApiError {
    fn new(status: u16, message: &str, code: i64, details: Option<String>) -> Self {
        Self {
            status,
            message: message.to_string(),
            code,
            details,
        }
    }

    /// §3.3: `400 {"message":"Pair NOPEUSDT does not exists.","code":1037}`.
    pub(crate) fn unknown_pair(pair: &str) -> Self {
        Self::new(400, &format!("Pair {pair} does not exists."), 1037, None)
    }
    /// §3.3: `400 {"message":"INVALID_REQUEST_ERROR","code":1037}` (missing/bad parameter).
    pub(crate) fn invalid(details: &str) -> Self {
        Self::new(
            400,
            "INVALID_REQUEST_ERROR",
            1037,
            Some(details.to_string()),
        )
    }
    /// §3.7: FAILED_MARKET_ORDER 1118 (here: the pair has no quote yet).
    pub(crate) fn market_unavailable() -> Self {
        Self::new(
            400,
            "FAILED_MARKET_ORDER",
            1118,
            Some("no market for this pair yet".into()),
        )
    }
    /// §3.7: ORDER_METHOD_NOT_SUPPORTED 1134 (stop orders, unknown methods).
    pub(crate) fn method_not_supported() -> Self {
        Self::new(400, "ORDER_METHOD_NOT_SUPPORTED", 1134, None)
    }
    /// §3.7: ORDER_TYPE_NOT_SUPPORTED 1193 (`orderType` neither buy nor sell).
    pub(crate) fn type_not_supported() -> Self {
        Self::new(400, "ORDER_TYPE_NOT_SUPPORTED", 1193, None)
    }
    /// §3.7: FAILED_ORDER_WITH_OPEN_ORDERS 1122 when open orders hold the funds; BALANCE_NOT_ENOUGH
    /// otherwise (its code is undocumented: 1122, the documented insufficient-funds code).
    pub(crate) fn insufficient(has_open_orders: bool) -> Self {
        let message = if has_open_orders {
            "FAILED_ORDER_WITH_OPEN_ORDERS"
        } else {
            "BALANCE_NOT_ENOUGH"
        };
        Self::new(400, message, 1122, None)
    }
    /// §3.8: NO_ORDER_MATCHES_YOUR_REQUEST (code undocumented: 1152, "Order not found").
    pub(crate) fn no_order_matches() -> Self {
        Self::new(400, "NO_ORDER_MATCHES_YOUR_REQUEST", 1152, None)
    }
    /// §3.8: ORDER_COULD_NOT_BE_CANCELED (code undocumented: 1152 as well; closed, canceled or
    /// market orders).
    pub(crate) fn could_not_cancel() -> Self {
        Self::new(400, "ORDER_COULD_NOT_BE_CANCELED", 1152, None)
    }
    /// §3.11: `{"success":false,"message":"Order not found","code":1152}` (400, not 404).
    pub(crate) fn order_not_found() -> Self {
        Self::new(400, "Order not found", 1152, None)
    }
    /// SYSTEM_ERROR 1000 (the TRCrypto exchangeinfo-error fixture).
    pub(crate) fn system(details: &str) -> Self {
        Self::new(500, "SYSTEM_ERROR", 1000, Some(details.to_string()))
    }
    /// §1: the 401 messages (`Unauthorized - Invalid Nonce`, ...). The body's exact shape is
    /// undocumented; clients read `message`.
    pub(crate) fn unauthorized(message: &str) -> Self {
        Self::new(401, message, 401, None)
    }

    /// The matching engine's rejection in BTCTurk's words (§3.7 order error table).
    pub(crate) fn from_reject(r: &Reject) -> Self {
        let details = Some(r.message.clone());
        let (message, code) = match r.code.as_str() {
            "1123" => ("FAILED_MIN_TOTAL_AMOUNT", 1123),
            "1126" => ("FAILED_INVALID_PRICE_SCALE", 1126),
            "1127" => ("FAILED_INVALID_QUANTITY_SCALE", 1127),
            // 1037 from the engine is "Pair X does not exists."; keep its message.
            "1037" => return Self::new(400, &r.message, 1037, None),
            // The pair is listed but not TRADING.
            "SYMBOL_NOT_TRADING" => ("FAILED_LIMIT_ORDER", 1120),
            // FAILED_ORDER_PARAMETER has no documented code: 1037, the invalid-request code.
            _ => ("FAILED_ORDER_PARAMETER", 1037),
        };
        Self::new(400, message, code, details)
    }

    pub(crate) fn body(&self) -> J {
        let mut fields = vec![
            ("success", J::Bool(false)),
            ("message", J::str(self.message.clone())),
            ("code", J::int(self.code)),
            ("data", J::Null),
        ];
        if let Some(d) = &self.details {
            fields.push(("details", J::str(d.clone())));
        }
        J::Obj(fields)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}

/// A JSON response with `status` and `body`.
pub(crate) fn json_response(status: u16, body: &J) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body.text()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
