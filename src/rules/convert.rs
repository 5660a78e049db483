//! Conversions between YAML params, script values and the JSON kept in SQLite for script state.
//! Decimals stay exact: in JSON they are tagged strings (`{"$dec": "0.1"}`), never floats.

use crate::config::ParamValue;
use rhai::{Array, Dynamic, Map};
use rust_decimal::Decimal;
use serde_json::Value as Json;
use std::str::FromStr;

pub fn param_to_dynamic(v: &ParamValue) -> Dynamic {
    match v {
        ParamValue::Int(i) => Dynamic::from_int(*i),
        ParamValue::Decimal(d) => Dynamic::from_decimal(*d),
        ParamValue::Bool(b) => Dynamic::from_bool(*b),
        ParamValue::Text(s) => Dynamic::from(s.clone()),
        ParamValue::List(items) => {
            Dynamic::from_array(items.iter().map(param_to_dynamic).collect::<Array>())
        }
        ParamValue::Map(m) => Dynamic::from_map(
            m.iter()
                .map(|(k, v)| (k.as_str().into(), param_to_dynamic(v)))
                .collect::<Map>(),
        ),
    }
}

/// Script state → JSON. Only plain data survives; anything else is an error naming the key.
///
/// # Errors
/// When the state holds a value that cannot be stored (a function pointer, a registered type).
pub fn dynamic_to_json(v: &Dynamic, path: &str) -> Result<Json, String> {
    if v.is_unit() {
        return Ok(Json::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Json::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Json::from(i));
    }
    if let Ok(d) = v.as_decimal() {
        let mut m = serde_json::Map::new();
        m.insert("$dec".into(), Json::String(d.to_string()));
        return Ok(Json::Object(m));
    }
    if v.is_string() {
        return Ok(Json::String(v.to_string()));
    }
    if v.is_array() {
        let arr = v.read_lock::<Array>().ok_or("array is locked")?;
        return arr
            .iter()
            .enumerate()
            .map(|(i, x)| dynamic_to_json(x, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array);
    }
    if v.is_map() {
        let map = v.read_lock::<Map>().ok_or("map is locked")?;
        let mut out = serde_json::Map::new();
        for (k, x) in map.iter() {
            out.insert(k.to_string(), dynamic_to_json(x, &format!("{path}.{k}"))?);
        }
        return Ok(Json::Object(out));
    }
    Err(format!(
        "{path}: a {} cannot be kept in script state",
        v.type_name()
    ))
}

/// JSON (as stored) → script state.
///
/// # Errors
/// When the JSON holds a float or a malformed decimal tag.
pub fn json_to_dynamic(v: &Json) -> Result<Dynamic, String> {
    Ok(match v {
        Json::Null => Dynamic::UNIT,
        Json::Bool(b) => Dynamic::from_bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => return Err(format!("state holds a non-integer number {n}")),
        },
        Json::String(s) => Dynamic::from(s.clone()),
        Json::Array(items) => Dynamic::from_array(
            items
                .iter()
                .map(json_to_dynamic)
                .collect::<Result<Array, _>>()?,
        ),
        Json::Object(m) => {
            if m.len() == 1
                && let Some(Json::String(text)) = m.get("$dec")
            {
                let d = Decimal::from_str(text).map_err(|e| format!("bad decimal {text}: {e}"))?;
                return Ok(Dynamic::from_decimal(d));
            }
            let mut out = Map::new();
            for (k, x) in m {
                out.insert(k.as_str().into(), json_to_dynamic(x)?);
            }
            Dynamic::from_map(out)
        }
    })
}

/// The `script_state` rows of four stage states: `(prefix + stage name, JSON)`. A state that
/// cannot be stored (it holds an engine value) is stored as `null`, with a warning.
pub fn state_rows(prefix: &str, states: &[Dynamic; 4]) -> Vec<(String, String)> {
    crate::rules::Stage::ALL
        .into_iter()
        .map(|stage| {
            let json = dynamic_to_json(&states[stage as usize], stage.name()).unwrap_or_else(|e| {
                tracing::warn!("{prefix}{} state not storable: {e}", stage.name());
                serde_json::Value::Null
            });
            (format!("{prefix}{}", stage.name()), json.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_exactly() {
        let mut m = Map::new();
        m.insert(
            "a".into(),
            Dynamic::from_decimal(Decimal::from_str("0.1").unwrap()),
        );
        m.insert("n".into(), Dynamic::from_int(7));
        m.insert("s".into(), Dynamic::from("x"));
        m.insert(
            "l".into(),
            Dynamic::from_array(vec![Dynamic::TRUE, Dynamic::UNIT]),
        );
        let d = Dynamic::from_map(m);
        let json = dynamic_to_json(&d, "state").unwrap();
        let back = json_to_dynamic(&json).unwrap();
        assert_eq!(
            dynamic_to_json(&back, "state").unwrap(),
            json,
            "round trip changed the state"
        );
        assert_eq!(json["a"]["$dec"], "0.1");
    }

    #[test]
    fn floats_in_state_are_refused() {
        assert!(json_to_dynamic(&serde_json::json!({"x": 1.5})).is_err());
    }
}
