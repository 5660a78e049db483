//! The dataset side of capture: `replay init` and [`DatasetWriter`], which appends events to a
//! native dataset (data/replay/README.md) and resumes one that a previous capture left,
//! cleanly or not.
//!
//! Crash safety, in order of what can go wrong:
//! - rows are buffered and written as one complete gzip member per flush (every second or
//!   256 KiB), so a killed capture loses at most the batch it was writing, and leaves at most
//!   one half-written member at the end of the last events file;
//! - on resume that half-written member is cut off (`set_len` to the end of the last complete
//!   member), never more: a damaged stretch longer than any batch is refused, since it cannot
//!   be a crash leftover and cutting it would destroy recorded data;
//! - the manifest is replaced atomically (`.tmp` + rename) at the start, on every rotation and
//!   checkpoint, and at the end; it lists an events file before any row goes into it, and its
//!   `end_ms` can only lag the data, which resume corrects from the last row;
//! - one capture per dataset: `DIR/.capture.lock` is held with an OS file lock.
//!
//! Time only moves forward: a row's `ts_ms` is raised to the dataset's last one when the clock
//! (or a resumed session on another machine) is behind it.

use super::segment::{self, HEADER, Scan};
use crate::domain::Symbol;
use crate::exchange::exchange_info::parse_exchange_info;
use crate::exchange::replay::{EventKind, MANIFEST_FORMAT, filter_exchange_info, write_atomic};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The events file `replay init` creates.
pub const FIRST_EVENTS: &str = "events.csv.gz";
/// What `source` says before anything was captured.
const SOURCE_EMPTY: &str = "btcbot replay init (nothing captured yet)";
/// Rows are compressed and written once this much text is buffered.
const BATCH_BYTES: usize = 256 * 1024;
/// The largest unreadable tail resume cuts off: a batch compresses to far less.
const MAX_REPAIR_BYTES: u64 = 1024 * 1024;

/// Creates an empty dataset in `dir` (created if missing; an existing directory must be
/// empty): a manifest with no symbols yet and an events file holding only the header.
///
/// # Errors
/// `dir` is a file or a non-empty directory, or cannot be written.
pub fn init_dataset(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(format!("{}: exists and is not a directory", dir.display()));
        }
        let mut entries =
            std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
        if entries.next().is_some() {
            return Err(format!(
                "{}: not empty; `replay init` needs a new or empty directory (to add to an \
                 existing dataset, run `replay capture --out` on it)",
                dir.display()
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let header = segment::member(format!("{HEADER}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    write_atomic(&dir.join(FIRST_EVENTS), |w| w.write_all(&header))?;
    let manifest = json!({
        "format": MANIFEST_FORMAT,
        "symbols": [],
        "start_ms": null,
        "end_ms": null,
        "source": SOURCE_EMPTY,
        "events": [FIRST_EVENTS],
    });
    write_manifest(dir, &manifest)
}

/// Errors unless `dir` holds a manifest (checked before a capture contacts the venue).
///
/// # Errors
/// No `dir/manifest.json`.
pub fn require_dataset(dir: &Path) -> Result<(), String> {
    if dir.join("manifest.json").is_file() {
        Ok(())
    } else {
        Err(format!(
            "{}: not a dataset (no manifest.json); create it with `btcbot replay init {}`",
            dir.display(),
            dir.display()
        ))
    }
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// What the manifest's `source` says when the dataset has none yet.
    pub source: String,
    /// A venue's exchangeinfo payload: stored as `exchangeinfo.json`, cut down to the dataset's
    /// symbols (`None` keeps the file the dataset has).
    pub exchange_info: Option<String>,
    /// Start a new events file once the current one passes this size.
    pub max_segment_bytes: u64,
}

/// What opening the dataset found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The dataset's last event time; new rows never go before it.
    pub last_ts_ms: Option<i64>,
    /// Rows already in the events file being appended to.
    pub rows_in_segment: u64,
    /// A one-line account of an unfinished write that was cut off.
    pub repaired: Option<String>,
    /// The events file rows now go to.
    pub segment: PathBuf,
}

/// Appends rows to a dataset. See the module docs for what survives a crash.
pub struct DatasetWriter {
    dir: PathBuf,
    manifest: Map<String, Value>,
    symbols: BTreeSet<Symbol>,
    events: Vec<String>,
    file: File,
    segment_bytes: u64,
    max_segment_bytes: u64,
    batch: Vec<u8>,
    start_ms: Option<i64>,
    last_ts_ms: Option<i64>,
    rows: u64,
    _lock: File,
}

impl DatasetWriter {
    /// Opens the dataset `dir` made by `replay init` (or any native dataset), repairs an
    /// unfinished write left by a killed capture, adds `symbols` to the manifest and stores
    /// the exchange info.
    ///
    /// # Errors
    /// No manifest, a malformed one, another capture holding the lock, damage that a crash
    /// cannot explain, or an IO problem; one line naming the file.
    pub fn open(
        dir: &Path,
        symbols: &[Symbol],
        options: &WriterOptions,
    ) -> Result<(DatasetWriter, Resume), String> {
        require_dataset(dir)?;
        let manifest_path = dir.join("manifest.json");
        let lock = lock(dir)?;
        let mut manifest = read_manifest(&manifest_path)?;
        let err = |m: String| format!("{}: {m}", manifest_path.display());
        let mut all: BTreeSet<Symbol> = strings(&manifest, "symbols")
            .map_err(err)?
            .iter()
            .map(|s| Symbol::new(s).map_err(|e| err(format!("symbols: {e}"))))
            .collect::<Result<_, _>>()?;
        all.extend(symbols.iter().cloned());
        let all_symbols: Vec<Symbol> = all.iter().cloned().collect();
        let exchange_info = options
            .exchange_info
            .as_deref()
            .map(|text| checked_exchange_info(text, &all_symbols))
            .transpose()?;
        let mut events = strings(&manifest, "events").map_err(err)?;
        let end_ms = match manifest.get("end_ms") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| err(format!("end_ms: not ms: {v}")))?,
            ),
        };
        let start_ms = manifest.get("start_ms").and_then(Value::as_i64);

        let (segment_name, scan, repaired) = match events.last() {
            Some(name) => {
                let path = dir.join(name);
                if !path.is_file() {
                    return Err(err(format!("events: {} does not exist", path.display())));
                }
                let (scan, repaired) = repair(&path)?;
                (name.clone(), Some(scan), repaired)
            }
            None => (FIRST_EVENTS.to_string(), None, None),
        };
        let seg_last = match &scan {
            Some(s) => s
                .last_ts()
                .map_err(|m| format!("{}: {m}", dir.join(&segment_name).display()))?,
            None => None,
        };
        let last_ts_ms = end_ms.max(seg_last);
        // Rows go after a header of our column order in a gzip file; anything else gets a
        // fresh events file rather than a mixed one. An empty file (cut back to nothing) is
        // reused.
        let appendable = scan
            .as_ref()
            .is_some_and(|s| s.gzip && s.header.as_deref().is_some_and(|h| h == HEADER));
        let empty = scan.as_ref().is_some_and(|s| s.gzip && s.file_bytes == 0);
        let fresh = if events.is_empty() && !dir.join(FIRST_EVENTS).exists() {
            Some(FIRST_EVENTS.to_string())
        } else if events.is_empty() || !(appendable || empty) {
            Some(next_segment_name(dir, &events))
        } else {
            None
        };
        let rows_in_segment = match (&fresh, &scan) {
            (None, Some(s)) => s.rows,
            _ => 0,
        };
        let segment_name = match fresh {
            Some(name) => {
                new_segment(&dir.join(&name))?;
                events.push(name.clone());
                name
            }
            None => segment_name,
        };
        let segment_path = dir.join(&segment_name);
        let mut file = OpenOptions::new()
            .append(true)
            .open(&segment_path)
            .map_err(|e| format!("{}: cannot open: {e}", segment_path.display()))?;
        let mut segment_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        if segment_bytes == 0 {
            let header = segment::member(format!("{HEADER}\n").as_bytes())
                .map_err(|e| format!("{}: {e}", segment_path.display()))?;
            file.write_all(&header)
                .and_then(|()| file.sync_data())
                .map_err(|e| format!("{}: cannot write: {e}", segment_path.display()))?;
            segment_bytes = header.len() as u64;
        }
        let mut batch = Vec::with_capacity(BATCH_BYTES + 4096);
        if let Some(s) = &scan
            && appendable
            && !s.ends_with_newline
        {
            batch.push(b'\n');
        }

        if let Some(info) = &exchange_info {
            write_atomic(&dir.join("exchangeinfo.json"), |w| {
                w.write_all(info.as_bytes())
            })?;
        }
        let source = manifest
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if source.is_empty() || source == SOURCE_EMPTY {
            manifest.insert("source".into(), Value::String(options.source.clone()));
        }
        let mut writer = DatasetWriter {
            dir: dir.to_path_buf(),
            manifest,
            symbols: all,
            events,
            file,
            segment_bytes,
            max_segment_bytes: options.max_segment_bytes.max(1),
            batch,
            start_ms,
            last_ts_ms,
            rows: 0,
            _lock: lock,
        };
        writer.checkpoint()?;
        Ok((
            writer,
            Resume {
                last_ts_ms,
                rows_in_segment,
                repaired,
                segment: segment_path,
            },
        ))
    }

    /// Queues one row; returns the `ts_ms` written (`ts_ms` raised to the last row's time when
    /// it is behind). Rows reach the disk on [`DatasetWriter::flush`] or once 256 KiB are
    /// queued.
    ///
    /// # Errors
    /// A symbol the dataset does not list, a crossed quote, or an IO problem.
    pub fn push(&mut self, ts_ms: i64, symbol: &Symbol, kind: &EventKind) -> Result<i64, String> {
        if !self.symbols.contains(symbol) {
            return Err(format!(
                "capture: {symbol} is not one of the dataset's symbols"
            ));
        }
        let ts = self.last_ts_ms.map_or(ts_ms, |last| ts_ms.max(last));
        let line = match kind {
            EventKind::Quote {
                bid,
                bid_qty,
                ask,
                ask_qty,
            } => {
                if bid > ask {
                    return Err(format!("capture: crossed {symbol} quote {bid} > {ask}"));
                }
                format!(
                    "{ts},{symbol},Q,{},{},{},{},,,\n",
                    bid.value().normalize(),
                    bid_qty.value().normalize(),
                    ask.value().normalize(),
                    ask_qty.value().normalize()
                )
            }
            EventKind::Trade { price, qty, side } => format!(
                "{ts},{symbol},T,,,,,{},{},{}\n",
                price.value().normalize(),
                qty.value().normalize(),
                side.map_or("", |s| s.as_str())
            ),
        };
        self.batch.extend_from_slice(line.as_bytes());
        self.start_ms.get_or_insert(ts);
        self.last_ts_ms = Some(ts);
        self.rows += 1;
        if self.batch.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(ts)
    }

    /// Writes the queued rows as one gzip member and syncs it to disk; starts a new events file
    /// when this one has grown past the limit.
    ///
    /// # Errors
    /// An IO problem.
    pub fn flush(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let path = self.segment_path();
        let fail = |e: std::io::Error| format!("{}: cannot write: {e}", path.display());
        let bytes = segment::member(&self.batch).map_err(fail)?;
        self.file.write_all(&bytes).map_err(fail)?;
        self.file.sync_data().map_err(fail)?;
        self.batch.clear();
        self.segment_bytes += bytes.len() as u64;
        if self.segment_bytes >= self.max_segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes the manifest with the span so far (after flushing, so it never claims rows that
    /// are not on disk).
    ///
    /// # Errors
    /// An IO problem.
    pub fn checkpoint(&mut self) -> Result<(), String> {
        self.flush()?;
        let names: Vec<&str> = self.symbols.iter().map(Symbol::as_str).collect();
        self.manifest
            .insert("format".into(), json!(MANIFEST_FORMAT));
        self.manifest.insert("symbols".into(), json!(names));
        self.manifest
            .insert("start_ms".into(), json!(self.start_ms));
        self.manifest
            .insert("end_ms".into(), json!(self.last_ts_ms));
        self.manifest.insert("events".into(), json!(self.events));
        write_manifest(&self.dir, &Value::Object(self.manifest.clone()))
    }

    /// Flushes, syncs and writes the final manifest; returns the rows this writer added.
    ///
    /// # Errors
    /// An IO problem.
    pub fn finish(mut self) -> Result<u64, String> {
        self.checkpoint()?;
        Ok(self.rows)
    }

    /// Rows queued or written by this writer.
    pub fn rows(&self) -> u64 {
        self.rows
    }
    pub fn span(&self) -> (Option<i64>, Option<i64>) {
        (self.start_ms, self.last_ts_ms)
    }
    /// The events files, in reading order.
    pub fn events(&self) -> &[String] {
        &self.events
    }

    fn segment_path(&self) -> PathBuf {
        self.dir
            .join(self.events.last().map_or(FIRST_EVENTS, String::as_str))
    }

    fn rotate(&mut self) -> Result<(), String> {
        let name = next_segment_name(&self.dir, &self.events);
        let path = self.dir.join(&name);
        new_segment(&path)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
        self.segment_bytes = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        self.events.push(name);
        self.checkpoint()
    }
}

/// Scans `path` and cuts off an unfinished write at its end. Returns the scan of what is kept
/// and, when something was cut, a one-line account.
fn repair(path: &Path) -> Result<(Scan, Option<String>), String> {
    let scan = segment::scan(path)?;
    let Some(why) = &scan.damage else {
        return Ok((scan, None));
    };
    let tail = scan.tail_bytes();
    if tail > MAX_REPAIR_BYTES {
        return Err(format!(
            "{}: unreadable from byte {} on ({tail} bytes: {why}); that is more than an \
             interrupted capture leaves, so it is not cut off: restore the file or move it aside",
            path.display(),
            scan.good_bytes
        ));
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    file.set_len(scan.good_bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: cannot truncate: {e}", path.display()))?;
    let note = format!(
        "{}: cut off an unfinished write of {tail} bytes at its end ({why}); the {} rows \
         before it are kept",
        path.display(),
        scan.rows
    );
    Ok((
        Scan {
            file_bytes: scan.good_bytes,
            damage: None,
            ..scan
        },
        Some(note),
    ))
}

/// `text` cut down to `symbols`, each of which must have an entry.
fn checked_exchange_info(text: &str, symbols: &[Symbol]) -> Result<String, String> {
    let what = "the venue's exchangeinfo";
    let filtered = filter_exchange_info(text, what, symbols)?;
    let specs = parse_exchange_info(&filtered).map_err(|e| format!("{what}: {e}"))?;
    match symbols
        .iter()
        .find(|s| !specs.iter().any(|spec| &spec.symbol == *s))
    {
        Some(missing) => Err(format!("{what} has no entry for {missing}")),
        None => Ok(filtered),
    }
}

/// Takes `dir/.capture.lock`, or says that another capture is running.
fn lock(dir: &Path) -> Result<File, String> {
    let path = dir.join(".capture.lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(format!(
            "{}: another capture is writing this dataset",
            dir.display()
        )),
        Err(TryLockError::Error(e)) => Err(format!("{}: cannot lock: {e}", path.display())),
    }
}

/// A new events file holding the header member (written through a `.tmp` and renamed).
fn new_segment(path: &Path) -> Result<(), String> {
    let header = segment::member(format!("{HEADER}\n").as_bytes()).map_err(|e| format!("{e}"))?;
    write_atomic(path, |w| w.write_all(&header))
}

/// `events-0002.csv.gz`, `events-0003.csv.gz`, ...: the first free name after the listed files.
fn next_segment_name(dir: &Path, events: &[String]) -> String {
    (events.len() + 1..)
        .map(|n| format!("events-{n:04}.csv.gz"))
        .find(|n| !events.contains(n) && !dir.join(n).exists())
        .unwrap_or_else(|| "events-overflow.csv.gz".to_string())
}

fn read_manifest(path: &Path) -> Result<Map<String, Value>, String> {
    let err = |m: String| format!("{}: {m}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let root: Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = root else {
        return Err(err("not a JSON object".into()));
    };
    match map.get("format").and_then(Value::as_str) {
        Some(MANIFEST_FORMAT) => Ok(map),
        other => Err(err(format!(
            "format: {other:?}; expected \"{MANIFEST_FORMAT}\""
        ))),
    }
}

fn strings(map: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    map.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{key}: missing or not an array"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{key}: not a string: {v}"))
        })
        .collect()
}

fn write_manifest(dir: &Path, manifest: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())? + "\n";
    write_atomic(&dir.join("manifest.json"), |w| w.write_all(text.as_bytes()))
}
