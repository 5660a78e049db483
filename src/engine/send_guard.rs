//! The last line of the dry-run gate: an [`Exchange`] wrapper that refuses every order submit
//! and cancel unless orders may reach the venue (live armed, or a simulated venue). The plan
//! already turns orders into would-be `dry_run` actions and the shell skips cancels in a dry
//! run; this wrapper makes sure a future code path that forgets cannot send anything either.
//! Reads (books, balances, open orders, fills, order lookups) pass through.

use crate::domain::{AccountSnapshot, Fill, MarketSnapshot, Order, Symbol, SymbolSpec};
use crate::exchange::{Exchange, ExchangeError, OrderRequest, SubmitAck};
use async_trait::async_trait;

/// Wraps the venue of a run. `may_send` is fixed at start-up from the arming decision.
pub struct SendGuard {
    inner: Box<dyn Exchange>,
    may_send: bool,
}

impl SendGuard {
    pub fn new(inner: Box<dyn Exchange>, may_send: bool) -> Self {
        Self { inner, may_send }
    }

    fn refuse(&self, what: &str) -> ExchangeError {
        tracing::error!("dry run: refused to send {what} to {}", self.inner.name());
        ExchangeError::Rejected {
            endpoint: what.to_string(),
            code: "DRY_RUN".into(),
            message: "dry run: nothing is sent to a real venue unless live trading is armed".into(),
        }
    }
}

#[async_trait]
impl Exchange for SendGuard {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn is_simulated(&self) -> bool {
        self.inner.is_simulated()
    }
    async fn advance_to(&mut self, now_ms: i64) -> Result<bool, ExchangeError> {
        self.inner.advance_to(now_ms).await
    }
    async fn symbol_specs(&mut self) -> Result<Vec<SymbolSpec>, ExchangeError> {
        self.inner.symbol_specs().await
    }
    async fn market(&mut self, symbols: &[Symbol]) -> Result<Vec<MarketSnapshot>, ExchangeError> {
        self.inner.market(symbols).await
    }
    async fn account(&mut self) -> Result<AccountSnapshot, ExchangeError> {
        self.inner.account().await
    }
    async fn open_orders(&mut self) -> Result<Vec<Order>, ExchangeError> {
        self.inner.open_orders().await
    }
    async fn fills_since(&mut self, after_seq: u64) -> Result<Vec<(u64, Fill)>, ExchangeError> {
        self.inner.fills_since(after_seq).await
    }
    async fn submit(&mut self, order: &OrderRequest) -> Result<SubmitAck, ExchangeError> {
        if !self.may_send {
            return Err(self.refuse("order submit"));
        }
        self.inner.submit(order).await
    }
    async fn cancel(&mut self, exchange_id: &str) -> Result<(), ExchangeError> {
        if !self.may_send {
            return Err(self.refuse("order cancel"));
        }
        self.inner.cancel(exchange_id).await
    }
    async fn lookup_order(&mut self, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        self.inner.lookup_order(client_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty, Side};
    use crate::exchange::replay::{ReplayConfig, ReplayExchange};
    use std::path::PathBuf;

    fn replay() -> Box<dyn Exchange> {
        let dataset = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/replay/sample");
        let ex = ReplayExchange::open(ReplayConfig {
            dataset,
            starting_balances: [("TRY".to_string(), rust_decimal::Decimal::from(20_000))]
                .into_iter()
                .collect(),
            maker_fee_bps: rust_decimal::Decimal::from(10),
            taker_fee_bps: rust_decimal::Decimal::from(15),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        Box::new(ex)
    }

    #[tokio::test]
    async fn a_dry_run_guard_sends_nothing_and_reads_pass() {
        let mut inner = replay();
        let first = inner.symbol_specs().await.map(|s| s.len());
        let mut guard = SendGuard::new(inner, false);
        assert_eq!(guard.symbol_specs().await.map(|s| s.len()), first);
        let order = OrderRequest {
            client_id: "bb1-0-x".into(),
            symbol: Symbol::new("BTCTRY").unwrap_or_else(|e| panic!("{e}")),
            side: Side::Buy,
            price: Price::new(rust_decimal::Decimal::from(1000)).unwrap_or_else(|e| panic!("{e}")),
            qty: Qty::new(rust_decimal::Decimal::ONE).unwrap_or_else(|e| panic!("{e}")),
        };
        match guard.submit(&order).await {
            Err(ExchangeError::Rejected { code, .. }) => assert_eq!(code, "DRY_RUN"),
            other => panic!("expected a DRY_RUN refusal, got {other:?}"),
        }
        assert!(matches!(
            guard.cancel("1").await,
            Err(ExchangeError::Rejected { .. })
        ));
        assert!(guard.open_orders().await.is_ok_and(|o| o.is_empty()));
    }
}
