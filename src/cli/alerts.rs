//! `btcbot alerts`: list alerts, acknowledge one. Works beside a running bot.

use crate::report::utc;
use crate::store::{AlertBook, AlertRow};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// The run's database.
    #[arg(long)]
    pub db: PathBuf,
    /// Only alerts still raised (not resolved).
    #[arg(long)]
    pub active: bool,
    /// Acknowledge alert ID (it stays active until its condition clears).
    #[arg(long, value_name = "ID")]
    pub ack: Option<i64>,
    /// Output: `text` or `json` (one object per line).
    #[arg(long, default_value = "text")]
    pub format: String,
}

/// Exit 0; with `--active`, exit 1 when any alert is active (for scripts).
pub fn alerts(args: AlertsArgs) -> Result<ExitCode, String> {
    if !args.db.exists() {
        return Err(format!("{}: no such database", args.db.display()));
    }
    let book = AlertBook::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    if let Some(id) = args.ack {
        let found = book
            .ack(id, crate::metrics::wall_ms())
            .map_err(|e| e.to_string())?;
        if !found {
            return Err(format!("no alert with id {id}"));
        }
        println!("alert {id} acknowledged");
        return Ok(ExitCode::SUCCESS);
    }
    let rows = book.list(args.active).map_err(|e| e.to_string())?;
    match args.format.as_str() {
        "text" => print_text(&rows),
        "json" => {
            for r in &rows {
                let line = serde_json::to_string(r).map_err(|e| e.to_string())?;
                println!("{line}");
            }
        }
        other => return Err(format!("--format must be text or json, got {other:?}")),
    }
    Ok(if args.active && !rows.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(rows: &[AlertRow]) {
    if rows.is_empty() {
        println!("no alerts");
        return;
    }
    println!(
        "{:>5}  {:<8}  {:<20}  {:<18}  {:<20}  {:<20}  detail",
        "id", "state", "name", "kind", "raised", "resolved"
    );
    for r in rows {
        let state = match (r.resolved_wall_ms, r.acked_wall_ms) {
            (Some(_), _) => "resolved",
            (None, Some(_)) => "acked",
            (None, None) => "ACTIVE",
        };
        println!(
            "{:>5}  {:<8}  {:<20}  {:<18}  {:<20}  {:<20}  {}",
            r.id,
            state,
            r.name,
            r.kind,
            utc(r.raised_wall_ms),
            r.resolved_wall_ms.map(utc).unwrap_or_default(),
            r.detail
        );
    }
}
