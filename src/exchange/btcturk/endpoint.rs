//! The BTCTurk REST endpoints the bot uses: method, path, whether they are signed, and the
//! documented rate limits (btcturk-api.md §4, docs.btcturk.com/rate-limits).

use std::fmt;
use std::time::Duration;

/// One REST endpoint. Its [`name`](Endpoint::name) is what errors and stats report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `GET /api/v2/server/time` (bare JSON, no envelope).
    ServerTime,
    /// `GET /api/v2/server/exchangeinfo`.
    ExchangeInfo,
    /// `GET /api/v2/ticker`.
    Ticker,
    /// `GET /api/v2/orderbook`.
    OrderBook,
    /// `GET /api/v2/trades`.
    Trades,
    /// `GET /api/v1/users/balances`.
    Balances,
    /// `POST /api/v1/order`.
    SubmitOrder,
    /// `DELETE /api/v1/order?id=`.
    CancelOrder,
    /// `GET /api/v1/openOrders`.
    OpenOrders,
    /// `GET /api/v1/allOrders`.
    AllOrders,
    /// `GET /api/v1/order/{id}`.
    OrderById,
    /// `GET /api/v1/users/transactions/trade`.
    UserTrades,
}

/// HTTP method of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Endpoint {
    pub const ALL: [Endpoint; 12] = [
        Endpoint::ServerTime,
        Endpoint::ExchangeInfo,
        Endpoint::Ticker,
        Endpoint::OrderBook,
        Endpoint::Trades,
        Endpoint::Balances,
        Endpoint::SubmitOrder,
        Endpoint::CancelOrder,
        Endpoint::OpenOrders,
        Endpoint::AllOrders,
        Endpoint::OrderById,
        Endpoint::UserTrades,
    ];

    /// `METHOD /path` as it appears in errors, logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ServerTime => "GET /api/v2/server/time",
            Endpoint::ExchangeInfo => "GET /api/v2/server/exchangeinfo",
            Endpoint::Ticker => "GET /api/v2/ticker",
            Endpoint::OrderBook => "GET /api/v2/orderbook",
            Endpoint::Trades => "GET /api/v2/trades",
            Endpoint::Balances => "GET /api/v1/users/balances",
            Endpoint::SubmitOrder => "POST /api/v1/order",
            Endpoint::CancelOrder => "DELETE /api/v1/order",
            Endpoint::OpenOrders => "GET /api/v1/openOrders",
            Endpoint::AllOrders => "GET /api/v1/allOrders",
            Endpoint::OrderById => "GET /api/v1/order/{id}",
            Endpoint::UserTrades => "GET /api/v1/users/transactions/trade",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Endpoint::SubmitOrder => Method::Post,
            Endpoint::CancelOrder => Method::Delete,
            _ => Method::Get,
        }
    }

    /// The path (for [`Endpoint::OrderById`] the id is appended by the caller).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ServerTime => "/api/v2/server/time",
            Endpoint::ExchangeInfo => "/api/v2/server/exchangeinfo",
            Endpoint::Ticker => "/api/v2/ticker",
            Endpoint::OrderBook => "/api/v2/orderbook",
            Endpoint::Trades => "/api/v2/trades",
            Endpoint::Balances => "/api/v1/users/balances",
            Endpoint::SubmitOrder | Endpoint::CancelOrder => "/api/v1/order",
            Endpoint::OpenOrders => "/api/v1/openOrders",
            Endpoint::AllOrders => "/api/v1/allOrders",
            Endpoint::OrderById => "/api/v1/order/",
            Endpoint::UserTrades => "/api/v1/users/transactions/trade",
        }
    }

    /// `true` for the `/api/v1` endpoints that need the HMAC headers.
    pub fn is_private(self) -> bool {
        self.path().starts_with("/api/v1/")
    }

    /// The documented limits as `(requests, period)` windows; every window must have room.
    /// `exchangeinfo` and `server/time` are not listed by BTCTurk and get none. `/api/v2/trades`
    /// is not listed either; it gets the `/api/v1/trades` limit (90/60 s) as a precaution [INF].
    pub fn rate_limits(self) -> &'static [(u32, Duration)] {
        const MIN: Duration = Duration::from_secs(60);
        const SEC: Duration = Duration::from_secs(1);
        match self {
            Endpoint::ServerTime | Endpoint::ExchangeInfo => &[],
            Endpoint::Ticker => &[(600, MIN)],
            Endpoint::OrderBook => &[(180, MIN)],
            Endpoint::Trades => &[(90, MIN)],
            Endpoint::Balances | Endpoint::UserTrades => &[(120, MIN)],
            Endpoint::SubmitOrder | Endpoint::CancelOrder => &[(300, MIN), (10, SEC)],
            Endpoint::OpenOrders | Endpoint::AllOrders => &[(300, MIN)],
            Endpoint::OrderById => &[(900, MIN), (30, SEC)],
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_endpoints_are_the_v1_ones() {
        let private: Vec<Endpoint> = Endpoint::ALL
            .into_iter()
            .filter(|e| e.is_private())
            .collect();
        assert_eq!(private.len(), 7);
        assert!(!Endpoint::OrderBook.is_private());
        assert!(Endpoint::SubmitOrder.is_private());
        assert_eq!(Endpoint::SubmitOrder.method(), Method::Post);
        assert_eq!(Endpoint::CancelOrder.method(), Method::Delete);
    }

    #[test]
    fn order_endpoints_have_both_windows() {
        assert_eq!(Endpoint::SubmitOrder.rate_limits().len(), 2);
        assert_eq!(
            Endpoint::OrderBook.rate_limits(),
            &[(180, Duration::from_secs(60))]
        );
        assert!(Endpoint::ServerTime.rate_limits().is_empty());
    }
}
