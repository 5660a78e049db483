//! A deterministic synthetic dataset generator (native layout).
//!
//! The output depends only on [`SynthOptions`]: the PRNG is a hand-written splitmix64 and all
//! arithmetic is integer or `Decimal`, so crate upgrades cannot change the walk. Each symbol's
//! mid moves on its tick grid in steps of about 0–3 bps (at least one tick), plus a drift of up
//! to 2 bps per step that switches now and then, plus an occasional 30–80 bps jump; once the mid
//! has wandered more than 1.5 % from its start the drift turns back towards it. That is lively
//! enough for a mean-reversion strategy with a 50 bps band to get signals within a few hundred
//! events.

use crate::domain::{Side, Symbol, SymbolSpec};
use crate::exchange::exchange_info::{bundled_exchange_info, parse_exchange_info};
use flate2::Compression;
use flate2::write::GzEncoder;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// Symbols from the bundled exchange info (BTCTRY, ETHTRY, AVAXTRY, USDTTRY).
    pub symbols: Vec<Symbol>,
    /// Total number of events (quotes + trades), at least 1.
    pub events: u64,
    pub seed: u64,
    /// Timestamp of the first event (ms since the epoch).
    pub start_ms: i64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    pub symbols: Vec<Symbol>,
    pub events: u64,
    pub quotes: u64,
    pub trades: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `manifest.json`, `exchangeinfo.json`, `events.csv.gz`.
    pub files: Vec<PathBuf>,
}

/// Starting mids in TRY.
pub(super) const START_MIDS: [(&str, i64, u32); 4] = [
    ("BTCTRY", 3_500_000, 0),
    ("ETHTRY", 125_000, 0),
    ("AVAXTRY", 12_500, 1),
    ("USDTTRY", 425, 1),
];

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `lo..=hi`.
    pub(super) fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo).unwrap_or(0) + 1;
        lo + i64::try_from(self.below(span)).unwrap_or(0)
    }
}

struct Walk {
    spec: SymbolSpec,
    mid_ticks: i64,
    anchor_ticks: i64,
    /// About 1 bps of the starting mid, in ticks (at least 1).
    unit_ticks: i64,
    /// Current drift in units per step, -2..=2.
    drift: i64,
}

impl Walk {
    fn price(&self, ticks: i64) -> Decimal {
        (Decimal::from(ticks) * self.spec.tick_size).normalize()
    }
    fn deviation_bps(&self) -> i64 {
        (self.mid_ticks - self.anchor_ticks) * 10_000 / self.anchor_ticks.max(1)
    }
    fn step(&mut self, rng: &mut SplitMix64) {
        let dev = self.deviation_bps();
        if dev > 150 {
            self.drift = -rng.between(1, 2);
        } else if dev < -150 {
            self.drift = rng.between(1, 2);
        } else if rng.below(30) == 0 {
            self.drift = rng.between(-2, 2);
        }
        let mut units = rng.between(-3, 3) + self.drift;
        // Now and then a jump of 30–80 bps, which the drift above later walks back.
        if rng.below(40) == 0 {
            let jump = rng.between(30, 80);
            units += if rng.below(2) == 0 { jump } else { -jump };
        }
        let floor = (self.anchor_ticks / 2).max(4);
        self.mid_ticks = (self.mid_ticks + units * self.unit_ticks).max(floor);
    }
    /// A quantity worth 1,000–50,000 TRY at the mid, truncated to the qty scale (never zero).
    fn size(&self, rng: &mut SplitMix64) -> Decimal {
        let notional = Decimal::from(1_000 + rng.below(49_001));
        let mid = self.price(self.mid_ticks);
        let q = (notional / mid)
            .round_dp_with_strategy(self.spec.qty_scale, RoundingStrategy::ToZero)
            .normalize();
        if q.is_zero() {
            Decimal::new(1, self.spec.qty_scale)
        } else {
            q
        }
    }
}

/// Writes `manifest.json`, `exchangeinfo.json` and `events.csv.gz` into `out` (created if
/// missing; existing files are replaced atomically).
///
/// # Errors
/// Unknown or duplicate symbols, zero events, or an IO problem.
pub fn write_synth_dataset(opts: &SynthOptions, out: &Path) -> Result<SynthSummary, String> {
    if opts.events == 0 {
        return Err("synth: events must be at least 1".to_string());
    }
    // Events are at most 500 ms apart: the last timestamp must fit.
    i64::try_from(opts.events)
        .ok()
        .and_then(|n| n.checked_mul(500))
        .and_then(|span| opts.start_ms.checked_add(span))
        .ok_or_else(|| "synth: start_ms + events x 500 ms overflows".to_string())?;
    let mut symbols = opts.symbols.clone();
    symbols.sort();
    let before = symbols.len();
    symbols.dedup();
    if symbols.is_empty() || symbols.len() != before {
        return Err("synth: symbols must be a non-empty list without duplicates".to_string());
    }
    let specs = parse_exchange_info(bundled_exchange_info())?;
    let mut walks = Vec::new();
    for sym in &symbols {
        let known = || {
            let names: Vec<&str> = START_MIDS.iter().map(|m| m.0).collect();
            format!("synth: unknown symbol {sym}; known: {}", names.join(", "))
        };
        let spec = specs
            .iter()
            .find(|s| &s.symbol == sym)
            .cloned()
            .ok_or_else(known)?;
        let (_, mantissa, scale) = START_MIDS
            .iter()
            .find(|m| m.0 == sym.as_str())
            .ok_or_else(known)?;
        let mid = Decimal::new(*mantissa, *scale);
        let mid_ticks = (mid / spec.tick_size)
            .trunc()
            .to_i64()
            .ok_or_else(|| format!("synth: {sym}: starting mid does not fit the tick grid"))?;
        walks.push(Walk {
            unit_ticks: (mid_ticks / 10_000).max(1),
            mid_ticks,
            anchor_ticks: mid_ticks,
            drift: 0,
            spec,
        });
    }

    std::fs::create_dir_all(out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
    let events_path = out.join("events.csv.gz");
    let (quotes, trades, end_ms) = write_atomic(&events_path, |w| {
        // Buffer in front of the encoder: it is slow with many small writes.
        let gz = GzEncoder::new(w, Compression::fast());
        let mut buffered = BufWriter::with_capacity(256 * 1024, gz);
        let counts = write_events(&mut buffered, opts, &mut walks)?;
        buffered
            .into_inner()
            .map_err(|e| e.into_error())?
            .finish()?;
        Ok(counts)
    })?;

    let info_path = out.join("exchangeinfo.json");
    let info = filtered_exchange_info(&symbols)?;
    write_atomic(&info_path, |w| w.write_all(info.as_bytes()))?;

    let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
    let manifest = json!({
        "format": super::MANIFEST_FORMAT,
        "symbols": names,
        "start_ms": opts.start_ms,
        "end_ms": end_ms,
        "source": format!(
            "synthetic (generator v2, splitmix64): btcbot replay synth --symbols {} \
             --events {} --seed {} --start-ms {}",
            names.join(","), opts.events, opts.seed, opts.start_ms
        ),
        "events": ["events.csv.gz"],
    });
    let manifest_path = out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())? + "\n";
    write_atomic(&manifest_path, |w| w.write_all(text.as_bytes()))?;

    Ok(SynthSummary {
        symbols,
        events: opts.events,
        quotes,
        trades,
        start_ms: opts.start_ms,
        end_ms,
        files: vec![manifest_path, info_path, events_path],
    })
}

/// The event rows; returns `(quotes, trades, last ts)`.
fn write_events(
    w: &mut impl Write,
    opts: &SynthOptions,
    walks: &mut [Walk],
) -> std::io::Result<(u64, u64, i64)> {
    let mut rng = SplitMix64(opts.seed);
    let n = walks.len() as u64;
    let (mut quotes, mut trades) = (0u64, 0u64);
    let mut ts = opts.start_ms;
    writeln!(
        w,
        "ts_ms,symbol,kind,bid,bid_qty,ask,ask_qty,price,qty,side"
    )?;
    for i in 0..opts.events {
        if i > 0 {
            ts += i64::try_from(50 + rng.below(451)).unwrap_or(50);
        }
        // Every symbol opens with a quote; afterwards symbols are picked at random.
        let pick = if i < n { i } else { rng.below(n) };
        let Some(walk) = walks.get_mut(usize::try_from(pick).unwrap_or(0)) else {
            continue;
        };
        let is_trade = i >= n && rng.below(6) == 0;
        if !is_trade && i >= n {
            walk.step(&mut rng);
        }
        let sym = walk.spec.symbol.as_str();
        if is_trade {
            let spread = rng.between(1, 3);
            let bid = walk.mid_ticks - spread / 2;
            let (side, ticks) = if rng.below(2) == 0 {
                (Side::Buy, bid + spread)
            } else {
                (Side::Sell, bid)
            };
            let qty = walk.size(&mut rng);
            writeln!(w, "{ts},{sym},T,,,,,{},{qty},{side}", walk.price(ticks))?;
            trades += 1;
        } else {
            let spread = rng.between(1, 3);
            let bid = walk.mid_ticks - spread / 2;
            let ask = bid + spread;
            let bid_qty = walk.size(&mut rng);
            let ask_qty = walk.size(&mut rng);
            writeln!(
                w,
                "{ts},{sym},Q,{},{bid_qty},{},{ask_qty},,,",
                walk.price(bid),
                walk.price(ask)
            )?;
            quotes += 1;
        }
    }
    Ok((quotes, trades, ts))
}

/// The bundled exchangeinfo body restricted to `symbols`.
fn filtered_exchange_info(symbols: &[Symbol]) -> Result<String, String> {
    filter_exchange_info(bundled_exchange_info(), "bundled exchangeinfo", symbols)
}

/// The exchangeinfo payload `text` with only `symbols` left in `data.symbols`.
pub(crate) fn filter_exchange_info(
    text: &str,
    what: &str,
    symbols: &[Symbol],
) -> Result<String, String> {
    let mut root: Value = serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))?;
    if let Some(list) = root
        .get_mut("data")
        .and_then(|d| d.get_mut("symbols"))
        .and_then(Value::as_array_mut)
    {
        list.retain(|s| {
            s.get("name")
                .and_then(Value::as_str)
                .and_then(|n| Symbol::new(n).ok())
                .is_some_and(|n| symbols.contains(&n))
        });
    }
    serde_json::to_string_pretty(&root)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// Writes `path` through a `.tmp` sibling and renames it into place.
pub(crate) fn write_atomic<T>(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>,
) -> Result<T, String> {
    let tmp = path.with_extension("tmp");
    let fail = |e: std::io::Error| format!("{}: cannot write: {e}", path.display());
    let file = File::create(&tmp).map_err(fail)?;
    let mut w = BufWriter::new(file);
    let value = body(&mut w).map_err(fail)?;
    w.flush().map_err(fail)?;
    w.get_ref().sync_all().map_err(fail)?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(fail)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::super::{EventKind, open_dataset};
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }
    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }
    fn synth_opts(events: u64, seed: u64) -> SynthOptions {
        SynthOptions {
            symbols: ["USDTTRY", "BTCTRY", "ETHTRY", "AVAXTRY"].map(sym).to_vec(),
            events,
            seed,
            start_ms: 1_767_225_600_000,
        }
    }

    #[test]
    fn synth_is_byte_identical_for_the_same_options() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        let sa = write_synth_dataset(&synth_opts(3_000, 42), &a).unwrap();
        let sb = write_synth_dataset(&synth_opts(3_000, 42), &b).unwrap();
        write_synth_dataset(&synth_opts(3_000, 43), &c).unwrap();
        assert_eq!(sa.events, 3_000);
        assert_eq!(sa.quotes + sa.trades, 3_000);
        assert!(
            sa.trades * 4 > sa.quotes / 2 && sa.trades * 4 < sa.quotes,
            "{sa:?}"
        );
        for f in ["manifest.json", "exchangeinfo.json", "events.csv.gz"] {
            let (x, y) = (
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
            );
            assert!(x == y, "{f} differs between two runs");
        }
        assert_ne!(
            std::fs::read(a.join("events.csv.gz")).unwrap(),
            std::fs::read(c.join("events.csv.gz")).unwrap()
        );
        assert_eq!(
            sa,
            SynthSummary {
                files: sa.files.clone(),
                ..sb
            }
        );

        // It reads back as a valid dataset whose prices sit on each symbol's grid.
        let ds = open_dataset(&a).unwrap();
        assert_eq!(ds.manifest().end_ms, Some(sa.end_ms));
        assert!(
            ds.manifest().source.contains("--seed 42"),
            "{}",
            ds.manifest().source
        );
        let specs = ds.specs();
        assert_eq!(specs.len(), 4);
        let mut n = 0;
        for ev in ds.events().unwrap() {
            let ev = ev.unwrap();
            let spec = specs.iter().find(|s| s.symbol == ev.symbol).unwrap();
            let (p, q) = match ev.kind {
                EventKind::Quote { bid, bid_qty, .. } => (bid, bid_qty),
                EventKind::Trade { price, qty, .. } => (price, qty),
            };
            assert_eq!(spec.quantize_price(p.value(), false), p.value());
            assert_eq!(spec.quantize_qty(q.value()), q.value());
            assert!(q.value() * p.value() >= d("500"), "{ev:?}");
            n += 1;
        }
        assert_eq!(n, 3_000);
    }

    #[test]
    fn synth_rejects_unknown_symbols() {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = synth_opts(10, 1);
        o.symbols.push(sym("DOGETRY"));
        assert!(
            write_synth_dataset(&o, tmp.path())
                .unwrap_err()
                .contains("DOGETRY")
        );
        o.symbols = vec![sym("BTCTRY"), sym("BTCTRY")];
        assert!(write_synth_dataset(&o, tmp.path()).is_err());
        let mut o = synth_opts(10, 1);
        o.start_ms = i64::MAX - 10;
        assert!(
            write_synth_dataset(&o, tmp.path())
                .unwrap_err()
                .contains("overflows")
        );
        o.start_ms = 0;
        o.events = 0;
        assert!(write_synth_dataset(&o, tmp.path()).is_err());
    }

    /// A mean-reversion strategy with a 50 bps band should see signals early: some symbol's mid
    /// strays 50 bps from the mean of its last 20 quotes within the first 400 events.
    #[test]
    fn synth_walk_is_lively() {
        let tmp = tempfile::tempdir().unwrap();
        for seed in [1, 7, 42] {
            write_synth_dataset(&synth_opts(400, seed), tmp.path()).unwrap();
            let ds = open_dataset(tmp.path()).unwrap();
            let mut hist: std::collections::BTreeMap<Symbol, Vec<Decimal>> = Default::default();
            let mut max_bps = Decimal::ZERO;
            for ev in ds.events().unwrap() {
                let ev = ev.unwrap();
                if let EventKind::Quote { bid, ask, .. } = ev.kind {
                    let mid = (bid.value() + ask.value()) / Decimal::TWO;
                    let h = hist.entry(ev.symbol).or_default();
                    if h.len() >= 20 {
                        let window = &h[h.len() - 20..];
                        let mean = window.iter().sum::<Decimal>() / Decimal::from(20);
                        max_bps = max_bps.max(((mid - mean) / mean * d("10000")).abs());
                    }
                    h.push(mid);
                }
            }
            assert!(
                max_bps >= d("50"),
                "seed {seed}: max deviation {max_bps} bps"
            );
        }
    }
}
