//! The replay venue: a recorded or synthetic dataset played through the `Exchange` trait, with
//! fills simulated by a deterministic matching engine.
//!
//! - [`open_dataset`] reads a dataset directory (native `manifest.json` layout or the Python
//!   bot's seed layout; see `data/replay/README.md`) and streams its events;
//! - [`MatchingEngine`] holds balances, resting orders and fills;
//! - [`ReplayExchange`] moves through the events as the caller's clock advances;
//! - [`write_synth_dataset`] writes a deterministic synthetic dataset.

mod bench_quotes;
mod compact;
mod compact_read;
#[cfg(test)]
mod compact_tests;
mod dataset;
mod import;
mod matching;
mod prefetch;
mod reader;
mod seed_layout;
mod synth;
#[cfg(test)]
mod tests;
mod validate;

pub use bench_quotes::write_bench_quotes;
pub use compact::{
    COMPACT_FILE, CompactHeader, CompactSummary, CopyState, compact_dataset, write_compact,
};
pub use dataset::{
    Dataset, DatasetError, EventKind, EventStream, Layout, MANIFEST_FORMAT, ManifestInfo,
    ReplayEvent, open_dataset,
};
pub use import::{ImportSummary, QUOTES_HEADER, import_quotes};
pub use matching::MatchingEngine;
pub use prefetch::{Batch, Prefetched, ReplayFeed};
pub use synth::{SynthOptions, SynthSummary, write_synth_dataset};
pub(crate) use synth::{filter_exchange_info, write_atomic};
pub use validate::Reject;

use crate::domain::{AccountSnapshot, Fill, MarketSnapshot, Order, Symbol, SymbolSpec};
use crate::exchange::{Exchange, ExchangeError, OrderRequest, SubmitAck};
use async_trait::async_trait;
use rust_decimal::Decimal;
use std::path::PathBuf;

const ENDPOINT: &str = "replay";

/// How to open a replay venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// The dataset directory.
    pub dataset: PathBuf,
    /// `(asset, amount)` pairs the simulated account starts with, e.g. `("TRY", 100000)`.
    pub starting_balances: Vec<(String, Decimal)>,
    pub maker_fee_bps: Decimal,
    pub taker_fee_bps: Decimal,
}

/// A dataset-driven, deterministic venue. Time only moves through [`Exchange::advance_to`].
pub struct ReplayExchange {
    dataset: Dataset,
    stream: Prefetched,
    /// The batch being applied, and the position of its next event (`None` at the end).
    batch: Option<Batch>,
    next: usize,
    /// A bad row met while reading; reported on every later `advance_to`.
    failure: Option<DatasetError>,
    first_ts_ms: Option<i64>,
    now_ms: i64,
    events_applied: u64,
    engine: MatchingEngine,
}

impl ReplayExchange {
    /// Opens the dataset and peeks its first event.
    ///
    /// # Errors
    /// When the dataset cannot be opened, its first row is bad, or a starting balance or fee
    /// rate is negative (reported against the dataset directory).
    pub fn open(config: ReplayConfig) -> Result<Self, DatasetError> {
        Self::open_with(config, None)
    }

    /// [`Self::open`], reading the events from `events` (a [`ReplayFeed`]'s stream of the same
    /// dataset) instead of decoding them itself.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_with(
        config: ReplayConfig,
        events: Option<Prefetched>,
    ) -> Result<Self, DatasetError> {
        let dataset = open_dataset(&config.dataset)?;
        let engine = MatchingEngine::new(
            dataset.specs(),
            &config.starting_balances,
            config.maker_fee_bps,
            config.taker_fee_bps,
        )
        .map_err(|m| DatasetError::new(&config.dataset, m))?;
        let mut stream = match events {
            Some(events) => events,
            None => Prefetched::start(dataset.events()?),
        };
        let batch = stream.batch();
        let first_ts_ms = match batch.as_deref().and_then(<[_]>::first) {
            Some(Ok(first)) => Some(first.ts_ms),
            Some(Err(e)) => return Err(e.clone()),
            None => None,
        };
        Ok(Self {
            dataset,
            stream,
            batch,
            next: 0,
            failure: None,
            first_ts_ms,
            now_ms: first_ts_ms.unwrap_or(0),
            events_applied: 0,
            engine,
        })
    }

    /// Timestamp of the dataset's first event (`None` for an empty dataset).
    pub fn first_ts_ms(&self) -> Option<i64> {
        self.first_ts_ms
    }
    /// The dataset's end as its manifest states it (`None` when unknown).
    pub fn last_ts_ms(&self) -> Option<i64> {
        self.dataset.manifest().end_ms
    }
    /// The replay clock: the latest `advance_to` time (or the first event's time before that).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
    /// How many events have been applied so far.
    pub fn events_applied(&self) -> u64 {
        self.events_applied
    }
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
    pub fn engine(&self) -> &MatchingEngine {
        &self.engine
    }

    fn permanent(e: &DatasetError) -> ExchangeError {
        ExchangeError::Permanent {
            endpoint: ENDPOINT.to_string(),
            message: e.to_string(),
        }
    }

    fn rejected(r: Reject) -> ExchangeError {
        ExchangeError::Rejected {
            endpoint: ENDPOINT.to_string(),
            code: r.code,
            message: r.message,
        }
    }

    /// Applies every event with `ts_ms <= now_ms`; `Ok(true)` while events remain.
    ///
    /// # Errors
    /// A bad row, as a [`DatasetError`]. It is reported on the call after the one that applied
    /// the last good row before it (rows are read one ahead), and again on every later call.
    pub fn advance(&mut self, now_ms: i64) -> Result<bool, DatasetError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        self.now_ms = self.now_ms.max(now_ms);
        // Events are applied where they lie in their batch: moving each out cost more than
        // applying it.
        while let Some(batch) = &self.batch {
            for item in &batch[self.next..] {
                match item {
                    Ok(ev) if ev.ts_ms <= now_ms => {
                        self.engine.apply(ev);
                        self.events_applied += 1;
                        self.next += 1;
                    }
                    Ok(_) => return Ok(true),
                    Err(e) => {
                        self.failure = Some(e.clone());
                        return Ok(true);
                    }
                }
            }
            if let Some(done) = self.batch.take() {
                self.stream.give_back(done);
            }
            self.batch = self.stream.batch();
            self.next = 0;
        }
        Ok(false)
    }
}

#[async_trait]
impl Exchange for ReplayExchange {
    fn name(&self) -> &str {
        ENDPOINT
    }
    fn is_simulated(&self) -> bool {
        true
    }
    async fn advance_to(&mut self, now_ms: i64) -> Result<bool, ExchangeError> {
        self.advance(now_ms).map_err(|e| Self::permanent(&e))
    }
    async fn symbol_specs(&mut self) -> Result<Vec<SymbolSpec>, ExchangeError> {
        Ok(self.dataset.specs())
    }
    async fn market(&mut self, symbols: &[Symbol]) -> Result<Vec<MarketSnapshot>, ExchangeError> {
        Ok(self.engine.market(symbols, self.now_ms))
    }
    async fn account(&mut self) -> Result<AccountSnapshot, ExchangeError> {
        Ok(self.engine.account())
    }
    async fn open_orders(&mut self) -> Result<Vec<Order>, ExchangeError> {
        Ok(self.engine.open_orders())
    }
    async fn fills_since(&mut self, after_seq: u64) -> Result<Vec<(u64, Fill)>, ExchangeError> {
        Ok(self.engine.fills_since(after_seq))
    }
    async fn submit(&mut self, order: &OrderRequest) -> Result<SubmitAck, ExchangeError> {
        self.engine
            .submit(order, self.now_ms)
            .map_err(Self::rejected)
    }
    async fn cancel(&mut self, exchange_id: &str) -> Result<(), ExchangeError> {
        self.engine
            .cancel(exchange_id, self.now_ms)
            .map_err(Self::rejected)
    }
}
