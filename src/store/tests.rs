//! Store tests that cross repositories: open/migrate/lock, the cycle commit round trip and its
//! rollback, and corrupt values.

use super::*;
use crate::domain::{
    Anomaly, Fill, Intent, Mode, Order, OrderStatus, Price, Qty, Severity, Side, Symbol, Verdict,
};
use rust_decimal::Decimal;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn sym() -> Symbol {
    Symbol::new("BTCTRY").unwrap()
}

fn order(client_id: &str, status: OrderStatus, created_ms: i64) -> Order {
    Order {
        client_id: client_id.into(),
        exchange_id: Some("ex-1".into()),
        symbol: sym(),
        side: Side::Buy,
        price: Price::new(d("123456789.123456789")).unwrap(),
        qty: Qty::new(d("0.00000001")).unwrap(),
        filled_qty: Qty::ZERO,
        status,
        cycle_id: 1,
        created_ms,
        updated_ms: created_ms,
    }
}

fn fill(trade_id: &str) -> Fill {
    Fill {
        trade_id: trade_id.into(),
        client_order_id: "c-1".into(),
        symbol: sym(),
        side: Side::Sell,
        price: Price::new(d("2345678.90")).unwrap(),
        qty: Qty::new(d("0.00000001")).unwrap(),
        fee: d("-0.000000000000000001"),
        fee_asset: "TRY".into(),
        maker: true,
        ts_ms: 1_700_000_000_123,
    }
}

fn decision(verdict: Verdict, final_qty: Option<&str>) -> DecisionRecord {
    DecisionRecord {
        intent: Intent {
            symbol: sym(),
            side: Side::Buy,
            price: Price::new(d("123456789.123456789")).unwrap(),
            qty: Qty::new(d("0.50")).unwrap(),
            tag: "grid:1".into(),
        },
        verdict,
        final_qty: final_qty.map(|q| Qty::new(d(q)).unwrap()),
        action: "dry_run".into(),
        script: "risk.rhai".into(),
        function: "risk".into(),
        rule_hash: "abc123".into(),
        operations: u64::try_from(i64::MAX).unwrap(),
        eval_us: 17,
    }
}

fn record(cycle_id: i64) -> CycleRecord {
    CycleRecord {
        cycle_id,
        market_ts_ms: 1_700_000_000_000 + cycle_id,
        rule_hash: "abc123".into(),
        mode: Mode::ReduceOnly,
        mode_reasons: vec!["stale book".into(), "ünïcode \"quoted\"".into()],
        anomalies: vec![
            Anomaly {
                code: "STALE_BOOK".into(),
                severity: Severity::Warn,
                symbol: Some(sym()),
                detail: vec![
                    ("age_ms".into(), "5000".into()),
                    ("x".into(), "0.10".into()),
                ],
            },
            Anomaly {
                code: "API_ERRORS".into(),
                severity: Severity::Error,
                symbol: None,
                detail: vec![],
            },
        ],
        decisions: vec![
            decision(Verdict::Accept, Some("0.5")),
            decision(
                Verdict::Resize {
                    qty: Qty::new(d("0.00000001")).unwrap(),
                },
                Some("0.00000001"),
            ),
            decision(
                Verdict::Reject {
                    reason: "MAX_NOTIONAL".into(),
                },
                None,
            ),
        ],
        orders: vec![order("c-1", OrderStatus::Open, 10)],
        fills: vec![fill("t-1"), fill("t-2")],
        fill_cursor: u64::MAX,
        script_states: vec![("degrade".into(), r#"{"since":12,"mode":"halt"}"#.into())],
        equity: d("123456789.123456789"),
        realized_pnl: d("-0.00000001"),
        fees: d("0.000000000000000000000000001"),
        snapshot: Some(EquitySnapshot {
            cycle_id,
            ts_ms: 1_700_000_000_000 + cycle_id,
            cash: d("1000.10"),
            positions_value: d("123455789.023456789"),
            equity: d("123456789.123456789"),
            realized_pnl: d("-0.00000001"),
            unrealized_pnl: d("5.5"),
            fees: d("0.000000000000000000000000001"),
            peak_equity: d("123456800"),
            drawdown: d("10.876543211"),
            day_start_equity: d("123456000"),
            week_start_equity: d("120000000"),
            gross_exposure: d("123455789.023456789"),
            positions_json: r#"[{"symbol":"BTCTRY","qty":"1"}]"#.into(),
        }),
        shadow: Some(ShadowRecord {
            rule_hash: "cand".into(),
            mode: Mode::ObserveOnly,
            mode_reasons: vec!["DRAWDOWN_LIMIT".into()],
            decisions: vec![decision(
                Verdict::Reject {
                    reason: "MODE_OBSERVE_ONLY".into(),
                },
                None,
            )],
            would_place: 0,
        }),
        inputs: Some(CycleInputsRecord {
            markets_json: r#"[{"symbol":"BTCTRY"}]"#.into(),
            stats_json: "{}".into(),
            open_orders: 2,
        }),
        intents: 3,
        orders_placed: 1,
        orders_canceled: 0,
        eval_us: 250,
        fingerprint: "fp-1".into(),
    }
}

#[test]
fn migrations_apply_once_and_reopen_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/state.db");
    let store = Store::open(&path, Durability::Full).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::latest());
    assert_eq!(store.path(), Some(path.as_path()));
    drop(store);
    let mut store = Store::open(&path, Durability::Normal).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::latest());
    store.commit_cycle(&record(1)).unwrap();
    drop(store);
    let store = Store::open(&path, Durability::Normal).unwrap();
    assert_eq!(store.last_cycle_id().unwrap(), Some(1));
}

#[test]
fn wal_foreign_keys_and_synchronous_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), Durability::Full).unwrap();
    let q = |p: &str| -> String {
        store
            .conn
            .pragma_query_value(None, p, |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(q("journal_mode"), "Text(\"wal\")");
    assert_eq!(q("foreign_keys"), "Integer(1)");
    assert_eq!(q("synchronous"), "Integer(2)"); // FULL
    let mem = Store::open_in_memory().unwrap();
    let fk: i64 = mem
        .conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn second_open_is_locked_until_the_first_drops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let first = Store::open(&path, Durability::Normal).unwrap();
    let err = Store::open(&path, Durability::Normal).unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { holder_pid: Some(pid), .. } if *pid == std::process::id()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database {} is in use by another btcbot (pid {})",
            path.display(),
            std::process::id()
        )
    );
    drop(first);
    assert!(Store::open(&path, Durability::Normal).is_ok());
}

#[test]
fn commit_cycle_round_trips_every_field() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.last_cycle_id().unwrap(), None);
    assert_eq!(store.fill_cursor().unwrap(), 0);
    let rec = record(7);
    store.commit_cycle(&rec).unwrap();

    assert_eq!(store.last_cycle_id().unwrap(), Some(7));
    let cycles = store.cycles().unwrap();
    assert_eq!(
        cycles,
        vec![CycleRow {
            cycle_id: 7,
            market_ts_ms: rec.market_ts_ms,
            rule_hash: rec.rule_hash.clone(),
            mode: rec.mode,
            mode_reasons: rec.mode_reasons.clone(),
            anomalies: 2,
            intents: 3,
            orders_placed: 1,
            orders_canceled: 0,
            equity: rec.equity,
            realized_pnl: rec.realized_pnl,
            fees: rec.fees,
            fingerprint: rec.fingerprint.clone(),
        }]
    );
    // Exact text, scale included: nothing went through f64.
    assert_eq!(cycles[0].equity.to_string(), "123456789.123456789");
    assert_eq!(cycles[0].realized_pnl.to_string(), "-0.00000001");
    assert_eq!(cycles[0].fees.to_string(), "0.000000000000000000000000001");
    assert_eq!(store.cycle_eval_us(7).unwrap(), Some(250));
    assert_eq!(store.cycle_eval_us(8).unwrap(), None);

    let anomalies: Vec<Anomaly> = store
        .anomalies(Some(7))
        .unwrap()
        .into_iter()
        .map(|a| a.anomaly)
        .collect();
    assert_eq!(anomalies, rec.anomalies);
    assert_eq!(store.decision_records(7).unwrap(), rec.decisions);

    let rows = store.decisions(Some(7)).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].seq, 1);
    assert_eq!(rows[1].verdict, "resize");
    assert_eq!(rows[1].reason_code, "RESIZE");
    assert_eq!(rows[2].reason_code, "MAX_NOTIONAL");
    assert_eq!(rows[2].final_qty, None);
    assert_eq!(rows[0].price.to_string(), "123456789.123456789");
    assert_eq!(rows[0].qty.to_string(), "0.50");
    assert_eq!(rows[0].operations, u64::try_from(i64::MAX).unwrap());
    assert_eq!(store.decisions(None).unwrap(), rows);
    assert!(store.decisions(Some(99)).unwrap().is_empty());

    assert_eq!(store.orders().unwrap(), rec.orders);
    assert_eq!(store.open_orders().unwrap(), rec.orders);
    assert_eq!(store.fills().unwrap(), rec.fills);
    assert_eq!(
        store.fills().unwrap()[0].fee.to_string(),
        "-0.000000000000000001"
    );
    assert_eq!(store.fill_cursor().unwrap(), u64::MAX);
    assert_eq!(store.script_states().unwrap(), rec.script_states);
    assert_eq!(store.last_equity_snapshot().unwrap(), rec.snapshot);
    let shadow = store.shadow_cycles().unwrap();
    assert_eq!(shadow.len(), 1);
    assert_eq!(shadow[0].mode, Mode::ObserveOnly);
    assert_eq!(shadow[0].mode_reasons, vec!["DRAWDOWN_LIMIT".to_string()]);
    assert_eq!(shadow[0].intents, 1);
    let shadow_rows = store.shadow_decisions(Some(7)).unwrap();
    assert_eq!(shadow_rows.len(), 1);
    assert_eq!(shadow_rows[0].reason_code, "MODE_OBSERVE_ONLY");
    assert_eq!(store.cycle_inputs(7).unwrap(), rec.inputs);
    assert_eq!(store.cycle_inputs(8).unwrap(), None);
    assert_eq!(
        store.equity_snapshots().unwrap(),
        rec.snapshot.into_iter().collect::<Vec<_>>()
    );
}

#[test]
fn failed_commit_rolls_back_the_whole_cycle() {
    let mut store = Store::open_in_memory().unwrap();
    store.commit_cycle(&record(1)).unwrap();
    let before = store.table_counts().unwrap();

    let mut dup = record(1);
    dup.fills = vec![fill("t-new")];
    dup.fill_cursor = 5;
    let err = store.commit_cycle(&dup).unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateCycle { cycle_id: 1 }),
        "{err:?}"
    );

    // A failure late in the transaction (bad script state after rows were written).
    let mut bad = record(2);
    bad.fills = vec![fill("t-other")];
    bad.orders = vec![order("c-2", OrderStatus::Submitting, 20)];
    bad.script_states = vec![("risk".into(), "{not json".into())];
    bad.fill_cursor = 6;
    let err = store.commit_cycle(&bad).unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");

    assert_eq!(store.table_counts().unwrap(), before);
    assert_eq!(store.last_cycle_id().unwrap(), Some(1));
    assert_eq!(store.fill_cursor().unwrap(), u64::MAX);
    assert!(store.order("c-2").unwrap().is_none());
}

#[test]
fn duplicate_fill_trade_id_is_skipped() {
    let mut store = Store::open_in_memory().unwrap();
    store.commit_cycle(&record(1)).unwrap();
    let mut next = record(2);
    let mut changed = fill("t-1");
    changed.qty = Qty::new(d("9")).unwrap();
    next.fills = vec![changed, fill("t-3")];
    store.commit_cycle(&next).unwrap();
    let ids: Vec<String> = store
        .fills()
        .unwrap()
        .into_iter()
        .map(|f| f.trade_id)
        .collect();
    assert_eq!(ids, ["t-1", "t-2", "t-3"]);
    // The first record of t-1 stands.
    assert_eq!(store.fills().unwrap()[0], fill("t-1"));
}

#[test]
fn order_upsert_updates_status_and_refuses_identity_change() {
    let mut store = Store::open_in_memory().unwrap();
    store.commit_cycle(&record(1)).unwrap();
    let mut o = order("c-1", OrderStatus::PartiallyFilled, 10);
    o.filled_qty = Qty::new(d("0.000000005")).unwrap();
    o.updated_ms = 99;
    let mut next = record(2);
    next.fills.clear();
    next.orders = vec![o.clone(), order("c-9", OrderStatus::Filled, 11)];
    store.commit_cycle(&next).unwrap();
    assert_eq!(store.order("c-1").unwrap(), Some(o.clone()));
    assert_eq!(store.orders().unwrap().len(), 2);
    assert_eq!(store.open_orders().unwrap(), vec![o.clone()]);

    // The outbox path, outside a cycle.
    let mut done = o.clone();
    done.status = OrderStatus::Filled;
    store.upsert_orders(&[done.clone()]).unwrap();
    assert!(store.open_orders().unwrap().is_empty());

    let mut other = done.clone();
    other.price = Price::new(d("1")).unwrap();
    let err = store.upsert_orders(&[other]).unwrap_err();
    assert!(
        matches!(err, StoreError::OrderConflict { field: "price", .. }),
        "{err:?}"
    );
    // Numerically equal price with another scale is the same order.
    let mut same = done.clone();
    same.price = Price::new(d("123456789.1234567890")).unwrap();
    store.upsert_orders(&[same]).unwrap();
}

#[test]
fn reloads_round_trip() {
    let mut store = Store::open_in_memory().unwrap();
    let good = ReloadRecord {
        ts_ms: 1,
        rule_hash: Some("h1".into()),
        ok: true,
        error: None,
    };
    let bad = ReloadRecord {
        ts_ms: 2,
        rule_hash: None,
        ok: false,
        error: Some("risk.rhai:3: syntax error".into()),
    };
    store.record_reload(&good).unwrap();
    store.record_reload(&bad).unwrap();
    assert_eq!(store.reloads().unwrap(), vec![good, bad]);
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let mut store = Store::open_in_memory().unwrap();
    store.commit_cycle(&record(1)).unwrap();
    let corrupt =
        |sql: &str, table: &str, column: &str, result: Result<(), StoreError>| match result {
            Err(StoreError::Corrupt {
                table: t,
                column: c,
                ..
            }) => {
                assert_eq!((t, c), (table, column), "{sql}")
            }
            other => panic!("{sql}: expected Corrupt, got {other:?}"),
        };
    type Reader = fn(&Store) -> Result<(), StoreError>;
    let cases: [(&str, &str, &str, Reader); 9] = [
        (
            "UPDATE cycles SET equity = 'abc'",
            "cycles",
            "equity",
            |s| s.cycles().map(drop),
        ),
        ("UPDATE cycles SET mode = 'wild'", "cycles", "mode", |s| {
            s.cycles().map(drop)
        }),
        (
            "UPDATE cycles SET mode_reasons = '{'",
            "cycles",
            "mode_reasons",
            |s| s.cycles().map(drop),
        ),
        ("UPDATE fills SET price = '-1'", "fills", "price", |s| {
            s.fills().map(drop)
        }),
        (
            "UPDATE orders SET status = 'lost'",
            "orders",
            "status",
            |s| s.orders().map(drop),
        ),
        (
            "UPDATE orders SET symbol = 'BTC TRY'",
            "orders",
            "symbol",
            |s| s.open_orders().map(drop),
        ),
        (
            "UPDATE decisions SET final_qty = '1e5x'",
            "decisions",
            "final_qty",
            |s| s.decisions(None).map(drop),
        ),
        ("UPDATE meta SET value = 'many'", "meta", "value", |s| {
            s.fill_cursor().map(drop)
        }),
        (
            "UPDATE script_state SET json = '{'",
            "script_state",
            "json",
            |s| s.script_states().map(drop),
        ),
    ];
    for (sql, table, column, read) in cases {
        // The readers share the connection, so they see the open transaction's write.
        let tx = store.conn.unchecked_transaction().unwrap();
        tx.execute(sql, []).unwrap();
        corrupt(sql, table, column, read(&store));
        drop(tx); // roll back, so each case sees a clean database
    }
    // A bad resize verdict quantity is caught when rebuilding records.
    store
        .conn
        .execute("UPDATE decisions SET verdict_qty = NULL WHERE seq = 1", [])
        .unwrap();
    corrupt(
        "",
        "decisions",
        "verdict_qty",
        store.decision_records(1).map(drop),
    );
}

#[test]
fn table_counts_lists_every_table() {
    let mut store = Store::open_in_memory().unwrap();
    store.commit_cycle(&record(1)).unwrap();
    let counts: std::collections::BTreeMap<String, i64> =
        store.table_counts().unwrap().into_iter().collect();
    for (table, n) in [
        ("cycles", 1),
        ("anomalies", 2),
        ("decisions", 3),
        ("orders", 1),
        ("fills", 2),
        ("rule_reloads", 0),
        ("script_state", 1),
        ("meta", 1),
    ] {
        assert_eq!(counts.get(table), Some(&n), "{table}");
    }
}

#[test]
fn read_only_open_reads_beside_the_writer_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    assert!(matches!(
        Store::open_read_only(&path),
        Err(StoreError::Open { .. })
    ));
    let mut writer = Store::open(&path, Durability::Full).unwrap();
    writer.commit_cycle(&record(1)).unwrap();
    let mut reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.last_cycle_id().unwrap(), Some(1));
    assert_eq!(reader.cycles().unwrap().len(), 1);
    writer.commit_cycle(&record(2)).unwrap();
    assert_eq!(reader.last_cycle_id().unwrap(), Some(2));
    let err = reader.commit_cycle(&record(3)).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err:?}");
    assert_eq!(writer.last_cycle_id().unwrap(), Some(2));
}

#[test]
fn every_cycles_eval_time_reads_back_smallest_first_and_the_commit_span() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db"), Durability::Full).unwrap();
    assert!(store.eval_us_sorted().unwrap().is_empty());
    assert_eq!(store.commit_span_ms().unwrap(), None);
    for (cycle_id, eval_us) in [(1, 90), (2, 10), (3, 50)] {
        let rec = CycleRecord {
            cycle_id,
            market_ts_ms: 1_700_000_000_000 + cycle_id,
            eval_us,
            ..CycleRecord::default()
        };
        store.commit_cycle(&rec).unwrap();
    }
    assert_eq!(store.eval_us_sorted().unwrap(), [10, 50, 90]);
    let span = store.commit_span_ms().unwrap();
    assert!(span.is_some_and(|ms| (0..60_000).contains(&ms)), "{span:?}");
}
