//! `btcbot backtest` (the live cycle over a replay dataset, as fast as it goes) and
//! `btcbot parity A.db B.db`.

use crate::engine::runner::{Pacing, RunOptions, Runner};
use crate::report::{parity, run_report, run_text};
use crate::store::Store;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Config directory: a replay venue, or a BTCTurk one (paper or live) given --dataset and
    /// --balance.
    #[arg(long, default_value_os_t = super::default_config_dir())]
    pub config: PathBuf,
    /// The dataset to replay (default: bot.yaml's).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// A starting balance, once per asset (e.g. `--balance TRY=10000`), in place of bot.yaml's
    /// `exchange.starting_balances`; needed to replay a BTCTurk config.
    #[arg(long = "balance", value_name = "ASSET=AMOUNT", value_parser = crate::config::parse_balance)]
    pub balances: Vec<(String, rust_decimal::Decimal)>,
    /// First market time: milliseconds since the epoch or an RFC 3339 UTC time
    /// (`2026-01-01T00:30:00Z`).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<i64>,
    /// Last market time, as `--from`.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<i64>,
    /// The SQLite file to write (an existing one is kept beside it, renamed).
    #[arg(long)]
    pub out: PathBuf,
}

impl BacktestArgs {
    /// The dataset, balances and window these arguments replay.
    fn source(&self) -> Result<ReplaySource, String> {
        ReplaySource::of(
            self.dataset.as_deref(),
            &self.balances,
            (self.from, self.to),
        )
    }
}

#[derive(Debug, Args)]
pub struct ParityArgs {
    /// The first run's database.
    pub a: PathBuf,
    /// The second run's database.
    pub b: PathBuf,
    /// Count the differing cycles instead of stopping at the first.
    #[arg(long)]
    pub summary: bool,
}

/// Milliseconds since the epoch, or `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("expected milliseconds or YYYY-MM-DDTHH:MM:SS[.mmm]Z, got {text:?}");
    let t = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (hms, millis) = time.split_once('.').unwrap_or((time, "0"));
    let tm: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let ms: i64 = format!("{millis:0<3}")[..3].parse().map_err(|_| bad())?;
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), tm.as_slice()) else {
        return Err(bad());
    };
    if !(1..=12).contains(m) || !(1..=31).contains(day) || *hh > 23 || *mm > 59 || *ss > 60 {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let y = if *m <= 2 { y - 1 } else { *y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if *m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400_000 + hh * 3_600_000 + mm * 60_000 + ss * 1000 + ms)
}

/// What a replay command replays: its `--dataset` and `--balance`s, each in place of bot.yaml's
/// (see `Config::replay_over`), and the `--from`/`--to` window of market time.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplaySource {
    pub dataset: Option<PathBuf>,
    pub balances: Option<crate::config::Balances>,
    pub window: (Option<i64>, Option<i64>),
}

impl ReplaySource {
    pub fn of(
        dataset: Option<&Path>,
        balances: &[(String, rust_decimal::Decimal)],
        window: (Option<i64>, Option<i64>),
    ) -> Result<Self, String> {
        if let (Some(from), Some(to)) = window
            && from > to
        {
            return Err(format!(
                "--from {} is after --to {}: the window is empty",
                crate::report::utc(from),
                crate::report::utc(to)
            ));
        }
        Ok(Self {
            dataset: dataset.map(Path::to_path_buf),
            balances: crate::config::balances_from(balances)?,
            window,
        })
    }
}

/// `cycle.evaluate: per_quote`: `config`'s strategy on every quote of `dataset` (default: its
/// bot.yaml's) into the database `out` (an existing one is kept beside it, renamed). With
/// `candidate` (a `rules diff`), that config's rules judge beside it on its very quotes and
/// state (its shadow rows). Returns what the run did and how long the replay itself took, in
/// seconds.
pub(crate) fn per_quote_into(
    config: &Path,
    source: &ReplaySource,
    out: &Path,
    candidate: Option<&Path>,
) -> Result<(crate::engine::per_quote::PerQuoteSummary, f64), String> {
    use crate::config::ExchangeSection;
    let mut rules = crate::rules::RuleSet::build(config).map_err(|e| e.to_string())?;
    rules
        .config
        .replay_over(source.dataset.as_deref(), source.balances.as_ref())?;
    let dataset = rules.config.replay_dataset(None)?;
    let ExchangeSection::Replay {
        starting_balances, ..
    } = &rules.config.bot.exchange
    else {
        return Err("cycle.evaluate: per_quote needs a replay venue".into());
    };
    let cash = starting_balances
        .iter()
        .find(|(k, _)| **k == rules.config.bot.quote_asset)
        .map(|(_, v)| *v)
        .unwrap_or_default();
    if let Some(moved) = crate::engine::startup::rotate_if_used(out)? {
        eprintln!("previous run kept as {}", moved.display());
    }
    let mut store = Store::open(out, crate::store::Durability::Normal)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let mut shadow = None;
    let mut unavailable = None;
    if let Some(dir) = candidate {
        let set = crate::rules::RuleSet::build(dir).map_err(|e| e.to_string())?;
        match crate::engine::quote_shadow::QuoteShadow::new(set, &rules) {
            Ok(judge) => shadow = Some(judge),
            Err(why) => unavailable = Some(why),
        }
    }
    let started = std::time::Instant::now();
    let mut summary = crate::engine::per_quote::run(
        &rules,
        &mut store,
        &dataset,
        cash,
        source.window,
        shadow.as_mut(),
    )?;
    summary.shadow_unavailable = unavailable;
    summary.shadow_rule_errors = shadow.map_or(0, |s| s.rule_errors);
    Ok((summary, started.elapsed().as_secs_f64()))
}

/// `btcbot backtest` of a config with `cycle.evaluate: per_quote`.
fn backtest_per_quote(args: &BacktestArgs) -> Result<(), String> {
    let source = args.source()?;
    let (s, secs) = per_quote_into(&args.config, &source, &args.out, None)?;
    #[allow(clippy::cast_precision_loss)] // a rate for people
    let rate = s.quotes as f64 / secs.max(1e-9);
    println!(
        "per quote: {} quotes in {secs:.2} s ({rate:.0} quotes/s); {} intents, {} orders, {} fills, {} rule errors",
        s.quotes, s.intents, s.orders, s.fills, s.rule_errors
    );
    Ok(())
}

pub fn backtest(args: BacktestArgs) -> Result<ExitCode, String> {
    let per_quote = crate::config::Config::load(&args.config)
        .map(|c| c.bot.cycle.evaluate == crate::config::Evaluate::PerQuote)
        .unwrap_or(false);
    if per_quote {
        backtest_per_quote(&args)?;
    } else {
        backtest_cycles(&args)?;
    }
    // The run's own peak, before the report reads the database back.
    let peak = super::bench::peak_rss_mb();
    let store = open(&args.out)?;
    let report = run_report(&store).map_err(|e| e.to_string())?;
    println!("backtest → {}", args.out.display());
    print!("{}", run_text(&report));
    if std::env::var_os("BTCBOT_PRINT_PEAK_RSS").is_some() {
        println!(
            "peak rss: {}",
            peak.map_or("?".into(), |mb| format!("{mb} MB"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Cycles per SQLite transaction in a backtest: a crash loses at most these (and the run is
/// repeated anyway); the per-cycle commit would otherwise be ~15% of a cycle.
const GROUP_COMMITS: u32 = 256;

/// The cycle-level backtest: the live cycle over the replay, with a progress bar on a terminal.
fn backtest_cycles(args: &BacktestArgs) -> Result<(), String> {
    let source = args.source()?;
    let options = RunOptions {
        pacing: Some(Pacing::Max),
        db: Some(args.out.clone()),
        dataset: source.dataset,
        starting_balances: source.balances,
        study: true,
        from_ms: source.window.0,
        to_ms: source.window.1,
        group_commits: GROUP_COMMITS,
        ..RunOptions::new(args.config.clone())
    };
    let rt = super::runtime()?;
    rt.block_on(async move {
        let mut runner = Runner::start(options).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        tokio::spawn(async move {
            super::run::shutdown_signal().await;
            flag.store(true, Ordering::SeqCst);
        });
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed} {pos} cycles ({per_sec}) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        runner.on_cycle = bar.clone().map(|b| {
            Box::new(move |ts_ms: i64| {
                b.inc(1);
                if b.position() % 256 == 0 {
                    b.set_message(crate::report::utc(ts_ms));
                }
            }) as Box<dyn FnMut(i64) + Send>
        });
        runner.run(&stop).await.map_err(|e| e.to_string())?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok::<(), String>(())
    })
}

/// Runs one backtest to completion, without output (for `rules diff`).
pub(crate) fn run_quiet(
    config: PathBuf,
    source: ReplaySource,
    out: PathBuf,
    shadow: Option<PathBuf>,
    replay_feed: Option<crate::exchange::replay::ReplayFeed>,
    throwaway_db: bool,
) -> Result<(), String> {
    let options = RunOptions {
        pacing: Some(Pacing::Max),
        db: Some(out),
        dataset: source.dataset,
        starting_balances: source.balances,
        from_ms: source.window.0,
        to_ms: source.window.1,
        study: true,
        shadow_mirrors_state: shadow.is_some(),
        shadow,
        group_commits: GROUP_COMMITS,
        replay_feed,
        throwaway_db,
        ..RunOptions::new(config)
    };
    let rt = super::runtime()?;
    rt.block_on(async move {
        let mut runner = Runner::start(options).await?;
        let stop = AtomicBool::new(false);
        runner.run(&stop).await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

pub(crate) fn open(db: &Path) -> Result<Store, String> {
    if !db.is_file() {
        return Err(format!("{}: no such database", db.display()));
    }
    Store::open_read_only(db).map_err(|e| format!("{}: {e}", db.display()))
}

pub fn parity_cmd(args: ParityArgs) -> Result<ExitCode, String> {
    let (a, b) = (open(&args.a)?, open(&args.b)?);
    let p = parity(&a, &b).map_err(|e| e.to_string())?;
    if p.identical() {
        println!("parity: {} cycles, identical", p.compared);
        return Ok(ExitCode::SUCCESS);
    }
    if args.summary {
        println!(
            "parity: {} cycles compared, {} fingerprints differ, {} with different decisions \
             (first at {}), {} only in A, {} only in B{}",
            p.compared,
            p.differing.len(),
            p.decisions_differ.len(),
            p.decisions_differ
                .first()
                .map_or("-".to_string(), ToString::to_string),
            p.only_a,
            p.only_b,
            if p.rules_differ {
                "; the rule sets differ"
            } else {
                ""
            }
        );
    } else if let Some(first) = &p.first {
        print!("{first}");
    }
    Ok(ExitCode::from(1))
}
