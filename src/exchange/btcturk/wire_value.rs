//! Tolerant scalar readers for BTCTurk JSON, shared by every endpoint parser in `wire.rs`.
//!
//! - decimals: a JSON number (read through its text, `n.to_string()`, never through f64
//!   arithmetic) or a string with `.` or `,` as the separator; `null` and `""` are absent;
//! - timestamps: an int, a float with an integral value (`1643883463379.0`) or a string of either;
//! - ids: an unsigned JSON integer (serde_json keeps integers up to `u64::MAX` exact) or a
//!   string; a float id is refused because it has already lost precision;
//! - field names: the exact key first, then a case-insensitive match, so `pairsymbol` finds
//!   `pairSymbol`; `null` counts as absent;
//! - enums: case-insensitive, `_` and spaces ignored, with an `Other(String)` fallback.
//!
//! Errors name the field by its path (`data.bids[0].price`).

use crate::domain::decimal_from_str;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value};
use std::fmt;

/// A field that is missing or holds something unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `data.asks[2].price`.
    pub field: String,
    /// `None` when the field is missing (or `null`); otherwise what is wrong with it.
    pub problem: Option<String>,
}

impl FieldError {
    pub fn missing(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: None,
        }
    }
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: Some(problem.into()),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(f, "{}: missing", self.field),
            Some(p) => write!(f, "{}: {p}", self.field),
        }
    }
}

/// A JSON object with its path, whose lookups produce [`FieldError`]s naming the field.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: &'a str,
}

/// A short, printable rendering of a JSON value for error messages.
pub fn brief(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        let mut cut = 57;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

impl<'a> Fields<'a> {
    /// # Errors
    /// When `v` is not an object.
    pub fn of(v: &'a Value, path: &'a str) -> Result<Self, FieldError> {
        match v {
            Value::Object(obj) => Ok(Self { obj, path }),
            Value::Null => Err(FieldError::missing(path)),
            other => Err(FieldError::invalid(
                path,
                format!("expected an object, got {}", brief(other)),
            )),
        }
    }

    pub fn path(&self) -> &'a str {
        self.path
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value under the first of `keys` present and not `null` (exact spelling first, then
    /// any case), with the key that matched.
    pub fn get(&self, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        for &k in keys {
            if let Some(v) = self.obj.get(k).filter(|v| !v.is_null()) {
                return Some((k, v));
            }
        }
        for &k in keys {
            let found = self
                .obj
                .iter()
                .find(|(name, v)| name.eq_ignore_ascii_case(k) && !v.is_null());
            if let Some((_, v)) = found {
                return Some((k, v));
            }
        }
        None
    }

    fn required<T>(
        &self,
        keys: &[&'static str],
        read: impl FnOnce(&Value) -> Result<Option<T>, String>,
    ) -> Result<T, FieldError> {
        let Some((k, v)) = self.get(keys) else {
            return Err(FieldError::missing(self.field_path(keys[0])));
        };
        match read(v) {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(FieldError::missing(self.field_path(k))),
            Err(e) => Err(FieldError::invalid(self.field_path(k), e)),
        }
    }

    fn optional<T>(
        &self,
        keys: &[&'static str],
        read: impl FnOnce(&Value) -> Result<Option<T>, String>,
    ) -> Result<Option<T>, FieldError> {
        match self.get(keys) {
            None => Ok(None),
            Some((k, v)) => read(v).map_err(|e| FieldError::invalid(self.field_path(k), e)),
        }
    }

    /// # Errors
    /// Missing, empty or not a decimal.
    pub fn decimal(&self, keys: &[&'static str]) -> Result<Decimal, FieldError> {
        self.required(keys, decimal_value)
    }
    /// # Errors
    /// Present but not a decimal.
    pub fn opt_decimal(&self, keys: &[&'static str]) -> Result<Option<Decimal>, FieldError> {
        self.optional(keys, decimal_value)
    }
    /// # Errors
    /// Missing or not a timestamp.
    pub fn ts(&self, keys: &[&'static str]) -> Result<i64, FieldError> {
        self.required(keys, ts_value)
    }
    /// # Errors
    /// Present but not a timestamp.
    pub fn opt_ts(&self, keys: &[&'static str]) -> Result<Option<i64>, FieldError> {
        self.optional(keys, ts_value)
    }
    /// # Errors
    /// Missing, empty or not an id.
    pub fn id(&self, keys: &[&'static str]) -> Result<String, FieldError> {
        self.required(keys, id_value)
    }
    /// # Errors
    /// Present but not an id.
    pub fn opt_id(&self, keys: &[&'static str]) -> Result<Option<String>, FieldError> {
        self.optional(keys, id_value)
    }
    /// # Errors
    /// Missing, empty or not text.
    pub fn text(&self, keys: &[&'static str]) -> Result<String, FieldError> {
        self.required(keys, text_value)
    }
    /// # Errors
    /// Present but not text.
    pub fn opt_text(&self, keys: &[&'static str]) -> Result<Option<String>, FieldError> {
        self.optional(keys, text_value)
    }
    /// # Errors
    /// Present but not a boolean.
    pub fn opt_bool(&self, keys: &[&'static str]) -> Result<Option<bool>, FieldError> {
        self.optional(keys, |v| match v {
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
            other => Err(format!("expected a boolean, got {}", brief(other))),
        })
    }
    /// An array field with the path of its elements' parent, e.g. `data.bids`.
    ///
    /// # Errors
    /// Missing or not an array.
    pub fn array(&self, keys: &[&'static str]) -> Result<(String, &'a [Value]), FieldError> {
        let (k, v) = self
            .get(keys)
            .ok_or_else(|| FieldError::missing(self.field_path(keys[0])))?;
        match v {
            Value::Array(items) => Ok((self.field_path(k), items.as_slice())),
            other => Err(FieldError::invalid(
                self.field_path(k),
                format!("expected an array, got {}", brief(other)),
            )),
        }
    }
    /// Like [`Fields::array`] but absence is an empty list.
    ///
    /// # Errors
    /// Present but not an array.
    pub fn opt_array(&self, keys: &[&'static str]) -> Result<(String, &'a [Value]), FieldError> {
        match self.get(keys) {
            None => Ok((self.field_path(keys[0]), &[])),
            Some(_) => self.array(keys),
        }
    }
}

/// A decimal from a JSON number or string; `null`/`""` are `None`.
///
/// # Errors
/// Any other JSON type, or text that is not a number.
pub fn decimal_value(v: &Value) -> Result<Option<Decimal>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => decimal_from_str(&n.to_string()).map(Some),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => decimal_from_str(s).map(Some),
        other => Err(format!("expected a decimal, got {}", brief(other))),
    }
}

/// Milliseconds (or seconds, for the graph API) from an int, an integral float or a string.
///
/// # Errors
/// Negative, fractional, out of `i64` range, or not a number.
pub fn ts_value(v: &Value) -> Result<Option<i64>, String> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return non_negative(i).map(Some);
            }
            n.to_string()
        }
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("expected a timestamp, got {}", brief(other))),
    };
    if let Ok(i) = text.parse::<i64>() {
        return non_negative(i).map(Some);
    }
    let d = decimal_from_str(&text).map_err(|_| format!("not a timestamp: {text:?}"))?;
    if d.fract() != Decimal::ZERO {
        return Err(format!("timestamp has a fraction: {text}"));
    }
    let i = d
        .to_i64()
        .ok_or_else(|| format!("timestamp out of range: {text}"))?;
    non_negative(i).map(Some)
}

fn non_negative(i: i64) -> Result<i64, String> {
    if i < 0 {
        Err(format!("timestamp is negative: {i}"))
    } else {
        Ok(i)
    }
}

/// An id as text: an unsigned JSON integer or a non-empty string.
///
/// # Errors
/// A negative or non-integer number (a float id has lost precision already), or another type.
pub fn id_value(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(u) => Ok(Some(u.to_string())),
            None => Err(format!(
                "id {n} is not an unsigned integer that fits 64 bits (would lose precision)"
            )),
        },
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_string())),
        other => Err(format!("expected an id, got {}", brief(other))),
    }
}

/// Text from a JSON string (trimmed); `""` is `None`. Numbers are accepted as their text.
///
/// # Errors
/// Booleans, arrays and objects.
pub fn text_value(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(format!("expected text, got {}", brief(other))),
    }
}

/// Lower case with `_`, `-` and spaces removed: `STOP_MARKET`, `stopMarket` → `stopmarket`.
fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => [$($alias:literal),+]),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this client does not know, as sent.
            Other(String),
        }
        impl $name {
            /// Case-insensitive; unknown values become `Other`.
            pub fn parse(text: &str) -> Self {
                let folded = fold(text);
                $(if [$($alias),+].contains(&folded.as_str()) {
                    return Self::$variant;
                })+
                Self::Other(text.trim().to_string())
            }
        }
    };
}

wire_enum!(
    /// Order side (`type`/`orderType`): `buy`, `Buy`, `BUY`...
    WireSide { Buy => ["buy", "bid"], Sell => ["sell", "ask"] }
);
wire_enum!(
    /// Order method: `limit`, `Limit`, `STOP_LIMIT`, `stoplimit`, `stopLimit`...
    WireMethod {
        Limit => ["limit"],
        Market => ["market"],
        StopLimit => ["stoplimit"],
        StopMarket => ["stopmarket"],
    }
);
wire_enum!(
    /// Order status: `Untouched`, `Partial`, `Canceled`, `Closed` (and `Filled` per mss1451).
    WireStatus {
        Untouched => ["untouched", "new", "open"],
        Partial => ["partial", "partiallyfilled"],
        Canceled => ["canceled", "cancelled"],
        Closed => ["closed"],
        Filled => ["filled"],
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimals_from_numbers_and_both_separators() {
        assert_eq!(
            decimal_value(&json!("27223,7283250757643288")).unwrap(),
            Some(d("27223.7283250757643288"))
        );
        assert_eq!(
            decimal_value(&json!("0.00080000")).unwrap(),
            Some(d("0.0008"))
        );
        assert_eq!(
            decimal_value(&json!(27.81911204)).unwrap(),
            Some(d("27.81911204"))
        );
        assert_eq!(
            decimal_value(&serde_json::from_str("-0.3384081100000000").unwrap()).unwrap(),
            Some(d("-0.33840811"))
        );
        assert_eq!(decimal_value(&json!(3713440)).unwrap(), Some(d("3713440")));
        assert_eq!(decimal_value(&json!("")).unwrap(), None);
        assert_eq!(decimal_value(&Value::Null).unwrap(), None);
        assert!(decimal_value(&json!("1.234,5")).is_err());
        assert!(decimal_value(&json!(true)).is_err());
        assert!(decimal_value(&json!("abc")).is_err());
    }

    #[test]
    fn timestamps_as_int_float_or_string() {
        let v: Value = serde_json::from_str("1643883463379.0").unwrap();
        assert_eq!(ts_value(&v).unwrap(), Some(1_643_883_463_379));
        assert_eq!(
            ts_value(&json!(1787525059089_i64)).unwrap(),
            Some(1_787_525_059_089)
        );
        assert_eq!(
            ts_value(&json!("1787692476996")).unwrap(),
            Some(1_787_692_476_996)
        );
        assert_eq!(
            ts_value(&json!("1787692476996.0")).unwrap(),
            Some(1_787_692_476_996)
        );
        assert!(ts_value(&json!(1.5)).is_err());
        assert!(ts_value(&json!(-1)).is_err());
        assert!(ts_value(&json!("soon")).is_err());
        assert!(ts_value(&json!(1e30)).is_err());
    }

    #[test]
    fn big_ids_keep_every_digit() {
        let v: Value = serde_json::from_str("1181163798924649598").unwrap();
        assert_eq!(
            id_value(&v).unwrap().as_deref(),
            Some("1181163798924649598")
        );
        assert_eq!(
            id_value(&json!(" 2606935102 ")).unwrap().as_deref(),
            Some("2606935102")
        );
        // Beyond u64 serde_json falls back to f64: refused rather than rounded.
        let v: Value = serde_json::from_str("118116379892464959800").unwrap();
        assert!(id_value(&v).is_err());
        assert!(id_value(&json!(-5)).is_err());
        assert!(id_value(&json!(1.5)).is_err());
    }

    #[test]
    fn keys_match_in_any_case_and_null_is_absent() {
        let v = json!({"pairsymbol": "BTCTRY", "stopPrice": null, "x": {"y": 1}});
        let f = Fields::of(&v, "data").unwrap();
        assert_eq!(f.text(&["pairSymbol"]).unwrap(), "BTCTRY");
        assert_eq!(f.opt_decimal(&["stopPrice"]).unwrap(), None);
        let e = f.decimal(&["stopPrice"]).unwrap_err();
        assert_eq!(e.to_string(), "data.stopPrice: missing");
        let e = f.decimal(&["x"]).unwrap_err();
        assert!(
            e.to_string().starts_with("data.x: expected a decimal"),
            "{e}"
        );
        assert!(Fields::of(&json!([1]), "data").is_err());
    }

    #[test]
    fn enums_fold_case_and_keep_unknowns() {
        assert_eq!(WireSide::parse("Buy"), WireSide::Buy);
        assert_eq!(WireSide::parse("SELL"), WireSide::Sell);
        assert_eq!(WireSide::parse("short"), WireSide::Other("short".into()));
        assert_eq!(WireMethod::parse("STOP_MARKET"), WireMethod::StopMarket);
        assert_eq!(WireMethod::parse("stopLimit"), WireMethod::StopLimit);
        assert_eq!(WireMethod::parse("Limit"), WireMethod::Limit);
        assert_eq!(WireStatus::parse("Untouched"), WireStatus::Untouched);
        assert_eq!(WireStatus::parse("CANCELLED"), WireStatus::Canceled);
        assert_eq!(
            WireStatus::parse("Frozen"),
            WireStatus::Other("Frozen".into())
        );
    }
}
