//! `btcbot report` and `btcbot explain`: a run's database read back for people.

use crate::report::{explain, shadow_summary, shadow_text};
use crate::store::Store;
use clap::Args;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's database.
    #[arg(long)]
    pub db: PathBuf,
    /// Compare the active rules' decisions with the shadow candidate's "would have" rows.
    #[arg(long)]
    pub shadow: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The run's database.
    #[arg(long)]
    pub db: PathBuf,
    /// The cycle to explain.
    #[arg(long)]
    pub cycle: i64,
}

fn open(db: &std::path::Path) -> Result<Store, String> {
    if !db.is_file() {
        return Err(format!("{}: no such database", db.display()));
    }
    Store::open_read_only(db).map_err(|e| format!("{}: {e}", db.display()))
}

fn summary(store: &Store) -> Result<String, String> {
    let cycles = store.cycles().map_err(|e| e.to_string())?;
    let mut out = String::new();
    let (Some(first), Some(last)) = (cycles.first(), cycles.last()) else {
        return Ok("no cycles in this database\n".into());
    };
    let mut modes: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &cycles {
        *modes.entry(c.mode.as_str()).or_default() += 1;
    }
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    for d in store.decisions(None).map_err(|e| e.to_string())? {
        *verdicts.entry(d.reason_code).or_default() += 1;
    }
    let orders = store.orders().map_err(|e| e.to_string())?;
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &orders {
        *by_status.entry(o.status.as_str()).or_default() += 1;
    }
    let fills = store.fills().map_err(|e| e.to_string())?;
    let join = |m: Vec<String>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.join(" ")
        }
    };
    let _ = writeln!(
        out,
        "cycles:    {} ({} → {})",
        cycles.len(),
        crate::report::utc(first.market_ts_ms),
        crate::report::utc(last.market_ts_ms)
    );
    let _ = writeln!(
        out,
        "modes:     {}",
        join(modes.iter().map(|(k, v)| format!("{k}={v}")).collect())
    );
    let _ = writeln!(
        out,
        "verdicts:  {}",
        join(verdicts.iter().map(|(k, v)| format!("{k}={v}")).collect())
    );
    let _ = writeln!(
        out,
        "orders:    {} ({})",
        orders.len(),
        join(by_status.iter().map(|(k, v)| format!("{k}={v}")).collect())
    );
    let _ = writeln!(out, "fills:     {}", fills.len());
    if let Some(s) = store.last_equity_snapshot().map_err(|e| e.to_string())? {
        let max_drawdown = store
            .equity_snapshots()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|s| s.drawdown)
            .max()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "pnl:       realized {} unrealized {} fees {}; equity {} (peak {}, max drawdown {})",
            s.realized_pnl, s.unrealized_pnl, s.fees, s.equity, s.peak_equity, max_drawdown
        );
    }
    Ok(out)
}

pub fn report(args: ReportArgs) -> Result<ExitCode, String> {
    let store = open(&args.db)?;
    if args.shadow {
        let s = shadow_summary(&store).map_err(|e| e.to_string())?;
        print!("{}", shadow_text(&s));
    } else {
        print!("{}", summary(&store)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn explain_cycle(args: ExplainArgs) -> Result<ExitCode, String> {
    let store = open(&args.db)?;
    print!("{}", explain(&store, args.cycle)?);
    Ok(ExitCode::SUCCESS)
}
