//! Shared helpers for integration tests: a throw-away copy of the default config directory and
//! rule pack, and hand-built cycle inputs.
//!
//! The copy lives in a temp dir as `config/` (bot.yaml, risk.yaml, rules.yaml, strategy.yaml) and
//! `rules/` (the scripts and `tests/`). `rules.yaml: dir` is rewritten to the copied rules and
//! `bot.yaml: exchange.dataset` to the repository's `data/replay/sample`, both as absolute paths,
//! so tests may edit either copy freely without touching the repository.

#![allow(dead_code)]

use btcbot::domain::{Intent, MarketSnapshot, Mode, Price, Qty, Side, Symbol, SymbolSpec};
use btcbot::engine::decide::{CycleInput, PortfolioInput};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tempfile::TempDir;

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temp copy of `configs/default` and `rules/`; deleted on drop.
pub struct Fixture {
    pub tmp: TempDir,
    /// The config directory (pass this to `RuleSet::build` / `--config`).
    pub config: PathBuf,
    /// The rules directory `rules.yaml: dir` points at.
    pub rules: PathBuf,
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&src, &dst);
        } else {
            fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copy {} → {}: {e}", src.display(), dst.display()));
        }
    }
}

/// A YAML single-quoted scalar holding `p` (no escapes except a doubled quote).
fn yaml_path(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "''"))
}

/// Replaces the value of the first line whose trimmed text starts with `key:` (keeping the
/// indentation, dropping any trailing comment).
fn set_line_value(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if !done && trimmed.starts_with(&format!("{key}:")) {
                done = true;
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}{key}: {value}")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(done, "no `{key}:` line to rewrite in:\n{text}");
    out.join("\n") + "\n"
}

impl Fixture {
    /// Copies the default config and rule pack into a fresh temp dir.
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = repo_root();
        let config = tmp.path().join("config");
        let rules = tmp.path().join("rules");
        copy_dir(&root.join("configs/default"), &config);
        copy_dir(&root.join("rules"), &rules);
        let f = Fixture { tmp, config, rules };
        let rules_yaml = set_line_value(&f.read_config("rules.yaml"), "dir", &yaml_path(&f.rules));
        f.write_config("rules.yaml", &rules_yaml);
        let dataset = root.join("data/replay/sample");
        let bot_yaml = set_line_value(&f.read_config("bot.yaml"), "dataset", &yaml_path(&dataset));
        f.write_config("bot.yaml", &bot_yaml);
        f
    }

    /// The same, without `rules/tests` (so a deliberately broken script still builds and its
    /// run-time failure can be observed through `decide`).
    pub fn without_rule_tests() -> Fixture {
        let f = Fixture::new();
        fs::remove_dir_all(f.rules.join("tests")).expect("remove rules/tests");
        f
    }

    pub fn config_path(&self, name: &str) -> PathBuf {
        self.config.join(name)
    }
    pub fn rule_path(&self, name: &str) -> PathBuf {
        self.rules.join(name)
    }

    pub fn read_config(&self, name: &str) -> String {
        let p = self.config_path(name);
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }
    pub fn write_config(&self, name: &str, text: &str) {
        let p = self.config_path(name);
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }
    pub fn read_rule(&self, name: &str) -> String {
        let p = self.rule_path(name);
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }
    /// Writes `rules/<name>` (e.g. `risk.rhai` or `tests/extra.yaml`).
    pub fn write_rule(&self, name: &str, text: &str) {
        let p = self.rule_path(name);
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// 1-based line of the first line of config file `name` containing `needle`.
    pub fn config_line(&self, name: &str, needle: &str) -> usize {
        line_of(&self.read_config(name), needle)
    }
    /// 1-based line of the first line of rules file `name` containing `needle`.
    pub fn rule_line(&self, name: &str, needle: &str) -> usize {
        line_of(&self.read_rule(name), needle)
    }

    /// Replaces exactly one occurrence of `from` in config file `name`.
    pub fn edit_config(&self, name: &str, from: &str, to: &str) {
        let text = self.read_config(name);
        assert_eq!(
            text.matches(from).count(),
            1,
            "{name}: expected exactly one {from:?}"
        );
        self.write_config(name, &text.replacen(from, to, 1));
    }
    /// Replaces exactly one occurrence of `from` in rules file `name`.
    pub fn edit_rule(&self, name: &str, from: &str, to: &str) {
        let text = self.read_rule(name);
        assert_eq!(
            text.matches(from).count(),
            1,
            "{name}: expected exactly one {from:?}"
        );
        self.write_rule(name, &text.replacen(from, to, 1));
    }

    /// Sets `sandbox.<key>: value` in rules.yaml (the key must already be there).
    pub fn set_sandbox(&self, key: &str, value: &str) {
        let text = self.read_config("rules.yaml");
        self.write_config("rules.yaml", &set_line_value(&text, key, value));
    }
}

/// 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line contains {needle:?}"))
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_else(|e| panic!("decimal {s:?}: {e}"))
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

/// The bundled exchangeinfo specs (BTCTRY, ETHTRY, AVAXTRY, USDTTRY).
pub fn bundled_specs() -> BTreeMap<Symbol, SymbolSpec> {
    btcbot::exchange::exchange_info::parse_exchange_info(
        btcbot::exchange::exchange_info::bundled_exchange_info(),
    )
    .expect("bundled exchangeinfo")
    .into_iter()
    .map(|s| (s.symbol.clone(), s))
    .collect()
}

pub const NOW_MS: i64 = 1_767_225_600_000;

/// A fresh book (1 s old) for `symbol` at `bid`/`ask`.
pub fn market(symbol: &str, bid: &str, ask: &str) -> MarketSnapshot {
    MarketSnapshot {
        symbol: sym(symbol),
        bid: Price::new(dec(bid)).expect("bid"),
        bid_qty: Qty::new(Decimal::ONE).expect("qty"),
        ask: Price::new(dec(ask)).expect("ask"),
        ask_qty: Qty::new(Decimal::ONE).expect("qty"),
        last_trade: None,
        exchange_ts_ms: NOW_MS - 1000,
        received_ts_ms: NOW_MS,
    }
}

pub fn intent(symbol: &str, side: Side, price: &str, qty: &str) -> Intent {
    Intent {
        symbol: sym(symbol),
        side,
        price: Price::new(dec(price)).expect("price"),
        qty: Qty::new(dec(qty)).expect("qty"),
        tag: "test".into(),
    }
}

/// One cycle over BTCTRY at 3,500,000 / 3,500,100 with `cash` TRY, mode normal, empty states.
/// `intents`: `Some` judges these (strategy.rhai not called), `None` runs strategy.rhai.
pub fn btctry_input(cash: &str, intents: Option<Vec<Intent>>) -> CycleInput {
    let cash = dec(cash);
    CycleInput {
        cycle_id: 1,
        now_ms: NOW_MS,
        symbols: vec![sym("BTCTRY")],
        markets: vec![market("BTCTRY", "3500000", "3500100")],
        specs: bundled_specs(),
        portfolio: PortfolioInput {
            quote_asset: "TRY".into(),
            cash,
            cash_total: cash,
            ..PortfolioInput::default()
        },
        engine_mode: Mode::Normal,
        intents_override: intents,
        ..CycleInput::default()
    }
}

/// A small BTCTRY buy (700 TRY) that the default risk.rhai accepts with 10,000 TRY cash.
pub fn small_buy() -> Intent {
    intent("BTCTRY", Side::Buy, "3500000", "0.0002")
}

/// The simulated exchange's test account key pair (the published signing test vector).
pub const SIM_KEY: &str = "test-public-key";
pub const SIM_SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";

/// A simulated exchange over the sample dataset, listening on a free loopback port, with one
/// account (the test keys) holding `try_balance` TRY.
pub fn sim_config(try_balance: i64) -> btcbot::exchange::sim::SimConfig {
    let account = btcbot::exchange::sim::SimAccount {
        public_key: SIM_KEY.into(),
        secret_b64: SIM_SECRET.into(),
        balances: vec![("TRY".into(), Decimal::from(try_balance))],
    };
    btcbot::exchange::sim::SimConfig::new(
        repo_root().join("data/replay/sample"),
        "127.0.0.1:0"
            .parse()
            .unwrap_or_else(|e| panic!("loopback address: {e}")),
        vec![account],
    )
}

/// `configs/paper` copied into `dir`, pointed at `base_url`, with `replacements` applied to
/// every file (e.g. a short order TTL).
pub fn paper_config(dir: &Path, base_url: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let cfg = dir.join("paper");
    fs::create_dir_all(&cfg).unwrap_or_else(|e| panic!("{e}"));
    for name in [
        "risk.yaml",
        "strategy.yaml",
        "rules.yaml",
        "credentials.yaml",
        "bot.yaml",
    ] {
        let mut text = fs::read_to_string(repo_root().join("configs/paper").join(name))
            .unwrap_or_else(|e| panic!("{e}"));
        text = text
            .replace(
                "dir: ../../rules",
                &format!("dir: {}", yaml_path(&repo_root().join("rules"))),
            )
            .replace("http://127.0.0.1:8080", base_url);
        for (from, to) in replacements {
            text = text.replace(from, to);
        }
        fs::write(cfg.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    cfg
}

/// Moves a simulated market one event every `every` until `stop`; returns the events moved.
pub fn drive_market(
    sim: std::sync::Arc<btcbot::exchange::sim::SimHandle>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    every: std::time::Duration,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut moved = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            moved += sim.advance_events(1).unwrap_or(0);
            std::thread::sleep(every);
        }
        moved
    })
}

/// Asserts the bot's database and the simulated exchange agree: no client order id placed
/// twice, every exchange trade in the ledger exactly once, and the ledger's balances equal the
/// exchange's to the last digit.
pub fn assert_ledger_matches_sim(db: &Path, sim: &btcbot::exchange::sim::SimHandle, key: &str) {
    use btcbot::ledger::Ledger;
    use btcbot::store::Store;
    let store = Store::open_read_only(db).unwrap_or_else(|e| panic!("{e}"));
    for o in sim.orders(key) {
        let placed = sim.placed_count(key, &o.client_id);
        assert!(
            placed <= 1,
            "client order id {} placed {placed} times",
            o.client_id
        );
    }
    let fills = store.fills().unwrap_or_else(|e| panic!("{e}"));
    let mut ours: Vec<String> = fills.iter().map(|f| f.trade_id.clone()).collect();
    let mut theirs: Vec<String> = sim.trades(key).iter().map(|t| t.id.to_string()).collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "the ledger's fills vs the exchange's trades");
    let baseline = store
        .meta_value("ledger_starting_cash_TRY")
        .unwrap_or_else(|e| panic!("{e}"))
        .and_then(|t| Decimal::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no ledger baseline stored"));
    let ledger = Ledger::rebuild("TRY", baseline, &fills).unwrap_or_else(|e| panic!("{e}"));
    let balances = sim.balances(key).unwrap_or_default();
    let at_sim = |asset: &str| {
        balances
            .iter()
            .find(|b| b.asset == asset)
            .map_or(Decimal::ZERO, |b| b.free + b.locked)
    };
    assert_eq!(ledger.cash, at_sim("TRY"), "TRY: ledger vs exchange");
    for (symbol, holding) in &ledger.positions {
        let base = symbol.as_str().trim_end_matches("TRY");
        assert_eq!(holding.qty, at_sim(base), "{base}: ledger vs exchange");
    }
    // One equity snapshot per committed cycle, and the peak survives every restart.
    let snapshots = store.equity_snapshots().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        snapshots.len(),
        store.cycles().unwrap_or_else(|e| panic!("{e}")).len(),
        "an equity snapshot per cycle"
    );
    let mut peak = None;
    for s in &snapshots {
        assert_eq!(s.drawdown, s.peak_equity - s.equity, "cycle {}", s.cycle_id);
        assert!(
            s.peak_equity >= s.equity,
            "cycle {}: peak under equity",
            s.cycle_id
        );
        if let Some(p) = peak {
            assert!(
                s.peak_equity >= p,
                "cycle {}: the peak went down",
                s.cycle_id
            );
        }
        peak = Some(s.peak_equity);
    }
    if let Some(last) = snapshots.last() {
        assert_eq!(
            last.cash, ledger.cash,
            "the last snapshot's cash is the ledger's"
        );
    }
}
