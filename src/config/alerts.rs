//! `alerts.yaml` (optional): the operator's alert rules and the command run when one is raised.
//!
//! ```yaml
//! rules:
//!   - {name: stalled, when: no_cycle_for, seconds: 120}
//!   - {name: degraded, when: mode_at_least, mode: reduce_only}
//!   - {name: reload, when: reload_failed}
//!   - {name: loss, when: daily_loss_beyond, amount: "500"}
//!   - {name: balances, when: balance_mismatch}
//!   - {name: rejects, when: repeated_rejects, count: 3, within_cycles: 10}
//! hook:
//!   command: [/usr/local/bin/page-me, --severity, high]
//!   timeout_ms: 10000
//! ```

use super::ConfigError;
use crate::domain::Mode;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeSet;

/// The whole file; absent = no alerts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    #[serde(default)]
    pub rules: Vec<AlertRuleFile>,
    #[serde(default)]
    pub hook: Option<HookSection>,
}

/// Which condition an alert watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// No cycle committed for `seconds` (raised by the watchdog while the loop is stuck).
    NoCycleFor,
    /// The cycle's mode is `mode` or stricter.
    ModeAtLeast,
    /// The last rules reload failed (resolved by the next good one).
    ReloadFailed,
    /// Today's PnL (marked to market, fees included) is at or below −`amount`.
    DailyLossBeyond,
    /// The cycle raised BALANCE_MISMATCH (venue balances differ from the ledger).
    BalanceMismatch,
    /// At least `count` orders rejected by the exchange within the last `within_cycles` cycles.
    RepeatedRejects,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::NoCycleFor => "no_cycle_for",
            AlertKind::ModeAtLeast => "mode_at_least",
            AlertKind::ReloadFailed => "reload_failed",
            AlertKind::DailyLossBeyond => "daily_loss_beyond",
            AlertKind::BalanceMismatch => "balance_mismatch",
            AlertKind::RepeatedRejects => "repeated_rejects",
        }
    }
}

/// One rule as written; [`AlertsFile::compile`] checks that its kind's fields are present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleFile {
    pub name: String,
    pub when: AlertKind,
    #[serde(default)]
    pub seconds: Option<u64>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub within_cycles: Option<u32>,
}

/// A command run (not through a shell) when an alert is raised, killed after `timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSection {
    pub command: Vec<String>,
    #[serde(default = "default_hook_timeout")]
    pub timeout_ms: u64,
}

fn default_hook_timeout() -> u64 {
    10_000
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertCondition {
    NoCycleFor { seconds: u64 },
    ModeAtLeast { mode: Mode },
    ReloadFailed,
    DailyLossBeyond { amount: Decimal },
    BalanceMismatch,
    RepeatedRejects { count: u32, within_cycles: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub name: String,
    pub kind: AlertKind,
    pub condition: AlertCondition,
}

impl AlertsFile {
    /// The rules with their fields checked; every problem is reported with its key.
    ///
    /// # Errors
    /// One [`ConfigError`] per missing or invalid field, duplicate name or empty hook.
    pub fn compile(&self, file: &str) -> Result<Vec<AlertRule>, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let err = |field: &str, message: String| ConfigError {
                file: file.to_string(),
                line: None,
                key: Some(format!("rules[{i}].{field}")),
                message,
            };
            if r.name.trim().is_empty() {
                errors.push(err("name", "must not be empty".into()));
            } else if !names.insert(r.name.clone()) {
                errors.push(err("name", format!("{:?} is used twice", r.name)));
            }
            let needs =
                |field: &str| err(field, format!("required when `when: {}`", r.when.as_str()));
            let condition = match r.when {
                AlertKind::NoCycleFor => match r.seconds {
                    Some(s) if s > 0 => Some(AlertCondition::NoCycleFor { seconds: s }),
                    Some(_) => {
                        errors.push(err("seconds", "must be > 0".into()));
                        None
                    }
                    None => {
                        errors.push(needs("seconds"));
                        None
                    }
                },
                AlertKind::ModeAtLeast => match r.mode {
                    Some(Mode::Normal) => {
                        errors.push(err("mode", "normal would always be raised".into()));
                        None
                    }
                    Some(mode) => Some(AlertCondition::ModeAtLeast { mode }),
                    None => {
                        errors.push(needs("mode"));
                        None
                    }
                },
                AlertKind::ReloadFailed => Some(AlertCondition::ReloadFailed),
                AlertKind::DailyLossBeyond => match r.amount {
                    Some(a) if a > Decimal::ZERO => {
                        Some(AlertCondition::DailyLossBeyond { amount: a })
                    }
                    Some(_) => {
                        errors.push(err("amount", "must be > 0 (a loss of that size)".into()));
                        None
                    }
                    None => {
                        errors.push(needs("amount"));
                        None
                    }
                },
                AlertKind::BalanceMismatch => Some(AlertCondition::BalanceMismatch),
                AlertKind::RepeatedRejects => match (r.count, r.within_cycles) {
                    (Some(count), Some(within)) if count > 0 && within > 0 => {
                        Some(AlertCondition::RepeatedRejects {
                            count,
                            within_cycles: within,
                        })
                    }
                    (Some(_), Some(_)) => {
                        errors.push(err("count", "count and within_cycles must be > 0".into()));
                        None
                    }
                    (None, _) => {
                        errors.push(needs("count"));
                        None
                    }
                    (_, None) => {
                        errors.push(needs("within_cycles"));
                        None
                    }
                },
            };
            if let Some(condition) = condition {
                rules.push(AlertRule {
                    name: r.name.clone(),
                    kind: r.when,
                    condition,
                });
            }
        }
        if let Some(h) = &self.hook {
            if h.command.first().is_none_or(|c| c.trim().is_empty()) {
                errors.push(ConfigError {
                    file: file.to_string(),
                    line: None,
                    key: Some("hook.command".into()),
                    message: "must name a program".into(),
                });
            }
            if h.timeout_ms == 0 {
                errors.push(ConfigError {
                    file: file.to_string(),
                    line: None,
                    key: Some("hook.timeout_ms".into()),
                    message: "must be > 0".into(),
                });
            }
        }
        if errors.is_empty() {
            Ok(rules)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AlertsFile {
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_kind_compiles_with_its_fields() {
        let file = parse(
            "rules:\n\
             - {name: a, when: no_cycle_for, seconds: 60}\n\
             - {name: b, when: mode_at_least, mode: reduce_only}\n\
             - {name: c, when: reload_failed}\n\
             - {name: d, when: daily_loss_beyond, amount: '500'}\n\
             - {name: e, when: balance_mismatch}\n\
             - {name: f, when: repeated_rejects, count: 3, within_cycles: 10}\n\
             hook: {command: [/bin/true]}\n",
        );
        let rules = file
            .compile("alerts.yaml")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rules.len(), 6);
        assert_eq!(
            rules[3].condition,
            AlertCondition::DailyLossBeyond {
                amount: Decimal::new(500, 0)
            }
        );
        assert_eq!(file.hook.map(|h| h.timeout_ms), Some(10_000));
    }

    #[test]
    fn missing_fields_duplicates_and_empty_hooks_are_named() {
        let file = parse(
            "rules:\n\
             - {name: a, when: no_cycle_for}\n\
             - {name: a, when: daily_loss_beyond, amount: '-5'}\n\
             - {name: m, when: mode_at_least, mode: normal}\n\
             - {name: r, when: repeated_rejects, count: 3}\n\
             hook: {command: [], timeout_ms: 0}\n",
        );
        let errors = file.compile("alerts.yaml").err().unwrap_or_default();
        let keys: Vec<String> = errors.iter().filter_map(|e| e.key.clone()).collect();
        assert_eq!(
            keys,
            [
                "rules[0].seconds",
                "rules[1].name",
                "rules[1].amount",
                "rules[2].mode",
                "rules[3].within_cycles",
                "hook.command",
                "hook.timeout_ms"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let r: Result<AlertsFile, _> =
            serde_norway::from_str("rules:\n- {name: a, when: reload_failed, sconds: 3}\n");
        assert!(r.is_err());
    }
}
