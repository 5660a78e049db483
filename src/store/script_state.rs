//! The persisted `state` map of each script (cooldowns, hysteresis), latest value per script.
//! The JSON is checked on the way in and on the way out: the engine hands it to a script, so a
//! corrupt value must surface as an error here, not as a surprise inside Rhai.

use super::codec::query_all;
use super::{Store, StoreError};
use rusqlite::{Connection, params};

impl Store {
    /// `(script name, json)` for every script with stored state, by script name.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value is not JSON.
    pub fn script_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        query_all(
            &self.conn,
            "script_state",
            "SELECT script, json FROM script_state ORDER BY script",
            [],
            |c| {
                let json = c.text("json")?;
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
                    return Err(StoreError::corrupt(
                        "script_state",
                        "json",
                        format!("bad JSON: {e}"),
                    ));
                }
                Ok((c.text("script")?, json))
            },
        )
    }
}

impl Store {
    /// Stores `(script name, json)` rows as of `cycle_id`, in one write unit.
    ///
    /// # Errors
    /// When a value is not JSON or SQLite cannot write.
    pub fn save_script_states(
        &mut self,
        cycle_id: i64,
        states: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.write_unit("save script state", |tx| upsert_all(tx, cycle_id, states))
    }
}

pub(crate) fn upsert_all(
    conn: &Connection,
    cycle_id: i64,
    states: &[(String, String)],
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO script_state (script, json, updated_cycle) VALUES (?1, ?2, ?3) \
             ON CONFLICT (script) DO UPDATE SET json = excluded.json, \
             updated_cycle = excluded.updated_cycle",
        )
        .map_err(StoreError::sql("prepare script state upsert"))?;
    for (script, json) in states {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(json) {
            return Err(StoreError::InvalidInput {
                what: "script state",
                detail: format!("state of {script} is not JSON: {e}"),
            });
        }
        stmt.execute(params![script, json, cycle_id])
            .map_err(StoreError::sql("upsert script state"))?;
    }
    Ok(())
}
