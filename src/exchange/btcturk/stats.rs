//! Per-endpoint request counters the engine can read for metrics.

use super::endpoint::Endpoint;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Counters of one endpoint since the client was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// HTTP attempts sent (first tries and retries).
    pub requests: u64,
    /// Attempts after the first one of a call (backoff retries and 429 waits).
    pub retries: u64,
    /// Calls that ended in an error (after any retries).
    pub errors: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Transport failures (timeout, refused, reset, unreadable body).
    pub transport_errors: u64,
    /// 5xx answers received.
    pub server_errors: u64,
    /// Total time spent waiting for the local token buckets, in microseconds.
    pub throttle_wait_us: u64,
    /// Total time of the HTTP attempts (send to body read), in microseconds.
    pub http_time_us: u64,
}

/// One event to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Request,
    Retry,
    Error,
    RateLimited,
    Transport,
    ServerError,
    ThrottleWait(Duration),
    HttpTime(Duration),
}

/// The same event in the process's Prometheus metrics.
fn export(ep: Endpoint, event: Event) {
    let m = crate::metrics::metrics();
    let endpoint = [ep.name()];
    let error = |kind: &str| {
        m.exchange_errors
            .with_label_values(&[ep.name(), kind])
            .inc();
    };
    match event {
        Event::Request => m.exchange_requests.with_label_values(&endpoint).inc(),
        Event::HttpTime(d) => m
            .exchange_request_seconds
            .with_label_values(&endpoint)
            .observe(d.as_secs_f64()),
        Event::ThrottleWait(d) if !d.is_zero() => {
            m.rate_limit_waits.with_label_values(&endpoint).inc();
            m.rate_limit_wait_seconds
                .with_label_values(&endpoint)
                .observe(d.as_secs_f64());
        }
        Event::ThrottleWait(_) | Event::Retry => {}
        Event::Transport => error("transport"),
        Event::ServerError => error("server_error"),
        Event::RateLimited => error("rate_limited"),
        Event::Error => error("failed"),
    }
}

/// Thread-safe counters for every endpoint.
#[derive(Debug, Default)]
pub struct RestStats {
    inner: Mutex<BTreeMap<Endpoint, EndpointStats>>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl RestStats {
    pub fn record(&self, ep: Endpoint, event: Event) {
        export(ep, event);
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let s = map.entry(ep).or_default();
        match event {
            Event::Request => s.requests += 1,
            Event::Retry => s.retries += 1,
            Event::Error => s.errors += 1,
            Event::RateLimited => s.rate_limited += 1,
            Event::Transport => s.transport_errors += 1,
            Event::ServerError => s.server_errors += 1,
            Event::ThrottleWait(d) => {
                s.throttle_wait_us = s.throttle_wait_us.saturating_add(micros(d))
            }
            Event::HttpTime(d) => s.http_time_us = s.http_time_us.saturating_add(micros(d)),
        }
    }

    /// The counters of one endpoint.
    pub fn get(&self, ep: Endpoint) -> EndpointStats {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&ep).copied().unwrap_or_default()
    }

    /// Every endpoint used so far, in [`Endpoint`] order.
    pub fn snapshot(&self) -> Vec<(Endpoint, EndpointStats)> {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|(e, s)| (*e, *s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_endpoint() {
        let s = RestStats::default();
        s.record(Endpoint::OrderBook, Event::Request);
        s.record(Endpoint::OrderBook, Event::Request);
        s.record(Endpoint::OrderBook, Event::Retry);
        s.record(
            Endpoint::OrderBook,
            Event::HttpTime(Duration::from_micros(250)),
        );
        s.record(Endpoint::Balances, Event::Error);
        let ob = s.get(Endpoint::OrderBook);
        assert_eq!((ob.requests, ob.retries, ob.http_time_us), (2, 1, 250));
        assert_eq!(s.get(Endpoint::Balances).errors, 1);
        assert_eq!(s.get(Endpoint::Ticker), EndpointStats::default());
        assert_eq!(s.snapshot().len(), 2);
    }
}
