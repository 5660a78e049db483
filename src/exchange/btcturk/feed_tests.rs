//! Unit tests of the feed's pure parts: frame parsing (the reference socket payloads), the book
//! (diffs by price, removal, the `CS` chain) and the reconnect pacer.

use super::book::{BookFrame, DiffError, Frame, FrameError, LocalBook, Row, parse_frame};
use super::conn::Pacer;
use crate::domain::{Side, Symbol};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;
use tokio::time::Instant;

const ORDERBOOK: &str =
    include_str!("../../../fixtures/sim/payloads/trcrypto/socket-orderbook.json");
const TICKER: &str = include_str!("../../../fixtures/sim/payloads/trcrypto/socket-ticker.json");
const TICKER_ALL: &str =
    include_str!("../../../fixtures/sim/payloads/trcrypto/socket-ticker-all.json");
const TRADES: &str = include_str!("../../../fixtures/sim/payloads/trcrypto/socket-trades.json");

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(text: &str) -> Frame {
    parse_frame(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn book_of(text: &str) -> BookFrame {
    match parse(text) {
        Frame::Snapshot(f) | Frame::Diff(f) => f,
        other => panic!("not a book frame: {other:?}"),
    }
}

fn diff(cs: u64, asks: &[(u64, &str, &str)], bids: &[(u64, &str, &str)]) -> BookFrame {
    let rows = |v: &[(u64, &str, &str)]| {
        v.iter()
            .map(|(cp, p, a)| Row {
                price: d(p),
                amount: d(a),
                cp: Some(*cp),
            })
            .collect()
    };
    BookFrame {
        symbol: sym("BTCTRY"),
        channel: "obdiff".into(),
        cs,
        asks: rows(asks),
        bids: rows(bids),
    }
}

fn top(b: &LocalBook) -> (Decimal, Decimal, Decimal, Decimal) {
    let (bid, ask) = (b.best_bid().unwrap(), b.best_ask().unwrap());
    (bid.price, bid.qty, ask.price, ask.qty)
}

#[test]
fn the_reference_snapshot_parses_into_a_book() {
    let f = book_of(ORDERBOOK);
    assert_eq!((f.symbol.as_str(), f.cs), ("BTCTRY", 2_721_198));
    assert_eq!(f.channel, "orderbook");
    assert_eq!(f.asks[0].price, d("3780992"));
    assert_eq!(f.asks[0].amount, d("0.0496469"));
    assert_eq!(f.asks[0].cp, None);
    let mut b = LocalBook::default();
    b.reset(&f);
    assert_eq!(
        top(&b),
        (d("3779950"), d("0.02538711"), d("3780992"), d("0.0496469"))
    );
    assert_eq!(b.bids(5).len(), 2);
    assert_eq!(b.asks(1)[0].price, d("3780992"));
    assert_eq!(b.bids(5)[1].price, d("3779000"), "bids best first");
    assert_eq!(b.cs(), Some(2_721_198));
}

#[test]
fn the_reference_ticker_and_trades_parse() {
    let Frame::Ticker(t) = parse(TICKER) else {
        panic!("not a ticker");
    };
    assert_eq!(
        (t.symbol.as_str(), t.bid, t.ask),
        ("BTCTRY", d("3779950"), d("3781912"))
    );
    assert_eq!(
        (t.bid_qty, t.ask_qty),
        (Some(d("0.00092482")), Some(d("0.02976469")))
    );
    assert_eq!(t.last, Some(d("3780291")));
    assert_eq!(t.volume, Some(d("31.53834999")));

    let Frame::TradeList { symbol, trades } = parse(TRADES) else {
        panic!("not a trade list");
    };
    assert_eq!(symbol.as_str(), "BTCTRY");
    assert_eq!(trades.len(), 2);
    assert_eq!(
        trades[0].id, "100163842129199947",
        "ids above 2^53 stay exact"
    );
    assert_eq!(
        (trades[0].side, trades[1].side),
        (Some(Side::Sell), Some(Side::Buy))
    );
    assert_eq!(trades[1].ts_ms, 1_787_692_476_997);
    assert_eq!(trades[1].price, d("3766459"));
    let print = trades[1].print().unwrap();
    assert_eq!(print.qty.value(), d("0.0061489328"));

    // 401 is a known model the feed does not use.
    assert_eq!(parse(TICKER_ALL), Frame::Other(401));
}

#[test]
fn control_frames_parse() {
    assert_eq!(
        parse(r#"[991,{"type":991,"current":"6.0.0","min":"2.3.0"}]"#),
        Frame::Hello
    );
    assert_eq!(
        parse(r#"[100,{"type":100,"ok":true,"message":"join|obdiff:BTCUSDT"}]"#),
        Frame::Ack {
            ok: true,
            message: "join|obdiff:BTCUSDT".into()
        }
    );
    let single = r#"[422,{"PS":"BTCTRY","A":"0.01","D":"1787692476996","P":"3765490",
        "I":"100163842129199947","S":1,"channel":"trade","event":"BTCTRY","type":422}]"#;
    let Frame::Trade { symbol, trade } = parse(single) else {
        panic!("not a trade");
    };
    assert_eq!((symbol.as_str(), trade.side), ("BTCTRY", Some(Side::Buy)));
    assert_eq!(parse(r#"[801,{"type":801}]"#), Frame::Other(801));
}

#[test]
fn garbage_and_malformed_frames_are_errors_not_panics() {
    for text in [
        "",
        "not json",
        "{}",
        "[]",
        "[\"x\",{}]",
        "[-1,{}]",
        "[432]",
        "[432,5]",
        "<html>502</html>",
        "[432,{\"CS\":1",
    ] {
        assert!(parse_frame(text).is_err(), "{text:?} parsed");
    }
    let cases = [
        r#"[432,{"PS":"BTCTRY","AO":[],"BO":[]}]"#,
        r#"[432,{"PS":"BTCTRY","CS":"x","AO":[],"BO":[]}]"#,
        r#"[432,{"PS":"BTCTRY","CS":-3,"AO":[],"BO":[]}]"#,
        r#"[432,{"PS":"BTCTRY","CS":5,"AO":[{"CP":0,"P":"abc","A":"1"}],"BO":[]}]"#,
        r#"[432,{"PS":"BTCTRY","CS":5,"AO":[{"CP":0,"P":"1"}],"BO":[]}]"#,
        r#"[432,{"PS":"BTCTRY","CS":5,"AO":{},"BO":[]}]"#,
        r#"[432,{"PS":"BTCTRY","CS":5,"AO":[{"CP":"new","P":"1","A":"1"}]}]"#,
        r#"[432,{"PS":"BTCTRY","CS":5,"BO":[{"CP":0,"P":"-1","A":"1"}]}]"#,
        r#"[431,{"PS":"BTCTRY","CS":5,"BO":[7]}]"#,
    ];
    for text in cases {
        match parse_frame(text) {
            Err(FrameError::Malformed {
                symbol: Some(s), ..
            }) => assert_eq!(s.as_str(), "BTCTRY"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(matches!(
        parse_frame(r#"[432,{"CS":5,"AO":[],"BO":[]}]"#),
        Err(FrameError::Malformed { symbol: None, .. })
    ));
    assert!(parse_frame(r#"[402,{"PS":"BTCTRY","A":"1"}]"#).is_err());
}

#[test]
fn diffs_apply_by_price_and_remove_at_zero_or_cp3() {
    let mut b = LocalBook::default();
    b.reset(&book_of(ORDERBOOK));
    // A new best bid, an update of an ask, a removal by CP 3 (amount still present).
    b.apply_diff(&diff(
        2_721_199,
        &[(0, "3780992", "0.5")],
        &[(1, "3779960", "0.2"), (3, "3779000", "0.1")],
    ))
    .unwrap();
    assert_eq!(top(&b), (d("3779960"), d("0.2"), d("3780992"), d("0.5")));
    assert_eq!(b.depth(), (2, 2));
    // Amount 0 removes the level whatever CP says; a new far ask is kept by price.
    b.apply_diff(&diff(
        2_721_200,
        &[(0, "3780992", "0"), (1, "3790000", "1")],
        &[],
    ))
    .unwrap();
    assert_eq!(b.best_ask().unwrap().price, d("3781380"));
    assert_eq!(b.asks(5).len(), 2);
    // Removing a level that is not there is harmless.
    b.apply_diff(&diff(2_721_201, &[(3, "1", "1")], &[]))
        .unwrap();
    assert_eq!(b.cs(), Some(2_721_201));
    // Prices compare as numbers: "3779960.0" is the same level.
    b.apply_diff(&diff(2_721_202, &[], &[(0, "3779960.0", "0.3")]))
        .unwrap();
    assert_eq!(b.best_bid().unwrap().qty, d("0.3"));
    assert_eq!(b.depth().0, 2);
}

#[test]
fn a_cs_gap_or_a_diff_before_a_snapshot_invalidates_the_book() {
    let mut b = LocalBook::default();
    assert_eq!(b.apply_diff(&diff(1, &[], &[])), Err(DiffError::NoSnapshot));
    b.reset(&book_of(ORDERBOOK));
    let before = top(&b);
    assert_eq!(
        b.apply_diff(&diff(2_721_200, &[(0, "3780992", "9")], &[])),
        Err(DiffError::Gap {
            expected: 2_721_199,
            got: 2_721_200
        })
    );
    assert!(!b.is_synced());
    assert_eq!(top(&b), before, "a rejected diff is not applied");
    // Nothing applies until a new snapshot, even the diff that would have been next.
    assert_eq!(
        b.apply_diff(&diff(2_721_199, &[], &[])),
        Err(DiffError::NoSnapshot)
    );
    let mut fresh = book_of(ORDERBOOK);
    fresh.cs = 500;
    b.reset(&fresh);
    assert!(b.is_synced());
    assert!(b.apply_diff(&diff(500, &[], &[])).is_err(), "a repeated CS");
    b.reset(&fresh);
    b.apply_diff(&diff(501, &[], &[])).unwrap();
    b.invalidate();
    assert_eq!(b.cs(), None);
}

#[test]
fn a_snapshot_replaces_the_whole_book() {
    let mut b = LocalBook::default();
    b.reset(&book_of(ORDERBOOK));
    let other = r#"[431,{"CS":7,"PS":"BTCTRY","AO":[{"A":"1","P":"200"}],
        "BO":[{"A":"2","P":"100"},{"A":"0","P":"99"}],"channel":"obdiff","event":"BTCTRY","type":431}]"#;
    b.reset(&book_of(other));
    assert_eq!(top(&b), (d("100"), d("2"), d("200"), d("1")));
    assert_eq!(b.depth(), (1, 1), "zero amounts are not levels");
}

#[test]
fn the_pacer_backs_off_and_caps_connects_per_minute() {
    let min = Duration::from_secs(4);
    let mut p = Pacer::new(min, Duration::from_secs(30), 15);
    let t0 = Instant::now();
    p.attempt(t0);
    assert_eq!(p.next_after(t0, true), t0 + min, "healthy: the minimum");
    assert_eq!(p.next_after(t0, false), t0 + min);
    assert_eq!(p.next_after(t0, false), t0 + 2 * min);
    assert_eq!(p.next_after(t0, false), t0 + 4 * min);
    assert_eq!(p.next_after(t0, false), t0 + Duration::from_secs(30));
    assert_eq!(p.next_after(t0, true), t0 + min, "reset by a healthy run");

    // 15 attempts within a minute: the 16th waits until the first is a minute old.
    let mut p = Pacer::new(Duration::from_millis(100), Duration::from_millis(100), 15);
    let mut now = t0;
    for _ in 0..15 {
        p.attempt(now);
        now = p.next_after(now, false);
    }
    assert_eq!(now, t0 + Duration::from_secs(60));
    p.attempt(now);
    let next = p.next_after(now, false);
    assert_eq!(
        next,
        t0 + Duration::from_millis(100) + Duration::from_secs(60)
    );
}
