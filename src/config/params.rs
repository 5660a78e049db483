//! Free-form script parameters from YAML. Numbers become exact decimals: YAML floats are read
//! back through their shortest text form, so `0.1` is exactly 0.1, never 0.1000000000000000055.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Decimal(Decimal),
    Bool(bool),
    Text(String),
    List(Vec<ParamValue>),
    Map(BTreeMap<String, ParamValue>),
}

/// A script's params: a map from name to value.
pub type Params = BTreeMap<String, ParamValue>;

/// Deserialized event by event (not through `serde_norway::Value`) so an error is reported at
/// the offending value's own line, with its key path.
impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamVisitor)
    }
}

struct ParamVisitor;

impl<'de> serde::de::Visitor<'de> for ParamVisitor {
    type Value = ParamValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number, a string, a bool, a list or a map")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ParamValue, E> {
        Ok(ParamValue::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ParamValue, E> {
        Ok(ParamValue::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ParamValue, E> {
        i64::try_from(v)
            .map(ParamValue::Int)
            .map_err(|_| E::custom(format!("number {v} is out of range")))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ParamValue, E> {
        // The shortest text that reads back as this float is what the operator wrote.
        crate::domain::decimal_from_str(&v.to_string())
            .map(ParamValue::Decimal)
            .map_err(|_| E::custom(format!("number {v} is out of range")))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ParamValue, E> {
        // A quoted number would compare as text, and Rhai orders a number against a string as
        // `false`: refuse it rather than let a guard silently pass.
        if crate::domain::decimal_from_str(v).is_ok() {
            return Err(E::custom(format!(
                "\"{v}\" is a number in quotes; write it without quotes"
            )));
        }
        Ok(ParamValue::Text(v.to_string()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<ParamValue, E> {
        Err(E::custom("null is not a parameter value"))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<ParamValue, E> {
        self.visit_unit()
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ParamValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<ParamValue>()? {
            items.push(item);
        }
        Ok(ParamValue::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ParamValue, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, ParamValue>()? {
            out.insert(k, v);
        }
        Ok(ParamValue::Map(out))
    }
}
