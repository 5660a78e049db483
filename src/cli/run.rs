//! `btcbot run`.

use crate::engine::runner::{Pacing, RunOptions, Runner};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config directory (bot.yaml, risk.yaml, strategy.yaml, rules.yaml).
    #[arg(long, default_value_os_t = super::default_config_dir())]
    pub config: PathBuf,
    /// Run one cycle and exit.
    #[arg(long, conflicts_with = "max_cycles")]
    pub once: bool,
    /// Stop after N cycles (default: until the data ends or Ctrl-C).
    #[arg(long)]
    pub max_cycles: Option<u64>,
    /// Pacing: `max` (no waiting between cycles), `realtime` (wait cycle.interval_ms ± jitter),
    /// or a speed-up factor N (wait interval / N, e.g. `20` replays 20x faster than real time).
    /// Default: `max` over a replay dataset, `realtime` against a live venue.
    #[arg(long, value_parser = parse_speed)]
    pub speed: Option<Pacing>,
    /// SQLite file (overrides bot.yaml database.path).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Do not watch the config and rules for changes.
    #[arg(long)]
    pub no_watch: bool,
    /// Serve /metrics and /healthz on this address:port (overrides bot.yaml http.listen;
    /// port 0 picks a free one, printed at start).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

fn parse_speed(text: &str) -> Result<Pacing, String> {
    match text {
        "max" => Ok(Pacing::Max),
        "realtime" => Ok(Pacing::Wall { speedup: 1 }),
        n => match n.parse::<u32>() {
            Ok(speedup) if speedup > 0 => Ok(Pacing::Wall { speedup }),
            _ => Err(format!("expected max, realtime or a factor > 0, got {n:?}")),
        },
    }
}

pub fn run(args: RunArgs) -> Result<ExitCode, String> {
    let metrics_listen = args.metrics_listen;
    let options = RunOptions {
        max_cycles: if args.once { Some(1) } else { args.max_cycles },
        pacing: args.speed,
        db: args.db,
        watch: !args.no_watch,
        ..RunOptions::new(args.config)
    };
    let rt = super::runtime()?;
    rt.block_on(async move {
        let mut runner = Runner::start(options).await?;
        eprintln!("{}", runner.summary.gate);
        eprintln!(
            "rules {} from {}; database {}",
            runner.summary.rule_hash,
            runner.options.config_dir.display(),
            runner.summary.database.display()
        );
        serve_metrics(&runner, metrics_listen).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("interrupted: finishing the cycle in flight");
            flag.store(true, Ordering::SeqCst);
        });
        let summary = runner.run(&stop).await.map_err(|e| e.to_string())?;
        println!("{summary}");
        Ok(ExitCode::SUCCESS)
    })
}

/// Starts /metrics and /healthz when bot.yaml or `--metrics-listen` asks for them, and the
/// no-cycle alert watchdog.
async fn serve_metrics(
    runner: &Runner,
    listen_override: Option<std::net::SocketAddr>,
) -> Result<(), String> {
    let config = runner.rules.load().config.clone();
    let db_path = runner.summary.database.clone();
    tokio::spawn(crate::alerts::watchdog(
        db_path.clone(),
        Arc::clone(&runner.rules),
    ));
    let http = config.bot.http.clone();
    let listen = match (listen_override, &http) {
        (Some(addr), _) => addr,
        (None, Some(h)) => h.listen.parse().map_err(|_| {
            format!(
                "{}: http.listen {:?} is not address:port",
                config.dir.join("bot.yaml").display(),
                h.listen
            )
        })?,
        (None, None) => return Ok(()),
    };
    let max_age = http.map_or(60, |h| h.max_cycle_age_s);
    let bound = crate::metrics::server::serve(
        listen,
        crate::metrics::server::HealthConfig {
            db_path,
            max_cycle_age: std::time::Duration::from_secs(max_age),
        },
    )
    .await?;
    eprintln!("metrics: http://{bound}/metrics  health: http://{bound}/healthz");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` and systemd send).
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
