//! The dataset writer against real files: init, append, resume, and what is left after a kill.

use super::segment::{self, HEADER};
use super::writer::{DatasetWriter, FIRST_EVENTS, WriterOptions, init_dataset};
use crate::domain::{Price, Qty, Side, Symbol};
use crate::exchange::exchange_info::bundled_exchange_info;
use crate::exchange::replay::{EventKind, ReplayEvent, open_dataset};
use rust_decimal::Decimal;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn quote(bid: &str, ask: &str) -> EventKind {
    let p = |s: &str| Price::new(Decimal::from_str(s).unwrap()).unwrap();
    EventKind::Quote {
        bid: p(bid),
        bid_qty: Qty::new(Decimal::from_str("0.5").unwrap()).unwrap(),
        ask: p(ask),
        ask_qty: Qty::new(Decimal::from_str("0.25").unwrap()).unwrap(),
    }
}

fn trade(price: &str) -> EventKind {
    EventKind::Trade {
        price: Price::new(Decimal::from_str(price).unwrap()).unwrap(),
        qty: Qty::new(Decimal::from_str("0.01").unwrap()).unwrap(),
        side: Some(Side::Buy),
    }
}

fn options() -> WriterOptions {
    WriterOptions {
        source: "test capture".into(),
        exchange_info: Some(bundled_exchange_info().to_string()),
        max_segment_bytes: 1 << 30,
    }
}

fn open(dir: &Path, symbols: &[&str]) -> (DatasetWriter, super::Resume) {
    let symbols: Vec<Symbol> = symbols.iter().map(|s| sym(s)).collect();
    DatasetWriter::open(dir, &symbols, &options()).unwrap()
}

/// Every event of the dataset, read through the replay reader (which validates each row).
fn read_all(dir: &Path) -> Vec<ReplayEvent> {
    let ds = open_dataset(dir).unwrap_or_else(|e| panic!("{e}"));
    ds.events()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A fresh init'd dataset with `n` BTCTRY quotes at 1000, 1001, ... finished cleanly.
fn dataset_with(n: i64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    init_dataset(tmp.path()).unwrap();
    let (mut w, _) = open(tmp.path(), &["BTCTRY"]);
    for i in 0..n {
        w.push(1000 + i, &sym("BTCTRY"), &quote("100", "101"))
            .unwrap();
    }
    w.finish().unwrap();
    tmp
}

#[test]
fn init_makes_an_empty_dataset_and_refuses_a_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    init_dataset(&dir).unwrap();
    let m = manifest(&dir);
    assert_eq!(m["format"], "btcbot-replay/1");
    assert_eq!(m["events"], serde_json::json!([FIRST_EVENTS]));
    assert_eq!(m["symbols"], serde_json::json!([]));
    let s = segment::scan(&dir.join(FIRST_EVENTS)).unwrap();
    assert_eq!((s.header.as_deref(), s.rows), (Some(HEADER), 0));

    let err = init_dataset(&dir).unwrap_err();
    assert!(err.contains("not empty") && !err.contains('\n'), "{err}");
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(init_dataset(&file).unwrap_err().contains("not a directory"));
    // An empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    init_dataset(&empty).unwrap();
}

#[test]
fn capture_needs_an_initialised_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let err = DatasetWriter::open(tmp.path(), &[sym("BTCTRY")], &options())
        .err()
        .unwrap();
    assert!(err.contains("replay init"), "{err}");
}

#[test]
fn rows_written_read_back_as_a_valid_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    init_dataset(tmp.path()).unwrap();
    let (mut w, resume) = open(tmp.path(), &["ETHTRY", "BTCTRY"]);
    assert_eq!(resume.last_ts_ms, None);
    w.push(5, &sym("BTCTRY"), &quote("100", "101")).unwrap();
    w.flush().unwrap();
    w.push(7, &sym("ETHTRY"), &trade("50.5")).unwrap();
    assert_eq!(w.finish().unwrap(), 2);

    let events = read_all(tmp.path());
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].ts_ms, &events[0].kind),
        (5, &quote("100", "101"))
    );
    assert_eq!((events[1].ts_ms, &events[1].kind), (7, &trade("50.5")));
    let m = manifest(tmp.path());
    assert_eq!(m["symbols"], serde_json::json!(["BTCTRY", "ETHTRY"]));
    assert_eq!(
        (m["start_ms"].as_i64(), m["end_ms"].as_i64()),
        (Some(5), Some(7))
    );
    assert_eq!(m["source"], "test capture");
    let info = std::fs::read_to_string(tmp.path().join("exchangeinfo.json")).unwrap();
    assert!(
        info.contains("ETHTRY") && !info.contains("AVAXTRY"),
        "filtered"
    );
}

#[test]
fn a_second_capture_continues_after_the_last_event_with_time_never_going_back() {
    let tmp = dataset_with(3);
    let (mut w, resume) = open(tmp.path(), &["BTCTRY", "ETHTRY"]);
    assert_eq!((resume.last_ts_ms, resume.rows_in_segment), (Some(1002), 3));
    assert!(resume.repaired.is_none());
    // This machine's clock is behind the dataset: the row is moved up to the last time.
    assert_eq!(w.push(900, &sym("ETHTRY"), &trade("51")).unwrap(), 1002);
    assert_eq!(w.push(2000, &sym("BTCTRY"), &trade("100")).unwrap(), 2000);
    w.finish().unwrap();

    let events = read_all(tmp.path());
    let times: Vec<i64> = events.iter().map(|e| e.ts_ms).collect();
    assert_eq!(times, [1000, 1001, 1002, 1002, 2000]);
    let m = manifest(tmp.path());
    assert_eq!(m["events"], serde_json::json!([FIRST_EVENTS]), "one file");
    assert_eq!(
        (m["start_ms"].as_i64(), m["end_ms"].as_i64()),
        (Some(1000), Some(2000))
    );
}

#[test]
fn a_killed_capture_loses_only_its_unfinished_write() {
    for cut in [1usize, 10, 25] {
        let tmp = dataset_with(2);
        // A capture that flushed one more row, then died halfway through writing the next
        // batch, before its manifest checkpoint.
        let (mut w, _) = open(tmp.path(), &["BTCTRY"]);
        w.push(3000, &sym("BTCTRY"), &quote("100", "102")).unwrap();
        w.flush().unwrap();
        drop(w);
        let member = segment::member(b"4000,BTCTRY,Q,100,1,103,1,,,\n").unwrap();
        let events = tmp.path().join(FIRST_EVENTS);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&events)
            .unwrap();
        f.write_all(&member[..cut.min(member.len() - 1)]).unwrap();
        drop(f);
        // The dataset as the kill left it does not read to the end.
        let ds = open_dataset(tmp.path()).unwrap();
        assert!(ds.events().unwrap().any(|e| e.is_err()), "cut {cut}");

        let (mut w, resume) = open(tmp.path(), &["BTCTRY"]);
        let note = resume.repaired.clone().unwrap_or_default();
        assert!(
            note.contains("unfinished write") && note.contains("3 rows"),
            "{note}"
        );
        assert_eq!(
            resume.last_ts_ms,
            Some(3000),
            "from the last row, not the old manifest"
        );
        w.push(5000, &sym("BTCTRY"), &quote("100", "104")).unwrap();
        w.finish().unwrap();
        let times: Vec<i64> = read_all(tmp.path()).iter().map(|e| e.ts_ms).collect();
        assert_eq!(times, [1000, 1001, 3000, 5000], "cut {cut}");
    }
}

#[test]
fn a_kill_before_the_header_was_written_starts_the_file_again() {
    let tmp = tempfile::tempdir().unwrap();
    init_dataset(tmp.path()).unwrap();
    let events = tmp.path().join(FIRST_EVENTS);
    let bytes = std::fs::read(&events).unwrap();
    std::fs::write(&events, &bytes[..5]).unwrap();
    let (mut w, resume) = open(tmp.path(), &["BTCTRY"]);
    assert!(resume.repaired.is_some());
    w.push(1, &sym("BTCTRY"), &quote("1", "2")).unwrap();
    w.finish().unwrap();
    assert_eq!(read_all(tmp.path()).len(), 1);
}

#[test]
fn damage_larger_than_a_crash_leaves_is_refused_untouched() {
    let tmp = dataset_with(1);
    let events = tmp.path().join(FIRST_EVENTS);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap();
    f.write_all(&vec![0x55u8; 2 * 1024 * 1024]).unwrap();
    drop(f);
    let before = std::fs::metadata(&events).unwrap().len();
    let err = DatasetWriter::open(tmp.path(), &[sym("BTCTRY")], &options())
        .err()
        .unwrap();
    assert!(err.contains("not cut off") && !err.contains('\n'), "{err}");
    assert_eq!(std::fs::metadata(&events).unwrap().len(), before);
}

#[test]
fn one_capture_per_dataset() {
    let tmp = dataset_with(0);
    let (_first, _) = open(tmp.path(), &["BTCTRY"]);
    let err = DatasetWriter::open(tmp.path(), &[sym("BTCTRY")], &options())
        .err()
        .unwrap();
    assert!(err.contains("another capture"), "{err}");
}

#[test]
fn a_symbol_the_venue_does_not_list_stops_before_anything_changes() {
    let tmp = dataset_with(1);
    let before = std::fs::read(tmp.path().join("manifest.json")).unwrap();
    let err = DatasetWriter::open(tmp.path(), &[sym("DOGETRY")], &options())
        .err()
        .unwrap();
    assert!(err.contains("no entry for DOGETRY"), "{err}");
    assert_eq!(
        std::fs::read(tmp.path().join("manifest.json")).unwrap(),
        before
    );
}

#[test]
fn large_captures_continue_in_numbered_files_read_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    init_dataset(tmp.path()).unwrap();
    let small = WriterOptions {
        max_segment_bytes: 100,
        ..options()
    };
    let (mut w, _) = DatasetWriter::open(tmp.path(), &[sym("BTCTRY")], &small).unwrap();
    for i in 0..5 {
        w.push(i, &sym("BTCTRY"), &trade("100")).unwrap();
        w.flush().unwrap();
    }
    w.finish().unwrap();
    let files = manifest(tmp.path())["events"].as_array().unwrap().len();
    assert!(files >= 3, "{files} files");
    let times: Vec<i64> = read_all(tmp.path()).iter().map(|e| e.ts_ms).collect();
    assert_eq!(times, [0, 1, 2, 3, 4]);
}

#[test]
fn a_dataset_ending_in_a_plain_csv_gets_a_new_gzip_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("events.csv"),
        "ts_ms,symbol,kind,bid,bid_qty,ask,ask_qty,price,qty,side\n10,BTCTRY,Q,1,1,2,1,,,",
    )
    .unwrap();
    let m = serde_json::json!({
        "format": "btcbot-replay/1", "symbols": ["BTCTRY"], "end_ms": 10,
        "events": ["events.csv"],
    });
    std::fs::write(tmp.path().join("manifest.json"), m.to_string()).unwrap();
    let (mut w, resume) = open(tmp.path(), &["BTCTRY"]);
    assert_eq!(resume.last_ts_ms, Some(10));
    w.push(20, &sym("BTCTRY"), &trade("1.5")).unwrap();
    w.finish().unwrap();
    assert_eq!(
        manifest(tmp.path())["events"],
        serde_json::json!(["events.csv", "events-0002.csv.gz"])
    );
    let times: Vec<i64> = read_all(tmp.path()).iter().map(|e| e.ts_ms).collect();
    assert_eq!(times, [10, 20]);
}

#[test]
fn rows_the_dataset_could_not_hold_are_errors() {
    let tmp = dataset_with(0);
    let (mut w, _) = open(tmp.path(), &["BTCTRY"]);
    assert!(w.push(1, &sym("ETHTRY"), &trade("1")).is_err());
    assert!(w.push(1, &sym("BTCTRY"), &quote("3", "2")).is_err());
    assert_eq!(w.rows(), 0);
}
