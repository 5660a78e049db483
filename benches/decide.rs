//! `decide()` for one cycle over 4 symbols with the default rule pack: anomaly, degrade,
//! strategy and risk scripts, with intents flowing through risk; and the common cycle that
//! makes no intent; and the fingerprint every stored cycle carries.
//!
//! Also the per-quote strategy call of configs/examples/ema-cross, and decoding a dataset's
//! events from its CSV and from its `events.bin` (`replay_decode/…`, the sample's 20,000 events).
//!
//! Run: `cargo bench --bench decide`.

use btcbot::domain::{MarketSnapshot, Price, Qty, Symbol};
use btcbot::engine::decide::{CycleInput, Holding, PortfolioInput, decide};
use btcbot::engine::fingerprint::fingerprint;
use btcbot::exchange::exchange_info::{bundled_exchange_info, parse_exchange_info};
use btcbot::rules::RuleSet;
use criterion::{Criterion, criterion_group, criterion_main};
use rust_decimal::Decimal;
use std::hint::black_box;
use std::path::Path;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

fn market(symbol: &str, bid: &str, ask: &str, now: i64) -> MarketSnapshot {
    MarketSnapshot {
        symbol: Symbol::new(symbol).unwrap(),
        bid: Price::new(d(bid)).unwrap(),
        bid_qty: Qty::new(d("1.5")).unwrap(),
        ask: Price::new(d(ask)).unwrap(),
        ask_qty: Qty::new(d("2")).unwrap(),
        last_trade: None,
        exchange_ts_ms: now - 250,
        received_ts_ms: now,
    }
}

fn input(rules: &RuleSet) -> CycleInput {
    let now = 1_767_225_600_000;
    let specs = parse_exchange_info(bundled_exchange_info()).unwrap();
    let symbols: Vec<Symbol> = ["BTCTRY", "ETHTRY", "AVAXTRY", "USDTTRY"]
        .iter()
        .map(|s| Symbol::new(s).unwrap())
        .collect();
    let mut input = CycleInput {
        cycle_id: 1,
        now_ms: now,
        symbols: symbols.clone(),
        // Prices 1% under the anchors so the strategy emits buys and sells that risk judges.
        markets: vec![
            market("BTCTRY", "3465000", "3465010", now),
            market("ETHTRY", "126300", "126301", now),
            market("AVAXTRY", "1237.4", "1237.5", now),
            market("USDTTRY", "42.070", "42.071", now),
        ],
        specs: specs.into_iter().map(|s| (s.symbol.clone(), s)).collect(),
        portfolio: PortfolioInput {
            quote_asset: "TRY".into(),
            cash: d("20000"),
            cash_total: d("20000"),
            positions: [(
                Symbol::new("ETHTRY").unwrap(),
                Holding {
                    qty: d("0.004"),
                    avg_cost: d("124000"),
                },
            )]
            .into_iter()
            .collect(),
            ..PortfolioInput::default()
        },
        ..CycleInput::default()
    };
    // Warm the strategy's anchors so every cycle produces intents.
    let mut warm = input.clone();
    warm.markets = anchor_markets(now);
    input.states = decide(rules, &warm).states;
    input
}

/// The books the strategy's anchors are warmed on.
fn anchor_markets(now: i64) -> Vec<MarketSnapshot> {
    vec![
        market("BTCTRY", "3500000", "3500010", now),
        market("ETHTRY", "125000", "125001", now),
        market("AVAXTRY", "1250.0", "1250.1", now),
        market("USDTTRY", "42.500", "42.501", now),
    ]
}

/// The common replayed cycle: the same books at the strategy's anchors, so nothing crosses a
/// band and no intent reaches risk (risk runs only `budget()`).
fn quiet_input(rules: &RuleSet, busy: &CycleInput) -> CycleInput {
    let mut quiet = busy.clone();
    quiet.markets = anchor_markets(busy.now_ms);
    quiet.states = decide(rules, &quiet).states;
    quiet
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/default");
    let rules = match RuleSet::build(&dir) {
        Ok(r) => r,
        Err(e) => panic!("default rules do not build: {e}"),
    };
    let input = input(&rules);
    let probe = decide(&rules, &input);
    assert!(
        probe.judged.len() >= 2,
        "the bench input should make intents, got {:?}",
        probe.judged
    );
    let quiet = quiet_input(&rules, &input);
    // Where a cycle's time goes, stage by stage (mean over warm calls; risk includes budget()).
    // benches/decide_instructions.sh counts these calls, of the no-intent cycle with
    // DECIDE_STAGE_INPUT=quiet.
    let staged = match std::env::var("DECIDE_STAGE_INPUT").as_deref() {
        Ok("quiet") => &quiet,
        _ => &input,
    };
    let staged_probe = decide(&rules, staged);
    let runs = 2000u64;
    let mut micros = [0u64; 4];
    for _ in 0..runs {
        let d = decide(&rules, staged);
        for stage in btcbot::rules::Stage::ALL {
            micros[stage as usize] += d.costs[stage as usize].micros;
        }
    }
    for stage in btcbot::rules::Stage::ALL {
        let cost = staged_probe.costs[stage as usize];
        eprintln!(
            "{:>8}: {:>6} operations, {:>6.1} µs mean of {runs} warm calls",
            stage.name(),
            cost.operations,
            micros[stage as usize] as f64 / runs as f64
        );
    }
    c.bench_function("decide/4_symbols_default_pack", |b| {
        b.iter(|| decide(black_box(&rules), black_box(&input)))
    });
    let probe = decide(&rules, &quiet);
    assert!(
        probe.judged.is_empty() && probe.anomalies.is_empty(),
        "the quiet input should make no intent and no anomaly, got {:?} / {:?}",
        probe.judged,
        probe.anomalies
    );
    c.bench_function("decide/4_symbols_no_intent", |b| {
        b.iter(|| decide(black_box(&rules), black_box(&quiet)))
    });
    // What every stored cycle also pays: hashing its inputs and decisions.
    let decision = decide(&rules, &input);
    c.bench_function("fingerprint/4_symbols", |b| {
        b.iter(|| fingerprint(black_box(&input), black_box(&decision), &[]))
    });
}

/// The fixed cost of one sandboxed script call (empty function), to read the figures above.
fn call_overhead(c: &mut Criterion) {
    let engine = btcbot::rules::sandbox::build_engine(&Default::default());
    let ast = match engine.compile("fn noop(x) { 0 }") {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let mut state = rhai::Dynamic::from_map(rhai::Map::new());
    c.bench_function("sandbox/empty_call", |b| {
        b.iter(|| {
            btcbot::rules::sandbox::call(
                &engine,
                &ast,
                "noop",
                "noop",
                &mut state,
                (rhai::Dynamic::UNIT,),
                std::time::Duration::from_millis(100),
            )
        })
    });
}

/// The per-quote strategy call of configs/examples/ema-cross (`on_quote(q)`), as the per-quote
/// backtest makes it for every quote: a no-signal quote, the common case.
fn per_quote(c: &mut Criterion) {
    use btcbot::rules::api::QuoteView;
    use std::sync::Arc;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/examples/ema-cross");
    let rules = match RuleSet::build(&dir) {
        Ok(r) => r,
        Err(e) => panic!("ema-cross rules do not build: {e}"),
    };
    let strategy = rules.script(btcbot::rules::Stage::Strategy);
    let view = QuoteView {
        symbol: "BTCTRY".into(),
        ts_ms: 1_767_225_600_000,
        bid: d("3500000"),
        ask: d("3500010"),
        bid_qty: d("0.5"),
        ask_qty: d("0.5"),
        mid: d("3500005"),
        held: Decimal::ZERO,
        pending: false,
        emas: Arc::new(vec![
            (20, d("3500100"), d("3500110"), 500),
            (80, d("3500000"), d("3499990"), 500),
        ]),
        params: strategy.params.clone(),
    };
    let mut state = rhai::Dynamic::from_map(rhai::Map::new());
    c.bench_function("per_quote/on_quote_ema_cross", |b| {
        b.iter(|| {
            btcbot::rules::sandbox::call(
                &rules.engine,
                &strategy.ast,
                &strategy.source,
                "on_quote",
                &mut state,
                vec![rhai::Dynamic::from(view.clone())],
                std::time::Duration::from_millis(100),
            )
        })
    });
}

fn replay_decode(c: &mut Criterion) {
    use btcbot::exchange::replay::{compact_dataset, open_dataset};
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/replay/sample");
    let tmp = tempfile::tempdir().unwrap();
    for name in ["manifest.json", "exchangeinfo.json", "events.csv.gz"] {
        std::fs::copy(sample.join(name), tmp.path().join(name)).unwrap();
    }
    let ds = open_dataset(tmp.path()).unwrap();
    compact_dataset(&ds).unwrap();
    let ds = open_dataset(tmp.path()).unwrap();
    let count =
        |events: btcbot::exchange::replay::EventStream| events.filter(Result::is_ok).count();
    assert_eq!(count(ds.events().unwrap()), 20_000);
    c.bench_function("replay_decode/sample_csv_gz", |b| {
        b.iter(|| count(ds.source_events().unwrap()))
    });
    c.bench_function("replay_decode/sample_events_bin", |b| {
        b.iter(|| count(ds.events().unwrap()))
    });
}

criterion_group!(benches, bench, call_overhead, per_quote, replay_decode);
criterion_main!(benches);
