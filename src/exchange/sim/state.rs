//! The simulated exchange's state behind one lock: the public market, the accounts, the id
//! counters, and the dataset stream that moves the market.

use super::account::{Account, Ids};
use super::market::{Market, MarketUpdate};
use super::{SimAccount, now_ms};
use crate::exchange::replay::{Dataset, EventStream, MatchingEngine, ReplayEvent};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use tokio::sync::broadcast;

pub(crate) struct SimState {
    pub market: Market,
    pub accounts: BTreeMap<String, Account>,
    pub ids: Ids,
    stream: EventStream,
    pending: Option<ReplayEvent>,
    failure: Option<String>,
    dataset_now: Option<i64>,
    events_applied: u64,
    updates: broadcast::Sender<MarketUpdate>,
}

impl SimState {
    /// # Errors
    /// A bad dataset (first row), a duplicate or empty public key, a bad balance or fee rate.
    pub(crate) fn open(
        dataset: &Dataset,
        accounts: &[SimAccount],
        maker_fee_bps: Decimal,
        taker_fee_bps: Decimal,
    ) -> Result<Self, String> {
        let specs = dataset.specs();
        let mut map = BTreeMap::new();
        for a in accounts {
            if a.public_key.trim().is_empty() {
                return Err("an account has an empty public_key".into());
            }
            if crate::exchange::btcturk::auth::sign(&a.public_key, &a.secret_b64, 0).is_err() {
                return Err(format!(
                    "account {}: the secret is not valid base64",
                    a.public_key
                ));
            }
            let engine =
                MatchingEngine::new(specs.clone(), &a.balances, maker_fee_bps, taker_fee_bps)
                    .map_err(|e| format!("account {}: {e}", a.public_key))?;
            let account = Account::new(a.secret_b64.clone(), engine);
            if map.insert(a.public_key.clone(), account).is_some() {
                return Err(format!("account {} is listed twice", a.public_key));
            }
        }
        let mut stream = dataset.events().map_err(|e| e.to_string())?;
        let pending = stream.next().transpose().map_err(|e| e.to_string())?;
        let (updates, _) = broadcast::channel(4096);
        Ok(Self {
            market: Market::new(&specs),
            accounts: map,
            ids: Ids::default(),
            stream,
            pending,
            failure: None,
            dataset_now: None,
            events_applied: 0,
            updates,
        })
    }

    /// Dataset time of the next event not yet applied (`None` at the end).
    pub(crate) fn next_ts(&self) -> Option<i64> {
        self.pending.as_ref().map(|e| e.ts_ms)
    }
    /// Dataset time of the last applied event.
    pub(crate) fn dataset_now(&self) -> Option<i64> {
        self.dataset_now
    }
    pub(crate) fn events_applied(&self) -> u64 {
        self.events_applied
    }
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<MarketUpdate> {
        self.updates.subscribe()
    }

    /// Applies every event with a dataset time `<= ts_ms`; returns how many were applied.
    ///
    /// # Errors
    /// A bad dataset row (reported on this and every later call).
    pub(crate) fn advance_to(&mut self, ts_ms: i64) -> Result<u64, String> {
        let mut n = 0;
        while self.next_ts().is_some_and(|t| t <= ts_ms) {
            self.step()?;
            n += 1;
        }
        Ok(n)
    }

    /// Applies the next `n` events (fewer at the end of the data); returns how many.
    ///
    /// # Errors
    /// As [`SimState::advance_to`].
    pub(crate) fn advance_events(&mut self, n: u64) -> Result<u64, String> {
        let mut done = 0;
        while done < n && self.pending.is_some() {
            self.step()?;
            done += 1;
        }
        Ok(done)
    }

    fn step(&mut self) -> Result<(), String> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        let Some(ev) = self.pending.take() else {
            return Ok(());
        };
        let wall = now_ms();
        if let Some(update) = self.market.apply(&ev, wall) {
            let _ = self.updates.send(update);
        }
        // The engines see server time, so fills and orders carry wall-clock timestamps.
        let at_wall = ReplayEvent {
            ts_ms: wall,
            ..ev.clone()
        };
        for account in self.accounts.values_mut() {
            account.engine.apply(&at_wall);
            account.sync_fills(&self.market, &mut self.ids);
        }
        self.dataset_now = Some(ev.ts_ms);
        self.events_applied += 1;
        match self.stream.next().transpose() {
            Ok(next) => self.pending = next,
            Err(e) => self.failure = Some(e.to_string()),
        }
        Ok(())
    }
}
