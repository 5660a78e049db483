//! Operator alerts (`alerts.yaml`): evaluated after every cycle, raised and resolved as rows in
//! SQLite, exported as `btcbot_alert_active`, and announced through an optional command hook.
//!
//! The decision whether an alert fires ([`AlertMonitor::evaluate`]) is pure; [`apply`] does the
//! IO. A stuck loop cannot evaluate anything, so `no_cycle_for` is also watched from outside
//! the loop by [`watchdog`].

mod hook;

use crate::config::alerts::{AlertCondition, AlertKind, AlertRule, HookSection};
use crate::domain::Mode;
use crate::metrics::{metrics, status, wall_ms};
use crate::rules::watcher::SharedRules;
use crate::store::{AlertBook, AlertRaise, Store, StoreError, StorePipe};
use rust_decimal::Decimal;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

/// What one cycle shows the alert rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertInputs {
    pub cycle_id: i64,
    pub market_ms: i64,
    pub wall_ms: i64,
    /// Wall time since the previous cycle committed (`None` for the first).
    pub gap_ms: Option<i64>,
    pub mode: Mode,
    /// The error of the last reload attempt when it failed; `None` once one succeeds.
    pub reload_error: Option<String>,
    /// Today's PnL, marked to market (`None` before the first valuation).
    pub pnl_today: Option<Decimal>,
    /// The BALANCE_MISMATCH anomaly's detail when the cycle raised it.
    pub balance_mismatch: Option<String>,
    /// Orders the exchange rejected this cycle.
    pub exchange_rejects: u32,
}

/// Per-run memory the rules need across cycles (the reject window).
#[derive(Debug, Default)]
pub struct AlertMonitor {
    rejects: VecDeque<u32>,
}

impl AlertMonitor {
    /// For each rule, `Some(detail)` when its condition holds this cycle, `None` when not.
    pub fn evaluate<'r>(
        &mut self,
        rules: &'r [AlertRule],
        inputs: &AlertInputs,
    ) -> Vec<(&'r AlertRule, Option<String>)> {
        let longest = rules
            .iter()
            .filter_map(|r| match r.condition {
                AlertCondition::RepeatedRejects { within_cycles, .. } => Some(within_cycles),
                _ => None,
            })
            .max()
            .unwrap_or(0) as usize;
        self.rejects.push_back(inputs.exchange_rejects);
        while self.rejects.len() > longest {
            self.rejects.pop_front();
        }
        rules
            .iter()
            .map(|rule| (rule, self.fires(rule, inputs)))
            .collect()
    }

    fn fires(&self, rule: &AlertRule, i: &AlertInputs) -> Option<String> {
        match &rule.condition {
            AlertCondition::NoCycleFor { seconds } => {
                let limit = i64::try_from(*seconds).unwrap_or(i64::MAX / 1000) * 1000;
                i.gap_ms
                    .filter(|gap| *gap > limit)
                    .map(|gap| format!("{gap} ms between cycles (limit {seconds} s)"))
            }
            AlertCondition::ModeAtLeast { mode } => {
                (i.mode >= *mode).then(|| format!("mode {}", i.mode.as_str()))
            }
            AlertCondition::ReloadFailed => i.reload_error.clone(),
            AlertCondition::DailyLossBeyond { amount } => i
                .pnl_today
                .filter(|pnl| *pnl <= -*amount)
                .map(|pnl| format!("today's PnL {pnl} (limit -{amount})")),
            AlertCondition::BalanceMismatch => i.balance_mismatch.clone(),
            AlertCondition::RepeatedRejects {
                count,
                within_cycles,
            } => {
                let window = *within_cycles as usize;
                let n: u32 = self.rejects.iter().rev().take(window).sum();
                (n >= *count)
                    .then(|| format!("{n} exchange rejects in the last {within_cycles} cycles"))
            }
        }
    }
}

/// Per-run alert state kept by the runner: the monitor, the last reload error, and when the
/// previous cycle committed.
#[derive(Debug, Default)]
pub struct RunAlerts {
    monitor: AlertMonitor,
    /// Set by a failed reload, cleared by a good one.
    pub reload_error: Option<String>,
    last_cycle_wall_ms: Option<i64>,
    /// The rule names last evaluated (to notice rules removed by a reload).
    last_names: Option<Vec<String>>,
    /// Alerts are recorded but the hook is not run: a backtest replaying a live config must
    /// not page anyone about market data that is months old.
    hook_muted: bool,
}

impl RunAlerts {
    /// A run's alert state; `hook_muted`: record alerts without running the hook.
    pub fn new(hook_muted: bool) -> Self {
        Self {
            hook_muted,
            ..Self::default()
        }
    }

    /// Evaluates the rules of `config` against the cycle just committed and records the result.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn after_cycle(
        &mut self,
        store: &mut StorePipe,
        config: &crate::config::Config,
        outcome: &crate::engine::shell::CycleOutcome,
        cycle_id: i64,
        market_ms: i64,
    ) -> Result<(), StoreError> {
        let now = wall_ms();
        let gap_ms = self.last_cycle_wall_ms.map(|t| now - t);
        self.last_cycle_wall_ms = Some(now);
        let names: Vec<String> = config.alert_rules.iter().map(|r| r.name.clone()).collect();
        if self.last_names.as_ref() != Some(&names) {
            store.with(|s| resolve_removed(s, &names, now))?;
            self.last_names = Some(names);
        }
        if config.alert_rules.is_empty() {
            return Ok(());
        }
        let decision = outcome.decision.as_ref();
        let balance_mismatch = decision.and_then(|d| {
            let found: Vec<String> = d
                .anomalies
                .iter()
                .filter(|a| a.code == "BALANCE_MISMATCH")
                .map(|a| {
                    let what: Vec<String> =
                        a.detail.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    what.join(" ")
                })
                .collect();
            (!found.is_empty()).then(|| found.join("; "))
        });
        let inputs = AlertInputs {
            cycle_id,
            market_ms,
            wall_ms: now,
            gap_ms,
            mode: decision.map_or(Mode::ObserveOnly, |d| d.mode),
            reload_error: self.reload_error.clone(),
            pnl_today: outcome.valuation.as_ref().map(|v| v.pnl_today),
            balance_mismatch,
            exchange_rejects: outcome.rejected_by_exchange,
        };
        let evaluated = self.monitor.evaluate(&config.alert_rules, &inputs);
        let hook = config.alerts.hook.as_ref().filter(|_| !self.hook_muted);
        store.with(|s| apply(s, &evaluated, hook, &inputs))
    }
}

/// Resolves active alerts whose rule is no longer in alerts.yaml (removed, or renamed, by a
/// reload or between runs): nothing would ever resolve them otherwise.
fn resolve_removed(store: &mut Store, names: &[String], now: i64) -> Result<(), StoreError> {
    for row in store.alerts(true)? {
        if !names.contains(&row.name) && store.resolve_alert(&row.name, now)? {
            tracing::info!(alert = %row.name, "alert resolved: its rule was removed");
            metrics()
                .alerts_active
                .with_label_values(&[&row.name])
                .set(0);
        }
    }
    Ok(())
}

/// Records the evaluation: raises what fires and is not active, resolves what no longer does.
///
/// # Errors
/// When SQLite fails.
pub fn apply(
    store: &mut Store,
    evaluated: &[(&AlertRule, Option<String>)],
    hook: Option<&HookSection>,
    inputs: &AlertInputs,
) -> Result<(), StoreError> {
    for (rule, firing) in evaluated {
        match firing {
            Some(detail) => {
                let raised = store.raise_alert(&AlertRaise {
                    name: &rule.name,
                    kind: rule.kind.as_str(),
                    detail,
                    wall_ms: inputs.wall_ms,
                    cycle_id: Some(inputs.cycle_id),
                    market_ms: Some(inputs.market_ms),
                })?;
                if let Some(id) = raised {
                    announce(id, rule, detail, hook);
                }
                metrics()
                    .alerts_active
                    .with_label_values(&[&rule.name])
                    .set(1);
            }
            None => {
                if store.resolve_alert(&rule.name, inputs.wall_ms)? {
                    tracing::info!(alert = %rule.name, "alert resolved");
                }
                metrics()
                    .alerts_active
                    .with_label_values(&[&rule.name])
                    .set(0);
            }
        }
    }
    Ok(())
}

fn announce(id: i64, rule: &AlertRule, detail: &str, hook: Option<&HookSection>) {
    tracing::warn!(alert = %rule.name, id, kind = rule.kind.as_str(), "alert raised: {detail}");
    metrics()
        .alerts_raised
        .with_label_values(&[&rule.name])
        .inc();
    if let Some(h) = hook {
        hook::spawn(h, id, &rule.name, rule.kind.as_str(), detail);
    }
}

/// Watches `no_cycle_for` from outside the loop (a stuck exchange call or a deadlock never
/// reaches the per-cycle evaluation): every second, raises each such alert whose limit the last
/// cycle's age exceeds. The next cycle resolves it. Runs until the process ends.
pub async fn watchdog(db_path: PathBuf, rules: SharedRules) {
    let mut book: Option<AlertBook> = None;
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        interval.tick().await;
        let set = rules.load_full();
        let now = wall_ms();
        let age = status().cycle_age_ms(now);
        for rule in &set.config.alert_rules {
            let AlertCondition::NoCycleFor { seconds } = rule.condition else {
                continue;
            };
            let limit = i64::try_from(seconds).unwrap_or(i64::MAX / 1000) * 1000;
            if age <= limit {
                continue;
            }
            if book.is_none() {
                book = match AlertBook::open(&db_path) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::error!("alert watchdog cannot open the database: {e}");
                        None
                    }
                };
            }
            let Some(b) = &book else { continue };
            let detail = format!("no cycle for {age} ms (limit {seconds} s)");
            let raised = b.raise(&AlertRaise {
                name: &rule.name,
                kind: AlertKind::NoCycleFor.as_str(),
                detail: &detail,
                wall_ms: now,
                cycle_id: None,
                market_ms: None,
            });
            match raised {
                Ok(Some(id)) => announce(id, rule, &detail, set.config.alerts.hook.as_ref()),
                Ok(None) => {}
                Err(e) => tracing::error!("alert watchdog cannot raise {}: {e}", rule.name),
            }
            metrics()
                .alerts_active
                .with_label_values(&[&rule.name])
                .set(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alerts::AlertsFile;

    fn rules() -> Vec<AlertRule> {
        let file: AlertsFile = serde_norway::from_str(
            "rules:\n\
             - {name: stall, when: no_cycle_for, seconds: 5}\n\
             - {name: degraded, when: mode_at_least, mode: reduce_only}\n\
             - {name: reload, when: reload_failed}\n\
             - {name: loss, when: daily_loss_beyond, amount: '500'}\n\
             - {name: balances, when: balance_mismatch}\n\
             - {name: rejects, when: repeated_rejects, count: 3, within_cycles: 4}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        file.compile("alerts.yaml")
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn quiet() -> AlertInputs {
        AlertInputs {
            cycle_id: 1,
            market_ms: 0,
            wall_ms: 0,
            gap_ms: Some(1_000),
            mode: Mode::Normal,
            reload_error: None,
            pnl_today: Some(Decimal::ZERO),
            balance_mismatch: None,
            exchange_rejects: 0,
        }
    }

    fn firing(m: &mut AlertMonitor, rules: &[AlertRule], i: &AlertInputs) -> Vec<String> {
        m.evaluate(rules, i)
            .into_iter()
            .filter(|(_, f)| f.is_some())
            .map(|(r, _)| r.name.clone())
            .collect()
    }

    #[test]
    fn each_condition_fires_at_its_threshold_and_not_below() {
        let rules = rules();
        let mut m = AlertMonitor::default();
        assert!(firing(&mut m, &rules, &quiet()).is_empty());
        let at = |f: &dyn Fn(&mut AlertInputs)| {
            let mut i = quiet();
            f(&mut i);
            firing(&mut AlertMonitor::default(), &rules, &i)
        };
        assert_eq!(at(&|i| i.gap_ms = Some(5_001)), ["stall"]);
        assert!(at(&|i| i.gap_ms = Some(5_000)).is_empty());
        assert_eq!(at(&|i| i.mode = Mode::ReduceOnly), ["degraded"]);
        assert_eq!(at(&|i| i.mode = Mode::ObserveOnly), ["degraded"]);
        assert_eq!(at(&|i| i.reload_error = Some("x".into())), ["reload"]);
        assert_eq!(at(&|i| i.pnl_today = Some(Decimal::new(-500, 0))), ["loss"]);
        assert!(at(&|i| i.pnl_today = Some(Decimal::new(-49_999, 2))).is_empty());
        assert_eq!(
            at(&|i| i.balance_mismatch = Some("TRY".into())),
            ["balances"]
        );
    }

    #[test]
    fn an_active_alert_whose_rule_is_removed_is_resolved() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/default");
        let mut config = crate::config::Config::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        config.alert_rules = rules();
        let mut store = StorePipe::new(Store::open_in_memory().unwrap_or_else(|e| panic!("{e}")));
        let outcome = crate::engine::shell::CycleOutcome {
            rejected_by_exchange: 0,
            ..Default::default()
        };
        let mut run = RunAlerts {
            reload_error: Some("risk.rhai:3: syntax error".into()),
            ..RunAlerts::default()
        };
        run.after_cycle(&mut store, &config, &outcome, 1, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        let active: Vec<String> = store
            .with(|s| s.alerts(true))
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert!(active.contains(&"reload".to_string()), "{active:?}");
        // alerts.yaml loses the rule: its alert is resolved at the next cycle.
        config.alert_rules.retain(|r| r.name != "reload");
        run.after_cycle(&mut store, &config, &outcome, 2, 1_000)
            .unwrap_or_else(|e| panic!("{e}"));
        let still: Vec<String> = store
            .with(|s| s.alerts(true))
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert!(!still.contains(&"reload".to_string()), "{still:?}");
    }

    #[test]
    fn a_muted_run_records_its_alerts_without_running_the_hook() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/default");
        let mut config = crate::config::Config::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        config.alert_rules = rules();
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let paged = tmp.path().join("paged");
        config.alerts.hook = Some(crate::config::alerts::HookSection {
            command: vec![
                "sh".into(),
                "-c".into(),
                format!("echo \"$BTCBOT_ALERT_NAME\" >> '{}'", paged.display()),
            ],
            timeout_ms: 5_000,
        });
        let outcome = crate::engine::shell::CycleOutcome::default();
        let raise = |muted: bool| {
            let mut store =
                StorePipe::new(Store::open_in_memory().unwrap_or_else(|e| panic!("{e}")));
            let mut run = RunAlerts::new(muted);
            run.reload_error = Some("risk.rhai:3: syntax error".into());
            run.after_cycle(&mut store, &config, &outcome, 1, 0)
                .unwrap_or_else(|e| panic!("{e}"));
            let active = store.with(|s| s.alerts(true)).unwrap_or_default();
            assert!(active.iter().any(|a| a.name == "reload"), "{active:?}");
        };
        raise(true);
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(!paged.exists(), "a muted run ran the hook");
        // The same alert unmuted runs it (so the check above can fail).
        raise(false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !paged.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&paged).unwrap_or_default();
        assert!(
            text.lines().any(|l| l == "reload" || l == "degraded"),
            "{text:?}"
        );
    }

    #[test]
    fn rejects_count_over_a_sliding_window_of_cycles() {
        let rules = rules();
        let mut m = AlertMonitor::default();
        let with = |n: u32| AlertInputs {
            exchange_rejects: n,
            ..quiet()
        };
        assert!(firing(&mut m, &rules, &with(1)).is_empty());
        assert!(firing(&mut m, &rules, &with(1)).is_empty());
        assert_eq!(firing(&mut m, &rules, &with(1)), ["rejects"]);
        assert_eq!(firing(&mut m, &rules, &with(0)), ["rejects"]);
        // The first reject left the 4-cycle window.
        assert!(firing(&mut m, &rules, &with(0)).is_empty());
    }
}
