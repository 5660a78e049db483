//! `btcbot replay synth`.

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
    }
}
