//! Operating the bot: the real binary trades on paper against the simulated exchange (with some
//! 5xx and 429s) while this test scrapes `/metrics` and `/healthz` over HTTP, breaks a rule
//! file on disk, and freezes the exchange link so cycles stop. It checks every metric family
//! with sane values, the reload-failure counter, alerts raised and resolved in SQLite (and the
//! hook run), and `/healthz` going 503 while no cycle completes and 200 again after.

mod common;

use btcbot::exchange::sim::{FaultSpec, serve};
use btcbot::store::Store;
use common::{copy_dir, drive_market, paper_config, repo_root, sim_config};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay to the sim that can be frozen: while frozen, bytes stop flowing both ways (a
/// hung exchange), so the bot's cycles stall on their requests.
async fn freezable_relay(upstream: SocketAddr, frozen: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let frozen = Arc::clone(&frozen);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, Arc::clone(&frozen)));
                tokio::spawn(pump(sr, cw, frozen));
            });
        }
    });
    addr
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    match client.get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Sample values of a Prometheus text page: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sum(s: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    s.iter()
        .filter(|(k, _)| *k == prefix || k.starts_with(&format!("{prefix}{{")))
        .map(|(_, v)| v)
        .sum()
}

async fn wait_for<F: Fn(&BTreeMap<String, f64>) -> bool>(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    limit: Duration,
    ok: F,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + limit;
    loop {
        let (_, text) = get(client, url).await;
        let s = samples(&text);
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_health(client: &reqwest::Client, url: &str, want: u16, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = get(client, url).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz stayed {status}, wanted {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn_bot(cfg: &Path, db: &Path, log: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["run", "--speed", "10", "--metrics-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db)
        .env("BTCBOT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let mut out = std::fs::File::create(&log).unwrap();
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            use std::io::Write;
            let _ = writeln!(out, "{line}");
            if !sent && let Some(rest) = line.strip_prefix("metrics: http://") {
                let addr = rest.split('/').next().unwrap_or_default().to_string();
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the bot printed its metrics address");
    (child, addr.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_reloads_and_alerts_during_a_paper_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = sim_config(20_000);
    config.faults = FaultSpec::parse("5xx=0.03,429=0.02/burst:1/retry-after:0,seed=5").unwrap();
    let sim = Arc::new(serve(config).await.unwrap());
    let frozen = Arc::new(AtomicBool::new(false));
    let sim_addr: SocketAddr = sim
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let relay = freezable_relay(sim_addr, Arc::clone(&frozen)).await;

    let cfg = paper_config(
        tmp.path(),
        &format!("http://{relay}"),
        &[
            ("ttl_ms: 120000", "ttl_ms: 300"),
            ("cooldown_s: 60", "cooldown_s: 1"),
            ("tests: tests", "tests: not-run-here"),
            ("url: ws://127.0.0.1:8081", "enabled: false"),
            (
                "request_timeout_ms: 5000",
                "request_timeout_ms: 20000\n  retry: {max_retries: 1, backoff_base_ms: 1, backoff_max_ms: 5, retry_after_cap_ms: 500}",
            ),
        ],
    );
    // The rules are a private copy: this test breaks one on disk.
    let rules = tmp.path().join("rules");
    copy_dir(&repo_root().join("rules"), &rules);
    let rules_yaml = std::fs::read_to_string(cfg.join("rules.yaml")).unwrap();
    let repo_rules = repo_root().join("rules").display().to_string();
    std::fs::write(
        cfg.join("rules.yaml"),
        rules_yaml.replace(&repo_rules, &rules.display().to_string()),
    )
    .unwrap();
    let hook_out = tmp.path().join("hook.log");
    std::fs::write(
        cfg.join("alerts.yaml"),
        format!(
            "rules:\n\
             - {{name: stalled, when: no_cycle_for, seconds: 2}}\n\
             - {{name: reload, when: reload_failed}}\n\
             - {{name: big_loss, when: daily_loss_beyond, amount: '5000'}}\n\
             hook:\n  command: [sh, -c, 'echo \"$BTCBOT_ALERT_NAME $BTCBOT_ALERT_KIND\" >> {}']\n  timeout_ms: 5000\n",
            hook_out.display()
        ),
    )
    .unwrap();
    std::fs::write(
        cfg.join("bot.yaml"),
        std::fs::read_to_string(cfg.join("bot.yaml")).unwrap()
            // The address comes from --metrics-listen; the 2 s limit from here.
            + "http:\n  listen: 127.0.0.1:0\n  max_cycle_age_s: 2\n",
    )
    .unwrap();
    let db = tmp.path().join("ops.db");
    let log = tmp.path().join("bot.log");
    let stop = Arc::new(AtomicBool::new(false));
    let driver = drive_market(
        Arc::clone(&sim),
        Arc::clone(&stop),
        Duration::from_millis(10),
    );
    let (mut bot, addr) = spawn_bot(&cfg, &db, &log);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let metrics = format!("http://{addr}/metrics");
    let healthz = format!("http://{addr}/healthz");

    // 1. Running: every family present, values sane.
    let s = wait_for(
        &client,
        &metrics,
        "40 cycles and some orders",
        Duration::from_secs(60),
        |s| sum(s, "btcbot_cycles_total") >= 40.0 && sum(s, "btcbot_orders_total") >= 1.0,
    )
    .await;
    let cycles = sum(&s, "btcbot_cycles_total");
    assert!(sum(&s, "btcbot_cycle_duration_seconds_count") >= cycles);
    for script in ["anomaly", "degrade", "strategy", "risk"] {
        let key = format!("btcbot_rule_eval_seconds_count{{script=\"{script}\"}}");
        assert!(s.get(&key).copied().unwrap_or(0.0) >= cycles, "{key}");
        let ops = format!("btcbot_rule_operations_total{{script=\"{script}\"}}");
        assert!(s.get(&ops).copied().unwrap_or(0.0) > 0.0, "{ops}");
    }
    assert!(sum(&s, "btcbot_verdicts_total") >= 1.0);
    assert_eq!(sum(&s, "btcbot_mode"), 1.0, "exactly one mode is current");
    assert_eq!(sum(&s, "btcbot_rule_set_info"), 1.0);
    assert_eq!(
        s.get("btcbot_live_armed"),
        Some(&0.0),
        "a paper run is never armed"
    );
    assert_eq!(sum(&s, "btcbot_arming_info"), 1.0);
    assert_eq!(s.get("btcbot_kill_switch"), Some(&0.0));
    let open = s.get("btcbot_open_orders").copied().unwrap_or(-1.0);
    assert!((0.0..=5.0).contains(&open), "open orders {open}");
    let equity = s
        .get("btcbot_money{figure=\"equity\"}")
        .copied()
        .unwrap_or(0.0);
    assert!((18_000.0..22_000.0).contains(&equity), "equity {equity}");
    assert!(s.contains_key("btcbot_money{figure=\"drawdown\"}"));
    assert!(s.contains_key("btcbot_money{figure=\"pnl_today\"}"));
    assert!(s.contains_key("btcbot_fills_total"));
    assert!(
        s.keys()
            .any(|k| k.starts_with("btcbot_exchange_request_seconds_count{endpoint=")),
        "no exchange latency"
    );
    let s = wait_for(
        &client,
        &metrics,
        "exchange errors and anomalies",
        Duration::from_secs(60),
        |s| {
            // Other anomalies (a spread spike, say) may come first: wait for this one.
            sum(s, "btcbot_exchange_errors_total") >= 1.0
                && s.keys()
                    .any(|k| k.starts_with("btcbot_anomalies_total{code=\"EXCHANGE_ERROR\""))
                && sum(s, "btcbot_rate_limit_waits_total") >= 1.0
        },
    )
    .await;
    assert!(
        s.keys()
            .any(|k| k.starts_with("btcbot_exchange_errors_total{endpoint="))
    );
    let health = wait_health(&client, &healthz, 200, Duration::from_secs(20)).await;
    assert!(health.contains("\"db_writable\":true"), "{health}");

    // 2. A broken rule file: the reload fails, the counter moves, the alert is raised and the
    // hook runs; fixing the file resolves it.
    let risk = rules.join("risk.rhai");
    let good = std::fs::read_to_string(&risk).unwrap();
    std::fs::write(&risk, format!("{good}\nfn broken( {{\n")).unwrap();
    wait_for(
        &client,
        &metrics,
        "a failed reload",
        Duration::from_secs(20),
        |s| {
            s.get("btcbot_rule_reloads_total{result=\"failed\"}")
                .copied()
                .unwrap_or(0.0)
                >= 1.0
                && s.get("btcbot_alert_active{alert=\"reload\"}") == Some(&1.0)
        },
    )
    .await;
    std::fs::write(&risk, &good).unwrap();
    wait_for(
        &client,
        &metrics,
        "the reload alert resolved",
        Duration::from_secs(20),
        |s| s.get("btcbot_alert_active{alert=\"reload\"}") == Some(&0.0),
    )
    .await;

    // 3. The exchange hangs: cycles stop, /healthz says so and the watchdog raises `stalled`;
    // the link comes back and so do cycles, health and the alert's resolution.
    frozen.store(true, Ordering::SeqCst);
    let body = wait_health(&client, &healthz, 503, Duration::from_secs(15)).await;
    assert!(body.contains("no cycle for"), "{body}");
    wait_for(
        &client,
        &metrics,
        "the stalled alert",
        Duration::from_secs(10),
        |s| s.get("btcbot_alert_active{alert=\"stalled\"}") == Some(&1.0),
    )
    .await;
    frozen.store(false, Ordering::SeqCst);
    wait_health(&client, &healthz, 200, Duration::from_secs(30)).await;
    wait_for(
        &client,
        &metrics,
        "the stalled alert resolved",
        Duration::from_secs(20),
        |s| s.get("btcbot_alert_active{alert=\"stalled\"}") == Some(&0.0),
    )
    .await;

    // SIGTERM: the bot finishes its cycle and exits 0.
    let _ = Command::new("kill").arg(bot.id().to_string()).status();
    let status = tokio::task::spawn_blocking(move || bot.wait())
        .await
        .unwrap()
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let _ = driver.join();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "bot exit {status}:\n{text}");
    assert!(!text.contains("panicked"), "{text}");

    // The alerts are rows in SQLite, each raised once and resolved; `btcbot alerts` lists them.
    let store = Store::open_read_only(&db).unwrap();
    let alerts = store.alerts(false).unwrap();
    let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "reload").count(),
        1,
        "{alerts:?}"
    );
    assert!(names.contains(&"stalled"), "{alerts:?}");
    assert!(!names.contains(&"big_loss"), "{alerts:?}");
    assert!(
        alerts.iter().all(|a| a.resolved_wall_ms.is_some()),
        "{alerts:?}"
    );
    let hook = std::fs::read_to_string(&hook_out).unwrap_or_default();
    assert!(
        hook.contains("reload reload_failed"),
        "hook output: {hook:?}"
    );
    assert!(
        hook.contains("stalled no_cycle_for"),
        "hook output: {hook:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["alerts", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains("reload_failed"),
        "{listed}"
    );
    let active = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["alerts", "--active", "--db"])
        .arg(&db)
        .status()
        .unwrap();
    assert_eq!(active.code(), Some(0), "no alert is left active");
    let first = alerts[0].id.to_string();
    let acked = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args(["alerts", "--ack", &first, "--db"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(acked.success());
    let reopened = Store::open_read_only(&db).unwrap();
    assert!(reopened.alerts(false).unwrap()[0].acked_wall_ms.is_some());
}

#[test]
fn json_logs_are_one_object_per_line_and_carry_the_cycle_span() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_btcbot"))
        .args([
            "--log-format",
            "json",
            "run",
            "--no-watch",
            "--max-cycles",
            "5",
        ])
        .arg("--config")
        .arg(repo_root().join("configs/default"))
        .arg("--db")
        .arg(tmp.path().join("json.db"))
        .env("BTCBOT_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut cycles = Vec::new();
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["fields"]["message"] == "cycle committed" {
            assert_eq!(v["span"]["name"], "cycle", "{line}");
            cycles.push(v["span"]["id"].as_i64().unwrap_or(-1));
        }
    }
    assert_eq!(cycles, [1, 2, 3, 4, 5], "{stderr}");
}
