//! Start-up helpers of the runner: a used replay database moved aside, the ledger's stored
//! baselines, the shadow candidate.

use crate::rules::RuleSet;
use crate::store::{Durability, Store};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Moves a replay database that already holds a run aside (never deletes it).
pub(crate) fn rotate_if_used(path: &Path) -> Result<Option<PathBuf>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let used = Store::open(path, Durability::Normal)
        .and_then(|s| s.last_cycle_id())
        .map_err(|e| format!("{}: {e}", path.display()))?
        .is_some();
    if !used {
        return Ok(None);
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stem = path
        .file_stem()
        .map_or("btcbot".into(), |s| s.to_string_lossy().to_string());
    let moved = path.with_file_name(format!("{stem}.{stamp}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", moved.display()));
            std::fs::rename(&from, &to)
                .map_err(|e| format!("cannot move {}: {e}", from.display()))?;
        }
    }
    Ok(Some(moved))
}

/// The candidate rule set rules.yaml `shadow` names, built and tested like the active one.
pub(crate) fn build_shadow(config: &crate::config::Config) -> Result<Option<RuleSet>, String> {
    let Some(dir) = &config.rules.shadow else {
        return Ok(None);
    };
    let dir = config.resolve(dir);
    let set =
        RuleSet::build(&dir).map_err(|e| format!("rules.yaml shadow ({}): {e}", dir.display()))?;
    // A per-quote pack decides in on_quote(q); beside a cycle its strategy(ctx) makes no
    // intent, so as a shadow it would only ever look stricter.
    if set.config.bot.cycle.evaluate == crate::config::Evaluate::PerQuote {
        return Err(format!(
            "rules.yaml shadow ({}): its bot.yaml says cycle.evaluate: per_quote; a shadow is \
             evaluated once per cycle",
            dir.display()
        ));
    }
    Ok(Some(set))
}

/// The baseline stored under `key`, or (first start) the venue's balance of `asset`, stored.
pub(crate) fn stored_baseline(
    store: &mut Store,
    key: &str,
    venue_balances: &BTreeMap<String, Decimal>,
    asset: &str,
) -> Result<Decimal, String> {
    match store.meta_value(key).map_err(|e| e.to_string())? {
        Some(text) => {
            crate::domain::decimal_from_str(&text).map_err(|e| format!("stored {key}: {e}"))
        }
        None => {
            let value = venue_balances.get(asset).copied().unwrap_or(Decimal::ZERO);
            store
                .set_meta_value(key, &value.to_string())
                .map_err(|e| e.to_string())?;
            Ok(value)
        }
    }
}
