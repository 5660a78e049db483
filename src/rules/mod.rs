//! The rules runtime: one sandboxed Rhai engine, the registered script API, RuleSet (params +
//! compiled scripts + hash), output validation, rule tests and the hot-reload watcher.
//!
//! It must never let a script loosen a gate: scripts produce anomalies, a mode (which the engine
//! only ever tightens with), intents and verdicts; plan and gate stay in Rust.

pub mod api;
pub mod convert;
mod indicators;
pub mod outputs;
pub mod params_view;
pub mod ruleset;
pub mod ruletests;
pub mod sandbox;
pub mod watcher;

pub use ruleset::{RuleSet, RuleSetError, Script, Stage};
