//! btcbot: a spot-trading bot for BTCTurk. The engine (exchange IO, SQLite state, ledger, order
//! lifecycle) is compiled; strategy, risk, degrade and anomaly rules are Rhai scripts and YAML,
//! hot-reloaded between cycles. See docs/ARCHITECTURE.md.

// Rhai boxes every decimal it computes and every map it builds: the allocator is on the hot path
// of each rule evaluation (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod alerts;
pub mod capture;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod exchange;
pub mod ledger;
pub mod metrics;
pub mod report;
pub mod rules;
pub mod store;
