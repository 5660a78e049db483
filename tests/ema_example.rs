//! The EMA-cross example (configs/examples/ema-cross, `cycle.evaluate: per_quote`) on a quotes
//! CSV written here places exactly the orders a plain Rust loop over the same rows computes.

mod common;

use btcbot::domain::Side;
use btcbot::store::Store;
use common::{bundled_specs, repo_root, sym};
use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use std::collections::BTreeMap;
use std::process::Command;

/// (ts, symbol, bid, ask) rows: two symbols swinging in waves so the EMAs cross many times.
fn rows() -> Vec<(i64, &'static str, Decimal, Decimal)> {
    let mut out = Vec::new();
    let (mut btc, mut eth): (i64, i64) = (3_500_000, 125_000);
    for i in 0..6000i64 {
        let ts = 1_767_225_600_000 + i * 100;
        // A triangle wave with a period of 400 quotes per symbol, plus a small wiggle.
        let up = (i / 400) % 2 == 0;
        let step = if up { 1 } else { -1 } * if i % 7 == 0 { -1 } else { 1 };
        if i % 2 == 0 {
            btc += 40 * step;
            out.push((ts, "BTCTRY", Decimal::from(btc), Decimal::from(btc + 10)));
        } else {
            eth += 3 * step;
            out.push((ts, "ETHTRY", Decimal::from(eth), Decimal::from(eth + 1)));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Placed {
    symbol: String,
    side: Side,
    price: Decimal,
    qty: Decimal,
}

/// The strategy as a straightforward loop.
fn reference(rows: &[(i64, &str, Decimal, Decimal)]) -> Vec<Placed> {
    let specs = bundled_specs();
    let ema = |prev: Option<Decimal>, mid: Decimal, n: i64| match prev {
        Some(p) => p + Decimal::TWO / Decimal::from(n + 1) * (mid - p),
        None => mid,
    };
    // symbol → (fast, slow, seen, held)
    type Emas = (Option<Decimal>, Option<Decimal>, i64, Decimal);
    let mut state: BTreeMap<&str, Emas> = BTreeMap::new();
    let mut placed = Vec::new();
    for (_, symbol, bid, ask) in rows {
        let mid = (*bid + *ask) / Decimal::TWO;
        let s = state
            .entry(symbol)
            .or_insert((None, None, 0, Decimal::ZERO));
        let (pf, ps) = (s.0.unwrap_or(mid), s.1.unwrap_or(mid));
        let (f, sl) = (ema(s.0, mid, 20), ema(s.1, mid, 80));
        s.0 = Some(f);
        s.1 = Some(sl);
        s.2 += 1;
        if s.2 < 80 {
            continue;
        }
        let scale = specs[&sym(symbol)].qty_scale;
        if pf <= ps && f > sl {
            if s.3.is_zero() {
                let qty = (Decimal::from(1000) / *ask)
                    .round_dp_with_strategy(scale, RoundingStrategy::ToZero)
                    .normalize();
                // Marketable at the ask: filled in full at once.
                s.3 = qty;
                placed.push(Placed {
                    symbol: symbol.to_string(),
                    side: Side::Buy,
                    price: *ask,
                    qty,
                });
            }
        } else if pf >= ps && f < sl && s.3 > Decimal::ZERO {
            placed.push(Placed {
                symbol: symbol.to_string(),
                side: Side::Sell,
                price: *bid,
                qty: s.3,
            });
            s.3 = Decimal::ZERO;
        }
    }
    placed
}

/// The rows written as a quotes CSV and imported as a dataset in `dir`.
fn import_rows(
    dir: &std::path::Path,
    rows: &[(i64, &str, Decimal, Decimal)],
) -> std::path::PathBuf {
    let mut csv = String::from("ts_ms,symbol,bid,bid_qty,ask,ask_qty\n");
    for (ts, s, bid, ask) in rows {
        csv.push_str(&format!("{ts},{s},{bid},1.5,{ask},1.5\n"));
    }
    let quotes = dir.join("quotes.csv");
    std::fs::write(&quotes, csv).unwrap();
    let dataset = dir.join("dataset");
    let import = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["replay", "import", "--quotes"])
        .arg(&quotes)
        .arg("--out")
        .arg(&dataset)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    dataset
}

#[test]
fn the_ema_example_places_exactly_the_reference_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = rows();
    let dataset = import_rows(tmp.path(), &rows);
    let bin = env!("CARGO_BIN_EXE_btcbot");
    let db = tmp.path().join("ema.db");
    let run = Command::new(bin)
        .args(["backtest", "--config"])
        .arg(repo_root().join("configs/examples/ema-cross"))
        .arg("--dataset")
        .arg(&dataset)
        .arg("--out")
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("per quote: 6000 quotes"), "{stdout}");

    let expected = reference(&rows);
    assert!(
        expected.len() >= 20,
        "the waves should cross often: {}",
        expected.len()
    );
    let store = Store::open_read_only(&db).unwrap();
    let got: Vec<Placed> = store
        .orders()
        .unwrap()
        .into_iter()
        .map(|o| Placed {
            symbol: o.symbol.as_str().to_string(),
            side: o.side,
            price: o.price.value(),
            qty: o.qty.value(),
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "order count");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "order {i}");
    }
    // Every order filled at its limit, in full: the ledger is flat or long exactly what the
    // reference holds.
    let fills = store.fills().unwrap();
    assert_eq!(fills.len(), expected.len());
    assert!(
        fills.iter().all(|f| f.fee.is_zero()),
        "the example runs without fees"
    );
}

/// The EMA example with `max_order_notional` at `limit`, its paths made absolute, without the
/// example's rule tests (which hold the example's own limit).
fn example_with_limit(
    dir: &std::path::Path,
    dataset: &std::path::Path,
    limit: &str,
    symbols: &str,
) -> std::path::PathBuf {
    let example = repo_root().join("configs/examples/ema-cross");
    let read = |name: &str| std::fs::read_to_string(example.join(name)).unwrap();
    let out = dir.join(format!("ema-{limit}-{}", symbols.len()));
    std::fs::create_dir_all(&out).unwrap();
    let bot = read("bot.yaml")
        .replace(
            "dataset: ../../../data/replay/sample",
            &format!("dataset: {}", dataset.display()),
        )
        .replace(
            "symbols: [BTCTRY, ETHTRY, AVAXTRY, USDTTRY]",
            &format!("symbols: [{symbols}]"),
        );
    let rules = read("rules.yaml")
        .replace(
            "dir: rules",
            &format!("dir: {}", example.join("rules").display()),
        )
        .replace("tests: tests", "tests: no-rule-tests");
    let risk = read("risk.yaml").replace(
        "max_order_notional: 5000",
        &format!("max_order_notional: {limit}"),
    );
    assert!(risk.contains(limit), "risk.yaml changed shape");
    for (name, text) in [
        ("bot.yaml", bot),
        ("rules.yaml", rules),
        ("risk.yaml", risk),
        ("strategy.yaml", read("strategy.yaml")),
    ] {
        std::fs::write(out.join(name), text).unwrap();
    }
    out
}

/// `btcbot rules diff --fail-on loosen` of `config` against `candidate`, with `more` flags.
fn run_diff(
    config: &std::path::Path,
    candidate: &std::path::Path,
    dataset: &std::path::Path,
    more: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["rules", "diff", "--fail-on", "loosen"])
        .args(more)
        .arg("--config")
        .arg(config)
        .arg("--candidate")
        .arg(candidate)
        .arg("--dataset")
        .arg(dataset)
        .output()
        .unwrap()
}

/// The JSON diff and its exit status.
fn rules_diff(
    config: &std::path::Path,
    candidate: &std::path::Path,
    dataset: &std::path::Path,
) -> (Option<i32>, serde_json::Value) {
    let out = run_diff(config, candidate, dataset, &["--format", "json"]);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

/// A diff of a pair it must refuse: its exit status is 2; its stderr.
fn refused_diff(
    config: &std::path::Path,
    candidate: &std::path::Path,
    dataset: &std::path::Path,
) -> String {
    let out = run_diff(config, candidate, dataset, &[]);
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn rules_diff_of_two_per_quote_configs_compares_them_quote_by_quote() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = rows();
    let dataset = import_rows(tmp.path(), &rows);
    let buys = reference(&rows)
        .iter()
        .filter(|p| p.side == Side::Buy)
        .count();
    let placed = reference(&rows).len();
    assert!(buys >= 10, "{buys}");
    const ALL: &str = "BTCTRY, ETHTRY, AVAXTRY, USDTTRY";
    let example = example_with_limit(tmp.path(), &dataset, "5000", ALL);
    // Every buy is ~1,000 TRY: under 900 TRY the candidate rejects each one at its quote.
    let tight = example_with_limit(tmp.path(), &dataset, "900", ALL);

    let (code, d) = rules_diff(&example, &tight, &dataset);
    assert_eq!(code, Some(0), "tightening does not loosen: {d}");
    assert_eq!(d["evaluate"], "per_quote");
    // Beside the base, on its very quotes and positions, the candidate rejects every one of
    // its orders (each ~1,000 TRY: the buys, and the sells of what they bought).
    assert!(d["same_inputs_unavailable"].is_null(), "{d}");
    assert_eq!(d["same_inputs"]["cycles"], placed, "{d}");
    assert_eq!(
        d["same_inputs"]["tightened"],
        serde_json::json!({ "MAX_ORDER_NOTIONAL": placed }),
        "{d}"
    );
    assert_eq!(d["same_inputs"]["loosened"], serde_json::json!({}), "{d}");
    // Trading on its own the candidate never holds, so it never sells: only the buys differ.
    assert_eq!(d["tightened"]["MAX_ORDER_NOTIONAL"], buys, "{d}");
    assert_eq!(d["loosened"], serde_json::json!({}), "{d}");
    assert_eq!(d["orders"]["removed"], placed, "{d}");
    assert_eq!(d["orders"]["added"], 0, "{d}");
    assert_eq!(d["loosens"], false);

    // The other way round the candidate accepts what the base rejected: --fail-on loosen fails.
    let (code, d) = rules_diff(&tight, &example, &dataset);
    assert_eq!(code, Some(1), "{d}");
    assert_eq!(
        d["same_inputs"]["loosened"],
        serde_json::json!({ "MAX_ORDER_NOTIONAL": buys }),
        "on the tight base's quotes the candidate accepts each buy it refused: {d}"
    );
    assert_eq!(d["loosened"]["MAX_ORDER_NOTIONAL"], buys, "{d}");
    // The loose run sells what it bought; the tight base, never holding, judged no sell.
    assert_eq!(
        d["intents"]["only_candidate_accepted"],
        placed - buys,
        "{d}"
    );
    assert_eq!(d["loosens"], true);

    // A base asking for other EMAs than the candidate gives the candidate's strategy no EMAs
    // to read on the base's quotes: no comparison on the same inputs, and the gate falls back
    // to the two replays, failing closed on what only the candidate accepted.
    let variant = |from: &std::path::Path, name: &str, edits: &[(&str, &str)]| {
        let dir = tmp.path().join(name);
        common::copy_dir(from, &dir);
        let mut text = std::fs::read_to_string(dir.join("strategy.yaml")).unwrap();
        for (a, b) in edits {
            assert!(text.contains(a), "strategy.yaml has no {a:?}");
            text = text.replace(a, b);
        }
        std::fs::write(dir.join("strategy.yaml"), text).unwrap();
        dir
    };
    let more_emas = ("ema_periods: [20, 80]", "ema_periods: [20, 80, 40]");
    let other_emas = variant(&tight, "tight-other-emas", &[more_emas]);
    let (code, d) = rules_diff(&other_emas, &example, &dataset);
    assert_eq!(code, Some(1), "{d}");
    assert!(d["same_inputs"].is_null(), "{d}");
    let why = d["same_inputs_unavailable"].as_str().unwrap_or_default();
    assert!(
        why.contains("ema_periods [20, 80] differ from the base's [20, 80, 40]"),
        "{d}"
    );
    assert_eq!(d["loosened"]["MAX_ORDER_NOTIONAL"], buys, "{d}");

    // A candidate that trades on other quotes (a faster slow EMA) is judged on the base's
    // quotes where only it acts too, and the base run stays what it is alone: the same
    // report as beside an identical candidate.
    let base = variant(&example, "base-40", &[more_emas]);
    let faster = variant(&example, "slow-40", &[more_emas, ("slow: 80", "slow: 40")]);
    let (_, alone) = rules_diff(&base, &base, &dataset);
    let (_, beside) = rules_diff(&base, &faster, &dataset);
    assert_eq!(alone["same_inputs"]["cycles"], placed, "{alone}");
    assert_eq!(beside["base"], alone["base"], "{beside}");
    assert_eq!(
        beside["intents"]["base"], alone["intents"]["base"],
        "{beside}"
    );
    let compared = beside["same_inputs"]["cycles"].as_u64().unwrap_or_default();
    assert!(compared > placed as u64, "{beside}");
    assert!(beside["same_inputs_unavailable"].is_null(), "{beside}");

    // Per-quote runs over other symbols number their quotes differently: refused, not compared
    // (compared, no intent would line up and a loosening would pass unseen).
    let one_symbol = example_with_limit(tmp.path(), &dataset, "5000", "BTCTRY");
    let err = refused_diff(&tight, &one_symbol, &dataset);
    assert!(err.contains("bot.yaml symbols must be the same"), "{err}");

    // A per-quote config against a cycle-level one is refused, not compared.
    let err = refused_diff(&example, &repo_root().join("configs/default"), &dataset);
    assert!(
        err.contains("evaluates per_quote") && err.contains("evaluates per_cycle"),
        "{err}"
    );
}
