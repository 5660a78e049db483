//! The cycle: `decide` (pure) and `plan` (pure) in the core, `runner` as the IO shell around them.

pub mod arming;
pub mod decide;
pub mod fingerprint;
pub mod kill_switch;
pub mod per_quote;
pub mod plan;
pub mod quote_shadow;
pub mod reconcile;
pub mod recovery;
pub mod reuse;
pub mod runner;
pub mod send_guard;
pub mod shadow;
pub mod shell;
pub mod startup;
pub mod summary;
pub mod valuation;
pub mod venue;
pub mod view;
