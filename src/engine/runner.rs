//! The run loop: start-up (config, rules, venue, database, recovery of state), pacing, hot reload
//! between cycles, graceful shutdown and the end-of-run summary.

use super::plan::Gates;
use super::shell::{CycleError, Shell};
use super::startup::{build_shadow, stored_baseline};
pub use super::summary::Summary;
use super::valuation::EquityTracker;
use super::venue::{CycleClock, wall_ms};
use crate::domain::{Mode, Symbol};
use crate::exchange::replay::ReplayFeed;
use crate::ledger::Ledger;
use crate::rules::convert::json_to_dynamic;
use crate::rules::watcher::{ReloadOutcome, RuleWatcher, SharedRules, watch};
use crate::rules::{RuleSet, Stage};
use crate::store::{Durability, ReloadRecord, Store, StorePipe};
use arc_swap::ArcSwap;
use rhai::Dynamic;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Instrument;

/// How fast cycles follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// No waiting: as fast as the replay allows.
    Max,
    /// Wall-clock pacing: wait (`cycle.interval_ms` ± `cycle.jitter_ms`) / `speedup` between
    /// cycles; `speedup` 1 is real time.
    Wall { speedup: u32 },
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config_dir: PathBuf,
    pub max_cycles: Option<u64>,
    /// `None`: as fast as possible over a replay, real time against a live venue.
    pub pacing: Option<Pacing>,
    /// Overrides `database.path`.
    pub db: Option<PathBuf>,
    /// Watch the config and rules for changes (hot reload).
    pub watch: bool,
    /// Replay this dataset instead of bot.yaml's; a BTCTurk venue then becomes a replay of it
    /// (`Config::replay_over`), which needs `starting_balances`.
    pub dataset: Option<PathBuf>,
    /// A replay's starting balances, in place of bot.yaml's `exchange.starting_balances`.
    pub starting_balances: Option<crate::config::Balances>,
    /// A study of the rules over recorded data (`backtest`, the replays of `rules diff`), not
    /// the bot: alerts are recorded without running alerts.yaml's hook, no Prometheus metrics
    /// are recorded (nothing serves them), and the kill switch is not read. It guards a
    /// venue's orders and a replay places none; read, it would turn every cycle of both runs of
    /// a diff observe_only, and `--fail-on loosen` would pass any candidate.
    pub study: bool,
    /// Market-time window of a replay: the first cycle is at or after `from_ms`, none after `to_ms`.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// A shadow candidate config directory, in place of rules.yaml's `shadow`.
    pub shadow: Option<PathBuf>,
    /// The shadow decides from the active set's script state (see `Shadow::mirror_state`).
    pub shadow_mirrors_state: bool,
    /// Over a replay venue only: commit this many cycles per SQLite transaction (backtests,
    /// which a crash only makes repeat). 0 or 1: every cycle is its own transaction.
    pub group_commits: u32,
    /// Over a replay venue only: read the events from this feed, decoded once for several
    /// runs of the same dataset (`rules diff`), instead of decoding them again.
    pub replay_feed: Option<ReplayFeed>,
    /// The database is thrown away after the run is read (`rules diff` without `--keep`): its
    /// cycles skip what only explain, parity and a restart read (inputs, fingerprints, script
    /// state), and the Prometheus metrics nothing serves. Everything a report or a diff reads
    /// is written as always.
    pub throwaway_db: bool,
}

impl RunOptions {
    /// Options for `config_dir` with every override off.
    pub fn new(config_dir: PathBuf) -> Self {
        Self {
            config_dir,
            max_cycles: None,
            pacing: None,
            db: None,
            watch: false,
            dataset: None,
            starting_balances: None,
            study: false,
            from_ms: None,
            to_ms: None,
            shadow: None,
            shadow_mirrors_state: false,
            group_commits: 0,
            replay_feed: None,
            throwaway_db: false,
        }
    }
}

/// Start-up: everything the loop needs, built from the config directory.
pub struct Runner {
    pub options: RunOptions,
    pub rules: SharedRules,
    pub shell: Shell,
    pub summary: Summary,
    watcher: Option<RuleWatcher>,
    interval_ms: i64,
    jitter_ms: u64,
    next_ts_ms: i64,
    clock: CycleClock,
    next_cycle_id: i64,
    /// `None` in a study (see `RunOptions::study`).
    kill_switch: Option<super::kill_switch::KillSwitch>,
    /// Whether live trading is armed and why (not): the start-up banner, `doctor`, metrics.
    pub arming: super::arming::Arming,
    /// Called after every committed cycle with its market time (a progress bar).
    pub on_cycle: Option<Box<dyn FnMut(i64) + Send>>,
    alerts: crate::alerts::RunAlerts,
}

impl Runner {
    /// # Errors
    /// One line saying what is wrong (config, rules, dataset, database).
    pub async fn start(options: RunOptions) -> Result<Runner, String> {
        let set = RuleSet::build(&options.config_dir).map_err(|e| e.to_string())?;
        let mut config = set.config.clone();
        config.replay_over(
            options.dataset.as_deref(),
            options.starting_balances.as_ref(),
        )?;
        if let Some(shadow) = &options.shadow {
            config.rules.shadow = Some(shadow.clone());
        }
        let bot = &config.bot;
        if bot.cycle.evaluate == crate::config::Evaluate::PerQuote {
            return Err(format!(
                "{}: cycle.evaluate: per_quote runs only in `btcbot backtest` and `btcbot rules \
                 diff`, quote by quote over a replay; this command runs the cycle loop (set \
                 cycle.evaluate: per_cycle)",
                config.dir.join("bot.yaml").display()
            ));
        }
        let db_path = options
            .db
            .clone()
            .unwrap_or_else(|| bot.database.path.clone());
        let replay = config.dataset.is_some();
        if replay && let Some(moved) = super::startup::rotate_if_used(&db_path)? {
            tracing::info!("previous replay run kept as {}", moved.display());
        }
        let credentials = super::venue::credentials(&config)?;
        let arming = super::arming::evaluate(
            bot.mode,
            super::venue::kind(&config),
            credentials.is_some(),
            std::env::var(super::arming::ARMING_ENV).ok().as_deref(),
        );
        let durability = if arming.live {
            Durability::Full
        } else {
            Durability::Normal
        };
        let mut store = Store::open(&db_path, durability).map_err(|e| e.to_string())?;
        let started_ms = match store
            .meta_value("first_start_ms")
            .map_err(|e| e.to_string())?
        {
            Some(t) => t
                .parse::<i64>()
                .map_err(|_| format!("stored first_start_ms {t:?} is not a number"))?,
            None => {
                let now = wall_ms();
                store
                    .set_meta_value("first_start_ms", &now.to_string())
                    .map_err(|e| e.to_string())?;
                now
            }
        };
        let venue = super::venue::open(
            &config,
            credentials,
            started_ms,
            options.replay_feed.as_ref(),
        )
        .await?;
        // The ledger's baselines are fixed at the first start against this database: the quote
        // balance it starts from, and each base asset's holding that is not the bot's.
        let starting_cash = stored_baseline(
            &mut store,
            &format!("ledger_starting_cash_{}", bot.quote_asset),
            &venue.starting_balances,
            &bot.quote_asset,
        )?;
        let mut base_baselines = BTreeMap::new();
        for spec in &venue.specs {
            if spec.quote != bot.quote_asset || !bot.symbols.contains(&spec.symbol) {
                continue;
            }
            let baseline = stored_baseline(
                &mut store,
                &format!("ledger_starting_qty_{}", spec.base),
                &venue.starting_balances,
                &spec.base,
            )?;
            base_baselines.insert(spec.symbol.clone(), (spec.base.clone(), baseline));
        }
        let equity = match store.last_equity_snapshot().map_err(|e| e.to_string())? {
            Some(s) => EquityTracker {
                peak: Some(s.peak_equity),
                last: Some((s.ts_ms, s.equity)),
                day_start: Some(s.day_start_equity),
                week_start: Some(s.week_start_equity),
            },
            None => EquityTracker::default(),
        };
        let fills = store.fills().map_err(|e| e.to_string())?;
        let ledger =
            Ledger::rebuild(&bot.quote_asset, starting_cash, &fills).map_err(|e| e.to_string())?;
        let mut states: [Dynamic; 4] = Default::default();
        let mut shadow_states: [Dynamic; 4] = Default::default();
        for (name, json) in store.script_states().map_err(|e| e.to_string())? {
            let (target, stage_name) = match name.strip_prefix(super::shadow::STATE_PREFIX) {
                Some(rest) => (&mut shadow_states, rest),
                None => (&mut states, name.as_str()),
            };
            if let Some(stage) = Stage::ALL.into_iter().find(|s| s.name() == stage_name) {
                let value: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|e| format!("stored {name} state is not JSON: {e}"))?;
                target[stage as usize] = json_to_dynamic(&value)?;
            }
        }
        let shadow = build_shadow(&config)?.map(|rules| {
            eprintln!(
                "shadow: candidate rules {} from {} (recorded, never acted on)",
                rules.hash,
                rules.config.dir.display()
            );
            super::shadow::Shadow {
                rules,
                states: shadow_states,
                mirror_state: options.shadow_mirrors_state,
                plan: None,
            }
        });
        let live_orders = store
            .open_orders()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|o| (o.client_id.clone(), o))
            .collect();
        // A simulated exchange takes orders only when they can be signed; without credentials
        // the run records would-be orders, as a dry run against a real venue does.
        let simulated =
            venue.simulated && (venue.has_credentials || venue.clock != CycleClock::Wall);
        let kill_switch = if options.study {
            tracing::info!("a study of recorded data: the kill switch is not read");
            None
        } else {
            Some(super::kill_switch::KillSwitch::from_config(&config))
        };
        crate::metrics::metrics().set_arming(arming.live, &arming.reason);
        crate::metrics::status().mark_started(wall_ms());
        // Live trading, or a config that asks for it but is not armed, is worth a warning.
        if arming.live || bot.mode == crate::config::TradingMode::Live {
            tracing::warn!("arming: {}", arming.reason);
        } else {
            tracing::info!("arming: {}", arming.reason);
        }
        let (live_armed, gate) = (arming.live, arming.reason.clone());
        // A cycle that crashed after writing its outbox but before its commit left orders with
        // its id: never reuse it, or a client order id could repeat.
        let last_outbox_cycle = store
            .orders()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|o| o.cycle_id)
            .max()
            .unwrap_or(0);
        let next_cycle_id = store
            .last_cycle_id()
            .map_err(|e| e.to_string())?
            .unwrap_or(0)
            .max(last_outbox_cycle)
            + 1;
        let shell = Shell {
            symbols: bot.symbols.clone(),
            specs: venue
                .specs
                .into_iter()
                .map(|s| (s.symbol.clone(), s))
                .collect(),
            // A dry run against a real venue can send nothing, whatever the plan says.
            exchange: Box::new(super::send_guard::SendGuard::new(
                venue.exchange,
                simulated || live_armed,
            )),
            fill_cursor: store.fill_cursor().map_err(|e| e.to_string())?,
            store: StorePipe::new(store),
            ledger,
            live_orders,
            states,
            last_stats: Default::default(),
            order_ttl_ms: i64::try_from(bot.orders.ttl_ms).unwrap_or(i64::MAX),
            unknown_orders: bot.orders.unknown_venue_orders,
            gates: Gates {
                simulated_venue: simulated,
                live_armed,
                kill_switch: false,
            },
            last_markets: BTreeMap::new(),
            equity,
            base_baselines,
            wall_clock: venue.clock == CycleClock::Wall,
            shadow,
            kill_cancel_all: kill_switch.as_ref().is_some_and(|k| k.cancel_all),
            throwaway_db: options.throwaway_db,
            record_metrics: !(options.throwaway_db || options.study),
        };
        let mut shell = shell;
        let first_ts = match venue.clock {
            CycleClock::Replay { first_ts_ms } => {
                first_ts_ms.max(options.from_ms.unwrap_or(i64::MIN))
            }
            CycleClock::Wall => wall_ms(),
        };
        let recovery = shell.recover(first_ts).await.map_err(|e| e.to_string())?;
        if recovery.found > 0 {
            eprintln!(
                "recovery: {} unresolved order(s) found, {} resolved",
                recovery.found, recovery.resolved
            );
            for line in &recovery.lines {
                eprintln!("recovery:   {line}");
            }
        }
        if super::venue::kind(&config) == super::arming::VenueKind::Replay {
            shell
                .store
                .group_commits(options.group_commits)
                .map_err(|e| e.to_string())?;
        }
        let rules: SharedRules = Arc::new(ArcSwap::from_pointee(set));
        let watcher = if options.watch {
            Some(watch(
                &config.dir,
                &config.rules_dir,
                Arc::clone(&rules),
                Duration::from_millis(200),
            )?)
        } else {
            None
        };
        let interval_ms = i64::try_from(bot.cycle.interval_ms).unwrap_or(1000);
        let summary = Summary {
            rule_hash: rules.load().hash.clone(),
            database: db_path,
            gate,
            equity_start: starting_cash,
            ..Summary::default()
        };
        let study = options.study;
        Ok(Runner {
            kill_switch,
            arming,
            options,
            rules,
            shell,
            summary,
            watcher,
            interval_ms,
            jitter_ms: bot.cycle.jitter_ms,
            next_ts_ms: first_ts,
            clock: venue.clock,
            next_cycle_id,
            on_cycle: None,
            alerts: crate::alerts::RunAlerts::new(study),
        })
    }

    /// Rebuilds the shadow candidate after the active rules reloaded (its files may have changed
    /// too). A candidate that no longer builds is dropped with an error: it never acts anyway.
    fn reload_shadow(&mut self) {
        let config = self.rules.load().config.clone();
        match build_shadow(&config) {
            Ok(Some(rules)) => {
                let states = self
                    .shell
                    .shadow
                    .take()
                    .map(|s| s.states)
                    .unwrap_or_default();
                self.shell.shadow = Some(super::shadow::Shadow {
                    rules,
                    states,
                    mirror_state: self.options.shadow_mirrors_state,
                    plan: None,
                });
            }
            Ok(None) => self.shell.shadow = None,
            Err(e) => {
                tracing::error!("shadow rules not reloaded, shadow mode off: {e}");
                self.shell.shadow = None;
            }
        }
    }

    fn record_reloads(&mut self) -> Result<(), CycleError> {
        let Some(w) = &self.watcher else {
            return Ok(());
        };
        let outcomes: Vec<ReloadOutcome> = w.outcomes.try_iter().collect();
        for outcome in outcomes {
            let record = match &outcome {
                ReloadOutcome::Applied { hash } => {
                    tracing::info!(hash = %hash, "rules reloaded");
                    self.summary.reloads_ok += 1;
                    crate::metrics::metrics()
                        .reloads
                        .with_label_values(&["ok"])
                        .inc();
                    self.alerts.reload_error = None;
                    self.reload_shadow();
                    ReloadRecord {
                        ts_ms: self.next_ts_ms,
                        rule_hash: Some(hash.clone()),
                        ok: true,
                        error: None,
                    }
                }
                ReloadOutcome::Unchanged { .. } => {
                    // The files are back to the active rules: a failed edit was undone.
                    self.alerts.reload_error = None;
                    continue;
                }
                ReloadOutcome::Failed { error } => {
                    tracing::error!(
                        "rules reload failed, keeping {}: {error}",
                        self.rules.load().hash
                    );
                    self.summary.reloads_failed += 1;
                    crate::metrics::metrics()
                        .reloads
                        .with_label_values(&["failed"])
                        .inc();
                    self.alerts.reload_error = Some(error.clone());
                    ReloadRecord {
                        ts_ms: self.next_ts_ms,
                        rule_hash: None,
                        ok: false,
                        error: Some(error.clone()),
                    }
                }
            };
            self.shell.store.with(|s| s.record_reload(&record))?;
        }
        Ok(())
    }

    /// Runs cycles until the data ends, `max_cycles` is reached or `stop` is set. The cycle in
    /// flight always finishes and commits.
    ///
    /// # Errors
    /// A failure that makes going on unsafe (store, ledger, unreadable dataset).
    pub async fn run(&mut self, stop: &AtomicBool) -> Result<&Summary, CycleError> {
        // Let tasks spawned before the run (the signal handler) install themselves first.
        tokio::task::yield_now().await;
        let mut done = 0u64;
        loop {
            if stop.load(Ordering::SeqCst) || self.options.max_cycles.is_some_and(|m| done >= m) {
                break;
            }
            let now_ms = match self.clock {
                CycleClock::Replay { .. } => self.next_ts_ms,
                CycleClock::Wall => wall_ms(),
            };
            if self.options.to_ms.is_some_and(|to| now_ms > to) {
                break;
            }
            let more = self
                .shell
                .exchange
                .advance_to(now_ms)
                .await
                .map_err(CycleError::Exchange)?;
            if !more {
                break;
            }
            self.record_reloads()?;
            let rules = self.rules.load_full();
            let kill = self
                .kill_switch
                .as_mut()
                .is_some_and(super::kill_switch::KillSwitch::check);
            self.shell.gates.kill_switch = kill;
            crate::metrics::metrics().kill_switch.set(i64::from(kill));
            let floor = if kill {
                Mode::ObserveOnly
            } else {
                Mode::Normal
            };
            let cycle_id = self.next_cycle_id;
            let span = tracing::info_span!("cycle", id = cycle_id, market_ms = now_ms);
            let outcome = self
                .shell
                .run_cycle(&rules, cycle_id, now_ms, floor)
                .instrument(span)
                .await?;
            self.alerts.after_cycle(
                &mut self.shell.store,
                &rules.config,
                &outcome,
                cycle_id,
                now_ms,
            )?;
            self.summary.tally(&outcome, &rules.hash);
            if let Some(hook) = self.on_cycle.as_mut() {
                hook(now_ms);
            }
            self.next_cycle_id += 1;
            self.next_ts_ms += self.interval_ms;
            done += 1;
            let pacing = self.options.pacing.unwrap_or(match self.clock {
                CycleClock::Replay { .. } => Pacing::Max,
                CycleClock::Wall => Pacing::Wall { speedup: 1 },
            });
            if let Pacing::Wall { speedup } = pacing {
                // Jitter spreads wall-clock load only; market time stays on the fixed grid.
                let jitter = if self.jitter_ms > 0 {
                    u64::try_from(cycle_id)
                        .unwrap_or(0)
                        .wrapping_mul(2_654_435_761)
                        % (self.jitter_ms + 1)
                } else {
                    0
                };
                let wait = (u64::try_from(self.interval_ms).unwrap_or(1000) + jitter)
                    / u64::from(speedup.max(1));
                tokio::time::sleep(Duration::from_millis(wait)).await;
            } else if done.is_multiple_of(32) {
                // Unpaced cycles never wait: yield now and then, so that the runtime's other
                // tasks (the signal handler, the metrics server) run and a SIGTERM or Ctrl-C
                // ends the run cleanly instead of killing it.
                tokio::task::yield_now().await;
            }
        }
        self.record_reloads()?;
        if done > 0 {
            self.shell.store_script_states(self.next_cycle_id - 1)?;
        }
        self.shell.store.flush()?;
        let marks = self
            .shell
            .last_markets
            .iter()
            .map(|(s, m)| (s.clone(), m.mid()))
            .collect::<BTreeMap<Symbol, Decimal>>();
        self.summary.equity_end = self.shell.ledger.equity(&marks);
        self.summary.realized_pnl = self.shell.ledger.realized_pnl;
        self.summary.fees = self.shell.ledger.fees;
        self.summary.fills = self.shell.ledger.fill_count;
        self.summary.rule_hash = self.rules.load().hash.clone();
        Ok(&self.summary)
    }
}
