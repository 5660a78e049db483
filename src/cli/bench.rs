//! `btcbot bench`: the documented benchmark. Generates N quotes for BTCTRY, ETHTRY, AVAXTRY and
//! USDTTRY (random walk on each tick grid, 1–3 tick spreads) as a quotes CSV, imports it, then
//! backtests it at cycle level (rules once per cycle of market time, book updates in Rust
//! between cycles) in a child process, printing events/s and peak RSS; then the same at a tenth
//! of the size, so the rate can be compared as the run grows.

use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Quotes to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub quotes: u64,
    /// Market time between quotes.
    #[arg(long, default_value_t = 5)]
    pub spacing_ms: i64,
    /// Config directory whose rules run at cycle level (its bot.yaml venue must be a replay).
    #[arg(long, default_value_os_t = super::default_config_dir())]
    pub config: PathBuf,
    /// Config directory of the per-quote strategy (`cycle.evaluate: per_quote`).
    #[arg(long, default_value = "configs/examples/ema-cross")]
    pub per_quote_config: PathBuf,
    /// Working directory for the CSV, datasets and databases (default: a temp dir, removed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Peak resident set size of this process in MB (Linux), from /proc/self/status.
pub(crate) fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

struct Leg {
    quotes: u64,
    import_s: f64,
    backtest_s: f64,
    cycles: u64,
    peak_rss: String,
}

fn leg(args: &BenchArgs, dir: &Path, quotes: u64, config: &Path) -> Result<Leg, String> {
    let csv = dir.join(format!("quotes-{quotes}.csv"));
    let dataset = dir.join(format!("dataset-{quotes}"));
    let db = dir.join(format!("bench-{quotes}.db"));
    let _ = std::fs::remove_file(&db);
    let mut import_s = 0.0;
    if !dataset.join("manifest.json").is_file() {
        crate::exchange::replay::write_bench_quotes(
            &csv,
            quotes,
            args.seed,
            1_767_225_600_000,
            args.spacing_ms,
        )?;
        let t = Instant::now();
        crate::exchange::replay::import_quotes(&csv, None, &dataset)?;
        import_s = t.elapsed().as_secs_f64();
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let t = Instant::now();
    let out = Command::new(exe)
        .arg("backtest")
        .arg("--config")
        .arg(config)
        .arg("--dataset")
        .arg(&dataset)
        .arg("--out")
        .arg(&db)
        .env("BTCBOT_PRINT_PEAK_RSS", "1")
        .output()
        .map_err(|e| format!("cannot run the backtest: {e}"))?;
    let backtest_s = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "backtest failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let cycles = stdout
        .lines()
        .find_map(|l| l.strip_prefix("cycles:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let peak_rss = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak rss: "))
        .unwrap_or("?")
        .to_string();
    let _ = std::fs::remove_file(&csv);
    Ok(Leg {
        quotes,
        import_s,
        backtest_s,
        cycles,
        peak_rss,
    })
}

pub fn run(args: BenchArgs) -> Result<ExitCode, String> {
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    println!(
        "btcbot bench: {} quotes, 4 symbols, one every {} ms of market time; rules of {}",
        args.quotes,
        args.spacing_ms,
        args.config.display()
    );
    let mut legs = Vec::new();
    for quotes in [args.quotes / 10, args.quotes] {
        if quotes == 0 {
            continue;
        }
        let l = leg(&args, &dir, quotes, &args.config)?;
        #[allow(clippy::cast_precision_loss)] // reporting rates, not money
        let (qps, cps) = (
            l.quotes as f64 / l.backtest_s,
            l.cycles as f64 / l.backtest_s,
        );
        println!(
            "cycle level: {:>9} quotes, {:>7} cycles: backtest {:.2} s = {:.0} events/s, \
             {:.0} cycles/s; import {:.2} s; backtest peak RSS {}",
            l.quotes, l.cycles, l.backtest_s, qps, cps, l.import_s, l.peak_rss
        );
        legs.push((l, cps));
    }
    if let [(_, small), (_, big)] = legs.as_slice() {
        println!(
            "per-cycle rate at 10x the run: {:.0}% of the short run's (within 20% is the target)",
            big / small * 100.0
        );
    }
    for quotes in [args.quotes / 10, args.quotes] {
        if quotes == 0 {
            continue;
        }
        let l = leg(&args, &dir, quotes, &args.per_quote_config)?;
        #[allow(clippy::cast_precision_loss)] // reporting rates, not money
        let qps = l.quotes as f64 / l.backtest_s;
        println!(
            "per quote ({}): {:>9} quotes: backtest {:.2} s = {:.0} quotes/s (process \
             start and report included); backtest peak RSS {}",
            args.per_quote_config.display(),
            l.quotes,
            l.backtest_s,
            qps,
            l.peak_rss
        );
    }
    Ok(ExitCode::SUCCESS)
}
