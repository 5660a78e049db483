use super::compact::*;
use super::compact_read::CompactReader;
use super::dataset::{EventKind, ReplayEvent, open_dataset};
use crate::domain::{Price, Qty, Side, Symbol};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

fn copy_of(rel: &str) -> (tempfile::TempDir, PathBuf) {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let to = tmp.path().join("ds");
    copy_tree(&from, &to);
    (tmp, to)
}

fn source_events(dir: &Path) -> Vec<ReplayEvent> {
    let ds = open_dataset(dir).unwrap_or_else(|e| panic!("{e}"));
    ds.source_events()
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn events(dir: &Path) -> Vec<Result<ReplayEvent, String>> {
    let ds = open_dataset(dir).unwrap_or_else(|e| panic!("{e}"));
    ds.events()
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|r| r.map_err(|e| e.to_string()))
        .collect()
}

fn compact(dir: &Path) -> CompactSummary {
    let ds = open_dataset(dir).unwrap_or_else(|e| panic!("{e}"));
    compact_dataset(&ds).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_copy_gives_the_very_events_of_the_csv() {
    for rel in [
        "data/replay/sample",
        "fixtures/replay/native_multi",
        "fixtures/replay/seed_basic",
    ] {
        let (_tmp, dir) = copy_of(rel);
        let from_csv = source_events(&dir);
        let summary = compact(&dir);
        assert_eq!(summary.events, from_csv.len() as u64, "{rel}");
        let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ds.copy_state(), &CopyState::Current, "{rel}");
        let from_copy: Vec<ReplayEvent> = events(&dir)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        // Equal as values and as text: the scale of every decimal is kept.
        assert_eq!(from_copy, from_csv, "{rel}");
        assert_eq!(format!("{from_copy:?}"), format!("{from_csv:?}"), "{rel}");
    }
}

#[test]
fn a_changed_data_file_makes_the_copy_stale_and_the_csv_is_read() {
    let (_tmp, dir) = copy_of("fixtures/replay/native_plain");
    compact(&dir);
    let csv = dir.join("events.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
    text.push_str("1767225600900,BTCTRY,Q,3500001,0.5,3500011,0.25,,,\n");
    std::fs::write(&csv, text).unwrap_or_else(|e| panic!("{e}"));
    let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ds.copy_state(), &CopyState::Stale);
    let read = events(&dir);
    assert_eq!(read.len(), source_events(&dir).len());
    assert!(
        read.last()
            .is_some_and(|e| e.as_ref().is_ok_and(|e| e.ts_ms == 1_767_225_600_900))
    );

    // Same size, other bytes, newer time: stale too.
    compact(&dir);
    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&csv, text.replace("3500011", "3500012")).unwrap_or_else(|e| panic!("{e}"));
    let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ds.copy_state(), &CopyState::Stale);
}

#[test]
fn a_damaged_copy_is_an_error_that_names_it_and_the_way_out() {
    let (_tmp, dir) = copy_of("data/replay/sample");
    compact(&dir);
    let bin = dir.join(COMPACT_FILE);
    let good = std::fs::read(&bin).unwrap_or_else(|e| panic!("{e}"));

    let mut flipped = good.clone();
    let at = good.len() / 2;
    flipped[at] ^= 0x10;
    std::fs::write(&bin, &flipped).unwrap_or_else(|e| panic!("{e}"));
    let last = events(&dir).pop().unwrap_or_else(|| panic!("no events"));
    let err = last.expect_err("a flipped byte must not replay");
    assert!(
        err.contains("events.bin") && err.contains("checksum mismatch"),
        "{err}"
    );
    assert!(err.contains("btcbot replay compact"), "{err}");

    std::fs::write(&bin, &good[..good.len() - 100]).unwrap_or_else(|e| panic!("{e}"));
    let err = events(&dir)
        .pop()
        .unwrap_or_else(|| panic!("no events"))
        .expect_err("a truncated copy must not replay");
    assert!(
        err.contains("events.bin") && err.contains("truncated"),
        "{err}"
    );

    // A header it cannot read (cut short, another format version) does not block the
    // dataset: the CSV is read, and `replay compact` replaces the copy.
    let mut other_version = good.clone();
    other_version[8] = 9;
    for (unusable, why) in [
        (&b"BTCBOTEV\x07"[..], "cut short in its header"),
        (&b""[..], "cut short in its header"),
        (
            &other_version[..],
            "format version 9, and this build reads version 2",
        ),
    ] {
        std::fs::write(&bin, unusable).unwrap_or_else(|e| panic!("{e}"));
        let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(ds.copy_state(), CopyState::Unusable(w) if w.contains(why)),
            "{:?}",
            ds.copy_state()
        );
        assert_eq!(events(&dir).len(), 20_000);
        compact(&dir);
        let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ds.copy_state(), &CopyState::Current);
    }
}

#[test]
fn a_same_size_rewrite_with_its_old_time_put_back_is_still_stale() {
    let (_tmp, dir) = copy_of("fixtures/replay/native_plain");
    let csv = dir.join("events.csv");
    compact(&dir);
    let mtime = std::fs::metadata(&csv)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&csv, text.replace("3500010", "3500011")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::File::options()
        .write(true)
        .open(&csv)
        .and_then(|f| f.set_modified(mtime))
        .unwrap_or_else(|e| panic!("{e}"));
    let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ds.copy_state(), &CopyState::Stale);
    let read = events(&dir);
    assert!(format!("{read:?}").contains("3500011"), "the CSV is read");
}

#[test]
fn extreme_times_and_mantissas_survive_the_copy() {
    let btc = Symbol::new("BTCTRY").unwrap_or_else(|e| panic!("{e}"));
    let max = Decimal::MAX;
    let tiny = Decimal::new(1, 28);
    let events: Vec<ReplayEvent> = [i64::MIN + 1, -5, 0, i64::MAX - 1, i64::MAX]
        .iter()
        .map(|&ts| ReplayEvent {
            ts_ms: ts,
            symbol: btc.clone(),
            kind: EventKind::Quote {
                bid: Price::new(tiny).unwrap_or_else(|e| panic!("{e}")),
                bid_qty: Qty::new(max).unwrap_or_else(|e| panic!("{e}")),
                ask: Price::new(max).unwrap_or_else(|e| panic!("{e}")),
                ask_qty: Qty::new(tiny).unwrap_or_else(|e| panic!("{e}")),
            },
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let header = CompactHeader {
        sources: Vec::new(),
        symbols: vec!["BTCTRY".into()],
    };
    let symbols = [btc];
    write_compact(
        tmp.path(),
        &header,
        &symbols,
        events.iter().cloned().map(Ok),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let back: Vec<ReplayEvent> = CompactReader::open(tmp.path(), &symbols)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(back, events);
}

/// The events of a copy holding one good event and then a block of `count` events made of
/// `payload`, with a matching checksum.
fn decode_crafted_block(payload: &[u8], count: u32) -> Vec<Result<ReplayEvent, String>> {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let symbols = [
        Symbol::new("BTCTRY").unwrap_or_else(|e| panic!("{e}")),
        Symbol::new("ETHTRY").unwrap_or_else(|e| panic!("{e}")),
    ];
    let header = CompactHeader {
        sources: Vec::new(),
        symbols: vec!["BTCTRY".into(), "ETHTRY".into()],
    };
    let good = ReplayEvent {
        ts_ms: 1_767_225_600_000,
        symbol: symbols[0].clone(),
        kind: EventKind::Trade {
            price: Price::new(Decimal::ONE).unwrap_or_else(|e| panic!("{e}")),
            qty: Qty::ZERO,
            side: None,
        },
    };
    write_compact(tmp.path(), &header, &symbols, std::iter::once(Ok(good)))
        .unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join(COMPACT_FILE);
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let end = bytes.split_off(bytes.len() - 12);
    bytes.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_le_bytes());
    bytes.extend_from_slice(&count.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&end);
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    CompactReader::open(tmp.path(), &symbols)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|r| r.map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn a_time_step_past_the_range_is_an_error_not_an_overflow() {
    // The zigzag varint of i128::MAX as the time step, then a trade.
    let mut payload = vec![0xFE];
    payload.extend([0xFF; 17]);
    payload.extend([0x03, 1, 0, 0, 1, 0, 0]);
    let read = decode_crafted_block(&payload, 1);
    let err = read
        .last()
        .and_then(|r| r.as_ref().err())
        .unwrap_or_else(|| panic!("{read:?}"));
    assert!(
        err.contains("events.bin: event 2: timestamp out of range"),
        "{err}"
    );
}

proptest! {
    /// Whatever a block holds, as long as its checksum matches (a buggy writer, a crafted
    /// file), decoding ends in events or an error that names the file, never a panic.
    #[test]
    fn any_checksummed_block_decodes_or_fails_cleanly(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        count in 1u32..20,
    ) {
        let read = decode_crafted_block(&payload, count);
        prop_assert!(read[0].is_ok());
        if let Some(Err(e)) = read.last() {
            prop_assert!(e.contains("events.bin"), "{}", e);
        }
    }
}

#[test]
fn a_bad_row_leaves_no_copy() {
    let (_tmp, dir) = copy_of("fixtures/replay/bad_rows");
    let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
    let err = compact_dataset(&ds).expect_err("a bad row");
    assert!(err.contains(':'), "{err}");
    assert!(!dir.join(COMPACT_FILE).exists());
    assert!(!dir.join("events.tmp").exists());
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (any::<i64>(), 0u32..=28, any::<bool>()).prop_map(|(m, scale, wide)| {
        let m = if wide {
            i128::from(m) << 30
        } else {
            i128::from(m % 100_000)
        };
        Decimal::try_from_i128_with_scale(m.abs(), scale).unwrap_or(Decimal::ONE)
    })
}

fn event(symbols: usize) -> impl Strategy<Value = (u8, i64, usize, [Decimal; 4], u8)> {
    (
        0u8..2,
        prop_oneof![0i64..5_000, 0i64..i64::MAX / 1_000],
        0..symbols,
        [decimal(), decimal(), decimal(), decimal()],
        0u8..3,
    )
}

proptest! {
    #[test]
    fn any_events_survive_the_copy(rows in proptest::collection::vec(event(3), 1..300)) {
        let symbols: Vec<Symbol> = ["AVAXTRY", "BTCTRY", "ETHTRY"]
            .iter()
            .map(|s| Symbol::new(s).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let positive = |d: Decimal| if d.is_zero() { Decimal::new(1, d.scale()) } else { d };
        let mut ts: i64 = 1_767_225_600_000;
        let mut evs = Vec::new();
        for (kind, dt, sym, [a, b, c, d], side) in rows {
            ts = ts.saturating_add(dt);
            let kind = if kind == 0 {
                let (bid, ask) = (positive(a.min(c)), positive(a.max(c)));
                let neg_zero = { let mut z = Decimal::new(0, b.scale()); z.set_sign_negative(true); z };
                EventKind::Quote {
                    bid: Price::new(bid).unwrap_or_else(|e| panic!("{e}")),
                    bid_qty: Qty::new(if side == 2 { neg_zero } else { b }).unwrap_or_else(|e| panic!("{e}")),
                    ask: Price::new(ask.max(bid)).unwrap_or_else(|e| panic!("{e}")),
                    ask_qty: Qty::new(d).unwrap_or_else(|e| panic!("{e}")),
                }
            } else {
                EventKind::Trade {
                    price: Price::new(positive(a)).unwrap_or_else(|e| panic!("{e}")),
                    qty: Qty::new(b).unwrap_or_else(|e| panic!("{e}")),
                    side: [None, Some(Side::Buy), Some(Side::Sell)][usize::from(side)],
                }
            };
            evs.push(ReplayEvent { ts_ms: ts, symbol: symbols[sym].clone(), kind });
        }
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let header = CompactHeader { sources: Vec::new(), symbols: symbols.iter().map(|s| s.as_str().to_string()).collect() };
        write_compact(tmp.path(), &header, &symbols, evs.iter().cloned().map(Ok))
            .unwrap_or_else(|e| panic!("{e}"));
        let back: Vec<ReplayEvent> = CompactReader::open(tmp.path(), &symbols)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        prop_assert_eq!(format!("{back:?}"), format!("{evs:?}"));
        prop_assert_eq!(back, evs);
    }
}
