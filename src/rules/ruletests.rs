//! Rule tests: `rules/tests/*.yaml`, table-driven cases (input → expected anomalies, mode,
//! intents, verdicts). Run by `btcbot rules test`, by `cargo test`, and by every reload before a
//! swap. The format is documented in docs/RULES.md ("Testing a rule").

use super::RuleSet;
use super::convert::param_to_dynamic;
use crate::config::ParamValue;
use crate::domain::{
    Intent, MarketSnapshot, Mode, Order, OrderStatus, Price, Qty, Side, Symbol, SymbolSpec,
};
use crate::engine::decide::{CycleInput, CycleStats, Holding, PortfolioInput, decide};
use rhai::Dynamic;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    input: CaseInput,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseInput {
    #[serde(default = "default_now")]
    now_ms: i64,
    #[serde(default)]
    cycle_id: i64,
    /// Defaults to the symbols of `markets`.
    #[serde(default)]
    symbols: Option<Vec<Symbol>>,
    #[serde(default)]
    markets: Vec<CaseMarket>,
    #[serde(default)]
    portfolio: CasePortfolio,
    #[serde(default)]
    open_orders: Vec<CaseOrder>,
    #[serde(default)]
    stats: CaseStats,
    #[serde(default)]
    mode: Option<String>,
    /// Script state per stage name (`anomaly`, `degrade`, `strategy`, `risk`).
    #[serde(default)]
    state: BTreeMap<String, ParamValue>,
    /// When present, risk judges these and strategy.rhai is not called.
    #[serde(default)]
    intents: Option<Vec<CaseIntent>>,
}

fn default_now() -> i64 {
    1_767_225_600_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseMarket {
    symbol: Symbol,
    bid: Decimal,
    ask: Decimal,
    #[serde(default = "one")]
    bid_qty: Decimal,
    #[serde(default = "one")]
    ask_qty: Decimal,
    #[serde(default)]
    age_ms: i64,
}

fn one() -> Decimal {
    Decimal::ONE
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasePortfolio {
    #[serde(default)]
    cash: Decimal,
    #[serde(default)]
    cash_total: Option<Decimal>,
    #[serde(default)]
    realized_pnl: Decimal,
    #[serde(default)]
    fees: Decimal,
    #[serde(default)]
    positions: BTreeMap<Symbol, CaseHolding>,
    /// The venue's quote balance, when the case compares it with the ledger's.
    #[serde(default)]
    venue_cash_total: Option<Decimal>,
    /// Symbol → venue base balance minus the ledger's position.
    #[serde(default)]
    qty_mismatch: BTreeMap<Symbol, Decimal>,
    #[serde(default)]
    peak_equity: Option<Decimal>,
    #[serde(default)]
    day_start_equity: Option<Decimal>,
    #[serde(default)]
    week_start_equity: Option<Decimal>,
    #[serde(default)]
    realized_today: Decimal,
    #[serde(default)]
    fees_today: Decimal,
    #[serde(default)]
    realized_week: Decimal,
    #[serde(default)]
    loss_streak: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseHolding {
    qty: Decimal,
    avg_cost: Decimal,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseOrder {
    symbol: Symbol,
    side: Side,
    price: Decimal,
    qty: Decimal,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseStats {
    #[serde(default)]
    rejects_last_cycle: i64,
    #[serde(default)]
    exchange_errors_last_cycle: i64,
    #[serde(default)]
    rule_errors_last_cycle: i64,
    #[serde(default)]
    observe_latency_ms: i64,
    #[serde(default)]
    cursor_stall_cycles: i64,
    #[serde(default)]
    clock_skew_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseIntent {
    symbol: Symbol,
    side: Side,
    price: Decimal,
    qty: Decimal,
    #[serde(default)]
    tag: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Anomaly codes, compared as sorted sets.
    #[serde(default)]
    anomalies: Option<Vec<String>>,
    #[serde(default)]
    mode: Option<String>,
    /// `symbol side` per intent, in order (e.g. `BTCTRY buy`).
    #[serde(default)]
    intents: Option<Vec<String>>,
    /// Reason codes per intent, in order (`ACCEPT`, `RESIZE`, or the rejection code).
    #[serde(default)]
    verdicts: Option<Vec<String>>,
}

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    /// `None` on pass; the differences on failure.
    pub failure: Option<String>,
}

impl CaseResult {
    /// `file [case]: differences` for a failed case; `None` when it passed.
    pub fn failure_line(&self) -> Option<String> {
        self.failure
            .as_ref()
            .map(|f| format!("{} [{}]: {f}", self.file, self.name))
    }
}

/// The test directory a rule set uses, if any.
pub fn tests_dir(set: &RuleSet) -> Option<PathBuf> {
    let dir = match &set.config.rules.tests {
        Some(p) => set.config.rules_dir.join(p),
        None => set.config.rules_dir.join("tests"),
    };
    dir.is_dir().then_some(dir)
}

/// Runs every case; the reload path calls this before a swap.
///
/// # Errors
/// When a test file cannot be read or parsed (with file:line).
pub fn run_dir_for(set: &RuleSet) -> Result<Vec<String>, String> {
    Ok(run_all(set)?
        .iter()
        .filter_map(CaseResult::failure_line)
        .collect())
}

/// Runs every case of every `*.yaml` under the rule set's test directory.
///
/// # Errors
/// When a test file cannot be read or parsed (with file:line).
pub fn run_all(set: &RuleSet) -> Result<Vec<CaseResult>, String> {
    let specs = default_specs()?;
    let mut results = Vec::new();
    for file in test_files(set)? {
        results.extend(run_file(set, &file, &specs)?);
    }
    Ok(results)
}

fn test_files(set: &RuleSet) -> Result<Vec<PathBuf>, String> {
    let Some(dir) = tests_dir(set) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Every case's input, named `file: case` (varied cycles for tests that compare two ways of
/// deciding one input).
///
/// # Errors
/// When a test file cannot be read or parsed, or a case's input is bad.
pub fn case_inputs(set: &RuleSet) -> Result<Vec<(String, CycleInput)>, String> {
    let specs = default_specs()?;
    let mut inputs = Vec::new();
    for file in test_files(set)? {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{shown}: {e}"))?;
        let parsed: TestFile =
            serde_norway::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
        for case in parsed.cases {
            let input = build_input(&case.input, &specs)
                .map_err(|e| format!("{shown}: {}: {e}", case.name))?;
            inputs.push((format!("{shown}: {}", case.name), input));
        }
    }
    Ok(inputs)
}

fn default_specs() -> Result<BTreeMap<Symbol, SymbolSpec>, String> {
    let specs = crate::exchange::exchange_info::parse_exchange_info(
        crate::exchange::exchange_info::bundled_exchange_info(),
    )?;
    Ok(specs.into_iter().map(|s| (s.symbol.clone(), s)).collect())
}

fn run_file(
    set: &RuleSet,
    file: &Path,
    specs: &BTreeMap<Symbol, SymbolSpec>,
) -> Result<Vec<CaseResult>, String> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{shown}: {e}"))?;
    let parsed: TestFile = serde_norway::from_str(&text).map_err(|e| match e.location() {
        Some(l) => format!("{shown}:{}: {e}", l.line()),
        None => format!("{shown}: {e}"),
    })?;
    let mut out = Vec::new();
    for case in parsed.cases {
        let failure = match build_input(&case.input, specs) {
            Ok(input) => check(&case.expect, set, &input),
            Err(e) => Some(format!("bad input: {e}")),
        };
        out.push(CaseResult {
            file: shown.clone(),
            name: case.name,
            failure,
        });
    }
    Ok(out)
}

fn build_input(c: &CaseInput, specs: &BTreeMap<Symbol, SymbolSpec>) -> Result<CycleInput, String> {
    let mut markets = Vec::new();
    for m in &c.markets {
        markets.push(MarketSnapshot {
            symbol: m.symbol.clone(),
            bid: Price::new(m.bid)?,
            bid_qty: Qty::new(m.bid_qty)?,
            ask: Price::new(m.ask)?,
            ask_qty: Qty::new(m.ask_qty)?,
            last_trade: None,
            exchange_ts_ms: c.now_ms - m.age_ms,
            received_ts_ms: c.now_ms,
        });
    }
    let symbols = c
        .symbols
        .clone()
        .unwrap_or_else(|| markets.iter().map(|m| m.symbol.clone()).collect());
    let p = &c.portfolio;
    let open_orders = c
        .open_orders
        .iter()
        .enumerate()
        .map(|(i, o)| {
            Ok(Order {
                client_id: format!("test-{i}"),
                exchange_id: Some(i.to_string()),
                symbol: o.symbol.clone(),
                side: o.side,
                price: Price::new(o.price)?,
                qty: Qty::new(o.qty)?,
                filled_qty: Qty::ZERO,
                status: OrderStatus::Open,
                cycle_id: 0,
                created_ms: c.now_ms,
                updated_ms: c.now_ms,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let intents = match &c.intents {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|i| {
                    Ok(Intent {
                        symbol: i.symbol.clone(),
                        side: i.side,
                        price: Price::new(i.price)?,
                        qty: Qty::new(i.qty)?,
                        tag: i.tag.clone(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    let mut states: [Dynamic; 4] = Default::default();
    for (name, value) in &c.state {
        let stage = super::Stage::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                format!("state.{name}: not a stage (anomaly, degrade, strategy, risk)")
            })?;
        states[stage as usize] = param_to_dynamic(value);
    }
    Ok(CycleInput {
        cycle_id: c.cycle_id,
        now_ms: c.now_ms,
        symbols,
        markets,
        specs: specs.clone(),
        portfolio: PortfolioInput {
            quote_asset: "TRY".into(),
            cash: p.cash,
            cash_total: p.cash_total.unwrap_or(p.cash),
            realized_pnl: p.realized_pnl,
            fees: p.fees,
            venue_cash_total: p.venue_cash_total,
            qty_mismatch: p.qty_mismatch.clone(),
            peak_equity: p.peak_equity,
            day_start_equity: p.day_start_equity,
            week_start_equity: p.week_start_equity,
            realized_today: p.realized_today,
            fees_today: p.fees_today,
            realized_week: p.realized_week,
            loss_streak: p.loss_streak,
            positions: p
                .positions
                .iter()
                .map(|(s, h)| {
                    (
                        s.clone(),
                        Holding {
                            qty: h.qty,
                            avg_cost: h.avg_cost,
                        },
                    )
                })
                .collect(),
        },
        open_orders,
        stats: CycleStats {
            rejects_last_cycle: c.stats.rejects_last_cycle,
            exchange_errors_last_cycle: c.stats.exchange_errors_last_cycle,
            rule_errors_last_cycle: c.stats.rule_errors_last_cycle,
            observe_latency_ms: c.stats.observe_latency_ms,
            cursor_stall_cycles: c.stats.cursor_stall_cycles,
            clock_skew_ms: c.stats.clock_skew_ms,
        },
        engine_mode: match &c.mode {
            Some(m) => Mode::parse(m)?,
            None => Mode::Normal,
        },
        engine_anomalies: Vec::new(),
        states,
        intents_override: intents,
    })
}

fn check(expect: &Expect, set: &RuleSet, input: &CycleInput) -> Option<String> {
    let d = decide(set, input);
    let mut diffs = Vec::new();
    if let Some(want) = &expect.anomalies {
        let mut want = want.clone();
        want.sort();
        let mut got: Vec<String> = d.anomalies.iter().map(|a| a.code.clone()).collect();
        got.sort();
        got.dedup();
        if want != got {
            let errors: Vec<String> = d
                .anomalies
                .iter()
                .filter(|a| a.code == "RULE_ERROR")
                .flat_map(|a| a.detail.iter().map(|(k, v)| format!("{k}={v}")))
                .collect();
            diffs.push(format!(
                "anomalies: expected {want:?}, got {got:?} {}",
                errors.join(" ")
            ));
        }
    }
    if let Some(want) = &expect.mode
        && want != d.mode.as_str()
    {
        diffs.push(format!(
            "mode: expected {want}, got {} ({:?})",
            d.mode, d.mode_reasons
        ));
    }
    if let Some(want) = &expect.intents {
        let got: Vec<String> = d
            .judged
            .iter()
            .map(|j| format!("{} {}", j.intent.symbol, j.intent.side))
            .collect();
        if *want != got {
            diffs.push(format!("intents: expected {want:?}, got {got:?}"));
        }
    }
    if let Some(want) = &expect.verdicts {
        let got: Vec<String> = d
            .judged
            .iter()
            .map(|j| j.verdict.reason_code().to_string())
            .collect();
        if *want != got {
            diffs.push(format!("verdicts: expected {want:?}, got {got:?}"));
        }
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rule_pack_passes_its_rule_tests() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/default");
        let set = RuleSet::compile(&dir).unwrap_or_else(|e| panic!("{e}"));
        let results = run_all(&set).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            results.len() >= 20,
            "expected the pack's cases, found {}",
            results.len()
        );
        let failures: Vec<String> = results
            .iter()
            .filter_map(CaseResult::failure_line)
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_failing_expectation_is_reported_with_a_diff() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/default");
        let set = RuleSet::compile(&dir).unwrap_or_else(|e| panic!("{e}"));
        let specs = default_specs().unwrap_or_else(|e| panic!("{e}"));
        let yaml = "cases:\n  - name: wrong on purpose\n    input:\n      markets: [{symbol: BTCTRY, bid: 100, ask: 101}]\n      intents: []\n    expect:\n      mode: halt\n";
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = tmp.path().join("t.yaml");
        std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("{e}"));
        let results = run_file(&set, &file, &specs).unwrap_or_else(|e| panic!("{e}"));
        let failure = results[0].failure.clone().unwrap_or_default();
        assert!(
            failure.contains("mode: expected halt, got normal"),
            "{failure}"
        );
    }
}
