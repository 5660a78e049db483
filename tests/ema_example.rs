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

#[test]
fn the_ema_example_places_exactly_the_reference_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = rows();
    let mut csv = String::from("ts_ms,symbol,bid,bid_qty,ask,ask_qty\n");
    for (ts, s, bid, ask) in &rows {
        csv.push_str(&format!("{ts},{s},{bid},1.5,{ask},1.5\n"));
    }
    let quotes = tmp.path().join("quotes.csv");
    std::fs::write(&quotes, csv).unwrap();
    let dataset = tmp.path().join("dataset");
    let bin = env!("CARGO_BIN_EXE_btcbot");
    let import = Command::new(bin)
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
