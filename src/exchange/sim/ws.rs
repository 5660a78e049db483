//! The websocket feed (BTCTurk's `wss://ws-feed-pro.btcturk.com`, §5).

use super::Shared;
use std::sync::Arc;

pub(crate) async fn run(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let _ = (listener, shared);
}
