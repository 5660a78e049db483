//! BTCTurk: request signing, the tolerant wire format, the REST transport policy and the
//! `Exchange` adapter.

pub mod auth;
pub mod client;
pub mod endpoint;
pub mod feed;
pub mod map;
pub mod policy;
pub mod ratelimit;
pub mod rest;
pub mod stats;
pub mod wire;
pub mod wire_misc;
pub mod wire_orders;
pub mod wire_value;

pub use auth::Credentials;
pub use client::{BtcturkConfig, BtcturkExchange};
pub use endpoint::Endpoint;
pub use rest::{BTCTURK_API, RestClient, RestConfig};
pub use stats::EndpointStats;

#[cfg(test)]
mod rest_tests;
#[cfg(test)]
mod wire_tests;
