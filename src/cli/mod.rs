//! Command line: clap definitions and dispatch. Handlers are thin; each command group has a file.

mod alerts;
mod backtest;
mod bench;
mod doctor;
mod health;
mod replay;
mod report;
mod rules;
mod run;
mod sim;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "btcbot",
    version,
    about = "Spot-trading bot for BTCTurk with hot-reloaded Rhai rules",
    long_about = "Spot-trading bot for BTCTurk. Strategy, risk, degrade and anomaly rules are Rhai \
                  scripts and YAML in a config directory, hot-reloaded between cycles. Dry run is \
                  the default; the embedded default config replays a sample dataset offline."
)]
pub struct Cli {
    /// Log format: `human` or `json`.
    #[arg(long, global = true, default_value = "human")]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: cycles of observe → rules → plan → gate → execute → commit.
    Run(run::RunArgs),
    /// Check, test the rule pack of a config directory.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Work with replay datasets.
    #[command(subcommand)]
    Replay(replay::ReplayCommand),
    /// Serve a BTCTurk-compatible simulated exchange over a replay dataset.
    SimExchange(Box<sim::SimExchangeArgs>),
    /// Summarize a run's database (`--shadow`: where the shadow candidate disagreed).
    Report(report::ReportArgs),
    /// One cycle's inputs, anomalies, mode and each intent's path through risk.
    Explain(report::ExplainArgs),
    /// Replay a dataset through the live cycle as fast as it goes, then summarize.
    Backtest(backtest::BacktestArgs),
    /// Compare two runs cycle by cycle; exits 1 on any divergence.
    Parity(backtest::ParityArgs),
    /// Export a table of a run's database as CSV or JSON lines.
    Export(report::ExportArgs),
    /// Database utilities.
    #[command(subcommand)]
    Db(report::DbCommand),
    /// Alerts raised by alerts.yaml rules: list (`--active`) or acknowledge (`--ack ID`).
    Alerts(alerts::AlertsArgs),
    /// The documented benchmark: generate, import and backtest N quotes; events/s and peak RSS.
    Bench(bench::BenchArgs),
    /// Is this config fit to run: config and rules (the reload path), rule tests, DB schema,
    /// credentials and their permissions, live arming and its reason, the kill switch.
    /// Exit 0 all ok, 1 any FAIL, 2 warnings only.
    Doctor(doctor::DoctorArgs),
    /// Is the bot working now: exchange reachable, clock skew, DB writable, last cycle age.
    /// Exit 0 all ok, 1 any FAIL, 2 warnings only.
    Health(health::HealthArgs),
}

/// The single-threaded runtime a command's async part runs on (the cycle is sequential).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// The default config directory: `configs/default` under the working directory.
pub(crate) fn default_config_dir() -> PathBuf {
    PathBuf::from("configs/default")
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BTCBOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only on a terminal: a log file or a container's log driver gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Parses the command line and runs the command; errors print one line and exit non-zero.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if cli.log_format != "human" && cli.log_format != "json" {
        eprintln!(
            "error: --log-format must be human or json, got {:?}",
            cli.log_format
        );
        return ExitCode::from(2);
    }
    init_logging(&cli.log_format);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Rules(cmd) => rules::run(cmd),
        Command::Replay(cmd) => replay::run(cmd),
        Command::SimExchange(args) => sim::run(*args),
        Command::Report(args) => report::report(args),
        Command::Explain(args) => report::explain_cycle(args),
        Command::Backtest(args) => backtest::backtest(args),
        Command::Parity(args) => backtest::parity_cmd(args),
        Command::Export(args) => report::export(args),
        Command::Db(cmd) => report::db(cmd),
        Command::Bench(args) => bench::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Health(args) => health::run(args),
        Command::Alerts(args) => alerts::alerts(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
