//! Every recorded payload in `fixtures/btcturk/` parses with the right values (exact decimals),
//! and every kind of bad body is a typed error naming the endpoint.

use super::endpoint::Endpoint;
use super::wire::*;
use super::wire_misc::{Ohlc, Transfer, klines_from_value};
use super::wire_value::{Fields, decimal_value, id_value, ts_value};
use crate::exchange::exchange_info::parse_exchange_info;
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn fixture(path: &str) -> String {
    let full = format!("{}/fixtures/btcturk/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn data_of(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

#[test]
fn every_fixture_file_is_covered_by_a_test() {
    // Guards against a payload being added to the folder without a parser test below.
    let mut names = Vec::new();
    for dir in ["mss1451", "trcrypto"] {
        let full = format!("{}/fixtures/btcturk/{dir}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(full).unwrap() {
            names.push(format!(
                "{dir}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    names.sort();
    assert_eq!(names.len(), 29, "{names:?}");
}

#[test]
fn exchangeinfo_fixtures_through_the_shared_parser() {
    let specs = parse_exchange_info(&fixture("trcrypto/exchangeinfo.json")).unwrap();
    assert_eq!(specs.len(), 3);
    assert_eq!(specs[0].tick_size, d("10"));
    assert_eq!(specs[0].min_notional, d("99.91"));
    let specs = parse_exchange_info(&fixture("mss1451/exchange_info.json")).unwrap();
    assert_eq!(specs[2].symbol.as_str(), "XTZBTC");
    assert_eq!(specs[2].min_notional, d("0.000291"));
    let err = parse_exchange_info(&fixture("trcrypto/exchangeinfo-error.json")).unwrap_err();
    assert!(
        err.contains("SYSTEM_ERROR") && err.contains("1000"),
        "{err}"
    );
    let err = envelope(
        Endpoint::ExchangeInfo,
        &fixture("trcrypto/exchangeinfo-error.json"),
    )
    .unwrap_err();
    assert_eq!(
        err.kind,
        WireErrorKind::Failure {
            code: "1000".into(),
            message: "SYSTEM_ERROR".into()
        }
    );
}

#[test]
fn ticker_numbers_become_exact_decimals() {
    let t = parse_ticker(&fixture("trcrypto/ticker.json")).unwrap();
    assert_eq!(t.len(), 1);
    let t = &t[0];
    assert_eq!(t.pair, "BTCTRY");
    assert_eq!(t.timestamp_ms, Some(1_787_525_058_187));
    assert_eq!(
        (t.last, t.bid, t.ask),
        (d("3713440"), Some(d("3712281")), Some(d("3715990")))
    );
    assert_eq!(t.volume, Some(d("27.81911204")));
    assert_eq!(t.daily_percent, Some(d("0.74")));
    assert_eq!(t.numerator.as_deref(), Some("BTC"));
    let one = Ticker::list_from_data(&data_of("mss1451/ticker.json")).unwrap();
    assert_eq!(one[0].pair, "BTCUSDT");
    assert_eq!(one[0].daily, Some(d("-2034")));
    assert_eq!(one[0].volume, Some(d("75.36297763")));
    assert_eq!(one[0].daily_percent, Some(d("-5.26")));
}

#[test]
fn orderbook_with_string_code_and_float_timestamp() {
    let b = parse_orderbook(&fixture("trcrypto/orderbook.json")).unwrap();
    assert_eq!(b.timestamp_ms, 1_787_525_059_089);
    assert_eq!(b.bids.len(), 3);
    assert_eq!(
        b.bids[0],
        Level {
            price: d("3712281"),
            qty: d("0.03866329")
        }
    );
    assert_eq!(
        b.asks[2],
        Level {
            price: d("3716049"),
            qty: d("0.04588054")
        }
    );
    let b = OrderBook::from_data(&data_of("mss1451/order_book.json")).unwrap();
    assert_eq!(b.timestamp_ms, 1_643_883_463_379);
    assert_eq!(
        b.bids[0],
        Level {
            price: d("36371"),
            qty: d("0.0008")
        }
    );
    assert_eq!(
        b.asks[1],
        Level {
            price: d("36402"),
            qty: d("0.00276815")
        }
    );
}

#[test]
fn trades_keep_the_big_tid() {
    let t = parse_trades(&fixture("trcrypto/trades.json")).unwrap();
    assert_eq!(t[0].tid, "636692470417865271");
    assert_eq!((t[0].price, t[0].amount), (d("33490"), d("0.00032747")));
    assert_eq!(t[0].date_ms, 1_533_650_242_300);
    assert_eq!(t[0].side, None);
    let t = PublicTrade::list_from_data(&data_of("mss1451/trades.json")).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[1].tid, "101963779399182808");
    assert_eq!(t[1].amount, d("0.12433265"));
    assert_eq!(t[0].side, Some(WireSide::Sell));
}

#[test]
fn balances_with_comma_and_dot_separators() {
    let b = parse_balances(&fixture("trcrypto/balances.json")).unwrap();
    assert_eq!(b[0].asset, "TRY");
    assert_eq!(b[0].free, d("22349.3654565035348765"));
    assert_eq!(b[0].locked, d("4874.3628685722294523"));
    assert_eq!(b[0].balance, Some(d("27223.7283250757643288")));
    assert_eq!(b[0].asset_name.as_deref(), Some("Türk Lirası"));
    assert_eq!(b[1].free, d("0.0031245"));
    assert_eq!(b[1].timestamp_ms, Some(1_735_866_257_711));
    let b = BalanceRow::list_from_data(&data_of("mss1451/account_balance.json")).unwrap();
    assert_eq!(b[0].free, d("102135.3712490135968651"));
    assert_eq!(b[1].locked, d("0.001"));
    assert_eq!(b[1].asset, "BTC");
}

#[test]
fn submit_order_responses() {
    let s = parse_submit(&fixture("trcrypto/submit-order.json")).unwrap();
    assert_eq!(s.id, "9932534");
    assert_eq!(s.client_id.as_deref(), Some("test"));
    assert_eq!(s.side, Some(WireSide::Buy));
    assert_eq!(s.method, Some(WireMethod::Limit));
    assert_eq!((s.price, s.quantity), (Some(d("20000")), Some(d("0.001"))));
    assert_eq!(s.datetime_ms, Some(1_543_996_112_263));
    let s = SubmittedOrder::from_data(&data_of("mss1451/submit_order.json")).unwrap();
    assert_eq!(s.pair_symbol.as_deref(), Some("BTCTRY"));
    assert_eq!(s.stop_price, Some(d("20000")));
}

#[test]
fn cancel_with_empty_code_and_empty_data() {
    parse_cancel(&fixture("trcrypto/cancel-order.json")).unwrap();
    parse_cancel(r#"{"success":true,"message":"SUCCESS","code":0,"data":null}"#).unwrap();
    parse_cancel(r#"{"success":true,"code":0}"#).unwrap();
}

#[test]
fn open_orders_with_lowercase_and_camel_case_keys() {
    let o = parse_open_orders(&fixture("trcrypto/open-orders.json")).unwrap();
    assert_eq!((o.bids.len(), o.asks.len()), (1, 1));
    let ask = &o.asks[0];
    assert_eq!(ask.id, "9932533");
    assert_eq!(ask.pair_symbol.as_deref(), Some("BTCTRY"));
    assert_eq!(
        (ask.side.clone(), ask.method.clone()),
        (WireSide::Sell, Some(WireMethod::Limit))
    );
    assert_eq!((ask.price, ask.amount), (d("21000"), d("0.001")));
    assert_eq!(ask.status, Some(WireStatus::Untouched));
    assert_eq!(ask.client_id.as_deref(), Some("test"));
    assert_eq!(ask.left_amount, None);
    let o = OpenOrders::from_data(&data_of("mss1451/open_orders.json")).unwrap();
    assert_eq!((o.bids.len(), o.asks.len()), (2, 2));
    assert_eq!(o.asks[1].status, Some(WireStatus::Partial));
    assert_eq!(o.asks[1].left_amount, Some(d("0.0412345")));
    assert_eq!(o.asks[1].time_ms, Some(0));
    assert_eq!(o.bids[1].left_amount, Some(d("0.04909774")));
    assert_eq!(o.bids[1].stop_price, Some(Decimal::ZERO));
    assert_eq!(o.bids[1].pair_symbol_normalized.as_deref(), Some("BTC_TRY"));
    assert_eq!(o.all().count(), 4);
}

#[test]
fn all_orders_and_single_order() {
    let a = parse_all_orders(&fixture("trcrypto/all-orders.json")).unwrap();
    assert_eq!(a[0].pair_symbol.as_deref(), Some("BTCTRY"));
    assert_eq!(a[0].pair_symbol_normalized.as_deref(), Some("BTC_TRY"));
    assert_eq!(a[0].side, WireSide::Buy);
    let a = WireOrder::list_from_data(&data_of("mss1451/all_orders.json")).unwrap();
    assert_eq!(a[0].update_time_ms, Some(1_543_996_112_263));
    let s = parse_order_by_id(&fixture("trcrypto/single-order.json")).unwrap();
    assert_eq!(s.id, "61912740");
    assert_eq!(s.method, Some(WireMethod::StopMarket));
    assert_eq!(s.left_amount, Some(d("0.12345678")));
    assert_eq!(s.client_id.as_deref(), Some("BtcTurk API"));
    let err = parse_order_by_id(r#"{"success":false,"message":"Order not found","code":1152}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /api/v1/order/{id}: exchange reported failure: Order not found (code 1152)"
    );
}

#[test]
fn user_trades_keep_ids_above_2_pow_53() {
    let t = parse_user_trades(&fixture("trcrypto/user-trades.json")).unwrap();
    let t = &t[0];
    assert_eq!(t.id, "1181163798924649598");
    assert_eq!(t.order_id, "10938696222");
    assert_eq!(t.amount, d("-0.3384"));
    assert_eq!(t.precise_amount, Some(d("-0.33840811")));
    assert_eq!(t.qty(), d("0.33840811"));
    assert_eq!((t.fee, t.tax), (d("-0.06297817"), d("-0.01133607")));
    assert_eq!(t.total_fee(), d("0.07431424"));
    assert_eq!(
        (t.numerator.as_str(), t.denominator.as_str()),
        ("ETHW", "TRY")
    );
    assert_eq!(t.side, WireSide::Sell);
    assert_eq!(t.order_client_id, None);
    let t = UserTrade::list_from_data(&data_of("mss1451/user_transactions_trade.json")).unwrap();
    assert_eq!(t[0].id, "552887776");
    assert_eq!(t[0].order_id, "5111697972");
    assert_eq!((t[0].price, t[0].qty()), (d("3.267"), d("146.6727")));
    assert_eq!(t[0].side, WireSide::Buy);
}

#[test]
fn graph_and_transfer_payloads() {
    let k = klines_from_value(&data_of("trcrypto/klines.json")).unwrap();
    assert_eq!(k.len(), 3);
    assert_eq!(k[0].time_s, 1_787_684_400);
    assert_eq!((k[0].high, k[0].close), (d("3809691"), d("3796125")));
    assert_eq!(k[2].volume, d("0.13949894"));
    let o = Ohlc::from_value(&data_of("mss1451/ohlc.json"), "").unwrap();
    assert_eq!(
        (o.pair.as_str(), o.candle.time_s),
        ("BTCUSDT", 1_639_526_400)
    );
    assert_eq!(o.candle.volume, d("199.490950394233"));
    assert_eq!(o.total, Some(d("9634561.91977406")));
    let c = data_of("mss1451/user_transactions_crypto.json");
    let c = Transfer::from_value(&c[0], "data[0]").unwrap();
    assert_eq!((c.id.as_str(), c.currency.as_str()), ("10279218", "XLM"));
    assert_eq!(
        (c.amount, c.fee, c.confirmed),
        (d("-146.7576"), d("-0.02"), Some(false))
    );
    let f = data_of("mss1451/user_transactions_fiat.json");
    let f = Transfer::from_value(&f[0], "data[0]").unwrap();
    assert_eq!(
        (f.balance_type.as_str(), f.amount, f.tx_hash),
        ("deposit", d("480"), None)
    );
}

/// The websocket frames are parsed by the feed, not this REST layer; here we only check that they
/// are `[type, body]` frames whose values the shared scalar readers take exactly.
#[test]
fn websocket_frames_read_with_the_same_scalar_readers() {
    let frame = |path: &str| -> (u64, Value) {
        let v = data_of(path);
        let t = v[0].as_u64().unwrap();
        (t, v[1].clone())
    };
    let (t, body) = frame("trcrypto/socket-ticker.json");
    assert_eq!(t, 402);
    let f = Fields::of(&body, "402").unwrap();
    assert_eq!(f.decimal(&["AV"]).unwrap(), d("3824093.6008034"));
    assert_eq!(f.decimal(&["D"]).unwrap(), d("-12647"));
    let (t, body) = frame("trcrypto/socket-ticker-all.json");
    assert_eq!(t, 401);
    assert_eq!(
        decimal_value(&body["items"][1]["B"]).unwrap(),
        Some(d("132450"))
    );
    let (t, body) = frame("trcrypto/socket-orderbook.json");
    assert_eq!((t, body["CS"].as_u64()), (431, Some(2_721_198)));
    assert_eq!(
        decimal_value(&body["AO"][0]["A"]).unwrap(),
        Some(d("0.0496469"))
    );
    let (t, body) = frame("trcrypto/socket-trades.json");
    assert_eq!(t, 421);
    let item = &body["items"][0];
    assert_eq!(ts_value(&item["D"]).unwrap(), Some(1_787_692_476_996));
    assert_eq!(
        id_value(&item["I"]).unwrap().as_deref(),
        Some("100163842129199947")
    );
    assert_eq!(decimal_value(&item["P"]).unwrap(), Some(d("3765490")));
}

// ---- bad input: typed errors naming the endpoint, never a panic ----

#[test]
fn garbage_html_empty_and_truncated_bodies() {
    let e = parse_orderbook("").unwrap_err();
    assert_eq!(
        (e.endpoint, e.kind.clone()),
        (Endpoint::OrderBook, WireErrorKind::Empty)
    );
    assert_eq!(e.to_string(), "GET /api/v2/orderbook: empty response body");
    let e = parse_balances("  \n").unwrap_err();
    assert_eq!(e.kind, WireErrorKind::Empty);

    let html = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>";
    let e = parse_ticker(html).unwrap_err();
    assert!(matches!(&e.kind, WireErrorKind::NotJson { detail, .. } if detail.contains("HTML")));
    assert!(
        e.to_string()
            .starts_with("GET /api/v2/ticker: response is not JSON"),
        "{e}"
    );
    assert!(e.to_string().contains("502 Bad Gateway"), "{e}");

    let e = parse_trades("}{ definitely not json").unwrap_err();
    assert!(matches!(e.kind, WireErrorKind::NotJson { .. }), "{e}");

    let full = fixture("trcrypto/user-trades.json");
    let e = parse_user_trades(&full[..full.len() / 2]).unwrap_err();
    assert_eq!(e.endpoint, Endpoint::UserTrades);
    assert!(matches!(e.kind, WireErrorKind::Truncated { .. }), "{e}");

    let e = parse_submit("[1,2,3]").unwrap_err();
    assert_eq!(
        e.to_string(),
        "POST /api/v1/order: body: expected an object, got [1,2,3]"
    );
}

#[test]
fn success_false_is_a_failure_with_code_and_message() {
    let e = parse_submit(
        r#"{"success":false,"message":"FAILED_MIN_TOTAL_AMOUNT","code":1123,"data":null}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.kind,
        WireErrorKind::Failure {
            code: "1123".into(),
            message: "FAILED_MIN_TOTAL_AMOUNT".into()
        }
    );
    // A 200 with success:false is just as much a failure, whatever `code` says.
    let e = parse_orderbook(r#"{"success":false,"message":null,"code":"SUCCESS"}"#).unwrap_err();
    assert!(
        matches!(e.kind, WireErrorKind::Failure { ref message, .. } if message == "no message")
    );
    let e = parse_ticker(
        r#"{"message":"TOO_MANY_REQUESTS","success":false,"code":429,"details":"Quota exceeded."}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("TOO_MANY_REQUESTS: Quota exceeded. (code 429)"),
        "{e}"
    );
    let e = parse_balances(r#"{"success":"maybe","data":[]}"#).unwrap_err();
    assert!(e.to_string().contains("success: not a boolean"), "{e}");
    let e = parse_balances(r#"{"data":[]}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "GET /api/v1/users/balances: success: missing"
    );
}

#[test]
fn missing_fields_are_named_with_their_path() {
    let e =
        parse_orderbook(r#"{"success":true,"code":0,"data":{"bids":[],"asks":[]}}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "GET /api/v2/orderbook: data.timestamp: missing"
    );
    let e = parse_orderbook(
        r#"{"success":true,"code":0,"data":{"timestamp":1,"bids":[["1","2"],["x","1"]]}}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("GET /api/v2/orderbook: data.bids[1].price: not a decimal"),
        "{e}"
    );
    let e = parse_open_orders(
        r#"{"success":true,"code":0,"data":{"bids":[{"id":1,"price":"1","amount":"1"}]}}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "GET /api/v1/openOrders: data.bids[0].type: missing"
    );
    let e = parse_user_trades(r#"{"success":true,"code":0,"data":[{"id":1}]}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "GET /api/v1/users/transactions/trade: data[0].timestamp: missing"
    );
    let e = parse_submit(r#"{"success":true,"code":0,"data":null}"#).unwrap_err();
    assert_eq!(e.to_string(), "POST /api/v1/order: data: missing");
    let e = parse_balances(r#"{"success":true,"code":0,"data":{"asset":"TRY"}}"#).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("GET /api/v1/users/balances: data: expected an array"),
        "{e}"
    );
    let e = parse_server_time(r#"{"serverTime2":"2021-02-14T14:37:42"}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "GET /api/v2/server/time: serverTime: missing"
    );
}

#[test]
fn unknown_enum_values_are_kept_not_fatal_at_the_wire() {
    let body = r#"{"success":true,"code":0,"data":{"bids":[{"id":1,"price":"1","amount":"1",
        "type":"SHORT","method":"iceberg","status":"Frozen","orderClientId":"c1"}]}}"#;
    let o = parse_open_orders(body).unwrap();
    assert_eq!(o.bids[0].side, WireSide::Other("SHORT".into()));
    assert_eq!(o.bids[0].method, Some(WireMethod::Other("iceberg".into())));
    assert_eq!(o.bids[0].status, Some(WireStatus::Other("Frozen".into())));
}

#[test]
fn server_time_bare_and_enveloped() {
    let t = parse_server_time(
        r#"{"serverTime":1613313462021,"serverTime2":"2021-02-14T14:37:42.0214779+00:00"}"#,
    )
    .unwrap();
    assert_eq!(t.server_time_ms, 1_613_313_462_021);
    let t = parse_server_time(r#"{"success":true,"code":0,"data":{"serverTime":5}}"#).unwrap();
    assert_eq!(t.server_time_ms, 5);
    assert!(parse_server_time("<html>").is_err());
}
