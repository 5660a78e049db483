//! `sim`: a BTCTurk-compatible simulated exchange (axum) over a replayed market.
//!
//! - the same REST paths, JSON shapes (quirks included) and HMAC check as BTCTurk
//!   (`shared/reference/btcturk-api.md`);
//! - the market comes from a replay dataset, paced in real time, by a factor, or stepped by hand
//!   through [`SimHandle`] (tests);
//! - every account has its own [`MatchingEngine`](crate::exchange::replay::MatchingEngine) fed
//!   the same quotes: price-time matching against the replayed top of book, partial fills,
//!   maker/taker fees, BTCTurk's rejection codes;
//! - fault injection ([`FaultSpec`]): latency, 5xx, 429 bursts, timeouts, lost order responses;
//! - an optional websocket feed on its own port (BTCTurk's feed has its own host too).

mod account;
mod error;
mod faults;
mod http;
mod info;
mod json;
mod market;
mod private;
mod state;
mod wire;
mod ws;

pub use account::{OrderMethod, SimOrder, SimOrderStatus, SimTrade};
pub use faults::{FaultSpec, FaultStats};

use crate::domain::Balance;
use crate::exchange::replay::open_dataset;
use faults::Faults;
use info::ExchangeInfoDoc;
use rust_decimal::Decimal;
use state::SimState;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One account the server knows: API keys and starting balances.
#[derive(Clone, PartialEq, Eq)]
pub struct SimAccount {
    pub public_key: String,
    /// Base64, as BTCTurk issues secrets.
    pub secret_b64: String,
    pub balances: Vec<(String, Decimal)>,
}

impl fmt::Debug for SimAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAccount")
            .field("public_key", &self.public_key)
            .field("secret_b64", &"<redacted>")
            .field("balances", &self.balances)
            .finish()
    }
}

/// How the market moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimSpeed {
    /// Dataset time runs at wall-clock speed.
    Realtime,
    /// Dataset time runs this many times faster than wall-clock time (> 0).
    Factor(f64),
    /// Only [`SimHandle::advance_to`] / [`SimHandle::advance_events`] move the market.
    Manual,
}

impl SimSpeed {
    /// `realtime`, `manual`, or a factor such as `10`, `0.5` or `10x`.
    ///
    /// # Errors
    /// Anything else, or a factor that is not > 0.
    pub fn parse(text: &str) -> Result<SimSpeed, String> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "realtime" => Ok(SimSpeed::Realtime),
            "manual" => Ok(SimSpeed::Manual),
            n => n
                .strip_suffix('x')
                .unwrap_or(n)
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f > 0.0)
                .map(SimSpeed::Factor)
                .ok_or_else(|| {
                    format!("speed: expected realtime, manual or a factor > 0, got {text:?}")
                }),
        }
    }
}

/// Everything [`serve`] needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub dataset: PathBuf,
    /// REST address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Websocket feed address (`None`: no feed).
    pub ws_listen: Option<SocketAddr>,
    pub accounts: Vec<SimAccount>,
    pub speed: SimSpeed,
    pub faults: FaultSpec,
    pub maker_fee_bps: Decimal,
    pub taker_fee_bps: Decimal,
}

impl SimConfig {
    /// Manual speed, no faults, no websocket, maker 10 / taker 15 bps.
    pub fn new(dataset: PathBuf, listen: SocketAddr, accounts: Vec<SimAccount>) -> Self {
        Self {
            dataset,
            listen,
            ws_listen: None,
            accounts,
            speed: SimSpeed::Manual,
            faults: FaultSpec::default(),
            maker_fee_bps: Decimal::from(10),
            taker_fee_bps: Decimal::from(15),
        }
    }
}

/// State shared by the handlers, the pacer and the handle.
pub(crate) struct Shared {
    state: Mutex<SimState>,
    pub(crate) faults: Faults,
    pub(crate) info: ExchangeInfoDoc,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// Resolves when the server is shutting down.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Milliseconds since the Unix epoch, from the wall clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A running simulated exchange.
pub struct SimHandle {
    addr: SocketAddr,
    ws_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the server: opens the dataset, binds `config.listen` (and `config.ws_listen`), and
/// starts pacing the market unless the speed is manual.
///
/// # Errors
/// A bad dataset or account, or an address that cannot be bound; one line.
pub async fn serve(config: SimConfig) -> Result<SimHandle, String> {
    let dataset = open_dataset(&config.dataset).map_err(|e| e.to_string())?;
    let info = ExchangeInfoDoc::load(&dataset)?;
    let state = SimState::open(
        &dataset,
        &config.accounts,
        config.maker_fee_bps,
        config.taker_fee_bps,
    )?;
    let (stop, shutdown) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        faults: Faults::new(config.faults.clone()),
        info,
        shutdown,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut tasks = vec![tokio::spawn(http::run(listener, Arc::clone(&shared)))];
    let ws_addr = match config.ws_listen {
        Some(ws) => {
            let l = tokio::net::TcpListener::bind(ws)
                .await
                .map_err(|e| format!("cannot listen on {ws} (websocket): {e}"))?;
            let a = l
                .local_addr()
                .map_err(|e| format!("cannot read the bound address: {e}"))?;
            tasks.push(tokio::spawn(ws::run(l, Arc::clone(&shared))));
            Some(a)
        }
        None => None,
    };
    let factor = match config.speed {
        SimSpeed::Realtime => Some(1.0),
        SimSpeed::Factor(f) => Some(f),
        SimSpeed::Manual => None,
    };
    if let Some(factor) = factor {
        tasks.push(tokio::spawn(pace(Arc::clone(&shared), factor)));
    }
    Ok(SimHandle {
        addr,
        ws_addr,
        shared,
        stop,
        tasks,
    })
}

/// Applies the dataset's events as wall-clock time passes, `factor` times faster than real time.
async fn pace(shared: Arc<Shared>, factor: f64) {
    let start = tokio::time::Instant::now();
    let Some(first) = shared.lock().next_ts() else {
        return;
    };
    loop {
        let Some(next) = shared.lock().next_ts() else {
            tracing::info!("sim-exchange: the dataset is exhausted; the market stays as it is");
            return;
        };
        let offset_ms = (next.saturating_sub(first)) as f64 / factor;
        let due = start + Duration::from_secs_f64((offset_ms / 1000.0).clamp(0.0, 1e9));
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = shared.stopped() => return,
        }
        if let Err(e) = shared.lock().advance_to(next) {
            tracing::error!("sim-exchange: dataset error, the market stops: {e}");
            return;
        }
    }
}

impl SimHandle {
    /// The bound REST address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The bound websocket address, when the feed is on.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// Applies every dataset event with a time `<= ts_ms`; returns how many.
    ///
    /// # Errors
    /// A bad dataset row.
    pub fn advance_to(&self, ts_ms: i64) -> Result<u64, String> {
        self.shared.lock().advance_to(ts_ms)
    }
    /// Applies the next `n` dataset events; returns how many (fewer at the end).
    ///
    /// # Errors
    /// A bad dataset row.
    pub fn advance_events(&self, n: u64) -> Result<u64, String> {
        self.shared.lock().advance_events(n)
    }
    /// Dataset time of the last applied event.
    pub fn market_time_ms(&self) -> Option<i64> {
        self.shared.lock().dataset_now()
    }
    /// Dataset time of the next event (`None` when the data is exhausted).
    pub fn next_event_ms(&self) -> Option<i64> {
        self.shared.lock().next_ts()
    }
    pub fn events_applied(&self) -> u64 {
        self.shared.lock().events_applied()
    }

    /// An account's balances (`None` for an unknown key).
    pub fn balances(&self, public_key: &str) -> Option<Vec<Balance>> {
        Some(self.shared.lock().accounts.get(public_key)?.balances())
    }
    /// Every order an account placed (open, closed, canceled), oldest first.
    pub fn orders(&self, public_key: &str) -> Vec<SimOrder> {
        self.shared
            .lock()
            .accounts
            .get(public_key)
            .map_or_else(Vec::new, |a| a.orders().cloned().collect())
    }
    /// The orders an account placed with this `newOrderClientId`, oldest first.
    pub fn orders_by_client_id(&self, public_key: &str, client_id: &str) -> Vec<SimOrder> {
        let mut orders = self.orders(public_key);
        orders.retain(|o| o.client_id == client_id);
        orders
    }
    /// An account's trades, oldest first.
    pub fn trades(&self, public_key: &str) -> Vec<SimTrade> {
        self.shared
            .lock()
            .accounts
            .get(public_key)
            .map_or_else(Vec::new, |a| a.trades().to_vec())
    }
    /// How many orders were placed with this `newOrderClientId` (accepted ones only).
    pub fn placed_count(&self, public_key: &str, client_id: &str) -> usize {
        self.shared
            .lock()
            .accounts
            .get(public_key)
            .map_or(0, |a| a.placed(client_id))
    }
    /// How many faults were injected so far.
    pub fn fault_stats(&self) -> FaultStats {
        self.shared.faults.stats()
    }

    /// Stops serving: held requests are dropped, the pacer and listeners end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                tracing::warn!("sim-exchange: a task did not stop within 2 s; aborted");
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
