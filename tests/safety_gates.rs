//! The engine's safety gates end to end (docs/SAFETY.md): the real binary against the simulated
//! BTCTurk exchange over HTTP on loopback, started in this process, each run with its own SQLite
//! file.
//!
//! - Live arming: every combination of mode × credentials × `BTCBOT_LIVE_ARMED` × venue kind.
//!   Orders reach the exchange only when fully armed against a real venue, or on a simulated
//!   venue that can sign them; every other run records would-be (`dry_run`) orders only.
//! - The kill switch turned on mid-run by creating its file: no new order from that cycle on,
//!   `KILL_SWITCH` recorded with each cycle, open orders canceled with `cancel_all` and left
//!   alone without it; removing the file resumes trading.
//! - Credentials never appear in the logs (debug level) or the database, from the environment
//!   or a 0600 file; a file readable by others is refused by name and mode; `doctor` and
//!   `health` report on the armed config.
//!
//! The rule pack here is minimal and written by the test: every cycle the strategy asks for a
//! small BTCTRY buy 10% under the bid, a little lower each cycle, so every cycle wants a new
//! order that rests and never fills; risk accepts everything. Only the engine's gates decide.

mod common;

use base64::Engine as _;
use btcbot::exchange::sim::{SimAccount, SimConfig, SimHandle, SimOrderStatus, serve};
use btcbot::store::Store;
use common::{paper_config, repo_root};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACK: &str = "I_UNDERSTAND_LIVE_TRADING";
const SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";

/// A sim with one account per key, its market moved so BTCTRY has a book.
async fn start_sim(keys: &[String], secret: &str) -> Arc<SimHandle> {
    let accounts = keys
        .iter()
        .map(|k| SimAccount {
            public_key: k.clone(),
            secret_b64: secret.into(),
            balances: vec![("TRY".into(), Decimal::from(1_000_000))],
        })
        .collect();
    let config = SimConfig::new(
        repo_root().join("data/replay/sample"),
        "127.0.0.1:0".parse().unwrap(),
        accounts,
    );
    let sim = serve(config).await.unwrap();
    sim.advance_events(400).unwrap();
    Arc::new(sim)
}

/// The rule pack: no anomalies, mode normal, one resting buy per cycle, accept everything.
fn write_rules(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let files = [
        ("anomaly.rhai", "fn anomalies(ctx) { [] }\n"),
        (
            "degrade.rhai",
            "fn degrade(anomalies, ctx) { #{mode: \"normal\"} }\n",
        ),
        ("risk.rhai", "fn risk(intent, ctx) { accept() }\n"),
        (
            "strategy.rhai",
            "fn strategy(ctx) {\n\
             \x20   let out = [];\n\
             \x20   for m in ctx.markets {\n\
             \x20       if m.symbol == \"BTCTRY\" {\n\
             \x20           let step = ctx.cycle_id % 50;\n\
             \x20           let price = m.bid * 0.9 - m.bid * 0.001 * step;\n\
             \x20           out.push(#{symbol: \"BTCTRY\", side: \"buy\", price: price, qty: 0.0002, tag: \"gate\"});\n\
             \x20       }\n\
             \x20   }\n\
             \x20   out\n\
             }\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

struct BotConfig<'a> {
    mode: &'a str,
    simulated: bool,
    credentials_file: Option<&'a str>,
    cancel_all: bool,
}

/// A config directory under `dir` (configs/paper's risk/strategy/rules files, the test's rule
/// pack, and this bot.yaml).
fn write_config(dir: &Path, base_url: &str, b: &BotConfig) -> PathBuf {
    let cfg = paper_config(dir, base_url, &[]);
    let rules = dir.join("rules");
    write_rules(&rules);
    let rules_yaml = std::fs::read_to_string(cfg.join("rules.yaml")).unwrap();
    let rules_yaml = rules_yaml
        .lines()
        .map(|l| {
            if l.starts_with("dir:") {
                format!("dir: '{}'", rules.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(cfg.join("rules.yaml"), rules_yaml).unwrap();
    let creds = b
        .credentials_file
        .map(|f| format!("  credentials_file: {f}\n"))
        .unwrap_or_default();
    let bot = format!(
        "mode: {}\nexchange:\n  kind: btcturk\n  base_url: {base_url}\n  simulated: {}\n{creds}\
         symbols: [BTCTRY]\nquote_asset: TRY\ncycle:\n  interval_ms: 1000\n\
         orders:\n  ttl_ms: 3600000\ndatabase:\n  path: unused.db\n\
         kill_switch:\n  file: KILL\n  cancel_all: {}\n",
        b.mode, b.simulated, b.cancel_all
    );
    std::fs::write(cfg.join("bot.yaml"), bot).unwrap();
    std::fs::remove_file(cfg.join("credentials.yaml")).unwrap();
    cfg
}

/// `btcbot run` with a clean environment for the gates plus `env`.
fn bot_command(cfg: &Path, db: &Path, max_cycles: u32, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_btcbot"));
    cmd.args(["run", "--no-watch", "--speed", "20", "--max-cycles"])
        .arg(max_cycles.to_string())
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db);
    for var in [
        "BTCTURK_API_KEY",
        "BTCTURK_API_SECRET",
        "BTCBOT_LIVE_ARMED",
        "BTCBOT_KILL_SWITCH",
        "BTCBOT_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[derive(Debug, Clone)]
struct Case {
    simulated: bool,
    live_mode: bool,
    credentials: bool,
    armed: Option<&'static str>,
}

impl Case {
    /// What docs/SAFETY.md says: orders reach the venue when fully armed against a real one,
    /// or on a simulated venue that has credentials to sign them.
    fn sends(&self) -> bool {
        if self.simulated {
            self.credentials
        } else {
            self.live_mode && self.credentials && self.armed == Some(ACK)
        }
    }
    /// The banner's reason must name each missing piece.
    fn expected_reasons(&self) -> Vec<&'static str> {
        if self.simulated {
            return vec![if self.credentials {
                "DRY RUN: simulated venue (orders go to the simulated exchange only"
            } else {
                "DRY RUN: simulated venue without credentials"
            }];
        }
        if self.sends() {
            return vec!["LIVE: mode live, credentials present"];
        }
        let mut r = vec!["DRY RUN:"];
        if !self.live_mode {
            r.push("bot.yaml mode is dry_run");
        }
        if !self.credentials {
            r.push("no credentials");
        }
        match self.armed {
            None => r.push("BTCBOT_LIVE_ARMED is not set"),
            Some(v) if v != ACK => r.push("BTCBOT_LIVE_ARMED is not I_UNDERSTAND_LIVE_TRADING"),
            Some(_) => {}
        }
        r
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_reach_the_exchange_only_when_fully_armed_or_simulated() {
    let mut cases = Vec::new();
    for live_mode in [false, true] {
        for credentials in [false, true] {
            for armed in [None, Some("yes"), Some(ACK)] {
                cases.push(Case {
                    simulated: false,
                    live_mode,
                    credentials,
                    armed,
                });
            }
            // On a simulated venue mode and arming change nothing; armed, to show it.
            cases.push(Case {
                simulated: true,
                live_mode,
                credentials,
                armed: Some(ACK),
            });
        }
    }
    let keys: Vec<String> = (0..cases.len()).map(|i| format!("gate-key-{i}")).collect();
    let sim = start_sim(&keys, SECRET).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        let cfg = write_config(
            &dir,
            &sim.base_url(),
            &BotConfig {
                mode: if case.live_mode { "live" } else { "dry_run" },
                simulated: case.simulated,
                credentials_file: None,
                cancel_all: false,
            },
        );
        let db = dir.join("bot.db");
        let mut env = Vec::new();
        if case.credentials {
            env.push(("BTCTURK_API_KEY", keys[i].as_str()));
            env.push(("BTCTURK_API_SECRET", SECRET));
        }
        if let Some(v) = case.armed {
            env.push(("BTCBOT_LIVE_ARMED", v));
        }
        let mut cmd = bot_command(&cfg, &db, 4, &env);
        runs.push((
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            db,
        ));
    }
    let mut outputs = Vec::new();
    for (child, db) in runs {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        outputs.push((out, db));
    }
    for (i, (case, (out, db))) in cases.iter().zip(&outputs).enumerate() {
        let log = text(out);
        assert!(out.status.success(), "{case:?}:\n{log}");
        for reason in case.expected_reasons() {
            assert!(
                log.contains(reason),
                "{case:?}: banner lacks {reason:?}:\n{log}"
            );
        }
        let store = Store::open_read_only(db).unwrap();
        let orders = store.orders().unwrap();
        let actions: Vec<String> = store
            .decisions(None)
            .unwrap()
            .into_iter()
            .map(|d| d.action)
            .collect();
        let at_sim = sim.orders(&keys[i]);
        assert_eq!(store.cycles().unwrap().len(), 4, "{case:?}");
        if case.sends() {
            assert!(
                at_sim.len() >= 3,
                "{case:?}: {} orders at the sim",
                at_sim.len()
            );
            assert_eq!(orders.len(), at_sim.len(), "{case:?}");
            assert!(
                actions.iter().all(|a| a == "placed"),
                "{case:?}: {actions:?}"
            );
        } else {
            assert!(
                at_sim.is_empty(),
                "{case:?}: a dry run reached the exchange"
            );
            assert!(orders.is_empty(), "{case:?}: a dry run stored orders");
            assert!(
                actions.len() >= 3 && actions.iter().all(|a| a == "dry_run"),
                "{case:?}: would-be orders expected: {actions:?}"
            );
        }
    }
    // Nothing reached the sim from any key but those of runs that may send.
    let total: usize = keys.iter().map(|k| sim.orders(k).len()).sum();
    let expected: usize = cases
        .iter()
        .zip(&keys)
        .filter(|(c, _)| c.sends())
        .map(|(_, k)| sim.orders(k).len())
        .sum();
    assert_eq!(total, expected);
}

/// Polls until `f` holds or `limit` passes.
async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill_cycles(db: &Path) -> Vec<i64> {
    let Ok(store) = Store::open_read_only(db) else {
        return Vec::new();
    };
    store
        .cycles()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.mode_reasons.first().is_some_and(|r| r == "KILL_SWITCH"))
        .map(|c| c.cycle_id)
        .collect()
}

fn last_cycle(db: &Path) -> i64 {
    Store::open_read_only(db)
        .ok()
        .and_then(|s| s.last_cycle_id().ok().flatten())
        .unwrap_or(0)
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// One bot through: trading → KILL created → KILL removed. Returns the captured log.
async fn kill_switch_run(sim: &Arc<SimHandle>, key: &str, dir: &Path, cancel_all: bool) -> String {
    let cfg = write_config(
        dir,
        &sim.base_url(),
        &BotConfig {
            mode: "dry_run",
            simulated: true,
            credentials_file: None,
            cancel_all,
        },
    );
    let db = dir.join("bot.db");
    let log_path = dir.join("bot.log");
    let mut child = bot_command(
        &cfg,
        &db,
        100_000,
        &[("BTCTURK_API_KEY", key), ("BTCTURK_API_SECRET", SECRET)],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log_path).unwrap())
    .spawn()
    .unwrap();
    let open_at_sim = |sim: &SimHandle| {
        sim.orders(key)
            .iter()
            .filter(|o| {
                matches!(
                    o.status,
                    SimOrderStatus::Untouched | SimOrderStatus::Partial
                )
            })
            .count()
    };
    wait_for("orders before the switch", Duration::from_secs(20), || {
        open_at_sim(sim) >= 3
    })
    .await;

    let kill = cfg.join("KILL");
    std::fs::write(&kill, "").unwrap();
    let db2 = db.clone();
    wait_for("a KILL_SWITCH cycle", Duration::from_secs(10), move || {
        !kill_cycles(&db2).is_empty()
    })
    .await;
    let first_killed = kill_cycles(&db)[0];
    let db2 = db.clone();
    wait_for(
        "cycles under the switch",
        Duration::from_secs(10),
        move || last_cycle(&db2) >= first_killed + 6,
    )
    .await;
    let store = Store::open_read_only(&db).unwrap();
    let orders = store.orders().unwrap();
    assert!(
        orders.iter().all(|o| o.cycle_id < first_killed),
        "an order was created under the kill switch (from cycle {first_killed}): {orders:?}"
    );
    let placed_before = sim.orders(key).len();
    assert_eq!(
        placed_before,
        orders.len(),
        "the sim has every stored order, no more"
    );
    let killed = kill_cycles(&db);
    let last = store.last_cycle_id().unwrap().unwrap_or(0);
    assert!(
        (first_killed..=last).all(|c| killed.contains(&c)),
        "every cycle under the switch records KILL_SWITCH: {killed:?} up to {last}"
    );
    if cancel_all {
        assert_eq!(
            open_at_sim(sim),
            0,
            "cancel_all left orders open at the sim"
        );
        assert!(
            orders
                .iter()
                .all(|o| !o.status.is_live() || o.status.as_str() == "cancel_requested")
        );
    } else {
        assert_eq!(
            open_at_sim(sim),
            placed_before,
            "without cancel_all the open orders stay"
        );
    }

    std::fs::remove_file(&kill).unwrap();
    let last_killed = *kill_cycles(&db).last().unwrap();
    let db2 = db.clone();
    wait_for("trading to resume", Duration::from_secs(10), move || {
        Store::open_read_only(&db2)
            .and_then(|s| s.orders())
            .is_ok_and(|o| o.iter().any(|o| o.cycle_id > last_killed))
    })
    .await;
    // The order is stored before it is sent (the outbox): the sim may get it a moment later.
    wait_for(
        "the new order to reach the sim",
        Duration::from_secs(10),
        || sim.orders(key).len() > placed_before,
    )
    .await;
    stop(&mut child);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{log}");
    assert_eq!(log.matches("kill switch ON").count(), 1, "{log}");
    assert_eq!(log.matches("kill switch OFF").count(), 1, "{log}");
    // `explain` shows why nothing traded.
    let explain = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["explain", "--cycle", &first_killed.to_string(), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let shown = text(&explain);
    assert!(
        shown.contains("observe_only because KILL_SWITCH"),
        "{shown}"
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_stops_new_orders_and_cancel_all_cancels_the_open_ones() {
    let keys = vec!["kill-keep".to_string(), "kill-cancel".to_string()];
    let sim = start_sim(&keys, SECRET).await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("keep"), tmp.path().join("cancel"));
    let keep = kill_switch_run(&sim, &keys[0], &a, false);
    let cancel = kill_switch_run(&sim, &keys[1], &b, true);
    let (keep_log, cancel_log) = tokio::join!(keep, cancel);
    assert!(
        !keep_log.contains("canceling every open order"),
        "{keep_log}"
    );
    assert!(
        cancel_log.contains("canceling every open order"),
        "{cancel_log}"
    );
}

/// Every file of the database (main, WAL, shared memory), as bytes.
fn db_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(b) = std::fs::read(&p) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[cfg(unix)]
fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_logs_or_the_database() {
    let key = "pk-redaction-test-4f9c2e7a1b".to_string();
    let secret =
        base64::engine::general_purpose::STANDARD.encode(b"redaction-secret-bytes-0xC0FFEE");
    let sim = start_sim(std::slice::from_ref(&key), &secret).await;
    let tmp = tempfile::tempdir().unwrap();
    // A real (not simulated) venue on loopback: the BTCTurk client signs every private request,
    // and only full arming lets the orders through.
    let live = BotConfig {
        mode: "live",
        simulated: false,
        credentials_file: None,
        cancel_all: false,
    };
    let env_dir = tmp.path().join("env");
    let cfg = write_config(&env_dir, &sim.base_url(), &live);
    let db = env_dir.join("bot.db");
    let armed_env = [
        ("BTCTURK_API_KEY", key.as_str()),
        ("BTCTURK_API_SECRET", secret.as_str()),
        ("BTCBOT_LIVE_ARMED", ACK),
        ("BTCBOT_LOG", "debug"),
    ];
    let out = bot_command(&cfg, &db, 4, &armed_env).output().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("LIVE: mode live"), "{log}");
    assert!(log.contains("DEBUG"), "debug logging was on: {log}");
    assert!(
        sim.orders(&key).len() >= 3,
        "armed live orders reach the exchange"
    );
    for s in [key.as_str(), secret.as_str()] {
        assert!(!log.contains(s), "a credential in the output:\n{log}");
        assert!(!contains(&db_bytes(&db), s), "a credential in the database");
    }

    // doctor and health on the armed config: the arming line, and no credential either.
    let doctor = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["doctor", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .envs(armed_env)
        .output()
        .unwrap();
    let shown = text(&doctor);
    assert!(
        shown.contains("ok    arming        LIVE: mode live"),
        "{shown}"
    );
    assert!(
        shown.contains("ok    credentials   present, from the environment"),
        "{shown}"
    );
    assert!(shown.contains("ok    database"), "{shown}");
    let health = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["health", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .envs(armed_env)
        .output()
        .unwrap();
    let healthy = text(&health);
    assert_eq!(health.status.code(), Some(0), "{healthy}");
    for what in ["exchange", "clock skew", "database", "last cycle"] {
        assert!(
            healthy.contains(&format!("ok    {what:<12}")),
            "{what}: {healthy}"
        );
    }
    for s in [key.as_str(), secret.as_str()] {
        assert!(
            !shown.contains(s) && !healthy.contains(s),
            "{shown}{healthy}"
        );
    }

    // The same from a 0600 file; a file others can read is refused, by name and mode.
    let file_dir = tmp.path().join("file");
    let file_cfg = BotConfig {
        credentials_file: Some("keys.yaml"),
        ..live
    };
    let cfg = write_config(&file_dir, &sim.base_url(), &file_cfg);
    let keys = cfg.join("keys.yaml");
    std::fs::write(&keys, format!("public_key: {key}\nsecret: {secret}\n")).unwrap();
    #[cfg(unix)]
    {
        chmod(&keys, 0o640);
        let db = file_dir.join("refused.db");
        let out = bot_command(&cfg, &db, 1, &[("BTCBOT_LIVE_ARMED", ACK)])
            .output()
            .unwrap();
        let log = text(&out);
        assert!(!out.status.success(), "{log}");
        assert!(
            log.contains(&format!(
                "{}: credentials file has mode 0640",
                keys.display()
            )),
            "{log}"
        );
        chmod(&keys, 0o600);
    }
    let db = file_dir.join("bot.db");
    let out = bot_command(
        &cfg,
        &db,
        3,
        &[("BTCBOT_LIVE_ARMED", ACK), ("BTCBOT_LOG", "debug")],
    )
    .output()
    .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("LIVE: mode live"), "{log}");
    for s in [key.as_str(), secret.as_str()] {
        assert!(!log.contains(s), "a credential in the output:\n{log}");
        assert!(!contains(&db_bytes(&db), s), "a credential in the database");
    }
}
