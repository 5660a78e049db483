//! Streaming CSV plumbing shared by both layouts, and the native events reader
//! (`ts_ms,symbol,kind,bid,bid_qty,ask,ask_qty,price,qty,side`).
//!
//! Files are read through a `BufReader`; gzip (detected by its magic bytes, whatever the file is
//! called) through `flate2::read::MultiGzDecoder`. One record buffer is reused, so memory does
//! not grow with the file.

use super::dataset::{DatasetError, EventKind, ReplayEvent};
use crate::domain::{Price, Qty, Side, Symbol, decimal_from_str};
use csv::StringRecord;
use flate2::read::MultiGzDecoder;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

pub(crate) type CsvReader = csv::Reader<Box<dyn Read + Send>>;

/// Opens a plain or gzip CSV file and reads its header row.
pub(crate) fn open_csv(path: &Path) -> Result<(CsvReader, StringRecord), DatasetError> {
    let file =
        File::open(path).map_err(|e| DatasetError::new(path, format!("cannot open: {e}")))?;
    let mut buf = BufReader::with_capacity(64 * 1024, file);
    let head = buf
        .fill_buf()
        .map_err(|e| DatasetError::new(path, format!("cannot read: {e}")))?;
    let is_gzip = head.starts_with(&[0x1f, 0x8b]);
    let source: Box<dyn Read + Send> = if is_gzip {
        Box::new(BufReader::with_capacity(
            64 * 1024,
            MultiGzDecoder::new(buf),
        ))
    } else {
        Box::new(buf)
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(source);
    // Fields are trimmed where they are read (`field`): trimming whole records allocates.
    let mut headers = reader
        .headers()
        .map_err(|e| csv_error(path, &e, 1))?
        .clone();
    headers.trim();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(DatasetError::at(
            path,
            1,
            "missing header row (file is empty)",
        ));
    }
    Ok((reader, headers))
}

/// Index of a header column (case-insensitive), trying each alias in turn.
pub(crate) fn column(headers: &StringRecord, names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| headers.iter().position(|h| h.eq_ignore_ascii_case(n)))
}

/// Index of a required column, or an error naming it at the header line.
pub(crate) fn require_column(
    path: &Path,
    headers: &StringRecord,
    name: &str,
) -> Result<usize, DatasetError> {
    column(headers, &[name])
        .ok_or_else(|| DatasetError::at(path, 1, format!("header: missing column {name:?}")))
}

/// Turns a CSV read error into a dataset error at the best-known line.
pub(crate) fn csv_error(path: &Path, err: &csv::Error, fallback_line: u64) -> DatasetError {
    let line = err.position().map_or(fallback_line, csv::Position::line);
    let message = match err.kind() {
        csv::ErrorKind::Io(e) => format!("read error (truncated or corrupt file?): {e}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_string(),
        _ => err.to_string(),
    };
    DatasetError::at(path, line, message)
}

/// Reads the next record into `rec`; `Ok(None)` at the end of the file, else the record's line.
pub(crate) fn next_record(
    reader: &mut CsvReader,
    rec: &mut StringRecord,
    path: &Path,
) -> Result<Option<u64>, DatasetError> {
    let fallback = reader.position().line() + 1;
    match reader.read_record(rec) {
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(rec.position().map_or(fallback, csv::Position::line))),
        Err(e) => Err(csv_error(path, &e, fallback)),
    }
}

/// The text of column `idx`, or an error when the row is too short.
pub(crate) fn field<'r>(rec: &'r StringRecord, idx: usize, name: &str) -> Result<&'r str, String> {
    rec.get(idx)
        .map(trimmed)
        .ok_or_else(|| format!("{name}: missing column (row has {} fields)", rec.len()))
}

/// `text` without surrounding whitespace; the usual field has none, and saying so from its
/// first and last bytes is cheaper than a trim over millions of fields.
fn trimmed(text: &str) -> &str {
    let untrimmed = |b: u8| b.is_ascii_graphic();
    match text.as_bytes() {
        [] => text,
        [first, .., last] | [first @ last] if untrimmed(*first) && untrimmed(*last) => text,
        _ => text.trim(),
    }
}

pub(crate) fn parse_price(text: &str, name: &str) -> Result<Price, String> {
    let d = decimal_from_str(text).map_err(|e| format!("{name}: {e}"))?;
    Price::new(d).map_err(|e| format!("{name}: {e}"))
}

pub(crate) fn parse_qty(text: &str, name: &str) -> Result<Qty, String> {
    let d = decimal_from_str(text).map_err(|e| format!("{name}: {e}"))?;
    Qty::new(d).map_err(|e| format!("{name}: {e}"))
}

/// A decimal column that must be a number (used only for validation).
pub(crate) fn check_decimal(text: &str, name: &str) -> Result<(), String> {
    decimal_from_str(text)
        .map(|_| ())
        .map_err(|e| format!("{name}: {e}"))
}

/// Errors when `bid > ask` (a locked book, `bid == ask`, is accepted).
pub(crate) fn check_not_crossed(bid: Price, ask: Price) -> Result<(), String> {
    if bid > ask {
        Err(format!("crossed book: bid {bid} > ask {ask}"))
    } else {
        Ok(())
    }
}

/// Errors when a timestamp goes backwards.
pub(crate) fn check_order(ts: i64, last: Option<i64>) -> Result<(), String> {
    match last {
        Some(prev) if ts < prev => Err(format!(
            "timestamp {ts} is before the previous row's {prev} (rows must be time-ordered)"
        )),
        _ => Ok(()),
    }
}

/// Column indices of a native events file.
struct NativeCols {
    ts: usize,
    symbol: usize,
    kind: usize,
    bid: usize,
    bid_qty: usize,
    ask: usize,
    ask_qty: usize,
    price: usize,
    qty: usize,
    side: usize,
}

impl NativeCols {
    fn from_headers(path: &Path, h: &StringRecord) -> Result<Self, DatasetError> {
        Ok(Self {
            ts: require_column(path, h, "ts_ms")?,
            symbol: require_column(path, h, "symbol")?,
            kind: require_column(path, h, "kind")?,
            bid: require_column(path, h, "bid")?,
            bid_qty: require_column(path, h, "bid_qty")?,
            ask: require_column(path, h, "ask")?,
            ask_qty: require_column(path, h, "ask_qty")?,
            price: require_column(path, h, "price")?,
            qty: require_column(path, h, "qty")?,
            side: require_column(path, h, "side")?,
        })
    }
}

struct OpenFile {
    path: PathBuf,
    reader: CsvReader,
    cols: NativeCols,
}

/// Streams the native events files in order, as one time-ordered sequence.
pub(crate) struct NativeReader {
    pending: std::vec::IntoIter<PathBuf>,
    current: Option<OpenFile>,
    record: StringRecord,
    symbols: BTreeSet<Symbol>,
    last_ts: Option<i64>,
    done: bool,
}

impl NativeReader {
    /// Opens the first file right away (so a missing file or bad header is reported here); the
    /// others are opened when reached.
    pub(crate) fn new(
        files: Vec<PathBuf>,
        symbols: BTreeSet<Symbol>,
    ) -> Result<Self, DatasetError> {
        // Check every header up front: a bad later file should fail before a long replay starts.
        for path in &files {
            let (_, headers) = open_csv(path)?;
            NativeCols::from_headers(path, &headers)?;
        }
        Ok(Self {
            pending: files.into_iter(),
            current: None,
            record: StringRecord::new(),
            symbols,
            last_ts: None,
            done: false,
        })
    }

    fn step(&mut self) -> Result<Option<ReplayEvent>, DatasetError> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.pending.next() else {
                    return Ok(None);
                };
                let (reader, headers) = open_csv(&path)?;
                let cols = NativeCols::from_headers(&path, &headers)?;
                self.current = Some(OpenFile { path, reader, cols });
            }
            let Some(file) = self.current.as_mut() else {
                continue;
            };
            match next_record(&mut file.reader, &mut self.record, &file.path)? {
                None => self.current = None,
                Some(line) => {
                    let event = parse_native_row(&self.record, &file.cols, &self.symbols)
                        .and_then(|ev| check_order(ev.ts_ms, self.last_ts).map(|()| ev))
                        .map_err(|m| DatasetError::at(&file.path, line, m))?;
                    self.last_ts = Some(event.ts_ms);
                    return Ok(Some(event));
                }
            }
        }
    }
}

impl super::dataset::StepReader for NativeReader {
    fn step_once(&mut self) -> Result<Option<ReplayEvent>, DatasetError> {
        self.step()
    }
    fn done(&mut self) -> &mut bool {
        &mut self.done
    }
}

impl Iterator for NativeReader {
    type Item = Result<ReplayEvent, DatasetError>;
    fn next(&mut self) -> Option<Self::Item> {
        super::dataset::next_fused(self)
    }
}

fn parse_native_row(
    rec: &StringRecord,
    c: &NativeCols,
    symbols: &BTreeSet<Symbol>,
) -> Result<ReplayEvent, String> {
    let ts_text = field(rec, c.ts, "ts_ms")?;
    let ts_ms: i64 = ts_text
        .parse()
        .map_err(|_| format!("ts_ms: not an integer number of milliseconds: {ts_text:?}"))?;
    let sym_text = field(rec, c.symbol, "symbol")?;
    // Fast path: the text is already canonical and listed.
    let symbol = match symbols.iter().find(|s| s.as_str() == sym_text) {
        Some(s) => s.clone(),
        None => {
            let s = Symbol::new(sym_text).map_err(|e| format!("symbol: {e}"))?;
            if !symbols.contains(&s) {
                return Err(format!("symbol: {s} is not listed in manifest.json"));
            }
            s
        }
    };
    let kind_text = field(rec, c.kind, "kind")?;
    let must_be_empty = |idx: usize, name: &str, kind: &str| -> Result<(), String> {
        let v = field(rec, idx, name)?;
        if v.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{name}: must be empty on a kind {kind} row, got {v:?}"
            ))
        }
    };
    let kind = match kind_text {
        "Q" | "q" => {
            let bid = parse_price(field(rec, c.bid, "bid")?, "bid")?;
            let bid_qty = parse_qty(field(rec, c.bid_qty, "bid_qty")?, "bid_qty")?;
            let ask = parse_price(field(rec, c.ask, "ask")?, "ask")?;
            let ask_qty = parse_qty(field(rec, c.ask_qty, "ask_qty")?, "ask_qty")?;
            check_not_crossed(bid, ask)?;
            must_be_empty(c.price, "price", "Q")?;
            must_be_empty(c.qty, "qty", "Q")?;
            must_be_empty(c.side, "side", "Q")?;
            EventKind::Quote {
                bid,
                bid_qty,
                ask,
                ask_qty,
            }
        }
        "T" | "t" => {
            let price = parse_price(field(rec, c.price, "price")?, "price")?;
            let qty = parse_qty(field(rec, c.qty, "qty")?, "qty")?;
            let side_text = field(rec, c.side, "side")?;
            let side = if side_text.is_empty() {
                None
            } else {
                Some(Side::parse(side_text).map_err(|e| format!("side: {e}"))?)
            };
            for (idx, name) in [
                (c.bid, "bid"),
                (c.bid_qty, "bid_qty"),
                (c.ask, "ask"),
                (c.ask_qty, "ask_qty"),
            ] {
                must_be_empty(idx, name, "T")?;
            }
            EventKind::Trade { price, qty, side }
        }
        other => {
            return Err(format!(
                "kind: must be Q (quote) or T (trade), got {other:?}"
            ));
        }
    };
    Ok(ReplayEvent {
        ts_ms,
        symbol,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::super::dataset::open_dataset;
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/replay")
            .join(name)
    }

    fn read_all(name: &str) -> Result<Vec<ReplayEvent>, DatasetError> {
        open_dataset(&fixture(name))?.events()?.collect()
    }

    fn first_error(name: &str) -> DatasetError {
        match read_all(name) {
            Ok(evs) => panic!("{name}: expected an error, read {} events", evs.len()),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_dataset_reads_in_order() {
        let evs = read_all("native_plain").unwrap();
        assert_eq!(evs.len(), 6);
        assert!(evs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        match &evs[0].kind {
            EventKind::Quote { bid, ask_qty, .. } => {
                assert_eq!(bid.to_string(), "3500000");
                assert_eq!(ask_qty.to_string(), "0.25");
            }
            other => panic!("expected a quote, got {other:?}"),
        }
        match &evs[2].kind {
            EventKind::Trade { side, .. } => assert_eq!(*side, Some(Side::Buy)),
            other => panic!("expected a trade, got {other:?}"),
        }
        assert!(
            evs.iter()
                .any(|e| matches!(e.kind, EventKind::Trade { side: None, .. }))
        );
    }

    #[test]
    fn gzip_dataset_matches_plain() {
        assert_eq!(
            read_all("native_gz").unwrap(),
            read_all("native_plain").unwrap()
        );
    }

    #[test]
    fn several_files_are_concatenated() {
        let evs = read_all("native_multi").unwrap();
        assert_eq!(evs.len(), 6);
        assert_eq!(evs, read_all("native_plain").unwrap());
    }

    #[test]
    fn bad_number_names_file_line_and_field() {
        let e = first_error("bad_number");
        assert_eq!(e.line, Some(4));
        assert!(e.path.ends_with("bad_number/events.csv"));
        assert!(
            e.to_string()
                .ends_with("bad_number/events.csv:4: bid: not a decimal number: \"abc\""),
            "{e}"
        );
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let e = first_error("truncated_gz");
        assert!(e.path.ends_with("events.csv.gz"), "{e}");
        assert!(e.message.contains("read error"), "{e}");
    }

    #[test]
    fn decreasing_timestamp_is_an_error() {
        let e = first_error("decreasing_ts");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("time-ordered"), "{e}");
    }

    #[test]
    fn crossed_and_non_positive_prices_are_errors() {
        let e = first_error("crossed");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("crossed book"), "{e}");
        let e = first_error("zero_price");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("ask: price must be > 0"), "{e}");
    }

    #[test]
    fn missing_columns_are_errors() {
        let e = open_dataset(&fixture("missing_column"))
            .and_then(|d| d.events().map(|_| ()))
            .unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("missing column \"ask_qty\""), "{e}");
        let e = first_error("short_row");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("missing column"), "{e}");
    }

    #[test]
    fn unknown_symbol_and_kind_are_errors() {
        let e = first_error("bad_rows");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("not listed in manifest.json"), "{e}");
    }

    #[test]
    fn a_fresh_stream_each_call() {
        let ds = open_dataset(&fixture("native_plain")).unwrap();
        let a: Vec<_> = ds.events().unwrap().collect();
        let b: Vec<_> = ds.events().unwrap().collect();
        assert_eq!(a, b);
    }
}
