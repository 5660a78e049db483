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

impl ParamValue {
    fn from_yaml(v: serde_norway::Value) -> Result<Self, String> {
        use serde_norway::Value as Y;
        Ok(match v {
            Y::Null => return Err("null is not a parameter value".into()),
            Y::Bool(b) => ParamValue::Bool(b),
            Y::Number(n) => {
                if let Some(i) = n.as_i64() {
                    ParamValue::Int(i)
                } else {
                    let text = n.to_string();
                    let d = crate::domain::decimal_from_str(&text)
                        .map_err(|_| format!("number {text} is out of range"))?;
                    ParamValue::Decimal(d)
                }
            }
            Y::String(s) => ParamValue::Text(s),
            Y::Sequence(items) => ParamValue::List(
                items
                    .into_iter()
                    .map(ParamValue::from_yaml)
                    .collect::<Result<_, _>>()?,
            ),
            Y::Mapping(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let key = match k {
                        Y::String(s) => s,
                        other => return Err(format!("map keys must be strings, got {other:?}")),
                    };
                    let value = ParamValue::from_yaml(v).map_err(|e| format!("{key}: {e}"))?;
                    out.insert(key, value);
                }
                ParamValue::Map(out)
            }
            Y::Tagged(t) => return Err(format!("YAML tags are not supported ({})", t.tag)),
        })
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_norway::Value::deserialize(d)?;
        ParamValue::from_yaml(v).map_err(serde::de::Error::custom)
    }
}
