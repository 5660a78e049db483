//! Raw file shapes (serde, `deny_unknown_fields`) and the loader that collects errors.

use super::alerts::AlertsFile;
use super::params::Params;
use super::validate::Validator;
use super::{Config, ConfigError, ConfigErrors, resolve_against};
use crate::domain::Symbol;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TradingMode {
    #[default]
    DryRun,
    Live,
}

/// `bot.yaml`: venue, symbols, pacing, database, mode.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotFile {
    #[serde(default)]
    pub mode: TradingMode,
    pub exchange: ExchangeSection,
    pub symbols: Vec<Symbol>,
    #[serde(default = "default_quote")]
    pub quote_asset: String,
    #[serde(default)]
    pub fees: FeesSection,
    #[serde(default)]
    pub cycle: CycleSection,
    #[serde(default)]
    pub orders: OrdersSection,
    pub database: DatabaseSection,
    /// `/metrics` and `/healthz` over HTTP; absent = not served.
    #[serde(default)]
    pub http: Option<HttpSection>,
    /// The kill switch: `kill_switch: {file: KILL, cancel_all: true}` (docs/SAFETY.md).
    #[serde(default)]
    pub kill_switch: Option<KillSwitchSection>,
    /// The older spelling of `kill_switch.file` (still accepted; not together with
    /// `kill_switch`).
    #[serde(default)]
    pub kill_switch_file: Option<PathBuf>,
}

impl BotFile {
    /// The kill switch file (relative to the config dir, as written) and whether it cancels
    /// every open order while on, from either spelling.
    pub fn kill_switch_settings(&self) -> (Option<&Path>, bool) {
        match &self.kill_switch {
            Some(k) => (k.file.as_deref(), k.cancel_all),
            None => (self.kill_switch_file.as_deref(), false),
        }
    }
}

/// The kill switch (checked every cycle): while `file` exists or `BTCBOT_KILL_SWITCH` is set,
/// no new orders are placed; cancels still go out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchSection {
    /// File whose existence turns the switch on (relative to the config dir).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// While on, also cancel every open order of the bot (not only those past their TTL).
    #[serde(default)]
    pub cancel_all: bool,
}

/// The metrics and health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// `address:port`; loopback unless the operator opens it (e.g. `0.0.0.0:9464` in a
    /// container). Port 0 picks a free port (printed at start).
    pub listen: String,
    /// `/healthz` answers 503 when the last cycle is older than this.
    pub max_cycle_age_s: u64,
}
impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            max_cycle_age_s: 60,
        }
    }
}

fn default_quote() -> String {
    "TRY".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum ExchangeSection {
    /// A recorded or synthetic dataset with simulated fills.
    Replay {
        dataset: PathBuf,
        #[serde(default)]
        starting_balances: BTreeMap<String, Decimal>,
    },
    /// BTCTurk's REST API, or a BTCTurk-compatible simulated exchange (`btcbot sim-exchange`).
    Btcturk {
        /// `https://api.btcturk.com`, or `http://127.0.0.1:PORT` for the simulated exchange.
        base_url: String,
        /// `true` when `base_url` is a simulated exchange: orders cannot spend real money.
        #[serde(default)]
        simulated: bool,
        /// YAML file `{public_key, secret}` with mode 0600 (relative to the config dir). The
        /// environment (`BTCTURK_API_KEY`, `BTCTURK_API_SECRET`) takes precedence.
        #[serde(default)]
        credentials_file: Option<PathBuf>,
        #[serde(default = "default_request_timeout")]
        request_timeout_ms: u64,
        #[serde(default)]
        retry: RetrySection,
        /// The websocket market feed; absent = books over REST only.
        #[serde(default)]
        feed: Option<FeedSection>,
    },
}

/// BTCTurk's websocket market feed (books from 431/432 diffs, falling back to REST while stale).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedSection {
    pub enabled: bool,
    /// `wss://ws-feed-pro.btcturk.com`, or the simulated exchange's `ws://127.0.0.1:PORT`.
    pub url: String,
    /// Books older than this are not used (REST is).
    pub max_age_ms: u64,
    pub silence_timeout_ms: u64,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    pub max_connects_per_min: u32,
}
impl Default for FeedSection {
    fn default() -> Self {
        Self {
            enabled: true,
            url: "wss://ws-feed-pro.btcturk.com".into(),
            max_age_ms: 5_000,
            silence_timeout_ms: 45_000,
            reconnect_min_ms: 4_000,
            reconnect_max_ms: 60_000,
            max_connects_per_min: 15,
        }
    }
}

/// How reads are retried (order submissions never are: they are looked up instead).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    /// Extra attempts of a read after a transport error or a 5xx.
    pub max_retries: u32,
    /// First backoff step; doubles per attempt, jittered.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// The longest `Retry-After` (429) a request waits out; longer fails the request.
    pub retry_after_cap_ms: u64,
}
impl Default for RetrySection {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff_base_ms: 250,
            backoff_max_ms: 5_000,
            retry_after_cap_ms: 60_000,
        }
    }
}

fn default_request_timeout() -> u64 {
    5_000
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeesSection {
    pub maker_bps: Decimal,
    pub taker_bps: Decimal,
}
impl Default for FeesSection {
    fn default() -> Self {
        Self {
            maker_bps: Decimal::from(10),
            taker_bps: Decimal::from(15),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleSection {
    /// Market time between cycles (and wall time in live pacing).
    pub interval_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
    /// `per_cycle` (the rules once per cycle) or `per_quote` (a replay only: strategy.rhai's
    /// `on_quote(q)` on every quote event; risk and execution as in a cycle).
    #[serde(default)]
    pub evaluate: Evaluate,
}

/// When the strategy runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluate {
    #[default]
    PerCycle,
    PerQuote,
}

impl Evaluate {
    /// As bot.yaml spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Evaluate::PerCycle => "per_cycle",
            Evaluate::PerQuote => "per_quote",
        }
    }
}

impl Default for CycleSection {
    fn default() -> Self {
        Self {
            interval_ms: 1000,
            jitter_ms: 0,
            evaluate: Evaluate::PerCycle,
        }
    }
}

/// What to do with an open order at the venue that this bot did not place (or lost track of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOrderPolicy {
    /// Leave it alone and raise an `UNKNOWN_VENUE_ORDER` anomaly (a person may have placed it).
    #[default]
    Ignore,
    /// Track it as the bot's own (it counts against limits and is canceled at its TTL).
    Adopt,
    /// Cancel it.
    Cancel,
}

/// Order housekeeping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersSection {
    /// Open orders older than this (cycle time) are canceled.
    pub ttl_ms: u64,
    #[serde(default)]
    pub unknown_venue_orders: UnknownOrderPolicy,
}
impl Default for OrdersSection {
    fn default() -> Self {
        Self {
            ttl_ms: 120_000,
            unknown_venue_orders: UnknownOrderPolicy::Ignore,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// SQLite file; relative paths resolve against the working directory (it is runtime state,
    /// not configuration).
    pub path: PathBuf,
}

/// `risk.yaml`: the risk budget risk.rhai reads as `ctx.limits`, plus free-form `params`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskFile {
    pub limits: LimitsSection,
    #[serde(default)]
    pub params: Params,
}

/// Every limit is a strictly positive number; there is no "0 disables" trap.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_order_notional: Decimal,
    pub max_position_notional: Decimal,
    pub max_open_orders: Decimal,
    pub max_open_orders_per_symbol: Decimal,
    pub max_orders_per_cycle: Decimal,
    pub notional_cap_per_cycle: Decimal,
    pub min_order_notional: Decimal,
    pub cash_target: Decimal,
    pub cooldown_s: Decimal,
    pub max_daily_loss: Decimal,
    pub max_drawdown: Decimal,
    /// TRY lost since Monday 00:00 UTC (mark to market) that stops trading.
    #[serde(default = "defaults::max_weekly_loss")]
    pub max_weekly_loss: Decimal,
    /// Σ |position notional| above which only risk-reducing orders pass.
    #[serde(default = "defaults::max_gross_exposure")]
    pub max_gross_exposure: Decimal,
    /// Largest position over equity (a ratio, at most 1) above which only reducing orders pass.
    #[serde(default = "defaults::max_position_pct")]
    pub max_position_pct: Decimal,
    /// Quote-currency fees of the current UTC day above which only reducing orders pass.
    #[serde(default = "defaults::max_daily_fees")]
    pub max_daily_fees: Decimal,
    /// Consecutive losing sells that move the bot to reduce_only.
    #[serde(default = "defaults::max_consecutive_losses")]
    pub max_consecutive_losses: Decimal,
    /// A position whose mark is this fraction (at most 1) below its average cost is exited.
    #[serde(default = "defaults::stop_loss_pct")]
    pub stop_loss_pct: Decimal,
    /// Order size multiplier in reduce_only (at most 1).
    #[serde(default = "defaults::reduce_only_size_factor")]
    pub reduce_only_size_factor: Decimal,
}

mod defaults {
    use rust_decimal::Decimal;
    pub fn max_weekly_loss() -> Decimal {
        Decimal::from(2500)
    }
    pub fn max_gross_exposure() -> Decimal {
        Decimal::from(10000)
    }
    pub fn max_position_pct() -> Decimal {
        Decimal::new(30, 2)
    }
    pub fn max_daily_fees() -> Decimal {
        Decimal::from(100)
    }
    pub fn max_consecutive_losses() -> Decimal {
        Decimal::from(3)
    }
    pub fn stop_loss_pct() -> Decimal {
        Decimal::new(5, 2)
    }
    pub fn reduce_only_size_factor() -> Decimal {
        Decimal::new(5, 1)
    }
}

impl LimitsSection {
    /// `(key, value)` pairs in file order, for validation and for the rules' `ctx.limits`.
    pub fn entries(&self) -> [(&'static str, Decimal); 18] {
        [
            ("max_order_notional", self.max_order_notional),
            ("max_position_notional", self.max_position_notional),
            ("max_open_orders", self.max_open_orders),
            (
                "max_open_orders_per_symbol",
                self.max_open_orders_per_symbol,
            ),
            ("max_orders_per_cycle", self.max_orders_per_cycle),
            ("notional_cap_per_cycle", self.notional_cap_per_cycle),
            ("min_order_notional", self.min_order_notional),
            ("cash_target", self.cash_target),
            ("cooldown_s", self.cooldown_s),
            ("max_daily_loss", self.max_daily_loss),
            ("max_drawdown", self.max_drawdown),
            ("max_weekly_loss", self.max_weekly_loss),
            ("max_gross_exposure", self.max_gross_exposure),
            ("max_position_pct", self.max_position_pct),
            ("max_daily_fees", self.max_daily_fees),
            ("max_consecutive_losses", self.max_consecutive_losses),
            ("stop_loss_pct", self.stop_loss_pct),
            ("reduce_only_size_factor", self.reduce_only_size_factor),
        ]
    }
}

/// `strategy.yaml`: free-form params for strategy.rhai.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StrategyFile {
    #[serde(default)]
    pub params: Params,
}

/// `rules.yaml`: which scripts, their sandbox limits and the anomaly/degrade params.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Rules directory, relative to the config dir.
    pub dir: PathBuf,
    #[serde(default)]
    pub scripts: ScriptFiles,
    /// Rule-test directory relative to the rules dir; absent = `tests` if it exists.
    #[serde(default)]
    pub tests: Option<PathBuf>,
    #[serde(default)]
    pub sandbox: SandboxSection,
    /// Mode used when degrade.rhai fails: the most careful one is the default.
    #[serde(default = "default_on_error")]
    pub degrade_on_error: String,
    #[serde(default)]
    pub anomaly_params: Params,
    #[serde(default)]
    pub degrade_params: Params,
    /// A candidate config directory evaluated beside this one every cycle ("shadow mode"):
    /// its decisions are recorded as "would have" rows and never acted on.
    #[serde(default)]
    pub shadow: Option<PathBuf>,
}

fn default_on_error() -> String {
    "observe_only".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptFiles {
    pub anomaly: PathBuf,
    pub degrade: PathBuf,
    pub strategy: PathBuf,
    pub risk: PathBuf,
}
impl Default for ScriptFiles {
    fn default() -> Self {
        Self {
            anomaly: "anomaly.rhai".into(),
            degrade: "degrade.rhai".into(),
            strategy: "strategy.rhai".into(),
            risk: "risk.rhai".into(),
        }
    }
}

/// Sandbox limits for every script call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    pub max_operations: u64,
    pub timeout_ms: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
}
impl Default for SandboxSection {
    fn default() -> Self {
        Self {
            max_operations: 500_000,
            timeout_ms: 100,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 16_384,
            max_array_size: 10_000,
            max_map_size: 1_000,
        }
    }
}

fn read_yaml<T: for<'de> Deserialize<'de>>(
    dir: &Path,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let path = dir.join(name);
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            errors.push(ConfigError {
                file: shown,
                line: None,
                key: None,
                message: format!("cannot read: {e}"),
            });
            return None;
        }
    };
    match serde_norway::from_str::<T>(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let line = e.location().map(|l| l.line());
            let mut message = e.to_string();
            // serde_norway appends " at line X column Y"; the line is already in the prefix.
            if let Some(pos) = message.find(" at line ") {
                message.truncate(pos);
            }
            errors.push(ConfigError {
                file: shown,
                line,
                key: None,
                message,
            });
            None
        }
    }
}

pub(super) fn load(dir: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    if !dir.is_dir() {
        return Err(ConfigErrors(vec![ConfigError {
            file: dir.display().to_string(),
            line: None,
            key: None,
            message: "config directory not found".into(),
        }]));
    }
    let bot: Option<BotFile> = read_yaml(dir, "bot.yaml", &mut errors);
    let risk: Option<RiskFile> = read_yaml(dir, "risk.yaml", &mut errors);
    let strategy: Option<StrategyFile> = if dir.join("strategy.yaml").exists() {
        read_yaml(dir, "strategy.yaml", &mut errors)
    } else {
        Some(StrategyFile::default())
    };
    let rules: Option<RulesFile> = read_yaml(dir, "rules.yaml", &mut errors);
    let alerts: Option<AlertsFile> = if dir.join("alerts.yaml").exists() {
        read_yaml(dir, "alerts.yaml", &mut errors)
    } else {
        Some(AlertsFile::default())
    };
    let alert_rules = match &alerts {
        Some(a) => a
            .compile(&dir.join("alerts.yaml").display().to_string())
            .unwrap_or_else(|e| {
                errors.extend(e);
                Vec::new()
            }),
        None => Vec::new(),
    };

    let mut v = Validator::new(dir);
    if let Some(b) = &bot {
        v.bot(b);
    }
    if let Some(r) = &risk {
        v.risk(r);
    }
    if let Some(r) = &rules {
        v.rules(r);
    }
    errors.extend(v.into_errors());

    match (bot, risk, strategy, rules, alerts) {
        (Some(bot), Some(risk), Some(strategy), Some(rules), Some(alerts)) if errors.is_empty() => {
            let rules_dir = resolve_against(dir, &rules.dir);
            let dataset = match &bot.exchange {
                ExchangeSection::Replay { dataset, .. } => Some(resolve_against(dir, dataset)),
                ExchangeSection::Btcturk { .. } => None,
            };
            Ok(Config {
                dir: dir.to_path_buf(),
                bot,
                risk,
                strategy,
                rules,
                rules_dir,
                dataset,
                alerts,
                alert_rules,
            })
        }
        _ => Err(ConfigErrors(errors)),
    }
}
