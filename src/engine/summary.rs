//! What a run did: counted cycle by cycle, printed at the end.

use super::plan::Action;
use super::shell::CycleOutcome;
use crate::domain::Verdict;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a run did, printed at the end.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub cycles: u64,
    pub intents: u64,
    pub verdicts: BTreeMap<String, u64>,
    pub actions: BTreeMap<String, u64>,
    pub modes: BTreeMap<String, u64>,
    pub orders_placed: u64,
    pub orders_canceled: u64,
    pub exchange_rejects: u64,
    pub fills: u64,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub equity_start: Decimal,
    pub equity_end: Decimal,
    pub rule_hash: String,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub database: PathBuf,
    pub gate: String,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(f, "run summary")?;
        writeln!(f, "  gate:        {}", self.gate)?;
        writeln!(f, "  cycles:      {}", self.cycles)?;
        writeln!(f, "  modes:       {}", join(&self.modes))?;
        writeln!(f, "  intents:     {}", self.intents)?;
        writeln!(f, "  verdicts:    {}", join(&self.verdicts))?;
        writeln!(f, "  actions:     {}", join(&self.actions))?;
        writeln!(
            f,
            "  orders:      placed={} canceled={} rejected_by_exchange={}",
            self.orders_placed, self.orders_canceled, self.exchange_rejects
        )?;
        writeln!(f, "  fills:       {}", self.fills)?;
        writeln!(
            f,
            "  pnl:         realized={} fees={} net={} equity {} -> {} ({:+})",
            self.realized_pnl.round_dp(2),
            self.fees.round_dp(2),
            (self.realized_pnl - self.fees).round_dp(2),
            self.equity_start.round_dp(2),
            self.equity_end.round_dp(2),
            (self.equity_end - self.equity_start).round_dp(2)
        )?;
        writeln!(
            f,
            "  rules:       hash={} reloads ok={} failed={}",
            self.rule_hash, self.reloads_ok, self.reloads_failed
        )?;
        write!(f, "  database:    {}", self.database.display())
    }
}

impl Summary {
    /// Counts one committed cycle.
    pub(super) fn tally(&mut self, outcome: &CycleOutcome, hash: &str) {
        self.cycles += 1;
        self.orders_placed += u64::from(outcome.placed);
        self.orders_canceled += u64::from(outcome.canceled);
        self.exchange_rejects += u64::from(outcome.rejected_by_exchange);
        self.rule_hash = hash.to_string();
        if let Some(d) = &outcome.decision {
            *self.modes.entry(d.mode.as_str().to_string()).or_default() += 1;
            self.intents += d.judged.len() as u64;
            for j in &d.judged {
                let key = match &j.verdict {
                    Verdict::Reject { reason } => reason.clone(),
                    other => other.reason_code().to_string(),
                };
                *self.verdicts.entry(key).or_default() += 1;
            }
        }
        for a in &outcome.actions {
            let key = match a {
                Action::Dropped(reason) => format!("dropped:{reason}"),
                other => other.label(),
            };
            *self.actions.entry(key).or_default() += 1;
        }
    }
}
