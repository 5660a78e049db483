//! A RuleSet: the config directory's params, the four compiled scripts and a content hash. Built
//! and validated as a whole; the reload watcher, `rules check` and start-up all use [`RuleSet::build`].

use super::api::{CycleView, ParamsView, STAT_KEYS, register_param_keys};
use super::convert::param_to_dynamic;
use super::params_view::KeyReads;
use super::sandbox::{ScriptError, build_engine};
use crate::config::{Config, ConfigErrors, Params};
use crate::domain::Mode;
use rhai::{AST, Dynamic, Engine};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The four stages a rule pack scripts, with their fixed entry functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Anomaly,
    Degrade,
    Strategy,
    Risk,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Anomaly, Stage::Degrade, Stage::Strategy, Stage::Risk];
    pub fn name(self) -> &'static str {
        match self {
            Stage::Anomaly => "anomaly",
            Stage::Degrade => "degrade",
            Stage::Strategy => "strategy",
            Stage::Risk => "risk",
        }
    }
    /// Entry function name and its parameters, as docs/RULES.md states them.
    pub fn entry(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Stage::Anomaly => ("anomalies", &["ctx"]),
            Stage::Degrade => ("degrade", &["anomalies", "ctx"]),
            Stage::Strategy => ("strategy", &["ctx"]),
            Stage::Risk => ("risk", &["intent", "ctx"]),
        }
    }
}

/// One compiled script.
#[derive(Debug, Clone)]
pub struct Script {
    pub stage: Stage,
    /// Path as shown in errors.
    pub source: String,
    pub ast: AST,
    pub params: ParamsView,
    /// SHA-256 of the script's text: two sets share a stage's results only when it matches.
    pub text_sha256: [u8; 32],
    /// The text has a `catch`: an error it catches names the file, so the file matters too.
    pub catches_errors: bool,
}

/// Why a RuleSet could not be built. The running bot keeps its last good set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSetError {
    Config(ConfigErrors),
    Script(Vec<ScriptError>),
    Tests(Vec<String>),
}

impl fmt::Display for RuleSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleSetError::Config(e) => write!(f, "{e}"),
            RuleSetError::Script(errors) => {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                write!(f, "{}", lines.join("\n"))
            }
            RuleSetError::Tests(failures) => {
                write!(f, "rule tests failed: {}", failures.join("\n"))
            }
        }
    }
}
impl std::error::Error for RuleSetError {}

/// Params, compiled scripts and their hash: what decides a cycle.
#[derive(Debug)]
pub struct RuleSet {
    pub engine: Engine,
    pub config: Config,
    pub scripts: [Script; 4],
    /// First 16 hex digits of SHA-256 over every file that shapes decisions.
    pub hash: String,
    pub timeout: Duration,
    pub degrade_on_error: Mode,
    /// `ctx.limits`; it logs the keys scripts read into `limit_reads`.
    pub limits: ParamsView,
    pub limit_reads: Arc<KeyReads>,
    /// Every key with a registered getter (params, limits, stats).
    pub registered_keys: BTreeSet<String>,
    /// risk.rhai defines the optional per-cycle `fn budget(ctx)`.
    pub has_budget: bool,
    /// strategy.rhai defines `fn on_quote(q)` (needed by `cycle.evaluate: per_quote`).
    pub has_on_quote: bool,
}

/// The per-quote strategy entry in strategy.rhai.
pub const ON_QUOTE_ENTRY: &str = "on_quote";

/// The optional risk-budget entry in risk.rhai: called once per cycle after degrade.
pub const BUDGET_ENTRY: &str = "budget";

fn params_map(p: &Params) -> ParamsView {
    ParamsView::new(
        p.iter()
            .map(|(k, v)| (k.as_str().into(), param_to_dynamic(v)))
            .collect(),
    )
}

impl RuleSet {
    /// The reload path: load and validate the config dir, compile every script, check entry
    /// functions, then run the rule tests. `rules check`, start-up and hot reload all call this.
    ///
    /// # Errors
    /// The config errors, every script error, or the failing rule tests.
    pub fn build(config_dir: &Path) -> Result<RuleSet, RuleSetError> {
        let set = Self::compile(config_dir)?;
        let failures =
            super::ruletests::run_dir_for(&set).map_err(|e| RuleSetError::Tests(vec![e]))?;
        if failures.is_empty() {
            Ok(set)
        } else {
            Err(RuleSetError::Tests(failures))
        }
    }

    /// Loads and compiles without running rule tests (the rule-test runner itself uses it).
    ///
    /// # Errors
    /// The config errors or every script error.
    pub fn compile(config_dir: &Path) -> Result<RuleSet, RuleSetError> {
        let config = Config::load(config_dir).map_err(RuleSetError::Config)?;
        let mut engine = build_engine(&config.rules.sandbox);
        let mut hasher = Sha256::new();
        for name in ["risk.yaml", "strategy.yaml", "rules.yaml"] {
            let bytes = std::fs::read(config_dir.join(name)).unwrap_or_default();
            hash_part(&mut hasher, name, &bytes);
        }
        // Optional, and hashed only when present so that adding none leaves every earlier
        // run's hash (and parity fingerprint) as it was.
        if let Ok(bytes) = std::fs::read(config_dir.join("alerts.yaml")) {
            hash_part(&mut hasher, "alerts.yaml", &bytes);
        }
        let files = &config.rules.scripts;
        let paths = [&files.anomaly, &files.degrade, &files.strategy, &files.risk];
        let params = [
            params_map(&config.rules.anomaly_params),
            params_map(&config.rules.degrade_params),
            params_map(&config.strategy.params),
            params_map(&config.risk.params),
        ];
        let limit_reads = Arc::new(KeyReads::default());
        let limits: ParamsView = ParamsView::logged(
            config
                .risk
                .limits
                .entries()
                .into_iter()
                .map(|(k, v)| (k.into(), Dynamic::from_decimal(v)))
                .collect(),
            Arc::clone(&limit_reads),
        );
        let mut keys: BTreeSet<String> = STAT_KEYS.iter().map(|k| (*k).to_string()).collect();
        for view in params.iter().chain(std::iter::once(&limits)) {
            keys.extend(view.keys().map(ToString::to_string));
        }
        let limit_keys: Vec<&str> = limits.keys().collect();
        register_param_keys(&mut engine, keys.iter().map(String::as_str), &limit_keys);
        let mut errors = Vec::new();
        let mut compiled = Vec::new();
        for ((stage, rel), params) in Stage::ALL.into_iter().zip(paths).zip(params) {
            let path = config.rules_dir.join(rel);
            let source = path.display().to_string();
            match compile_script(&engine, stage, &path, &source) {
                Ok((ast, bytes)) => {
                    hash_part(&mut hasher, stage.name(), &bytes);
                    compiled.push(Script {
                        stage,
                        source,
                        ast,
                        params,
                        text_sha256: Sha256::digest(&bytes).into(),
                        catches_errors: bytes.windows(5).any(|w| w == b"catch"),
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(RuleSetError::Script(errors));
        }
        let scripts: [Script; 4] = compiled
            .try_into()
            .map_err(|_| RuleSetError::Script(Vec::new()))?;
        let hash = hex::encode(hasher.finalize())[..16].to_string();
        let degrade_on_error = Mode::parse(&config.rules.degrade_on_error).unwrap_or(Mode::Halt);
        let has_budget = scripts[Stage::Risk as usize]
            .ast
            .iter_functions()
            .any(|f| f.name == BUDGET_ENTRY && f.params.len() == 1);
        let has_on_quote = scripts[Stage::Strategy as usize]
            .ast
            .iter_functions()
            .any(|f| f.name == ON_QUOTE_ENTRY && f.params.len() == 1);
        Ok(RuleSet {
            has_budget,
            has_on_quote,
            timeout: Duration::from_millis(config.rules.sandbox.timeout_ms),
            engine,
            config,
            scripts,
            hash,
            degrade_on_error,
            limits,
            limit_reads,
            registered_keys: keys,
        })
    }

    pub fn script(&self, stage: Stage) -> &Script {
        &self.scripts[stage as usize]
    }

    /// The params a stage's script sees as `ctx.params`, as configured.
    pub fn stage_params(&self, stage: Stage) -> &Params {
        match stage {
            Stage::Anomaly => &self.config.rules.anomaly_params,
            Stage::Degrade => &self.config.rules.degrade_params,
            Stage::Strategy => &self.config.strategy.params,
            Stage::Risk => &self.config.risk.params,
        }
    }

    /// Fills the parts of a cycle view that come from the rule set itself.
    pub fn decorate(&self, view: &mut CycleView) {
        view.limits = self.limits.clone();
    }
}

fn hash_part(hasher: &mut Sha256, name: &str, bytes: &[u8]) {
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn compile_script(
    engine: &Engine,
    stage: Stage,
    path: &Path,
    source: &str,
) -> Result<(AST, Vec<u8>), ScriptError> {
    let bytes = std::fs::read(path).map_err(|e| ScriptError {
        location: source.to_string(),
        message: format!("cannot read script: {e}"),
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| ScriptError {
        location: source.to_string(),
        message: "script is not valid UTF-8".into(),
    })?;
    let mut ast = engine.compile(&text).map_err(|e| {
        let pos = e.position();
        let mut message = e.0.to_string();
        if let Some(i) = message.find(" (line ") {
            message.truncate(i);
        }
        ScriptError::new(source, pos, message)
    })?;
    ast.set_source(source);
    let (entry, params) = stage.entry();
    let found = ast
        .iter_functions()
        .find(|f| f.name == entry && f.params.len() == params.len());
    if found.is_none() {
        return Err(ScriptError {
            location: source.to_string(),
            message: format!("missing entry function `fn {entry}({})`", params.join(", ")),
        });
    }
    Ok((ast, bytes))
}
