//! The config directory: `bot.yaml`, `risk.yaml`, `strategy.yaml`, `rules.yaml`.
//!
//! Loading is two-staged (STYLE.md §7): each file is parsed into a raw serde struct that denies
//! unknown keys, then a validation pass collects *every* error with its file and key path, so an
//! operator fixes a broken directory in one go. Nothing here touches the network or the database.

pub mod alerts;
mod files;
mod params;
mod replay;
pub mod secrets;
mod validate;

pub use files::{
    BotFile, CycleSection, DatabaseSection, Evaluate, ExchangeSection, FeedSection, FeesSection,
    HttpSection, KillSwitchSection, LimitsSection, OrdersSection, RetrySection, RiskFile,
    RulesFile, SandboxSection, SandboxSection as SandboxLimits, ScriptFiles, StrategyFile,
    TradingMode, UnknownOrderPolicy,
};
pub use params::{ParamValue, Params};
pub use replay::{Balances, balances_from, parse_balance};

use std::fmt;
use std::path::{Path, PathBuf};

/// One configuration problem, located as precisely as the source allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given (e.g. `configs/default/risk.yaml`).
    pub file: String,
    /// Line in the file when known (1-based).
    pub line: Option<usize>,
    /// Dotted key path when the problem is a value (e.g. `limits.max_order_notional`).
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every error found in a config directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
impl std::error::Error for ConfigErrors {}

/// A loaded and validated config directory. Paths inside are resolved against the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dir: PathBuf,
    pub bot: BotFile,
    pub risk: RiskFile,
    pub strategy: StrategyFile,
    pub rules: RulesFile,
    /// The rules directory (`rules.yaml: dir`), resolved.
    pub rules_dir: PathBuf,
    /// The replay dataset, resolved, when the exchange is a replay.
    pub dataset: Option<PathBuf>,
    /// `alerts.yaml` as written (empty when absent) and its checked rules.
    pub alerts: alerts::AlertsFile,
    pub alert_rules: Vec<alerts::AlertRule>,
}

impl Config {
    /// Loads and validates `dir`.
    ///
    /// # Errors
    /// Every problem found, each with file and key (or line).
    pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
        files::load(dir)
    }

    /// The path of a script, e.g. `script_path("risk")`.
    pub fn script_path(&self, file: &str) -> PathBuf {
        self.rules_dir.join(file)
    }

    /// Resolves a path written in a config file: relative paths are relative to the config dir.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_against(&self.dir, p)
    }
}

pub(crate) fn resolve_against(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}
