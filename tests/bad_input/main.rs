//! Bad input gets a clear error and loses nothing.
//!
//! Every case runs on a temp copy of `configs/default` + `rules/` (see `common`):
//! 1. `config.rs`: config errors, through `RuleSet::build` (the reload path) and through
//!    `btcbot rules check`;
//! 2. `build.rs`: script errors caught when the rule set is built;
//! 3. `runtime.rs`: script errors at run time, which fail closed inside `decide`;
//! 4. `reload.rs`: a running bot (`reload_now` against a published set) keeps its last good
//!    rules through all of the above;
//! 5. `regressions.rs`: holes found while writing these tests (unbounded sandbox limits, `()` and
//!    quoted numbers in guards, unchecked state growth, params errors without their key).

#[path = "../common/mod.rs"]
mod common;

mod build;
mod config;
mod helpers;
mod regressions;
mod reload;
mod runtime;
