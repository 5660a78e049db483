//! Reading `events.bin` (the format is described in `compact.rs`): the header, and the events
//! block by block, each block checked against its CRC-32 before it is decoded.

use super::compact::{
    COMPACT_FILE, CompactHeader, Last, MAGIC, MAX_BLOCK_BYTES, NEGATIVE_ZERO, SLOTS, TAG_QUOTE,
    TAG_TRADE, TAG_TRADE_BUY, TAG_TRADE_SELL, VERSION, unzigzag,
};
use super::dataset::{DatasetError, EventKind, ReplayEvent};
use super::reader::check_not_crossed;
use crate::domain::{Price, Qty, Side, Symbol};
use rust_decimal::Decimal;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

pub(super) fn open_reader(path: &Path) -> Result<BufReader<File>, DatasetError> {
    let file =
        File::open(path).map_err(|e| DatasetError::new(path, format!("cannot open: {e}")))?;
    Ok(BufReader::with_capacity(256 * 1024, file))
}

fn damaged(path: &Path, what: impl std::fmt::Display) -> DatasetError {
    let dir = path.parent().unwrap_or(path);
    DatasetError::new(
        path,
        format!(
            "{what} (a damaged copy of the events: delete it to read the CSV, or rebuild it with \
             `btcbot replay compact {}`)",
            dir.display()
        ),
    )
}

fn read_u32(path: &Path, r: &mut impl Read, what: &str) -> Result<u32, DatasetError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)
        .map_err(|e| damaged(path, format!("truncated in {what}: {e}")))?;
    Ok(u32::from_le_bytes(b))
}

/// The header, or why it cannot be used (said in a replay's note, or wrapped as damage).
pub(super) fn read_header(r: &mut impl Read) -> Result<CompactHeader, String> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|e| format!("cut short in its header ({e})"))?;
    if &magic != MAGIC {
        return Err("not a btcbot events file".into());
    }
    let mut word = [0u8; 4];
    r.read_exact(&mut word)
        .map_err(|e| format!("cut short in its header ({e})"))?;
    let version = u32::from_le_bytes(word);
    if version != VERSION {
        return Err(format!(
            "format version {version}, and this build reads version {VERSION}"
        ));
    }
    r.read_exact(&mut word)
        .map_err(|e| format!("cut short in its header ({e})"))?;
    let len = u32::from_le_bytes(word);
    if len > MAX_BLOCK_BYTES {
        return Err(format!("a header length of {len} bytes"));
    }
    let mut json = vec![0u8; len as usize];
    r.read_exact(&mut json)
        .map_err(|e| format!("cut short in its header ({e})"))?;
    serde_json::from_slice(&json).map_err(|e| format!("an unreadable header ({e})"))
}

/// Streams the events of a current `events.bin`. After an error it ends.
pub(crate) struct CompactReader {
    path: PathBuf,
    reader: BufReader<File>,
    symbols: Vec<Symbol>,
    last: Vec<[Last; SLOTS]>,
    last_ts: i64,
    block: Vec<u8>,
    pos: usize,
    block_left: u32,
    seen: u64,
    done: bool,
}

impl CompactReader {
    /// Opens the copy in `dir`, made for `symbols`.
    ///
    /// # Errors
    /// When it cannot be opened or its header is damaged or names other symbols.
    pub(crate) fn open(dir: &Path, symbols: &[Symbol]) -> Result<Self, DatasetError> {
        let path = dir.join(COMPACT_FILE);
        let mut reader = open_reader(&path)?;
        let header = read_header(&mut reader).map_err(|why| damaged(&path, why))?;
        let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        if header.symbols != names {
            return Err(damaged(path.as_path(), "made for other symbols"));
        }
        Ok(Self {
            path,
            reader,
            symbols: symbols.to_vec(),
            last: vec![[Last::default(); SLOTS]; symbols.len()],
            last_ts: 0,
            block: Vec::with_capacity(64 * 1024),
            pos: 0,
            block_left: 0,
            seen: 0,
            done: false,
        })
    }

    /// Loads the next block; `Ok(false)` at the end block.
    fn next_block(&mut self) -> Result<bool, DatasetError> {
        let path = self.path.clone();
        let len = read_u32(&path, &mut self.reader, "a block")?;
        let count = read_u32(&path, &mut self.reader, "a block")?;
        let crc = read_u32(&path, &mut self.reader, "a block")?;
        if len == 0 {
            if u64::from(count) != self.seen {
                return Err(damaged(
                    &path,
                    format!("ends after {} events but says {count}", self.seen),
                ));
            }
            return Ok(false);
        }
        if len > MAX_BLOCK_BYTES || count == 0 {
            return Err(damaged(
                &path,
                format!("block of {len} bytes, {count} events"),
            ));
        }
        self.block.resize(len as usize, 0);
        self.reader
            .read_exact(&mut self.block)
            .map_err(|e| damaged(&path, format!("truncated after {} events: {e}", self.seen)))?;
        if crc32fast::hash(&self.block) != crc {
            return Err(damaged(
                &path,
                format!("checksum mismatch in the block after event {}", self.seen),
            ));
        }
        self.pos = 0;
        self.block_left = count;
        Ok(true)
    }

    fn varint(&mut self) -> Result<u128, String> {
        let mut v: u128 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self
                .block
                .get(self.pos)
                .ok_or("event runs past its block")?;
            self.pos += 1;
            if shift > 126 {
                return Err("varint too long".into());
            }
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn decimal(&mut self, sym: usize, slot: usize) -> Result<Decimal, String> {
        let byte = *self
            .block
            .get(self.pos)
            .ok_or("event runs past its block")?;
        self.pos += 1;
        let scale = byte & !NEGATIVE_ZERO;
        let delta = unzigzag(self.varint()?);
        let mantissa = self.last[sym][slot].decode(delta, scale);
        let mut d = Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
            .map_err(|e| format!("decimal out of range: {e}"))?;
        if byte & NEGATIVE_ZERO != 0 {
            d.set_sign_negative(true);
        }
        Ok(d)
    }

    fn event(&mut self) -> Result<ReplayEvent, String> {
        let delta = unzigzag(self.varint()?);
        let ts_ms = i128::from(self.last_ts)
            .checked_add(delta)
            .and_then(|ts| i64::try_from(ts).ok())
            .ok_or("timestamp out of range")?;
        if ts_ms < self.last_ts && self.seen > 0 {
            return Err("timestamps go backwards".into());
        }
        self.last_ts = ts_ms;
        let tag = *self
            .block
            .get(self.pos)
            .ok_or("event runs past its block")?;
        self.pos += 1;
        let sym = usize::try_from(self.varint()?).map_err(|_| "symbol index out of range")?;
        let symbol = self
            .symbols
            .get(sym)
            .ok_or_else(|| format!("symbol index {sym} out of range"))?
            .clone();
        let kind = match tag {
            TAG_QUOTE => {
                let bid = Price::new(self.decimal(sym, 0)?)?;
                let bid_qty = Qty::new(self.decimal(sym, 1)?)?;
                let ask = Price::new(self.decimal(sym, 2)?)?;
                let ask_qty = Qty::new(self.decimal(sym, 3)?)?;
                check_not_crossed(bid, ask)?;
                EventKind::Quote {
                    bid,
                    bid_qty,
                    ask,
                    ask_qty,
                }
            }
            TAG_TRADE | TAG_TRADE_BUY | TAG_TRADE_SELL => EventKind::Trade {
                price: Price::new(self.decimal(sym, 4)?)?,
                qty: Qty::new(self.decimal(sym, 5)?)?,
                side: match tag {
                    TAG_TRADE_BUY => Some(Side::Buy),
                    TAG_TRADE_SELL => Some(Side::Sell),
                    _ => None,
                },
            },
            other => return Err(format!("unknown event tag {other}")),
        };
        Ok(ReplayEvent {
            ts_ms,
            symbol,
            kind,
        })
    }

    fn step(&mut self) -> Result<Option<ReplayEvent>, DatasetError> {
        if self.block_left == 0 {
            if self.pos != self.block.len() {
                return Err(damaged(
                    &self.path,
                    "a block holds more bytes than its events",
                ));
            }
            if !self.next_block()? {
                return Ok(None);
            }
        }
        let ev = self
            .event()
            .map_err(|m| damaged(&self.path, format!("event {}: {m}", self.seen + 1)))?;
        self.block_left -= 1;
        self.seen += 1;
        Ok(Some(ev))
    }
}

impl super::dataset::StepReader for CompactReader {
    fn step_once(&mut self) -> Result<Option<ReplayEvent>, DatasetError> {
        self.step()
    }
    fn done(&mut self) -> &mut bool {
        &mut self.done
    }
}

impl Iterator for CompactReader {
    type Item = Result<ReplayEvent, DatasetError>;
    fn next(&mut self) -> Option<Self::Item> {
        super::dataset::next_fused(self)
    }
}
