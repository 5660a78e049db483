//! The exchangeinfo body served by `/api/v2/server/exchangeinfo`: the dataset's
//! `exchangeinfo.json` (or the bundled payload) byte for byte inside BTCTurk's envelope, with
//! `serverTime` refreshed. The payload's number text (`0.2500000000000000`) is kept: the `data`
//! member is cut out of the file's text, not re-serialized. Also the currency names and
//! precisions the balances endpoint shows, and each pair's `order` and `id` for the ticker.

use crate::exchange::exchange_info::bundled_exchange_info;
use crate::exchange::replay::Dataset;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::Range;

pub(crate) struct ExchangeInfoDoc {
    /// The `data` member's text.
    data: String,
    /// Byte range of the `serverTime` value inside `data`.
    server_time: Option<Range<usize>>,
    /// Currency symbol → (name, precision).
    currencies: BTreeMap<String, (String, u32)>,
    /// Pair name → (`id`, `order`).
    pairs: BTreeMap<String, (i64, i64)>,
}

impl ExchangeInfoDoc {
    /// # Errors
    /// When the file cannot be read or is not a JSON object.
    pub(crate) fn load(dataset: &Dataset) -> Result<Self, String> {
        let path = dataset.dir().join("exchangeinfo.json");
        let text = if path.is_file() {
            std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))?
        } else {
            bundled_exchange_info().to_string()
        };
        Self::from_text(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn from_text(text: &str) -> Result<Self, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let data_value = match root.get("data") {
            Some(d @ Value::Object(_)) => d,
            _ if root.get("symbols").is_some() => &root,
            _ => return Err("no data.symbols in the exchangeinfo body".into()),
        };
        let data = match member(text, "data") {
            Some(r) if root.get("data").is_some_and(Value::is_object) => text[r].to_string(),
            _ => text.trim().to_string(),
        };
        let server_time = member(&data, "serverTime");
        let mut currencies = BTreeMap::new();
        for c in data_value
            .get("currencies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(sym) = c.get("symbol").and_then(Value::as_str) {
                let name = c.get("name").and_then(Value::as_str).unwrap_or(sym);
                let precision = c
                    .get("precision")
                    .and_then(Value::as_u64)
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(8);
                currencies.insert(sym.to_ascii_uppercase(), (name.to_string(), precision));
            }
        }
        let mut pairs = BTreeMap::new();
        for s in data_value
            .get("symbols")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = s.get("name").and_then(Value::as_str) {
                let id = s.get("id").and_then(Value::as_i64).unwrap_or(0);
                let order = s.get("order").and_then(Value::as_i64).unwrap_or(0);
                pairs.insert(name.to_ascii_uppercase(), (id, order));
            }
        }
        Ok(Self {
            data,
            server_time,
            currencies,
            pairs,
        })
    }

    /// The whole response body at server time `now_ms`.
    pub(crate) fn body(&self, now_ms: i64) -> String {
        let data = match &self.server_time {
            Some(r) => format!("{}{now_ms}{}", &self.data[..r.start], &self.data[r.end..]),
            None => self.data.clone(),
        };
        format!(r#"{{"data":{data},"success":true,"message":"","code":0,"extensions":null}}"#)
    }

    /// (name, precision) of a currency; the symbol itself and 8 when the payload omits it.
    pub(crate) fn currency(&self, symbol: &str) -> (String, u32) {
        self.currencies
            .get(symbol)
            .cloned()
            .unwrap_or_else(|| (symbol.to_string(), 8))
    }

    /// (`id`, `order`) of a pair, 0 when unknown.
    pub(crate) fn pair(&self, name: &str) -> (i64, i64) {
        self.pairs.get(name).copied().unwrap_or((0, 0))
    }
}

/// The byte range of the value of top-level member `key` of the JSON object in `text`.
/// `text` must be valid JSON (checked by the caller).
fn member(text: &str, key: &str) -> Option<Range<usize>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = value_end(b, i)?;
        let name: String = serde_json::from_str(&text[i..key_end]).ok()?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = value_end(b, start)?;
        if name == key {
            return Some(start..end);
        }
        i = skip_ws(b, end);
        if b.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// End (exclusive) of the JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => {
            let mut j = i + 1;
            loop {
                match b.get(j)? {
                    b'\\' => j += 2,
                    b'"' => return Some(j + 1),
                    _ => j += 1,
                }
            }
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = value_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_member_is_cut_out_verbatim_and_server_time_refreshed() {
        let text = r#"{ "code": 0, "data": {"serverTime": 1, "symbols":[{"name":"BTCTRY","id":1,"order":1000,
            "x":0.2500000000000000, "s":"a\"}"}], "currencies":[{"symbol":"TRY","name":"Türk Lirası","precision":2}]},
            "success": true}"#;
        let doc = ExchangeInfoDoc::from_text(text).unwrap_or_else(|e| panic!("{e}"));
        let body = doc.body(1_767_225_600_123);
        assert!(
            body.starts_with(r#"{"data":{"serverTime": 1767225600123, "symbols""#),
            "{body}"
        );
        assert!(body.contains("0.2500000000000000"));
        assert!(body.ends_with(r#""success":true,"message":"","code":0,"extensions":null}"#));
        assert!(serde_json::from_str::<Value>(&body).is_ok());
        assert_eq!(doc.currency("TRY"), ("Türk Lirası".to_string(), 2));
        assert_eq!(doc.pair("BTCTRY"), (1, 1000));
        // A body without the envelope is wrapped whole.
        let bare =
            ExchangeInfoDoc::from_text(r#"{"symbols":[]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            bare.body(5),
            r#"{"data":{"symbols":[]},"success":true,"message":"","code":0,"extensions":null}"#
        );
    }
}
