//! `btcbot rules check|test`: exactly the reload path the running bot uses.

use crate::rules::RuleSet;
use crate::rules::ruletests::run_all;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load, validate and compile a config directory and run its rule tests (the reload path).
    /// Prints every error; exits 1 when anything is wrong.
    Check {
        #[arg(long, default_value_os_t = super::default_config_dir())]
        config: PathBuf,
    },
    /// Run the rule tests (rules/tests/*.yaml), printing pass/fail per case.
    Test {
        #[arg(long, default_value_os_t = super::default_config_dir())]
        config: PathBuf,
    },
    /// Replay one dataset with the config's rules and with a candidate's (both at once), and
    /// report what the candidate changes.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The current config directory (the base).
    #[arg(long, default_value_os_t = super::default_config_dir())]
    pub config: PathBuf,
    /// The candidate config directory.
    #[arg(long)]
    pub candidate: PathBuf,
    /// The dataset (default: the base's bot.yaml).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// A starting balance of both runs, once per asset (e.g. `--balance TRY=10000`), in place
    /// of bot.yaml's `exchange.starting_balances`; needed to replay a BTCTurk config.
    #[arg(long = "balance", value_name = "ASSET=AMOUNT", value_parser = crate::config::parse_balance)]
    pub balances: Vec<(String, rust_decimal::Decimal)>,
    /// First market time of both replays: milliseconds since the epoch or an RFC 3339 UTC
    /// time (`2026-01-01T00:30:00Z`).
    #[arg(long, value_parser = super::backtest::parse_time)]
    pub from: Option<i64>,
    /// Last market time, as `--from`.
    #[arg(long, value_parser = super::backtest::parse_time)]
    pub to: Option<i64>,
    /// text or json.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Also write the two runs' reports as one HTML page.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Exit 1 when the candidate `loosen`s any verdict, on `any` difference, or `never`.
    #[arg(long, default_value = "never")]
    pub fail_on: String,
    /// Keep the two runs' databases in this directory (base.db, candidate.db).
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

fn diff(args: DiffArgs) -> Result<ExitCode, String> {
    if !["never", "loosen", "any"].contains(&args.fail_on.as_str()) {
        return Err(format!(
            "--fail-on must be never, loosen or any, got {:?}",
            args.fail_on
        ));
    }
    if args.format != "text" && args.format != "json" {
        return Err(format!(
            "--format must be text or json, got {:?}",
            args.format
        ));
    }
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let (base_db, cand_db) = (dir.join("base.db"), dir.join("candidate.db"));
    let base_config = crate::config::Config::load(&args.config)
        .map_err(|e| format!("base ({}): {e}", args.config.display()))?;
    let per_quote = same_evaluation(&args, &base_config)?;
    // Both runs replay the same dataset from the same --balance (when given).
    let source = super::backtest::ReplaySource::of(
        Some(&base_config.replay_dataset(args.dataset.as_deref())?),
        &args.balances,
        (args.from, args.to),
    )?;
    let same_inputs_unavailable = if per_quote {
        replay_per_quote(&args, &source, &base_db, &cand_db)?
    } else {
        replay_cycles(&args, &source, &base_db, &cand_db)?;
        None
    };
    let (a, b) = (
        super::backtest::open(&base_db)?,
        super::backtest::open(&cand_db)?,
    );
    // The comparison and each run's own report read the two databases at once.
    let d = std::thread::scope(|s| -> Result<crate::report::DiffReport, String> {
        let base_side = s.spawn(|| -> Result<_, String> {
            let a = super::backtest::open(&base_db)?;
            let report = crate::report::run_report(&a).map_err(|e| e.to_string())?;
            let same_inputs = if same_inputs_unavailable.is_some() {
                crate::report::ShadowSummary::default()
            } else {
                crate::report::shadow_summary(&a).map_err(|e| e.to_string())?
            };
            Ok((report, same_inputs))
        });
        let cand_side = s.spawn(|| -> Result<_, String> {
            let b = super::backtest::open(&cand_db)?;
            crate::report::run_report(&b).map_err(|e| e.to_string())
        });
        let mut d = crate::report::compare_runs(&a, &b).map_err(|e| e.to_string())?;
        d.per_quote = per_quote;
        d.same_inputs_unavailable
            .clone_from(&same_inputs_unavailable);
        let joined = |what: &str| format!("reading the {what} run's report panicked");
        (d.base, d.same_inputs) = base_side.join().map_err(|_| joined("base"))??;
        d.candidate = cand_side.join().map_err(|_| joined("candidate"))??;
        Ok(d)
    })?;
    if args.format == "json" {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        crate::report::write_diff_json(&d, &mut stdout)
            .and_then(|()| std::io::Write::flush(&mut stdout))
            .map_err(|e| format!("writing the report: {e}"))?;
    } else {
        print!("{}", crate::report::diff_text(&d));
    }
    if let Some(path) = &args.html {
        let mut page = crate::report::html_report(&b, "candidate").map_err(|e| e.to_string())?;
        let base_page = crate::report::html_report(&a, "base").map_err(|e| e.to_string())?;
        let summary = format!(
            "<h1>rules diff</h1><pre>{}</pre>",
            crate::report::diff_text(&d)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        );
        // One page: the diff, then each run's charts and tables.
        let body = |p: &str| -> String {
            p.split_once("<body>")
                .and_then(|(_, rest)| rest.rsplit_once("</body>"))
                .map(|(b, _)| b.to_string())
                .unwrap_or_default()
        };
        let head = page
            .split_once("<body>")
            .map(|(h, _)| h.to_string())
            .unwrap_or_default();
        page = format!(
            "{head}<body>{summary}{}{}</body></html>\n",
            body(&base_page),
            body(&page)
        );
        std::fs::write(path, page).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let fail = match args.fail_on.as_str() {
        "loosen" => d.loosens(),
        "any" => d.differs(),
        _ => false,
    };
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether both configs evaluate per quote; an error when one does and the other does not, as
/// their runs' cycles would not correspond.
fn same_evaluation(args: &DiffArgs, base: &crate::config::Config) -> Result<bool, String> {
    use crate::config::Evaluate;
    let candidate = crate::config::Config::load(&args.candidate)
        .map_err(|e| format!("candidate ({}): {e}", args.candidate.display()))?;
    let (a, b) = (base.bot.cycle.evaluate, candidate.bot.cycle.evaluate);
    if a != b {
        return Err(format!(
            "{} evaluates {} and {} evaluates {} (bot.yaml cycle.evaluate): a diff compares \
             runs evaluated the same way",
            args.config.display(),
            a.as_str(),
            args.candidate.display(),
            b.as_str()
        ));
    }
    if a == Evaluate::PerQuote {
        // A per-quote run numbers its cycles by the quotes of its own symbols: with other
        // symbols the two runs' cycles, and so their verdicts, would not line up.
        let sorted = |c: &crate::config::Config| {
            let mut v: Vec<String> = c.bot.symbols.iter().map(ToString::to_string).collect();
            v.sort();
            v
        };
        let (sa, sb) = (sorted(base), sorted(&candidate));
        if sa != sb {
            return Err(format!(
                "{} trades [{}] and {} trades [{}]: two per-quote runs are compared quote by \
                 quote, so their bot.yaml symbols must be the same",
                args.config.display(),
                sa.join(", "),
                args.candidate.display(),
                sb.join(", ")
            ));
        }
    }
    Ok(a == Evaluate::PerQuote)
}

/// The two cycle-level replays at once, one per core, the events decoded once for both. The
/// base run carries the candidate as its shadow, so verdicts are also compared on identical
/// inputs.
fn replay_cycles(
    args: &DiffArgs,
    source: &super::backtest::ReplaySource,
    base_db: &std::path::Path,
    cand_db: &std::path::Path,
) -> Result<(), String> {
    let candidate_dir = std::path::absolute(&args.candidate)
        .map_err(|e| format!("{}: {e}", args.candidate.display()))?;
    // Without --keep nobody explains, compares or restarts these runs: they skip those records.
    let throwaway = args.keep.is_none();
    let dataset = source.dataset.as_deref().ok_or("no dataset to replay")?;
    let mut feeds = crate::exchange::replay::ReplayFeed::open(dataset, 2)
        .map_err(|e| e.to_string())?
        .into_iter();
    let base = {
        let (c, d, o, s, f) = (
            args.config.clone(),
            source.clone(),
            base_db.to_path_buf(),
            Some(candidate_dir),
            feeds.next(),
        );
        std::thread::spawn(move || super::backtest::run_quiet(c, d, o, s, f, throwaway))
    };
    let cand_result = super::backtest::run_quiet(
        args.candidate.clone(),
        source.clone(),
        cand_db.to_path_buf(),
        None,
        feeds.next(),
        throwaway,
    );
    let base_result = base
        .join()
        .map_err(|_| "the base replay panicked".to_string())?;
    base_result.map_err(|e| format!("base ({}): {e}", args.config.display()))?;
    cand_result.map_err(|e| format!("candidate ({}): {e}", args.candidate.display()))
}

/// The two per-quote replays at once, one per core; the candidate also judges beside the base
/// on its quotes. Returns why it could not, if it could not.
fn replay_per_quote(
    args: &DiffArgs,
    source: &super::backtest::ReplaySource,
    base_db: &std::path::Path,
    cand_db: &std::path::Path,
) -> Result<Option<String>, String> {
    let run = |config: &std::path::Path, out: &std::path::Path, beside| {
        super::backtest::per_quote_into(config, source, out, beside)
    };
    std::thread::scope(|s| {
        let base = s.spawn(|| run(&args.config, base_db, Some(args.candidate.as_path())));
        let cand_result = run(&args.candidate, cand_db, None);
        let (base_summary, _) = base
            .join()
            .map_err(|_| "the base replay panicked".to_string())?
            .map_err(|e| format!("base ({}): {e}", args.config.display()))?;
        cand_result.map_err(|e| format!("candidate ({}): {e}", args.candidate.display()))?;
        if base_summary.shadow_rule_errors > 0 {
            eprintln!(
                "warning: the candidate's on_quote failed {} times beside the base (no intents \
                 from those calls)",
                base_summary.shadow_rule_errors
            );
        }
        Ok(base_summary.shadow_unavailable)
    })
}

pub fn run(cmd: RulesCommand) -> Result<ExitCode, String> {
    match cmd {
        RulesCommand::Diff(args) => diff(args),
        RulesCommand::Check { config } => match RuleSet::build(&config) {
            Ok(set) => {
                println!("ok: rules {} from {}", set.hash, config.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    eprintln!("error: {line}");
                }
                Ok(ExitCode::from(1))
            }
        },
        RulesCommand::Test { config } => {
            let set = match RuleSet::compile(&config) {
                Ok(s) => s,
                Err(e) => {
                    for line in e.to_string().lines() {
                        eprintln!("error: {line}");
                    }
                    return Ok(ExitCode::from(1));
                }
            };
            let results = run_all(&set)?;
            let mut failed = 0;
            for r in &results {
                match &r.failure {
                    None => println!("pass  {} [{}]", r.file, r.name),
                    Some(diff) => {
                        failed += 1;
                        println!("FAIL  {} [{}]\n      {diff}", r.file, r.name);
                    }
                }
            }
            println!("{} passed, {} failed", results.len() - failed, failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
