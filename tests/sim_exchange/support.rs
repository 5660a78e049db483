//! Shared helpers: the test market and accounts, a signing client, shape comparison.

#![allow(dead_code)]

use btcbot::exchange::btcturk::auth::sign;
use btcbot::exchange::sim::{FaultSpec, SimAccount, SimConfig, SimHandle, serve};
use reqwest::{Client, Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const T0: i64 = 1_767_225_600_000;
pub const KEY: &str = "test-public-key";
pub const SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";
pub const POOR: &str = "second-public-key";
pub const POOR_SECRET: &str = "c2Vjb25kLXNlY3JldC1rZXk=";

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sim")
        .join(rel)
}

pub fn payload(rel: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("payloads/{rel}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn accounts() -> Vec<SimAccount> {
    vec![
        SimAccount {
            public_key: KEY.into(),
            secret_b64: SECRET.into(),
            balances: vec![("TRY".into(), d("100000")), ("BTC".into(), d("1"))],
        },
        SimAccount {
            public_key: POOR.into(),
            secret_b64: POOR_SECRET.into(),
            balances: vec![("TRY".into(), d("1000"))],
        },
    ]
}

pub async fn start(faults: &str) -> SimHandle {
    let mut config = SimConfig::new(
        fixture("market"),
        "127.0.0.1:0".parse().unwrap(),
        accounts(),
    );
    config.faults = FaultSpec::parse(faults).unwrap();
    config.maker_fee_bps = d("10");
    config.taker_fee_bps = d("15");
    serve(config).await.unwrap()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A client of the sim: plain reqwest, requests signed like BTCTurk's.
pub struct Api {
    pub http: Client,
    pub base: String,
    pub key: &'static str,
    pub secret: &'static str,
}

impl Api {
    pub fn new(sim: &SimHandle) -> Self {
        Self::with(sim, KEY, SECRET)
    }
    pub fn with(sim: &SimHandle, key: &'static str, secret: &'static str) -> Self {
        Self {
            http: Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            base: sim.base_url(),
            key,
            secret,
        }
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
    pub fn signed(&self, method: Method, path: &str, stamp: i64) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-PCK", self.key)
            .header("X-Stamp", stamp.to_string())
            .header("X-Signature", sign(self.key, self.secret, stamp).unwrap())
    }
    pub async fn private(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.signed(method, path, now_ms());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
    pub async fn order(&self, body: Value) -> (StatusCode, Value) {
        self.private(Method::POST, "/api/v1/order", Some(body))
            .await
    }
    pub async fn limit(
        &self,
        side: &str,
        price: &str,
        qty: &str,
        cid: &str,
    ) -> (StatusCode, Value) {
        self.order(
            json!({"quantity": qty, "price": price, "orderMethod": "limit",
            "orderType": side, "pairSymbol": "BTCTRY", "newOrderClientId": cid}),
        )
        .await
    }
    pub async fn balance(&self, asset: &str) -> (Decimal, Decimal) {
        let (_, body) = self
            .private(Method::GET, "/api/v1/users/balances", None)
            .await;
        let b = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == asset)
            .unwrap()
            .clone();
        (
            d(b["free"].as_str().unwrap()),
            d(b["locked"].as_str().unwrap()),
        )
    }
}

/// `ours` has the reference's shape: the same keys (`exact`) or at least them, the same JSON
/// types; a `null` in the reference matches anything; arrays compare each element with the
/// reference's first.
pub fn same_shape(ours: &Value, reference: &Value, path: &str, exact: bool) -> Result<(), String> {
    match (ours, reference) {
        (_, Value::Null) => Ok(()),
        (Value::Object(o), Value::Object(r)) => {
            let missing: Vec<_> = r.keys().filter(|k| !o.contains_key(*k)).collect();
            let extra: Vec<_> = o.keys().filter(|k| !r.contains_key(*k)).collect();
            if !missing.is_empty() || (exact && !extra.is_empty()) {
                return Err(format!("{path}: missing {missing:?}, extra {extra:?}"));
            }
            r.iter()
                .try_for_each(|(k, rv)| same_shape(&o[k], rv, &format!("{path}.{k}"), exact))
        }
        (Value::Array(o), Value::Array(r)) => match r.first() {
            None => Ok(()),
            Some(_) if o.is_empty() => Err(format!("{path}: empty, the reference is not")),
            Some(r0) => o
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| same_shape(v, r0, &format!("{path}[{i}]"), exact)),
        },
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        _ => Err(format!(
            "{path}: {ours} is not the same JSON type as {reference}"
        )),
    }
}

pub fn assert_shape(ours: &Value, reference: &Value, exact: bool) {
    if let Err(e) = same_shape(ours, reference, "$", exact) {
        panic!("{e}\nours: {ours}\nreference: {reference}");
    }
}
