//! `btcbot doctor --config DIR`: is this config directory fit to run? Config and rules through
//! the reload path (rule tests included), the database's schema version, credentials and their
//! file permissions, live arming with its exact reason, and the kill switch. No network.
//!
//! One line per check, `ok|warn|FAIL  what  detail`; exit 0 when all are ok, 1 on any FAIL,
//! 2 on warnings only (docs/SAFETY.md). `btcbot health` prints the same way.

use crate::config::secrets::{ENV_KEY, ENV_SECRET};
use crate::config::{Config, ExchangeSection, TradingMode};
use crate::engine::arming::{self, ARMING_ENV};
use crate::engine::kill_switch::KillSwitch;
use crate::rules::RuleSet;
use crate::rules::ruletests::run_all;
use crate::store::health::schema_status;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Config directory.
    #[arg(long, default_value_os_t = super::default_config_dir())]
    pub config: PathBuf,
    /// SQLite file (overrides bot.yaml database.path).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Status {
    Ok,
    Warn,
    Fail,
}

/// The checks of one command, printed as they are added.
#[derive(Debug, Default)]
pub(super) struct Checks {
    worst: Option<Status>,
}

impl Checks {
    /// Prints `ok|warn|FAIL  what  detail` (one line: newlines in `detail` become ` | `).
    pub(super) fn add(&mut self, status: Status, what: &str, detail: impl AsRef<str>) {
        let tag = match status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let detail: Vec<&str> = detail
            .as_ref()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        println!("{tag:<4}  {what:<12}  {}", detail.join(" | "));
        self.worst = self.worst.max(Some(status));
    }

    /// 0 all ok, 1 any FAIL, 2 warnings only.
    pub(super) fn exit_code(&self) -> ExitCode {
        match self.worst {
            None | Some(Status::Ok) => ExitCode::SUCCESS,
            Some(Status::Warn) => ExitCode::from(2),
            Some(Status::Fail) => ExitCode::from(1),
        }
    }
}

/// The database a command looks at: `--db`, else bot.yaml's `database.path` (relative to the
/// working directory, as `run` uses it).
pub(super) fn db_path(db: Option<&Path>, config: &Config) -> PathBuf {
    db.map_or_else(|| config.bot.database.path.clone(), Path::to_path_buf)
}

pub fn run(args: DoctorArgs) -> Result<ExitCode, String> {
    // Rule tests run scripts up to `sandbox.max_call_levels` deep: the reload path builds on a
    // large stack, and so does this.
    std::thread::Builder::new()
        .name("doctor".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(move || doctor(&args))
        .map_err(|e| format!("cannot start the doctor thread: {e}"))?
        .join()
        .map_err(|_| "the doctor thread crashed".to_string())
}

fn doctor(args: &DoctorArgs) -> ExitCode {
    let mut checks = Checks::default();
    let dir = &args.config;
    let config = match Config::load(dir) {
        Ok(c) => {
            checks.add(
                Status::Ok,
                "config",
                format!(
                    "{}: bot.yaml, risk.yaml, strategy.yaml, rules.yaml valid",
                    dir.display()
                ),
            );
            Some(c)
        }
        Err(e) => {
            checks.add(Status::Fail, "config", e.to_string());
            None
        }
    };
    rules_checks(&mut checks, dir, config.is_some());
    let Some(config) = config else {
        checks.add(
            Status::Fail,
            "database",
            "not checked: the config does not load",
        );
        checks.add(
            Status::Fail,
            "credentials",
            "not checked: the config does not load",
        );
        checks.add(
            Status::Fail,
            "arming",
            "DRY RUN: the config does not load (the bot would not start)",
        );
        return checks.exit_code();
    };
    database_check(&mut checks, &db_path(args.db.as_deref(), &config));
    match credentials_check(&mut checks, &config) {
        Some(has_credentials) => arming_check(&mut checks, &config, has_credentials),
        None => checks.add(
            Status::Fail,
            "arming",
            "DRY RUN: the bot refuses to start with unusable credentials",
        ),
    }
    kill_switch_check(&mut checks, &config);
    checks.exit_code()
}

/// `rules`: the reload path ([`RuleSet::build`], what hot reload runs before a swap);
/// `rule tests`: each case's result.
fn rules_checks(checks: &mut Checks, dir: &Path, config_ok: bool) {
    if !config_ok {
        checks.add(
            Status::Fail,
            "rules",
            "not checked: the config does not load",
        );
        checks.add(
            Status::Fail,
            "rule tests",
            "not run: the config does not load",
        );
        return;
    }
    match RuleSet::build(dir) {
        Ok(set) => checks.add(
            Status::Ok,
            "rules",
            format!(
                "hash {}: loads, compiles and passes its tests (the hot-reload path)",
                set.hash
            ),
        ),
        Err(e) => checks.add(Status::Fail, "rules", e.to_string()),
    }
    let set = match RuleSet::compile(dir) {
        Ok(set) => set,
        Err(_) => {
            checks.add(
                Status::Fail,
                "rule tests",
                "not run: the rules do not compile",
            );
            return;
        }
    };
    match run_all(&set) {
        Ok(results) if results.is_empty() => checks.add(
            Status::Warn,
            "rule tests",
            "none: rules.yaml names no test directory or it holds no cases",
        ),
        Ok(results) => {
            let failed: Vec<String> = results
                .iter()
                .filter_map(crate::rules::ruletests::CaseResult::failure_line)
                .collect();
            if failed.is_empty() {
                checks.add(
                    Status::Ok,
                    "rule tests",
                    format!("{} passed", results.len()),
                );
            } else {
                checks.add(
                    Status::Fail,
                    "rule tests",
                    format!(
                        "{} of {} failed: {}",
                        failed.len(),
                        results.len(),
                        failed.join("\n")
                    ),
                );
            }
        }
        Err(e) => checks.add(Status::Fail, "rule tests", e),
    }
}

/// `database`: the schema version of the file against this build's.
fn database_check(checks: &mut Checks, path: &Path) {
    let shown = path.display();
    if !path.exists() {
        checks.add(
            Status::Warn,
            "database",
            format!("{shown} does not exist yet (created at the first run)"),
        );
        return;
    }
    match schema_status(path) {
        Ok(s) if s.found > s.known => checks.add(
            Status::Fail,
            "database",
            format!(
                "{shown}: schema v{} is newer than this build's v{}; run a newer btcbot",
                s.found, s.known
            ),
        ),
        Ok(s) if s.found < s.known => checks.add(
            Status::Warn,
            "database",
            format!(
                "{shown}: schema v{}; this build migrates it to v{} at the next start",
                s.found, s.known
            ),
        ),
        Ok(s) => checks.add(
            Status::Ok,
            "database",
            format!("{shown}: schema v{} (current)", s.found),
        ),
        Err(e) => checks.add(Status::Fail, "database", e.to_string()),
    }
}

/// `credentials`: loaded exactly as `run` loads them; says where from, never what.
/// Returns whether usable credentials are present; `None` when they are unusable (the bot
/// would refuse to start).
fn credentials_check(checks: &mut Checks, config: &Config) -> Option<bool> {
    let (simulated, file) = match &config.bot.exchange {
        ExchangeSection::Replay { .. } => {
            checks.add(Status::Ok, "credentials", "not needed (replay venue)");
            return Some(false);
        }
        ExchangeSection::Btcturk {
            simulated,
            credentials_file,
            ..
        } => (
            *simulated,
            credentials_file.as_ref().map(|p| config.resolve(p)),
        ),
    };
    match crate::engine::venue::credentials(config) {
        Err(e) => {
            checks.add(Status::Fail, "credentials", e);
            None
        }
        Ok(None) => {
            let (status, why) = if config.bot.mode == TradingMode::Live {
                (Status::Fail, "none, and bot.yaml mode is live")
            } else {
                (Status::Warn, "none: public market data only")
            };
            checks.add(
                status,
                "credentials",
                format!("{why} (set {ENV_KEY}/{ENV_SECRET} or exchange.credentials_file)"),
            );
            Some(false)
        }
        Ok(Some(_)) => {
            let from_env = std::env::var_os(ENV_KEY).is_some_and(|v| !v.is_empty());
            match (from_env, file) {
                (true, _) => checks.add(
                    Status::Ok,
                    "credentials",
                    format!("present, from the environment ({ENV_KEY}/{ENV_SECRET})"),
                ),
                (false, Some(path)) => {
                    let mode = file_mode(&path);
                    let shown = path.display();
                    if mode & 0o077 == 0 {
                        checks.add(
                            Status::Ok,
                            "credentials",
                            format!("present, from {shown} (mode {mode:04o})"),
                        );
                    } else {
                        // Only a simulated venue gets here (a real one refuses the file).
                        let why = if simulated {
                            "accepted for a simulated venue only"
                        } else {
                            "readable by others"
                        };
                        checks.add(
                            Status::Warn,
                            "credentials",
                            format!(
                                "present, from {shown} with mode {mode:04o}: {why} (chmod 600)"
                            ),
                        );
                    }
                }
                (false, None) => checks.add(Status::Ok, "credentials", "present"),
            }
            Some(true)
        }
    }
}

#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    // Unreadable metadata counts as unsafe: the loader has just read the file, so this is rare.
    std::fs::metadata(path).map_or(0o777, |m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> u32 {
    0o600
}

/// `arming`: the exact line the bot would print at start-up. A warning when bot.yaml asks for
/// live trading but something is missing.
fn arming_check(checks: &mut Checks, config: &Config, has_credentials: bool) {
    let a = arming::evaluate(
        config.bot.mode,
        crate::engine::venue::kind(config),
        has_credentials,
        std::env::var(ARMING_ENV).ok().as_deref(),
    );
    let status = if !a.live && config.bot.mode == TradingMode::Live {
        Status::Warn
    } else {
        Status::Ok
    };
    checks.add(status, "arming", &a.reason);
}

/// `kill switch`: on is a warning (the bot places no new orders).
fn kill_switch_check(checks: &mut Checks, config: &Config) {
    let k = KillSwitch::from_config(config);
    let cancel_all = if k.cancel_all {
        "; cancel_all: every open order is canceled while on"
    } else {
        ""
    };
    match (k.probe(), &k.file) {
        (Some(why), _) => checks.add(
            Status::Warn,
            "kill switch",
            format!("ON ({why}): no new orders{cancel_all}"),
        ),
        (None, Some(file)) => checks.add(
            Status::Ok,
            "kill switch",
            format!("off (create {} to turn it on{cancel_all})", file.display()),
        ),
        (None, None) => checks.add(
            Status::Ok,
            "kill switch",
            format!(
                "off (no kill_switch.file configured; {} only)",
                crate::engine::kill_switch::KILL_SWITCH_ENV
            ),
        ),
    }
}
