//! `btcbot replay import`: a top-of-book quotes CSV recorded elsewhere
//! (`ts_ms,symbol,bid,bid_qty,ask,ask_qty`, one row per quote, any number of symbols,
//! time-ordered) turned into a native dataset, with symbol specs from a BTCTurk exchangeinfo
//! payload (the bundled one by default). Streaming: memory does not grow with the file.

use super::synth::{filter_exchange_info, write_atomic};
use crate::domain::{Symbol, decimal_from_str};
use crate::exchange::exchange_info::{bundled_exchange_info, parse_exchange_info};
use flate2::Compression;
use flate2::write::GzEncoder;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The header the quotes CSV must start with.
pub const QUOTES_HEADER: [&str; 6] = ["ts_ms", "symbol", "bid", "bid_qty", "ask", "ask_qty"];

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// The dataset's `events.bin`, written after the CSV.
    pub compacted: super::CompactSummary,
    pub quotes: u64,
    pub symbols: Vec<Symbol>,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Imports `quotes` into the dataset directory `out` (created).
///
/// # Errors
/// One line naming the file and line: a bad header, a row out of time order, a number that is
/// not a decimal, a crossed book, a symbol the exchange info lacks; or a file that cannot be
/// read or written.
pub fn import_quotes(
    quotes: &Path,
    exchange_info: Option<&Path>,
    out: &Path,
) -> Result<ImportSummary, String> {
    let info_text = match exchange_info {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => bundled_exchange_info().to_string(),
    };
    let info_name = exchange_info.map_or("bundled exchangeinfo".to_string(), |p| {
        p.display().to_string()
    });
    let specs = parse_exchange_info(&info_text).map_err(|e| format!("{info_name}: {e}"))?;
    let known: BTreeSet<Symbol> = specs.iter().map(|s| s.symbol.clone()).collect();

    let file = std::fs::File::open(quotes).map_err(|e| format!("{}: {e}", quotes.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(std::io::BufReader::with_capacity(256 * 1024, file));
    let at = |line: u64, msg: String| format!("{}:{line}: {msg}", quotes.display());
    let header = reader
        .headers()
        .map_err(|e| at(1, e.to_string()))?
        .iter()
        .map(str::trim)
        .collect::<Vec<_>>();
    if header != QUOTES_HEADER {
        return Err(at(
            1,
            format!(
                "header must be {}, got {}",
                QUOTES_HEADER.join(","),
                header.join(",")
            ),
        ));
    }

    std::fs::create_dir_all(out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
    let events_path = out.join("events.csv.gz");
    let mut seen: BTreeSet<Symbol> = BTreeSet::new();
    let mut first_ts: Option<i64> = None;
    let mut last_ts = i64::MIN;
    let mut count = 0u64;
    let mut row_error: Option<String> = None;
    write_atomic(&events_path, |w| {
        let gz = GzEncoder::new(w, Compression::fast());
        let mut out = BufWriter::with_capacity(256 * 1024, gz);
        writeln!(
            out,
            "ts_ms,symbol,kind,bid,bid_qty,ask,ask_qty,price,qty,side"
        )?;
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    row_error = Some(at(line, e.to_string()));
                    break;
                }
            }
            match check_row(&record, last_ts, &known) {
                Ok((ts, symbol)) => {
                    last_ts = ts;
                    first_ts.get_or_insert(ts);
                    if !seen.contains(&symbol) {
                        seen.insert(symbol.clone());
                    }
                    writeln!(
                        out,
                        "{ts},{},Q,{},{},{},{},,,",
                        symbol.as_str(),
                        record[2].trim(),
                        record[3].trim(),
                        record[4].trim(),
                        record[5].trim()
                    )?;
                    count += 1;
                }
                Err(msg) => {
                    row_error = Some(at(line, msg));
                    break;
                }
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.finish()?;
        Ok(())
    })?;
    if let Some(e) = row_error {
        let _ = std::fs::remove_file(&events_path);
        return Err(e);
    }
    let Some(start_ms) = first_ts else {
        let _ = std::fs::remove_file(&events_path);
        return Err(format!("{}: no quotes after the header", quotes.display()));
    };
    let symbols: Vec<Symbol> = seen.into_iter().collect();
    let info = filter_exchange_info(&info_text, &info_name, &symbols)?;
    write_atomic(&out.join("exchangeinfo.json"), |w| {
        w.write_all(info.as_bytes())
    })?;
    let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
    let manifest = json!({
        "format": super::MANIFEST_FORMAT,
        "symbols": names,
        "start_ms": start_ms,
        "end_ms": last_ts,
        "source": format!("imported from {} by btcbot replay import", file_name(quotes)),
        "events": ["events.csv.gz"],
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())? + "\n";
    write_atomic(&out.join("manifest.json"), |w| w.write_all(text.as_bytes()))?;
    let dataset = super::open_dataset(out).map_err(|e| e.to_string())?;
    let compacted = super::compact_dataset(&dataset)?;
    Ok(ImportSummary {
        compacted,
        quotes: count,
        symbols,
        start_ms,
        end_ms: last_ts,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| PathBuf::from(p), PathBuf::from)
        .display()
        .to_string()
}

/// Validates one row; returns its time and symbol.
fn check_row(
    r: &csv::StringRecord,
    last_ts: i64,
    known: &BTreeSet<Symbol>,
) -> Result<(i64, Symbol), String> {
    if r.len() != QUOTES_HEADER.len() {
        return Err(format!("expected 6 fields, got {}", r.len()));
    }
    let ts: i64 = r[0]
        .trim()
        .parse()
        .map_err(|_| format!("ts_ms: not an integer: {:?}", &r[0]))?;
    if ts < last_ts {
        return Err(format!(
            "ts_ms {ts} is before the previous row's {last_ts}: rows must be time-ordered"
        ));
    }
    let symbol = Symbol::new(r[1].trim()).map_err(|e| format!("symbol: {e}"))?;
    if !known.contains(&symbol) {
        return Err(format!(
            "symbol {symbol} is not in the exchange info (pass --exchangeinfo with it)"
        ));
    }
    let num = |i: usize| -> Result<Decimal, String> {
        decimal_from_str(r[i].trim()).map_err(|e| format!("{}: {e}", QUOTES_HEADER[i]))
    };
    let (bid, bid_qty, ask, ask_qty) = (num(2)?, num(3)?, num(4)?, num(5)?);
    if bid <= Decimal::ZERO || ask <= Decimal::ZERO {
        return Err("bid and ask must be > 0".into());
    }
    if bid >= ask {
        return Err(format!("crossed book: bid {bid} >= ask {ask}"));
    }
    if bid_qty < Decimal::ZERO || ask_qty < Decimal::ZERO {
        return Err("quantities must be >= 0".into());
    }
    Ok((ts, symbol))
}
