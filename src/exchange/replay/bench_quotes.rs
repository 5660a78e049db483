//! The benchmark's market: N top-of-book quotes for BTCTRY, ETHTRY, AVAXTRY and USDTTRY, a
//! random walk on each symbol's tick grid with 1–3 tick spreads, written as the quotes CSV that
//! `btcbot replay import` reads. Deterministic for a seed.

use super::synth::{START_MIDS, SplitMix64};
use crate::exchange::exchange_info::{bundled_exchange_info, parse_exchange_info};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `quotes` rows to `path`, one every `spacing_ms` of market time from `start_ms`, the
/// symbol picked at random. Returns the last timestamp.
///
/// # Errors
/// When the file cannot be written.
pub fn write_bench_quotes(
    path: &Path,
    quotes: u64,
    seed: u64,
    start_ms: i64,
    spacing_ms: i64,
) -> Result<i64, String> {
    let specs = parse_exchange_info(bundled_exchange_info())?;
    struct Walk {
        name: &'static str,
        tick: Decimal,
        mid_ticks: i64,
    }
    let mut walks = Vec::new();
    for (name, mantissa, scale) in START_MIDS {
        let spec = specs
            .iter()
            .find(|s| s.symbol.as_str() == name)
            .ok_or_else(|| format!("bundled exchangeinfo lacks {name}"))?;
        let mid = Decimal::new(mantissa, scale);
        walks.push(Walk {
            name,
            tick: spec.tick_size,
            mid_ticks: (mid / spec.tick_size).trunc().to_i64().unwrap_or(1),
        });
    }
    let fail = |e: std::io::Error| format!("{}: cannot write: {e}", path.display());
    let file = std::fs::File::create(path).map_err(fail)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "ts_ms,symbol,bid,bid_qty,ask,ask_qty").map_err(fail)?;
    let mut rng = SplitMix64(seed);
    let mut ts = start_ms;
    let n = walks.len() as u64;
    for i in 0..quotes {
        let k = usize::try_from(rng.below(n)).unwrap_or(0);
        let walk = &mut walks[k];
        // ±1 tick, never below 10 ticks.
        walk.mid_ticks = (walk.mid_ticks + rng.between(-1, 1)).max(10);
        let spread = rng.between(1, 3);
        let bid = Decimal::from(walk.mid_ticks) * walk.tick;
        let ask = Decimal::from(walk.mid_ticks + spread) * walk.tick;
        let bid_qty = Decimal::new(rng.between(1, 5000), 3);
        let ask_qty = Decimal::new(rng.between(1, 5000), 3);
        writeln!(w, "{ts},{},{bid},{bid_qty},{ask},{ask_qty}", walk.name).map_err(fail)?;
        if i + 1 < quotes {
            ts += spacing_ms;
        }
    }
    w.flush().map_err(fail)?;
    Ok(ts)
}
