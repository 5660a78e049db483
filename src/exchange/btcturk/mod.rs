//! BTCTurk: request signing (and, next, the REST adapter and websocket feed).

pub mod auth;
