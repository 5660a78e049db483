//! `events.bin`: a dataset's events in a compact binary form, so that a replay spends its time
//! on the cycle instead of on gunzip, CSV and decimal parsing (those took as much CPU as the
//! whole cycle: ~0.5 s per 1M events, against ~0.05 s for this format).
//!
//! It is a derived copy, never the record: `replay import` writes it, `replay compact` writes it
//! for any dataset, and a replay reads it only while it still matches the files it was made
//! from (their names, sizes and modification times, and the dataset's symbols). A stale or
//! missing copy means the CSV is read, as before. A damaged copy (bad checksum, truncated) is an
//! error that names the file and says how to rebuild it.
//!
//! Layout (integers little-endian):
//! - `BTCBOTEV`, version `u32`, header length `u32`, the header as JSON (source files, symbols);
//! - blocks of `payload length u32, event count u32, CRC-32 of the payload u32, payload`;
//! - an end block: payload length 0, the total event count, CRC 0.
//!
//! An event is `zigzag varint (ts − previous ts)`, a tag byte (kind and trade side), the symbol's
//! index as a varint, then its decimals (a quote's bid, bid_qty, ask, ask_qty; a trade's price,
//! qty). A decimal is a byte holding its scale (bit 7: negative zero) and the zigzag varint of
//! its mantissa less the previous mantissa of the same symbol and field when that had the same
//! scale (else the mantissa itself). Scales and mantissas are kept exactly: a replay of the
//! copy gives the very events, and so the very fingerprints, of a replay of the CSV.

use super::compact_read::{open_reader, read_header};
use super::dataset::{Dataset, DatasetError, EventKind, ReplayEvent};
use crate::domain::{Side, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name inside a dataset directory.
pub const COMPACT_FILE: &str = "events.bin";
pub(super) const MAGIC: &[u8; 8] = b"BTCBOTEV";
/// 2: the source files' change time and inode joined the header.
pub(super) const VERSION: u32 = 2;
/// Events per block: a block is checked and decoded as a whole.
const BLOCK_EVENTS: u32 = 4096;
/// No block of this format comes near this; a larger length means a damaged file.
pub(super) const MAX_BLOCK_BYTES: u32 = 64 * 1024 * 1024;
/// Decimal slots per symbol: a quote's four fields, then a trade's two.
pub(super) const SLOTS: usize = 6;
pub(super) const TAG_QUOTE: u8 = 0;
pub(super) const TAG_TRADE: u8 = 1;
pub(super) const TAG_TRADE_BUY: u8 = 2;
pub(super) const TAG_TRADE_SELL: u8 = 3;
pub(super) const NEGATIVE_ZERO: u8 = 0x80;

/// One data file as the copy saw it: a copy made from other bytes is stale. Besides the size
/// and modification time, which tools can set back (`touch -d`, `tar`, `cp -p`), the inode and
/// the change time, which no tool can: any rewrite or replacement of the file since makes the
/// copy stale (a moved or copied dataset too: the copy is then remade or the CSV read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub name: String,
    pub size: u64,
    pub mtime_ns: u128,
    pub ctime_ns: i128,
    pub inode: u64,
}

/// The header: what the copy was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactHeader {
    pub sources: Vec<SourceFile>,
    pub symbols: Vec<String>,
}

impl CompactHeader {
    /// The header a copy of `files` with `symbols` would carry now; `None` when a file's size
    /// or modification time cannot be read (then no copy can be trusted).
    pub fn of(dir: &Path, files: &[PathBuf], symbols: &[Symbol]) -> Option<Self> {
        let sources = files
            .iter()
            .map(|path| {
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(path).ok()?;
                let mtime = meta.modified().ok()?;
                let mtime_ns = mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
                let name = path.strip_prefix(dir).unwrap_or(path);
                Some(SourceFile {
                    name: name.to_string_lossy().into_owned(),
                    size: meta.len(),
                    mtime_ns,
                    ctime_ns: i128::from(meta.ctime()) * 1_000_000_000
                        + i128::from(meta.ctime_nsec()),
                    inode: meta.ino(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            sources,
            symbols: symbols.iter().map(|s| s.as_str().to_string()).collect(),
        })
    }
}

/// What `replay compact` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactSummary {
    pub events: u64,
    pub bytes: u64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

pub(super) fn unzigzag(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

/// The previous mantissa and scale of each (symbol, slot), shared by writer and reader.
#[derive(Clone, Copy, Default)]
pub(super) struct Last {
    mantissa: i128,
    scale: u8,
}

impl Last {
    /// What the file holds for `mantissa` at `scale`: its change from the previous value when
    /// that had the same scale, else the mantissa itself. Remembers the value.
    fn encode(&mut self, mantissa: i128, scale: u8) -> i128 {
        let delta = if self.scale == scale {
            mantissa.wrapping_sub(self.mantissa)
        } else {
            mantissa
        };
        *self = Last { mantissa, scale };
        delta
    }

    /// The mantissa [`Last::encode`] turned into `delta`. Remembers it.
    pub(super) fn decode(&mut self, delta: i128, scale: u8) -> i128 {
        let mantissa = if self.scale == scale {
            self.mantissa.wrapping_add(delta)
        } else {
            delta
        };
        *self = Last { mantissa, scale };
        mantissa
    }
}

struct Encoder {
    symbols: Vec<Symbol>,
    last: Vec<[Last; SLOTS]>,
    last_ts: i64,
    block: Vec<u8>,
    block_events: u32,
    total: u64,
}

impl Encoder {
    fn new(symbols: Vec<Symbol>) -> Self {
        let last = vec![[Last::default(); SLOTS]; symbols.len()];
        Self {
            symbols,
            last,
            last_ts: 0,
            block: Vec::with_capacity(64 * 1024),
            block_events: 0,
            total: 0,
        }
    }

    fn put_decimal(&mut self, sym: usize, slot: usize, d: Decimal) {
        let scale = d.scale() as u8;
        let mantissa = d.mantissa();
        let flag = if d.is_zero() && d.is_sign_negative() {
            NEGATIVE_ZERO
        } else {
            0
        };
        self.block.push(scale | flag);
        let delta = self.last[sym][slot].encode(mantissa, scale);
        put_varint(&mut self.block, zigzag(delta));
    }

    fn push(&mut self, ev: &ReplayEvent) -> Result<(), String> {
        let sym = self
            .symbols
            .iter()
            .position(|s| s == &ev.symbol)
            .ok_or_else(|| format!("symbol {} is not the dataset's", ev.symbol))?;
        put_varint(
            &mut self.block,
            zigzag(i128::from(ev.ts_ms) - i128::from(self.last_ts)),
        );
        self.last_ts = ev.ts_ms;
        match &ev.kind {
            EventKind::Quote {
                bid,
                bid_qty,
                ask,
                ask_qty,
            } => {
                self.block.push(TAG_QUOTE);
                put_varint(&mut self.block, sym as u128);
                self.put_decimal(sym, 0, bid.value());
                self.put_decimal(sym, 1, bid_qty.value());
                self.put_decimal(sym, 2, ask.value());
                self.put_decimal(sym, 3, ask_qty.value());
            }
            EventKind::Trade { price, qty, side } => {
                self.block.push(match side {
                    None => TAG_TRADE,
                    Some(Side::Buy) => TAG_TRADE_BUY,
                    Some(Side::Sell) => TAG_TRADE_SELL,
                });
                put_varint(&mut self.block, sym as u128);
                self.put_decimal(sym, 4, price.value());
                self.put_decimal(sym, 5, qty.value());
            }
        }
        self.block_events += 1;
        self.total += 1;
        Ok(())
    }

    fn flush_block(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        if self.block_events == 0 {
            return Ok(());
        }
        let len = u32::try_from(self.block.len())
            .map_err(|_| std::io::Error::other("block too large"))?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&self.block_events.to_le_bytes())?;
        w.write_all(&crc32fast::hash(&self.block).to_le_bytes())?;
        w.write_all(&self.block)?;
        self.block.clear();
        self.block_events = 0;
        Ok(())
    }
}

/// Writes `dataset`'s `events.bin` from its data files (replacing any copy there).
///
/// # Errors
/// As [`write_compact`], when a data file's size or time cannot be read, or when a data file
/// changed while it was read (then no copy is left).
pub fn compact_dataset(dataset: &Dataset) -> Result<CompactSummary, String> {
    let header = dataset.compact_header().ok_or_else(|| {
        format!(
            "{}: cannot read the data files' sizes and times",
            dataset.dir().display()
        )
    })?;
    let events = dataset.source_events().map_err(|e| e.to_string())?;
    let summary = write_compact(dataset.dir(), &header, dataset.symbols(), events)?;
    if dataset.compact_header().as_ref() != Some(&header) {
        let _ = std::fs::remove_file(dataset.dir().join(COMPACT_FILE));
        return Err(format!(
            "{}: a data file changed while it was compacted; run it again",
            dataset.dir().display()
        ));
    }
    Ok(summary)
}

/// Writes `events` (the dataset's stream, made from `header`'s files) as `dir/events.bin`.
/// The file appears only when complete; a bad event leaves no copy.
///
/// # Errors
/// The stream's first bad row, or a write error.
pub fn write_compact(
    dir: &Path,
    header: &CompactHeader,
    symbols: &[Symbol],
    events: impl Iterator<Item = Result<ReplayEvent, DatasetError>>,
) -> Result<CompactSummary, String> {
    let path = dir.join(COMPACT_FILE);
    let header_json = serde_json::to_vec(header).map_err(|e| e.to_string())?;
    let header_len = u32::try_from(header_json.len()).map_err(|_| "header too large")?;
    let mut encoder = Encoder::new(symbols.to_vec());
    let mut row_error: Option<String> = None;
    let written = super::write_atomic(&path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&header_len.to_le_bytes())?;
        w.write_all(&header_json)?;
        for ev in events {
            let pushed = ev
                .map_err(|e| e.to_string())
                .and_then(|ev| encoder.push(&ev));
            if let Err(e) = pushed {
                row_error = Some(e);
                return Err(std::io::Error::other("stopped at a bad event"));
            }
            if encoder.block_events == BLOCK_EVENTS {
                encoder.flush_block(w)?;
            }
        }
        encoder.flush_block(w)?;
        w.write_all(&0u32.to_le_bytes())?;
        let total = u32::try_from(encoder.total)
            .map_err(|_| std::io::Error::other("more than 4,294,967,295 events"))?;
        w.write_all(&total.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        Ok(())
    });
    if written.is_err() || row_error.is_some() {
        let _ = std::fs::remove_file(path.with_extension("tmp"));
    }
    if let Some(e) = row_error {
        return Err(e);
    }
    written?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(CompactSummary {
        events: encoder.total,
        bytes,
    })
}

/// Why a dataset's copy is not used, for the one line a replay prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyState {
    Missing,
    /// It was made from other files (or other symbols): they changed since.
    Stale,
    /// Its header cannot be read (cut short, another format version, unreadable): it is
    /// ignored like a stale one, and `replay compact` replaces it.
    Unusable(String),
    Current,
}

/// Says once per process and dataset why its copy is not used, so the slower CSV is read.
pub(crate) fn note_unused_copy(dir: &Path, state: &CopyState) {
    static NOTED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let why = match state {
        CopyState::Stale => "made from other data files or symbols than the dataset has now".into(),
        CopyState::Unusable(why) => why.clone(),
        CopyState::Missing | CopyState::Current => return,
    };
    let Ok(mut noted) = NOTED.lock() else { return };
    if noted.iter().any(|d| d == dir) {
        return;
    }
    noted.push(dir.to_path_buf());
    tracing::warn!(
        "{}: {why}; reading the CSV instead (rebuild it with `btcbot replay compact {}`)",
        dir.join(COMPACT_FILE).display(),
        dir.display()
    );
}

/// Whether `dir/events.bin` is a current copy of `expected`'s files (`None`: the files' sizes
/// or times cannot be read, so no copy is current).
pub fn copy_state(dir: &Path, expected: Option<&CompactHeader>) -> CopyState {
    let path = dir.join(COMPACT_FILE);
    if !path.is_file() {
        return CopyState::Missing;
    }
    let header = open_reader(&path)
        .map_err(|e| e.message)
        .and_then(|mut r| read_header(&mut r));
    match (header, expected) {
        (Err(why), _) => CopyState::Unusable(why),
        (Ok(h), Some(e)) if *e == h => CopyState::Current,
        (Ok(_), _) => CopyState::Stale,
    }
}
