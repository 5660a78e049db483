//! `btcbot health --config DIR`: is the bot of this config directory working right now? The
//! exchange reachable (BTCTurk's public server time; a replay's dataset readable), the clock's
//! skew against the exchange's, the database writable (a write rolled back), and the age of the
//! newest committed cycle. Safe beside a running bot: it takes no lock and changes nothing.
//!
//! Output and exit codes as `btcbot doctor`: 0 all ok, 1 any FAIL, 2 warnings only.

use super::doctor::{Checks, Status, db_path};
use crate::config::{Config, ExchangeSection};
use crate::exchange::btcturk::rest::{RestClient, RestConfig};
use crate::exchange::replay::{ReplayConfig, ReplayExchange};
use crate::store::health::{last_cycle, probe_write};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Config directory.
    #[arg(long, default_value_os_t = super::default_config_dir())]
    pub config: PathBuf,
    /// SQLite file (overrides bot.yaml database.path).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// FAIL when the newest committed cycle is older than this many seconds.
    #[arg(long, default_value_t = 60)]
    pub max_cycle_age: u64,
    /// Warn when the local clock is further than this many ms from the exchange's.
    #[arg(long, default_value_t = 2000)]
    pub max_clock_skew_ms: u64,
}

pub fn run(args: HealthArgs) -> Result<ExitCode, String> {
    let rt = super::runtime()?;
    Ok(rt.block_on(health(&args)))
}

async fn health(args: &HealthArgs) -> ExitCode {
    let mut checks = Checks::default();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            checks.add(Status::Fail, "config", e.to_string());
            return checks.exit_code();
        }
    };
    exchange_checks(&mut checks, &config, args.max_clock_skew_ms).await;
    let db = db_path(args.db.as_deref(), &config);
    match probe_write(&db) {
        Ok(()) => checks.add(
            Status::Ok,
            "database",
            format!("{}: writable (a write rolled back)", db.display()),
        ),
        Err(e) => checks.add(Status::Fail, "database", e.to_string()),
    }
    cycle_age_check(&mut checks, &db, args.max_cycle_age);
    checks.exit_code()
}

/// `exchange` and `clock skew`.
async fn exchange_checks(checks: &mut Checks, config: &Config, max_skew_ms: u64) {
    match &config.bot.exchange {
        ExchangeSection::Replay {
            starting_balances, ..
        } => {
            let dataset = match config.replay_dataset(None) {
                Ok(dataset) => dataset,
                Err(e) => {
                    checks.add(Status::Fail, "exchange", e);
                    return;
                }
            };
            let shown = dataset.display().to_string();
            let opened = ReplayExchange::open(ReplayConfig {
                dataset,
                starting_balances: starting_balances
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                maker_fee_bps: config.bot.fees.maker_bps,
                taker_fee_bps: config.bot.fees.taker_bps,
            });
            match opened {
                Ok(replay) if replay.first_ts_ms().is_some() => checks.add(
                    Status::Ok,
                    "exchange",
                    format!("replay dataset {shown} readable"),
                ),
                Ok(_) => checks.add(
                    Status::Fail,
                    "exchange",
                    format!("replay dataset {shown} has no events"),
                ),
                Err(e) => checks.add(Status::Fail, "exchange", e.to_string()),
            }
            checks.add(
                Status::Ok,
                "clock skew",
                "not applicable (replay: market time)",
            );
        }
        ExchangeSection::Btcturk {
            base_url,
            request_timeout_ms,
            ..
        } => {
            let mut rest = RestConfig::with_base_url(base_url);
            rest.timeout = Duration::from_millis(*request_timeout_ms);
            rest.max_retries = 0;
            // This command reports the skew itself.
            rest.clock_skew_warn = Duration::MAX;
            let client = match RestClient::new(rest, None) {
                Ok(c) => c,
                Err(e) => {
                    checks.add(Status::Fail, "exchange", e.to_string());
                    checks.add(Status::Warn, "clock skew", "not measured");
                    return;
                }
            };
            let started = Instant::now();
            match client.sync_clock().await {
                Ok(offset_ms) => {
                    checks.add(
                        Status::Ok,
                        "exchange",
                        format!(
                            "{base_url} reachable (server time in {} ms)",
                            started.elapsed().as_millis()
                        ),
                    );
                    let skew = offset_ms.unsigned_abs();
                    let status = if skew > max_skew_ms {
                        Status::Warn
                    } else {
                        Status::Ok
                    };
                    checks.add(
                        status,
                        "clock skew",
                        format!("{offset_ms:+} ms (exchange minus local; limit {max_skew_ms} ms)"),
                    );
                }
                Err(e) => {
                    checks.add(Status::Fail, "exchange", format!("{base_url}: {e}"));
                    checks.add(
                        Status::Warn,
                        "clock skew",
                        "not measured: exchange unreachable",
                    );
                }
            }
        }
    }
}

/// `last cycle`: wall time since the newest committed cycle.
fn cycle_age_check(checks: &mut Checks, db: &Path, max_age_s: u64) {
    let last = match last_cycle(db) {
        Ok(Some(l)) => l,
        Ok(None) => {
            checks.add(Status::Fail, "last cycle", "no cycle committed yet");
            return;
        }
        Err(e) => {
            checks.add(Status::Fail, "last cycle", e.to_string());
            return;
        }
    };
    let Some(at) = last.committed_wall_ms else {
        checks.add(
            Status::Warn,
            "last cycle",
            format!(
                "cycle {} was committed before schema 6: its age is unknown",
                last.cycle_id
            ),
        );
        return;
    };
    let age_ms = crate::engine::venue::wall_ms().saturating_sub(at).max(0);
    let max_ms = i64::try_from(max_age_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let detail = format!(
        "cycle {} committed {}.{:03} s ago (limit {max_age_s} s)",
        last.cycle_id,
        age_ms / 1000,
        age_ms % 1000
    );
    let status = if age_ms > max_ms {
        Status::Fail
    } else {
        Status::Ok
    };
    checks.add(status, "last cycle", detail);
}
