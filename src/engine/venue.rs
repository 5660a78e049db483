//! Opening the venue named in bot.yaml: a replay dataset or BTCTurk's REST API (real, or the
//! simulated exchange). Says where cycle time comes from and what the ledger starts with.

use crate::config::secrets::load_credentials;
use crate::config::{Config, ExchangeSection};
use crate::domain::SymbolSpec;
use crate::exchange::Exchange;
use crate::exchange::btcturk::auth::Credentials;
use crate::exchange::btcturk::client::{BtcturkConfig, BtcturkExchange};
use crate::exchange::btcturk::feed::FeedConfig;
use crate::exchange::replay::{ReplayConfig, ReplayExchange, ReplayFeed};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a cycle's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleClock {
    /// Market time on a fixed grid from the dataset's first event.
    Replay { first_ts_ms: i64 },
    /// The machine's clock (live and paper).
    Wall,
}

/// An opened venue.
pub struct Venue {
    pub exchange: Box<dyn Exchange>,
    pub specs: Vec<SymbolSpec>,
    pub clock: CycleClock,
    /// Orders here cannot spend real money.
    pub simulated: bool,
    pub has_credentials: bool,
    /// Total balance per asset the ledger starts from on a fresh database: the configured replay
    /// balances, or the venue's balances at first start.
    pub starting_balances: BTreeMap<String, Decimal>,
}

/// Milliseconds since the epoch from the machine's clock.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Loads the credentials the configured venue uses (none for a replay).
///
/// # Errors
/// Unusable credentials (see [`load_credentials`]).
pub fn credentials(config: &Config) -> Result<Option<Credentials>, String> {
    match &config.bot.exchange {
        ExchangeSection::Replay { .. } => Ok(None),
        ExchangeSection::Btcturk {
            simulated,
            credentials_file,
            ..
        } => {
            let file = credentials_file.as_ref().map(|p| config.resolve(p));
            load_credentials(file.as_deref(), *simulated)
        }
    }
}

/// The venue kind live arming looks at.
pub fn kind(config: &Config) -> super::arming::VenueKind {
    use super::arming::VenueKind;
    match &config.bot.exchange {
        ExchangeSection::Replay { .. } => VenueKind::Replay,
        ExchangeSection::Btcturk {
            simulated: true, ..
        } => VenueKind::Simulated,
        ExchangeSection::Btcturk { .. } => VenueKind::Real,
    }
}

/// Whether the configured venue is simulated (replay, or a BTCTurk URL marked `simulated`).
pub fn is_simulated(config: &Config) -> bool {
    match &config.bot.exchange {
        ExchangeSection::Replay { .. } => true,
        ExchangeSection::Btcturk { simulated, .. } => *simulated,
    }
}

/// Opens the venue. `fills_not_before_ms` is when this database first started: fills older
/// than that belong to the account's history, not to this bot's ledger.
///
/// # Errors
/// One line: a bad dataset, an unreachable venue.
pub async fn open(
    config: &Config,
    credentials: Option<Credentials>,
    fills_not_before_ms: i64,
    feed: Option<&ReplayFeed>,
) -> Result<Venue, String> {
    let bot = &config.bot;
    match &bot.exchange {
        ExchangeSection::Replay {
            starting_balances, ..
        } => {
            let dataset = config.dataset.clone().ok_or("no dataset configured")?;
            let events = match feed {
                Some(feed) => Some(feed.take_for(&dataset).ok_or_else(|| {
                    format!(
                        "{}: the shared replay feed decodes another dataset or was used already",
                        dataset.display()
                    )
                })?),
                None => None,
            };
            let mut replay = ReplayExchange::open_with(
                ReplayConfig {
                    dataset,
                    starting_balances: starting_balances
                        .iter()
                        .map(|(k, v)| (k.clone(), *v))
                        .collect(),
                    maker_fee_bps: bot.fees.maker_bps,
                    taker_fee_bps: bot.fees.taker_bps,
                },
                events,
            )
            .map_err(|e| e.to_string())?;
            let first_ts_ms = replay.first_ts_ms().ok_or("the dataset has no events")?;
            let specs = replay.symbol_specs().await.map_err(|e| e.to_string())?;
            Ok(Venue {
                exchange: Box::new(replay),
                specs,
                clock: CycleClock::Replay { first_ts_ms },
                simulated: true,
                has_credentials: false,
                starting_balances: starting_balances
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            })
        }
        ExchangeSection::Btcturk {
            base_url,
            simulated,
            request_timeout_ms,
            retry,
            feed,
            ..
        } => {
            let has_credentials = credentials.is_some();
            let mut cfg = BtcturkConfig::new(base_url, credentials, bot.symbols.clone());
            cfg.simulated = *simulated;
            // BTCTurk's documented rate limits pace the real API; a local simulator is paced by
            // the run's own speed-up instead.
            cfg.rest.rate_limits = !*simulated;
            cfg.fills_not_before_ms = Some(fills_not_before_ms);
            cfg.rest.timeout = Duration::from_millis(*request_timeout_ms);
            cfg.rest.max_retries = retry.max_retries;
            cfg.rest.backoff_base = Duration::from_millis(retry.backoff_base_ms);
            cfg.rest.backoff_max = Duration::from_millis(retry.backoff_max_ms);
            cfg.rest.retry_after_cap = Duration::from_millis(retry.retry_after_cap_ms);
            if let Some(f) = feed.as_ref().filter(|f| f.enabled) {
                cfg.feed = Some(FeedConfig::from_section(f, bot.symbols.clone()));
            }
            let mut exchange = BtcturkExchange::new(cfg).map_err(|e| e.to_string())?;
            let specs = exchange.symbol_specs().await.map_err(|e| e.to_string())?;
            let starting_balances = if has_credentials {
                exchange
                    .account()
                    .await
                    .map_err(|e| e.to_string())?
                    .balances
                    .iter()
                    .map(|b| (b.asset.clone(), b.total()))
                    .collect()
            } else {
                BTreeMap::new()
            };
            Ok(Venue {
                exchange: Box::new(exchange),
                specs,
                clock: CycleClock::Wall,
                simulated: *simulated,
                has_credentials,
                starting_balances,
            })
        }
    }
}
