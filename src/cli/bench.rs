//! `btcbot bench`: the documented benchmark. Generates N quotes for BTCTRY, ETHTRY, AVAXTRY and
//! USDTTRY (random walk on each tick grid, 1–3 tick spreads) as a quotes CSV, imports it, then
//! backtests it at cycle level (rules once per cycle of market time, book updates in Rust
//! between cycles) in a child process, printing events/s and peak RSS; then the same at a tenth
//! of the size, so the rate can be compared as the run grows; then `rules diff` against a
//! tightened candidate over the full size, as a multiple of the backtest's time.

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
    /// Interleaved (backtest, rules diff) pairs timed for the diff's ratio; the median is
    /// reported, as this machine's speed drifts between runs.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub diff_pairs: u32,
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
    /// Seconds to import the quotes; `None`: the dataset of an earlier run with the same
    /// quotes, seed and spacing was reused.
    import_s: Option<f64>,
    backtest_s: f64,
    cycles: u64,
    peak_rss: String,
    /// Every cycle's `decide()` time in µs, smallest first.
    eval_us: Vec<u64>,
    /// Wall ms from the first cycle's commit to the last one's.
    commit_span_ms: Option<i64>,
}

/// Cycles per second from the first commit to the last: the run's pace without process start
/// and the final report, which weigh on a short run far more than on a long one.
fn steady_cycle_rate(cycles: usize, commit_span_ms: Option<i64>) -> Option<f64> {
    let span_ms = commit_span_ms.filter(|ms| *ms > 0)?;
    let intervals = cycles.checked_sub(1).filter(|n| *n > 0)?;
    #[allow(clippy::cast_precision_loss)] // reporting rates, not money
    Some(intervals as f64 * 1000.0 / span_ms as f64)
}

/// `decide()` as the replay timed it: caches are cold after each cycle's events and commit,
/// so this is what bounds the cycle-level rate, not the criterion bench's warm figure.
fn rules_cost_line(l: &Leg) -> Option<String> {
    let n = l.eval_us.len();
    let median = l.eval_us.get(n.checked_sub(1)? / 2)?;
    let p90 = l.eval_us.get((n * 9 / 10).min(n - 1))?;
    let total_us: u64 = l.eval_us.iter().sum();
    #[allow(clippy::cast_precision_loss)] // reporting times, not money
    let total_s = total_us as f64 / 1e6;
    Some(format!(
        "  rules per cycle in this replay: median {median} µs, p90 {p90} µs; {total_s:.2} s in \
         all = {:.0}% of the backtest",
        total_s / l.backtest_s * 100.0
    ))
}

fn leg(args: &BenchArgs, dir: &Path, quotes: u64, config: &Path) -> Result<Leg, String> {
    let csv = dir.join(format!("quotes-{quotes}.csv"));
    let dataset = dir.join(format!("dataset-{quotes}"));
    let db = dir.join(format!("bench-{quotes}.db"));
    let _ = std::fs::remove_file(&db);
    // A dataset left by an earlier run in `dir` is reused only when it was made from the same
    // quotes (its recipe is kept beside it); anything else is made again.
    let recipe = dir.join(format!("dataset-{quotes}.recipe"));
    let wanted = format!(
        "quotes={quotes} seed={} spacing_ms={}\n",
        args.seed, args.spacing_ms
    );
    let reusable = dataset.join("manifest.json").is_file()
        && std::fs::read_to_string(&recipe).is_ok_and(|kept| kept == wanted);
    let mut import_s = None;
    if !reusable {
        if dataset.exists() {
            std::fs::remove_dir_all(&dataset).map_err(|e| format!("{}: {e}", dataset.display()))?;
        }
        crate::exchange::replay::write_bench_quotes(
            &csv,
            quotes,
            args.seed,
            1_767_225_600_000,
            args.spacing_ms,
        )?;
        let t = Instant::now();
        crate::exchange::replay::import_quotes(&csv, None, &dataset)?;
        import_s = Some(t.elapsed().as_secs_f64());
        std::fs::write(&recipe, &wanted).map_err(|e| format!("{}: {e}", recipe.display()))?;
    } else {
        // A dataset an older build imported has no current events.bin: the runs would read the
        // CSV and measure its decoding instead of the cycle.
        let ds = crate::exchange::replay::open_dataset(&dataset).map_err(|e| e.to_string())?;
        if *ds.copy_state() != crate::exchange::replay::CopyState::Current {
            crate::exchange::replay::compact_dataset(&ds)?;
        }
    }
    let (backtest_s, stdout) = time_backtest(config, &dataset, &db)?;
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
    let (eval_us, commit_span_ms) = crate::store::Store::open_read_only(&db)
        .and_then(|store| Ok((store.eval_us_sorted()?, store.commit_span_ms()?)))
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let _ = std::fs::remove_file(&csv);
    Ok(Leg {
        quotes,
        import_s,
        backtest_s,
        cycles,
        peak_rss,
        eval_us,
        commit_span_ms,
    })
}

/// Runs `btcbot backtest` in a child process: its wall time (process start and report
/// included) and its standard output.
fn time_backtest(config: &Path, dataset: &Path, db: &Path) -> Result<(f64, String), String> {
    remove_database(db);
    let mut command = this_program()?;
    command
        .arg("backtest")
        .arg("--config")
        .arg(config)
        .arg("--dataset")
        .arg(dataset)
        .arg("--out")
        .arg(db)
        .env("BTCBOT_PRINT_PEAK_RSS", "1");
    time_child("backtest", &mut command)
}

/// Removes a database and the files SQLite and the store keep beside it.
fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

/// A command that runs this very program.
fn this_program() -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    Ok(Command::new(exe))
}

/// Runs `command` to its end: its wall time and standard output, or an error naming `what`
/// with its standard error when it fails.
fn time_child(what: &str, command: &mut Command) -> Result<(f64, String), String> {
    let t = Instant::now();
    let out = command
        .output()
        .map_err(|e| format!("cannot run the {what}: {e}"))?;
    let elapsed = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

/// `yaml[key]` for a mapping, created when missing.
fn entry<'v>(yaml: &'v mut serde_norway::Value, key: &str) -> Option<&'v mut serde_norway::Value> {
    let map = yaml.as_mapping_mut()?;
    Some(
        map.entry(serde_norway::Value::String(key.into()))
            .or_insert(serde_norway::Value::Null),
    )
}

/// A candidate for `rules diff`: `config` with `max_position_notional` at 40% (5,000 → 2,000
/// TRY for the default), its rules directory made absolute so it works from `dir`, and no rule
/// tests (the pack's tests pin the default limits). Returns its directory and what it changed.
fn tightened_candidate(config: &Path, dir: &Path) -> Result<(PathBuf, String), String> {
    let candidate = dir.join("candidate");
    std::fs::create_dir_all(&candidate).map_err(|e| format!("{}: {e}", candidate.display()))?;
    let config = std::path::absolute(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let read = |name: &str| -> Result<serde_norway::Value, String> {
        let path = config.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let write = |name: &str, yaml: &serde_norway::Value| -> Result<(), String> {
        let text = serde_norway::to_string(yaml).map_err(|e| format!("{name}: {e}"))?;
        std::fs::write(candidate.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    let absolute = |value: &mut serde_norway::Value| {
        if let Some(rel) = value.as_str() {
            *value = serde_norway::Value::String(config.join(rel).display().to_string());
        }
    };
    let mut rules = read("rules.yaml")?;
    if let Some(d) = entry(&mut rules, "dir") {
        absolute(d);
    }
    if let Some(t) = entry(&mut rules, "tests") {
        *t = serde_norway::Value::String("none (the bench candidate runs no rule tests)".into());
    }
    write("rules.yaml", &rules)?;
    // bot.yaml as it is: the diff is given --dataset, so its relative dataset path is not read.
    std::fs::copy(config.join("bot.yaml"), candidate.join("bot.yaml"))
        .map_err(|e| format!("bot.yaml: {e}"))?;
    let mut risk = read("risk.yaml")?;
    let limit = entry(&mut risk, "limits")
        .and_then(|l| entry(l, "max_position_notional"))
        .ok_or("risk.yaml: no limits mapping")?;
    let before = match limit {
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::String(s) => s.clone(),
        _ => return Err("risk.yaml: limits.max_position_notional is not a number".into()),
    };
    let value = crate::domain::decimal_from_str(&before)?;
    let after = (value * rust_decimal::Decimal::new(4, 1))
        .normalize()
        .to_string();
    *limit = serde_norway::Value::String(after.clone());
    write("risk.yaml", &risk)?;
    std::fs::copy(
        config.join("strategy.yaml"),
        candidate.join("strategy.yaml"),
    )
    .map_err(|e| format!("strategy.yaml: {e}"))?;
    Ok((
        candidate,
        format!("max_position_notional {before} -> {after}"),
    ))
}

/// Times `btcbot rules diff` of `config` against a tightened candidate over the dataset of
/// `quotes` quotes (in a child process, like the backtests).
fn rules_diff_leg(config: &Path, dir: &Path, quotes: u64) -> Result<(f64, String), String> {
    let (candidate, limits) = tightened_candidate(config, dir)?;
    let mut command = this_program()?;
    command
        .args(["rules", "diff", "--config"])
        .arg(config)
        .arg("--candidate")
        .arg(&candidate)
        .arg("--dataset")
        .arg(dir.join(format!("dataset-{quotes}")));
    let (elapsed, _) = time_child("rules diff", &mut command)?;
    Ok((elapsed, limits))
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
        let import = l.import_s.map_or_else(
            || "dataset of an earlier run reused (same quotes, seed and spacing)".to_string(),
            |s| format!("import {s:.2} s"),
        );
        println!(
            "cycle level: {:>9} quotes, {:>7} cycles: backtest {:.2} s = {:.0} events/s, \
             {:.0} cycles/s; {import}; backtest peak RSS {}",
            l.quotes, l.cycles, l.backtest_s, qps, cps, l.peak_rss
        );
        let steady = steady_cycle_rate(l.eval_us.len(), l.commit_span_ms);
        if let Some(rate) = steady {
            println!("  {rate:.0} cycles/s from the first cycle's commit to the last");
        }
        if let Some(line) = rules_cost_line(&l) {
            println!("{line}");
        }
        legs.push((l, cps, steady));
    }
    if let [(_, small, steady_small), (_, big, steady_big)] = legs.as_slice() {
        let whole = big / small * 100.0;
        match (steady_small, steady_big) {
            (Some(s), Some(b)) => println!(
                "per-cycle rate at 10x the run: {:.0}% of the short run's from first to last \
                 commit ({whole:.0}% with process start and report) (within 20% is the target)",
                b / s * 100.0
            ),
            _ => println!(
                "per-cycle rate at 10x the run: {whole:.0}% of the short run's, process start \
                 and report included (within 20% is the target)"
            ),
        }
    }
    if let Some((full, _, _)) = legs.last() {
        // Back to back, so that both sides of each ratio see the machine at the same speed.
        let dataset = dir.join(format!("dataset-{}", full.quotes));
        let db = dir.join("bench-pair.db");
        let mut ratios = Vec::new();
        let mut candidate = String::new();
        for pair in 1..=args.diff_pairs {
            let (backtest_s, _) = time_backtest(&args.config, &dataset, &db)?;
            let (diff_s, limits) = rules_diff_leg(&args.config, &dir, full.quotes)?;
            candidate = limits;
            ratios.push(diff_s / backtest_s);
            println!(
                "  pair {pair}: backtest {backtest_s:.2} s, rules diff {diff_s:.2} s = {:.2}x",
                diff_s / backtest_s
            );
        }
        remove_database(&db);
        if let Some(m) = median(&ratios) {
            println!(
                "rules diff (candidate: {candidate}): {:>9} quotes: median {m:.2}x the backtest \
                 over {} interleaved pairs (under 1.5x is the target)",
                full.quotes,
                ratios.len()
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_odd_even_and_no_values() {
        assert_eq!(median(&[1.4, 1.1, 1.9]), Some(1.4));
        assert_eq!(median(&[1.0, 3.0, 1.5, 2.0]), Some(1.75));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_steady_rate_counts_the_intervals_between_commits() {
        // 201 cycles committed over one second: 200 intervals.
        assert_eq!(steady_cycle_rate(201, Some(1000)), Some(200.0));
        assert_eq!(steady_cycle_rate(11, Some(50)), Some(200.0));
        // Too short to time: no commit span, a zero span, or a single cycle.
        assert_eq!(steady_cycle_rate(201, None), None);
        assert_eq!(steady_cycle_rate(201, Some(0)), None);
        assert_eq!(steady_cycle_rate(1, Some(1000)), None);
        assert_eq!(steady_cycle_rate(0, Some(1000)), None);
    }

    fn leg_with(eval_us: Vec<u64>, backtest_s: f64) -> Leg {
        Leg {
            quotes: 0,
            import_s: Some(0.0),
            backtest_s,
            cycles: eval_us.len() as u64,
            peak_rss: String::new(),
            eval_us,
            commit_span_ms: None,
        }
    }

    #[test]
    fn the_rules_cost_line_gives_median_p90_and_share() {
        let l = leg_with((1..=10).map(|i| i * 10).collect(), 0.0011);
        let line = rules_cost_line(&l).unwrap_or_default();
        assert!(line.contains("median 50 µs, p90 100 µs"), "{line}");
        assert!(
            line.contains("0.00 s in all = 50% of the backtest"),
            "{line}"
        );
        assert_eq!(rules_cost_line(&leg_with(Vec::new(), 1.0)), None);
    }
}
