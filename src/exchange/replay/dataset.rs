//! A replay dataset on disk: layout detection, manifest, exchange info, and a fresh event stream
//! on demand. The format is documented in `data/replay/README.md`.
//!
//! Two layouts:
//! - **native**: `manifest.json` + `exchangeinfo.json` (optional) + one or more events CSV files
//!   (plain or gzip), read by [`super::reader`];
//! - **seed**: the Python bot's `candles/`, `orderbook/`, `ticker/` folders of per-symbol CSVs,
//!   merged by time in [`super::seed_layout`].

use super::compact::{CompactHeader, CopyState, copy_state};
use super::compact_read::CompactReader;
use super::reader::NativeReader;
use super::seed_layout::{SeedFile, SeedMerge, discover_seed_files};
use crate::domain::{Price, Qty, Side, Symbol, SymbolSpec};
use crate::exchange::exchange_info::{bundled_exchange_info, parse_exchange_info};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The `format` a native manifest must declare.
pub const MANIFEST_FORMAT: &str = "btcbot-replay/1";

/// A problem with a dataset, naming the file and (for row problems) the 1-based line.
/// Displays as `path:line: message` (or `path: message` without a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetError {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub message: String,
}

impl DatasetError {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line: None,
            message: message.into(),
        }
    }
    pub fn at(path: &Path, line: u64, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for DatasetError {}

/// What happened in the market at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Top of book. A zero size means "unknown"; the matching treats it as unlimited liquidity.
    Quote {
        bid: Price,
        bid_qty: Qty,
        ask: Price,
        ask_qty: Qty,
    },
    /// A public trade; `side` is the taker side when the source says it.
    Trade {
        price: Price,
        qty: Qty,
        side: Option<Side>,
    },
}

/// One dataset row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEvent {
    pub ts_ms: i64,
    pub symbol: Symbol,
    pub kind: EventKind,
}

/// Which on-disk layout a dataset uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `manifest.json` + events CSV (this crate's format).
    Native,
    /// `candles/`, `orderbook/`, `ticker/` folders (the Python bot's format).
    Seed,
}

/// What the dataset says about itself. For the seed layout `start_ms`/`end_ms` are unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub format: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub source: String,
}

/// An opened (validated) dataset. Cheap to keep; [`Dataset::events`] opens a fresh stream.
#[derive(Debug, Clone)]
pub struct Dataset {
    dir: PathBuf,
    layout: Layout,
    info: ManifestInfo,
    symbols: Vec<Symbol>,
    specs: Vec<SymbolSpec>,
    event_files: Vec<PathBuf>,
    seed_files: Vec<SeedFile>,
    /// Whether `events.bin` is a current copy of the data files (then events come from it).
    copy: CopyState,
}

/// Opens the dataset in `dir`, detecting its layout: `manifest.json` → native; otherwise an
/// `orderbook/` (or `candles/`) folder → seed layout. Exchange info comes from
/// `exchangeinfo.json` in the directory, else the bundled BTCTurk payload.
///
/// # Errors
/// When the directory is missing, the manifest or exchange info is malformed, a listed file is
/// missing, or a symbol has no exchange info.
pub fn open_dataset(dir: &Path) -> Result<Dataset, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::new(
            dir,
            "dataset directory does not exist or is not a directory",
        ));
    }
    let manifest_path = dir.join("manifest.json");
    let mut dataset = if manifest_path.is_file() {
        open_native(dir, &manifest_path)?
    } else if dir.join("orderbook").is_dir() || dir.join("candles").is_dir() {
        open_seed(dir)?
    } else {
        return Err(not_a_dataset(dir));
    };
    dataset.copy = copy_state(dir, dataset.compact_header().as_ref());
    Ok(dataset)
}

fn not_a_dataset(dir: &Path) -> DatasetError {
    DatasetError::new(
        dir,
        "not a replay dataset: no manifest.json and no orderbook/ or candles/ folder",
    )
}

impl Dataset {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// The dataset's symbols, sorted.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }
    /// Exchange rules for the dataset's symbols, in [`Dataset::symbols`] order.
    pub fn specs(&self) -> Vec<SymbolSpec> {
        self.specs.clone()
    }
    pub fn manifest(&self) -> &ManifestInfo {
        &self.info
    }
    /// Whether the events come from a current `events.bin`, and if not, why not.
    pub fn copy_state(&self) -> &CopyState {
        &self.copy
    }
    /// The header a current `events.bin` of this dataset carries (`None` when a data file's
    /// size or time cannot be read).
    pub fn compact_header(&self) -> Option<CompactHeader> {
        CompactHeader::of(&self.dir, &self.files(), &self.symbols)
    }
    /// The data files the events come from, in reading order.
    pub fn files(&self) -> Vec<PathBuf> {
        match self.layout {
            Layout::Native => self.event_files.clone(),
            Layout::Seed => self.seed_files.iter().map(|f| f.path.clone()).collect(),
        }
    }
    /// A fresh, streaming pass over the events in time order. Row problems come out of the
    /// iterator as `Err` (after which it ends); problems opening a file come out here.
    ///
    /// # Errors
    /// When a data file cannot be opened or its header is missing a column.
    pub fn events(&self) -> Result<EventStream, DatasetError> {
        if self.copy == CopyState::Current {
            let reader = CompactReader::open(&self.dir, &self.symbols)?;
            return Ok(EventStream {
                inner: Inner::Compact(Box::new(reader)),
                source: self.dir.clone(),
            });
        }
        super::compact::note_unused_copy(&self.dir, &self.copy);
        self.source_events()
    }

    /// [`Dataset::events`] from the data files themselves, never from `events.bin`.
    ///
    /// # Errors
    /// As [`Dataset::events`].
    pub fn source_events(&self) -> Result<EventStream, DatasetError> {
        let inner = match self.layout {
            Layout::Native => Inner::Native(Box::new(NativeReader::new(
                self.event_files.clone(),
                self.symbols.iter().cloned().collect(),
            )?)),
            Layout::Seed => Inner::Seed(SeedMerge::open(&self.seed_files)?),
        };
        Ok(EventStream {
            inner,
            source: self.dir.clone(),
        })
    }
}

/// A reader of events that ends at its end or at its first error, whichever comes first.
pub(crate) trait StepReader {
    /// The next event, `Ok(None)` at the end.
    fn step_once(&mut self) -> Result<Option<ReplayEvent>, DatasetError>;
    /// Whether the reader has ended (set here once it has).
    fn done(&mut self) -> &mut bool;
}

/// `Iterator::next` of a [`StepReader`]: after the end or an error, nothing more.
pub(crate) fn next_fused(
    reader: &mut impl StepReader,
) -> Option<Result<ReplayEvent, DatasetError>> {
    if *reader.done() {
        return None;
    }
    let step = reader.step_once();
    if !matches!(step, Ok(Some(_))) {
        *reader.done() = true;
    }
    step.transpose()
}

/// A streaming pass over a dataset's events. Memory use does not grow with the dataset.
pub struct EventStream {
    inner: Inner,
    /// The dataset directory the events come from.
    source: PathBuf,
}

impl EventStream {
    /// The dataset directory the events come from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

enum Inner {
    Native(Box<NativeReader>),
    Seed(SeedMerge),
    Compact(Box<CompactReader>),
}

impl Iterator for EventStream {
    type Item = Result<ReplayEvent, DatasetError>;
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Native(r) => r.next(),
            Inner::Seed(m) => m.next(),
            Inner::Compact(r) => r.next(),
        }
    }
}

fn open_native(dir: &Path, manifest_path: &Path) -> Result<Dataset, DatasetError> {
    let err = |m: String| DatasetError::new(manifest_path, m);
    let text =
        std::fs::read_to_string(manifest_path).map_err(|e| err(format!("cannot read: {e}")))?;
    let root: Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let obj = root
        .as_object()
        .ok_or_else(|| err("not a JSON object".into()))?;

    let format = obj
        .get("format")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("format: missing; expected \"{MANIFEST_FORMAT}\"")))?;
    if format != MANIFEST_FORMAT {
        return Err(err(format!(
            "format: unsupported {format:?}; expected \"{MANIFEST_FORMAT}\""
        )));
    }

    let raw_symbols = obj
        .get("symbols")
        .and_then(Value::as_array)
        .ok_or_else(|| err("symbols: missing or not an array".into()))?;
    let mut symbols = BTreeSet::new();
    for s in raw_symbols {
        let name = s
            .as_str()
            .ok_or_else(|| err(format!("symbols: not a string: {s}")))?;
        let sym = Symbol::new(name).map_err(|e| err(format!("symbols: {e}")))?;
        symbols.insert(sym);
    }
    if symbols.is_empty() {
        return Err(err(
            "symbols: empty (a dataset from `replay init` holds nothing until `replay capture` \
             has run)"
                .into(),
        ));
    }

    let start_ms = optional_ms(obj.get("start_ms")).map_err(|e| err(format!("start_ms: {e}")))?;
    let end_ms = optional_ms(obj.get("end_ms")).map_err(|e| err(format!("end_ms: {e}")))?;
    if let (Some(s), Some(e)) = (start_ms, end_ms)
        && e < s
    {
        return Err(err(format!("end_ms {e} is before start_ms {s}")));
    }
    let source = obj
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();

    let raw_events = obj
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| err("events: missing or not an array of file names".into()))?;
    let mut event_files = Vec::new();
    for e in raw_events {
        let name = e
            .as_str()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| err(format!("events: not a file name: {e}")))?;
        let path = dir.join(name);
        if !path.is_file() {
            return Err(err(format!("events: {} does not exist", path.display())));
        }
        event_files.push(path);
    }
    if event_files.is_empty() {
        return Err(err("events: empty".into()));
    }

    let symbols: Vec<Symbol> = symbols.into_iter().collect();
    let specs = load_specs(dir, &symbols)?;
    Ok(Dataset {
        dir: dir.to_path_buf(),
        layout: Layout::Native,
        info: ManifestInfo {
            format: format.to_string(),
            start_ms,
            end_ms,
            source,
        },
        symbols,
        specs,
        event_files,
        seed_files: Vec::new(),
        copy: CopyState::Missing,
    })
}

fn open_seed(dir: &Path) -> Result<Dataset, DatasetError> {
    let seed_files = discover_seed_files(dir)?;
    let symbols: Vec<Symbol> = seed_files
        .iter()
        .map(|f| f.symbol.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let specs = load_specs(dir, &symbols)?;
    Ok(Dataset {
        dir: dir.to_path_buf(),
        layout: Layout::Seed,
        info: ManifestInfo {
            format: "seed-layout".to_string(),
            start_ms: None,
            end_ms: None,
            source: format!(
                "seed layout (candles/orderbook/ticker) in {}",
                dir.display()
            ),
        },
        symbols,
        specs,
        event_files: Vec::new(),
        seed_files,
        copy: CopyState::Missing,
    })
}

fn optional_ms(v: Option<&Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("not an integer number of milliseconds: {n}")),
        Some(other) => Err(format!("not an integer number of milliseconds: {other}")),
    }
}

/// Specs for `symbols` (in that order) from `dir/exchangeinfo.json` or the bundled payload.
fn load_specs(dir: &Path, symbols: &[Symbol]) -> Result<Vec<SymbolSpec>, DatasetError> {
    let path = dir.join("exchangeinfo.json");
    let (all, source) = if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| DatasetError::new(&path, format!("cannot read: {e}")))?;
        let specs = parse_exchange_info(&text).map_err(|e| DatasetError::new(&path, e))?;
        (specs, path)
    } else {
        let bundled = PathBuf::from("<bundled exchangeinfo>");
        let specs = parse_exchange_info(bundled_exchange_info())
            .map_err(|e| DatasetError::new(&bundled, e))?;
        (specs, bundled)
    };
    symbols
        .iter()
        .map(|sym| {
            all.iter()
                .find(|s| &s.symbol == sym)
                // The spec carries the dataset's own symbol, whose text every event shares.
                .map(|s| SymbolSpec {
                    symbol: sym.clone(),
                    ..s.clone()
                })
                .ok_or_else(|| DatasetError::new(&source, format!("no entry for symbol {sym}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/replay")
            .join(name)
    }

    #[test]
    fn error_display_names_file_and_line() {
        let e = DatasetError::at(Path::new("data/x/events.csv"), 17, "bid: bad");
        assert_eq!(e.to_string(), "data/x/events.csv:17: bid: bad");
        let e = DatasetError::new(Path::new("m.json"), "oops");
        assert_eq!(e.to_string(), "m.json: oops");
    }

    #[test]
    fn missing_dir_and_unknown_layout_are_errors() {
        assert!(open_dataset(&fixture("does-not-exist")).is_err());
        let err = open_dataset(&fixture("")).unwrap_err();
        assert!(err.message.contains("not a replay dataset"), "{err}");
    }

    #[test]
    fn native_manifest_is_read() {
        let ds = open_dataset(&fixture("native_plain")).unwrap();
        assert_eq!(ds.layout(), Layout::Native);
        let names: Vec<&str> = ds.symbols().iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["BTCTRY", "ETHTRY"]);
        assert_eq!(ds.manifest().start_ms, Some(1_767_225_600_000));
        assert_eq!(ds.specs().len(), 2);
        assert_eq!(ds.specs()[0].symbol.as_str(), "BTCTRY");
    }

    #[test]
    fn manifest_problems_are_named() {
        let err = open_dataset(&fixture("bad_manifest")).unwrap_err();
        assert!(err.to_string().contains("manifest.json: format"), "{err}");
        let err = open_dataset(&fixture("unknown_symbol")).unwrap_err();
        assert!(
            err.to_string().contains("no entry for symbol DOGETRY"),
            "{err}"
        );
    }
}
