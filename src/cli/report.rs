//! `btcbot report` and `btcbot explain`: a run's database read back for people.

use crate::report::{explain, shadow_summary, shadow_text};
use crate::store::Store;
use clap::Args;
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
    /// Also write one self-contained HTML page (charts and tables) to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run's database.
    #[arg(long)]
    pub db: PathBuf,
    /// cycles, decisions, orders, fills or equity.
    #[arg(long)]
    pub what: String,
    /// csv or jsonl.
    #[arg(long, default_value = "csv")]
    pub format: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Rows per table.
    Count {
        #[arg(long)]
        db: PathBuf,
    },
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

pub fn report(args: ReportArgs) -> Result<ExitCode, String> {
    let store = open(&args.db)?;
    if let Some(path) = &args.html {
        let title = format!("btcbot run: {}", args.db.display());
        let page = crate::report::html_report(&store, &title).map_err(|e| e.to_string())?;
        std::fs::write(path, page).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if args.shadow {
        let s = shadow_summary(&store).map_err(|e| e.to_string())?;
        print!("{}", shadow_text(&s));
    } else {
        let r = crate::report::run_report(&store).map_err(|e| e.to_string())?;
        print!("{}", crate::report::run_text(&r));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn db(cmd: DbCommand) -> Result<ExitCode, String> {
    match cmd {
        DbCommand::Count { db } => {
            let store = open(&db)?;
            for (table, n) in store.table_counts().map_err(|e| e.to_string())? {
                println!("{table:<20} {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn export(args: ExportArgs) -> Result<ExitCode, String> {
    use crate::store::Cell;
    if args.format != "csv" && args.format != "jsonl" {
        return Err(format!(
            "--format must be csv or jsonl, got {:?}",
            args.format
        ));
    }
    let store = open(&args.db)?;
    let write_err = |e: std::io::Error| format!("cannot write: {e}");
    let cell_text = |c: Cell| match c {
        Cell::Null => String::new(),
        Cell::Int(i) => i.to_string(),
        Cell::Text(t) => t,
    };
    let result = export_rows(&store, &args, write_err, cell_text);
    match result {
        // `btcbot export … | head` is a normal way to look.
        Err(e) if e.contains("Broken pipe") => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn export_rows(
    store: &Store,
    args: &ExportArgs,
    write_err: impl Fn(std::io::Error) -> String + Copy,
    cell_text: impl Fn(crate::store::Cell) -> String + Copy,
) -> Result<(), String> {
    use crate::store::Cell;
    use std::io::Write;
    if args.format == "jsonl" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        store
            .export_table(&args.what, |columns, cells| {
                let obj: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(cells)
                    .map(|(k, c)| {
                        let v = match c {
                            Cell::Null => serde_json::Value::Null,
                            Cell::Int(i) => serde_json::Value::from(i),
                            Cell::Text(t) => serde_json::Value::String(t),
                        };
                        (k.clone(), v)
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(obj)).map_err(write_err)
            })
            .map_err(|e| e.to_string())?;
        out.flush().map_err(write_err)?;
    } else {
        let mut csv = csv::Writer::from_writer(std::io::stdout().lock());
        let mut header_done = false;
        store
            .export_table(&args.what, |columns, cells| {
                if !header_done {
                    csv.write_record(columns).map_err(|e| e.to_string())?;
                    header_done = true;
                }
                let record: Vec<String> = cells.into_iter().map(cell_text).collect();
                csv.write_record(&record).map_err(|e| e.to_string())
            })
            .map_err(|e| e.to_string())?;
        csv.flush().map_err(write_err)?;
    }
    Ok(())
}

pub fn explain_cycle(args: ExplainArgs) -> Result<ExitCode, String> {
    let store = open(&args.db)?;
    print!("{}", explain(&store, args.cycle)?);
    Ok(ExitCode::SUCCESS)
}
