//! `btcbot replay synth` and `btcbot replay import`.

use crate::domain::Symbol;
use crate::exchange::replay::{SynthOptions, write_synth_dataset};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Generate a deterministic synthetic dataset: a random walk on each symbol's tick grid.
    Synth {
        /// Comma-separated symbols (specs from the bundled exchangeinfo).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "BTCTRY,ETHTRY,AVAXTRY,USDTTRY"
        )]
        symbols: Vec<String>,
        /// Number of market events.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// First event time, ms since the epoch (default 2026-01-01T00:00:00Z).
        #[arg(long, default_value_t = 1_767_225_600_000)]
        start_ms: i64,
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a top-of-book quotes CSV (`ts_ms,symbol,bid,bid_qty,ask,ask_qty`, time-ordered)
    /// as a dataset.
    Import {
        /// The quotes CSV.
        #[arg(long)]
        quotes: PathBuf,
        /// A BTCTurk exchangeinfo payload for the symbol specs (default: the bundled one).
        #[arg(long)]
        exchangeinfo: Option<PathBuf>,
        /// Output dataset directory (created).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: ReplayCommand) -> Result<ExitCode, String> {
    match cmd {
        ReplayCommand::Synth {
            symbols,
            events,
            seed,
            start_ms,
            out,
        } => {
            let symbols = symbols
                .iter()
                .map(|s| Symbol::new(s))
                .collect::<Result<Vec<_>, _>>()?;
            let summary = write_synth_dataset(
                &SynthOptions {
                    symbols,
                    events,
                    seed,
                    start_ms,
                },
                &out,
            )?;
            println!("wrote {} ({summary:?})", out.display());
            Ok(ExitCode::SUCCESS)
        }
        ReplayCommand::Import {
            quotes,
            exchangeinfo,
            out,
        } => {
            let s = crate::exchange::replay::import_quotes(&quotes, exchangeinfo.as_deref(), &out)?;
            let names: Vec<&str> = s.symbols.iter().map(Symbol::as_str).collect();
            println!(
                "wrote {}: {} quotes, symbols {}, {} → {}",
                out.display(),
                s.quotes,
                names.join(","),
                crate::report::utc(s.start_ms),
                crate::report::utc(s.end_ms)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
