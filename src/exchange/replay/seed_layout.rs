//! The Python bot's dataset layout: `orderbook/SYMBOL.csv` (`ts,best_bid,best_ask`),
//! `candles/SYMBOL.csv` (`ts,open,high,low,close,volume`) and optional `ticker/SYMBOL.csv`
//! (`ts,last,high,low,volume[,quote_volume|quoteVolume]`).
//!
//! Each file is streamed on its own and the files are merged by time with a k-way merge. Ties
//! are broken by symbol, then by file kind (orderbook, candles, ticker), so the order is
//! deterministic. Mapping: orderbook rows → quotes with zero (unknown) sizes; candle rows →
//! trades at `close` with `qty = volume`; ticker rows → trades at `last` with zero qty.

use super::dataset::{DatasetError, EventKind, ReplayEvent};
use super::reader::{
    CsvReader, check_decimal, check_not_crossed, check_order, field, next_record, open_csv,
    parse_price, parse_qty, require_column,
};
use crate::domain::{Qty, Symbol};
use csv::StringRecord;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

/// The kind of a seed file; the declaration order is the tie-break order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SeedKind {
    Orderbook,
    Candles,
    Ticker,
}

impl SeedKind {
    fn folder(self) -> &'static str {
        match self {
            SeedKind::Orderbook => "orderbook",
            SeedKind::Candles => "candles",
            SeedKind::Ticker => "ticker",
        }
    }
}

/// One per-symbol CSV of the seed layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeedFile {
    pub(crate) path: PathBuf,
    pub(crate) symbol: Symbol,
    pub(crate) kind: SeedKind,
}

/// Lists the layout's files, sorted by (symbol, kind). `orderbook/` is required (it is the only
/// source of quotes); `candles/` and `ticker/` are optional. Files are `SYMBOL.csv` or
/// `SYMBOL.csv.gz`; anything else in the folders is ignored.
pub(crate) fn discover_seed_files(dir: &Path) -> Result<Vec<SeedFile>, DatasetError> {
    let orderbook = dir.join("orderbook");
    if !orderbook.is_dir() {
        return Err(DatasetError::new(
            dir,
            "seed layout: missing orderbook/ folder (it is the only source of quotes)",
        ));
    }
    let mut files = Vec::new();
    for kind in [SeedKind::Orderbook, SeedKind::Candles, SeedKind::Ticker] {
        let folder = dir.join(kind.folder());
        if !folder.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| DatasetError::new(&folder, format!("cannot list: {e}")))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| DatasetError::new(&folder, format!("cannot list: {e}")))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name
                .strip_suffix(".csv.gz")
                .or_else(|| name.strip_suffix(".csv"))
            else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let symbol = Symbol::new(stem)
                .map_err(|e| DatasetError::new(&path, format!("file name is not a symbol: {e}")))?;
            if files
                .iter()
                .any(|f: &SeedFile| f.kind == kind && f.symbol == symbol)
            {
                return Err(DatasetError::new(
                    &path,
                    format!("a second {} file for {symbol}", kind.folder()),
                ));
            }
            files.push(SeedFile { path, symbol, kind });
        }
    }
    if !files.iter().any(|f| f.kind == SeedKind::Orderbook) {
        return Err(DatasetError::new(
            &orderbook,
            "seed layout: no SYMBOL.csv files in orderbook/",
        ));
    }
    files.sort_by(|a, b| (&a.symbol, a.kind).cmp(&(&b.symbol, b.kind)));
    Ok(files)
}

/// A streaming reader over one seed file.
struct SeedSource {
    file: SeedFile,
    reader: CsvReader,
    record: StringRecord,
    /// Column indices; meaning depends on the kind (see `open`).
    cols: Vec<usize>,
    last_ts: Option<i64>,
}

impl SeedSource {
    fn open(file: &SeedFile) -> Result<Self, DatasetError> {
        let (reader, headers) = open_csv(&file.path)?;
        let names: &[&str] = match file.kind {
            SeedKind::Orderbook => &["ts", "best_bid", "best_ask"],
            SeedKind::Candles => &["ts", "open", "high", "low", "close", "volume"],
            SeedKind::Ticker => &["ts", "last", "high", "low", "volume"],
        };
        let cols = names
            .iter()
            .map(|n| require_column(&file.path, &headers, n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            file: file.clone(),
            reader,
            record: StringRecord::new(),
            cols,
            last_ts: None,
        })
    }

    fn next_event(&mut self) -> Result<Option<ReplayEvent>, DatasetError> {
        let Some(line) = next_record(&mut self.reader, &mut self.record, &self.file.path)? else {
            return Ok(None);
        };
        let event = self
            .parse_row()
            .and_then(|ev| check_order(ev.ts_ms, self.last_ts).map(|()| ev))
            .map_err(|m| DatasetError::at(&self.file.path, line, m))?;
        self.last_ts = Some(event.ts_ms);
        Ok(Some(event))
    }

    fn parse_row(&self) -> Result<ReplayEvent, String> {
        let rec = &self.record;
        let c = &self.cols;
        let ts_text = field(rec, c[0], "ts")?;
        let ts_ms = parse_seed_ts(ts_text).map_err(|e| format!("ts: {e}"))?;
        let kind = match self.file.kind {
            SeedKind::Orderbook => {
                let bid = parse_price(field(rec, c[1], "best_bid")?, "best_bid")?;
                let ask = parse_price(field(rec, c[2], "best_ask")?, "best_ask")?;
                check_not_crossed(bid, ask)?;
                EventKind::Quote {
                    bid,
                    bid_qty: Qty::ZERO,
                    ask,
                    ask_qty: Qty::ZERO,
                }
            }
            SeedKind::Candles => {
                for (i, name) in [(1, "open"), (2, "high"), (3, "low")] {
                    check_decimal(field(rec, c[i], name)?, name)?;
                }
                let price = parse_price(field(rec, c[4], "close")?, "close")?;
                let qty = parse_qty(field(rec, c[5], "volume")?, "volume")?;
                EventKind::Trade {
                    price,
                    qty,
                    side: None,
                }
            }
            SeedKind::Ticker => {
                let price = parse_price(field(rec, c[1], "last")?, "last")?;
                for (i, name) in [(2, "high"), (3, "low"), (4, "volume")] {
                    check_decimal(field(rec, c[i], name)?, name)?;
                }
                EventKind::Trade {
                    price,
                    qty: Qty::ZERO,
                    side: None,
                }
            }
        };
        Ok(ReplayEvent {
            ts_ms,
            symbol: self.file.symbol.clone(),
            kind,
        })
    }
}

/// K-way merge of the seed files by (timestamp, symbol, kind). Holds one row per file.
pub(crate) struct SeedMerge {
    sources: Vec<SeedSource>,
    heads: Vec<Option<ReplayEvent>>,
    /// `(ts, source index)`; sources are sorted by (symbol, kind), so the index breaks ties.
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    primed: bool,
    done: bool,
}

impl SeedMerge {
    /// Opens every file and checks its header; rows are read lazily.
    pub(crate) fn open(files: &[SeedFile]) -> Result<Self, DatasetError> {
        let sources = files
            .iter()
            .map(SeedSource::open)
            .collect::<Result<Vec<_>, _>>()?;
        let heads = sources.iter().map(|_| None).collect();
        Ok(Self {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            heads,
            primed: false,
            done: false,
        })
    }

    fn refill(&mut self, idx: usize) -> Result<(), DatasetError> {
        if let Some(source) = self.sources.get_mut(idx)
            && let Some(ev) = source.next_event()?
        {
            self.heap.push(Reverse((ev.ts_ms, idx)));
            if let Some(slot) = self.heads.get_mut(idx) {
                *slot = Some(ev);
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<ReplayEvent>, DatasetError> {
        if !self.primed {
            self.primed = true;
            for idx in 0..self.sources.len() {
                self.refill(idx)?;
            }
        }
        let Some(Reverse((_, idx))) = self.heap.pop() else {
            return Ok(None);
        };
        let event = self.heads.get_mut(idx).and_then(Option::take);
        self.refill(idx)?;
        Ok(event)
    }
}

impl super::dataset::StepReader for SeedMerge {
    fn step_once(&mut self) -> Result<Option<ReplayEvent>, DatasetError> {
        self.step()
    }
    fn done(&mut self) -> &mut bool {
        &mut self.done
    }
}

impl Iterator for SeedMerge {
    type Item = Result<ReplayEvent, DatasetError>;
    fn next(&mut self) -> Option<Self::Item> {
        super::dataset::next_fused(self)
    }
}

/// A seed timestamp in ms since the epoch: unix seconds (10 digits), unix ms (13 digits), or
/// ISO-8601 `YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|±HH:MM|±HHMM]` (no offset = UTC), or a bare date.
pub(crate) fn parse_seed_ts(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t
            .parse()
            .map_err(|_| format!("not a timestamp: {text:?}"))?;
        return match t.len() {
            10 => Ok(n * 1000),
            13 => Ok(n),
            len => Err(format!(
                "unix timestamp {text:?} has {len} digits; expected 10 (seconds) or 13 (milliseconds)"
            )),
        };
    }
    parse_iso8601(t).ok_or_else(|| {
        format!("not a timestamp: {text:?} (expected ISO-8601, unix seconds or unix ms)")
    })
}

fn parse_iso8601(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |s: &[u8]| -> Option<i64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let year = num(b.get(0..4)?)?;
    let month = num(b.get(5..7)?)?;
    let day = num(b.get(8..10)?)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let rest = b.get(10..)?;
    if rest.is_empty() {
        return Some(ms);
    }
    if !matches!(rest.first(), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let rest = rest.get(1..)?;
    let hour = num(rest.get(0..2)?)?;
    if rest.get(2) != Some(&b':') {
        return None;
    }
    let minute = num(rest.get(3..5)?)?;
    let mut i = 5;
    let mut second = 0;
    let mut millis = 0;
    if rest.get(i) == Some(&b':') {
        second = num(rest.get(i + 1..i + 3)?)?;
        i += 3;
        if matches!(rest.get(i), Some(b'.' | b',')) {
            i += 1;
            let start = i;
            while rest.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let frac = rest.get(start..i)?;
            if frac.is_empty() {
                return None;
            }
            let mut digits = [b'0'; 3];
            for (d, s) in digits.iter_mut().zip(frac) {
                *d = *s;
            }
            millis = num(&digits)?;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    let tz = rest.get(i..)?;
    let offset_min = match tz {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ ..] => {
            let (h, m) = match hh {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (num(&[*h1, *h2])?, num(&[*m1, *m2])?),
                [h1, h2] => (num(&[*h1, *h2])?, 0),
                _ => return None,
            };
            let off = h * 60 + m;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    Some(ms - offset_min * 60_000)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::super::dataset::{Layout, open_dataset};
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/replay")
            .join(name)
    }

    #[test]
    fn timestamps_in_all_three_forms() {
        let want = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(parse_seed_ts("1767225600").unwrap(), want);
        assert_eq!(parse_seed_ts("1767225600000").unwrap(), want);
        assert_eq!(parse_seed_ts("2026-01-01T00:00:00Z").unwrap(), want);
        assert_eq!(parse_seed_ts("2026-01-01 00:00:00").unwrap(), want);
        assert_eq!(parse_seed_ts("2026-01-01T03:00:00+03:00").unwrap(), want);
        assert_eq!(
            parse_seed_ts("2026-01-01T00:00:00.250Z").unwrap(),
            want + 250
        );
        assert_eq!(parse_seed_ts("2026-01-01T00:01Z").unwrap(), want + 60_000);
        assert_eq!(parse_seed_ts("2026-01-01").unwrap(), want);
        assert_eq!(parse_seed_ts("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_seed_ts("2024-02-29T12:00:00Z").unwrap(),
            1_709_208_000_000
        );
        for bad in [
            "",
            "17672256",
            "2026-13-01",
            "2026-02-30T00:00Z",
            "yesterday",
            "2026-01-01T25:00Z",
        ] {
            assert!(parse_seed_ts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merges_files_by_time_then_symbol_then_kind() {
        let ds = open_dataset(&fixture("seed_basic")).unwrap();
        assert_eq!(ds.layout(), Layout::Seed);
        let names: Vec<&str> = ds.symbols().iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["BTCTRY", "ETHTRY"]);
        let evs: Vec<ReplayEvent> = ds.events().unwrap().collect::<Result<_, _>>().unwrap();
        let got: Vec<(i64, &str, &str)> = evs
            .iter()
            .map(|e| {
                let k = match &e.kind {
                    EventKind::Quote { .. } => "Q",
                    EventKind::Trade { qty, .. } if qty.value().is_zero() => "ticker",
                    EventKind::Trade { .. } => "candle",
                };
                (e.ts_ms - 1_767_225_600_000, e.symbol.as_str(), k)
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, "BTCTRY", "Q"),
                (0, "BTCTRY", "candle"),
                (0, "ETHTRY", "Q"),
                (0, "ETHTRY", "candle"),
                (30_000, "BTCTRY", "ticker"),
                (60_000, "BTCTRY", "Q"),
                (60_000, "BTCTRY", "candle"),
                (60_000, "ETHTRY", "Q"),
                (90_000, "ETHTRY", "candle"),
                (120_000, "BTCTRY", "Q"),
            ]
        );
        match &evs[1].kind {
            EventKind::Trade { price, qty, .. } => {
                assert_eq!(price.to_string(), "3500020");
                assert_eq!(qty.to_string(), "1.5");
            }
            other => panic!("{other:?}"),
        }
        match &evs[0].kind {
            EventKind::Quote {
                bid_qty, ask_qty, ..
            } => {
                assert!(bid_qty.value().is_zero() && ask_qty.value().is_zero());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seed_errors_name_file_and_line() {
        let ds = open_dataset(&fixture("seed_bad")).unwrap();
        let err = ds.events().unwrap().find_map(Result::err).unwrap();
        assert!(err.path.ends_with("orderbook/BTCTRY.csv"), "{err}");
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.message.contains("ts: not a timestamp"), "{err}");
    }

    #[test]
    fn seed_requires_orderbook() {
        let err = open_dataset(&fixture("seed_no_orderbook")).unwrap_err();
        assert!(err.message.contains("orderbook"), "{err}");
    }
}
