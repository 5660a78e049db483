//! `btcbot replay synth`, `import`, `compact`, `init` and `capture`.

use crate::domain::Symbol;
use crate::exchange::replay::{
    COMPACT_FILE, SynthOptions, compact_dataset, open_dataset, write_synth_dataset,
};
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
    /// Write the dataset's `events.bin`: its events in a compact binary form that replays
    /// read instead of the CSV while the CSV is unchanged (`replay import` writes it too).
    Compact {
        /// The dataset directory.
        dataset: PathBuf,
    },
    /// Create an empty dataset directory to capture into (a new or empty directory).
    Init {
        /// The dataset directory.
        dir: PathBuf,
    },
    /// Record the venue's public market data (websocket feed, REST while it is stale) and its
    /// exchangeinfo into a dataset; run again to continue after the last recorded event.
    Capture {
        /// Config directory; bot.yaml's venue (`exchange.kind: btcturk`) and symbols.
        #[arg(long)]
        config: PathBuf,
        /// The dataset (made by `replay init`).
        #[arg(long)]
        out: PathBuf,
        /// Stop after this long (`30s`, `10m`, `2h`); without it, until Ctrl-C or SIGTERM.
        #[arg(long, value_parser = crate::capture::parse_duration)]
        duration: Option<std::time::Duration>,
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
                "wrote {}: {} quotes, symbols {}, {} → {} (and its {} of {} bytes)",
                out.display(),
                s.quotes,
                names.join(","),
                crate::report::utc(s.start_ms),
                crate::report::utc(s.end_ms),
                COMPACT_FILE,
                s.compacted.bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        ReplayCommand::Compact { dataset } => {
            let ds = open_dataset(&dataset).map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            let s = compact_dataset(&ds)?;
            println!(
                "wrote {}: {} events, {} bytes, in {:.2} s",
                dataset.join(COMPACT_FILE).display(),
                s.events,
                s.bytes,
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        ReplayCommand::Init { dir } => {
            crate::capture::init_dataset(&dir)?;
            println!(
                "created an empty dataset in {}; fill it with `btcbot replay capture --config DIR \
                 --out {}`",
                dir.display(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ReplayCommand::Capture {
            config,
            out,
            duration,
        } => capture(config, out, duration),
    }
}

/// Runs a capture until `duration` or Ctrl-C / SIGTERM; either way the dataset is finished.
fn capture(
    config: PathBuf,
    out: PathBuf,
    duration: Option<std::time::Duration>,
) -> Result<ExitCode, String> {
    let mut options = crate::capture::CaptureOptions::new(config, out);
    options.duration = duration;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let summary = rt.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            super::run::shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let mut notice = |line: &str| eprintln!("{line}");
        crate::capture::capture(&options, stop_rx, &mut notice).await
    })?;
    let span = match (summary.first_ms, summary.last_ms) {
        (Some(a), Some(b)) => format!("{} → {}", crate::report::utc(a), crate::report::utc(b)),
        _ => "nothing new".to_string(),
    };
    println!(
        "captured {} quotes and {} trades into {} ({span}; {} from the feed, {} over REST, {} \
         skipped, {} REST errors; {} events files)",
        summary.quotes,
        summary.trades,
        options.out.display(),
        summary.from_feed,
        summary.from_rest,
        summary.skipped,
        summary.rest_errors,
        summary.events_files
    );
    Ok(ExitCode::SUCCESS)
}
