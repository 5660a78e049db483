//! BTCTurk: request signing, the tolerant wire format, the REST transport policy and the
//! `Exchange` adapter.

pub mod auth;
pub mod endpoint;
pub mod wire;
pub mod wire_misc;
pub mod wire_orders;
pub mod wire_value;

#[cfg(test)]
mod wire_tests;
