//! Client-side pacing: one token bucket per documented window of each endpoint
//! ([`Endpoint::rate_limits`]), plus the block a 429 imposes (`Retry-After`).
//!
//! A bucket holds at most `limit` tokens and refills continuously at `limit / period`, so a burst
//! of `limit` requests passes and the long-run rate stays under the limit. Time is
//! `tokio::time::Instant`, so tests can pause the clock.

use super::endpoint::Endpoint;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(limit: u32, period: Duration, now: Instant) -> Self {
        let capacity = f64::from(limit.max(1));
        Self {
            capacity,
            per_sec: capacity / period.as_secs_f64().max(1e-3),
            tokens: capacity,
            at: now,
        }
    }
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        self.at = now;
    }
    /// How long until one token is available (zero when one is).
    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        }
    }
}

#[derive(Debug, Default)]
struct EndpointState {
    buckets: Vec<Bucket>,
    blocked_until: Option<Instant>,
}

/// The buckets of every endpoint. Cheap to share (`&self` methods, one short lock).
#[derive(Debug)]
pub struct RateLimiter {
    enabled: bool,
    state: Mutex<HashMap<Endpoint, EndpointState>>,
}

/// Why [`RateLimiter::acquire`] gave up instead of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// Time left on the endpoint's 429 block.
    pub remaining: Duration,
}

impl RateLimiter {
    /// `enabled: false` paces nothing (a 429 block still applies).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Under the lock: the wait before `ep` may send, or `Ok(())` after taking a token from each
    /// window. `Err((wait, blocked))` says how long to wait and whether a 429 block causes it.
    fn try_take(&self, ep: Endpoint, now: Instant) -> Result<(), (Duration, bool)> {
        let mut map = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let st = map.entry(ep).or_insert_with(|| EndpointState {
            buckets: if self.enabled {
                ep.rate_limits()
                    .iter()
                    .map(|&(n, p)| Bucket::new(n, p, now))
                    .collect()
            } else {
                Vec::new()
            },
            blocked_until: None,
        });
        if let Some(until) = st.blocked_until {
            if until > now {
                return Err((until - now, true));
            }
            st.blocked_until = None;
        }
        let mut wait = Duration::ZERO;
        for b in &mut st.buckets {
            b.refill(now);
            wait = wait.max(b.wait());
        }
        if wait > Duration::ZERO {
            return Err((wait, false));
        }
        for b in &mut st.buckets {
            b.tokens -= 1.0;
        }
        Ok(())
    }

    /// Waits for a token in every window of `ep`. Returns how long it waited.
    ///
    /// # Errors
    /// [`Blocked`] when a 429 block has more than `max_block_wait` left: the caller fails fast
    /// instead of stalling (and instead of hammering a blocked endpoint).
    pub async fn acquire(
        &self,
        ep: Endpoint,
        max_block_wait: Duration,
    ) -> Result<Duration, Blocked> {
        let start = Instant::now();
        loop {
            match self.try_take(ep, Instant::now()) {
                Ok(()) => return Ok(start.elapsed()),
                Err((remaining, true)) if remaining > max_block_wait => {
                    return Err(Blocked { remaining });
                }
                Err((wait, _)) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Takes a token only if one is available right now (for optional requests).
    pub fn try_acquire(&self, ep: Endpoint) -> bool {
        self.try_take(ep, Instant::now()).is_ok()
    }

    /// Records a 429: `ep` sends nothing until `retry_after` has passed.
    pub fn block(&self, ep: Endpoint, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut map = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let st = map.entry(ep).or_default();
        st.blocked_until = Some(st.blocked_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(d: Duration, ms: u64) -> bool {
        d + Duration::from_millis(2) >= Duration::from_millis(ms)
            && d <= Duration::from_millis(ms + 60)
    }

    #[tokio::test]
    async fn a_burst_passes_then_the_rate_is_paced() {
        let rl = RateLimiter::new(true);
        // SubmitOrder: 10 per second (and 300 per minute).
        for _ in 0..10 {
            assert!(rl.try_acquire(Endpoint::SubmitOrder));
        }
        assert!(!rl.try_acquire(Endpoint::SubmitOrder));
        let waited = rl
            .acquire(Endpoint::SubmitOrder, Duration::ZERO)
            .await
            .unwrap();
        assert!(about(waited, 100), "{waited:?}");
        // Other endpoints have their own buckets.
        assert!(rl.try_acquire(Endpoint::CancelOrder));
    }

    #[tokio::test]
    async fn the_minute_window_paces_after_the_burst() {
        let rl = RateLimiter::new(true);
        // OrderBook: 180 per 60 s, i.e. one every 333 ms after the burst.
        for _ in 0..180 {
            assert!(rl.try_acquire(Endpoint::OrderBook));
        }
        let waited = rl
            .acquire(Endpoint::OrderBook, Duration::ZERO)
            .await
            .unwrap();
        assert!(about(waited, 333), "{waited:?}");
    }

    #[tokio::test]
    async fn a_429_block_is_waited_out_or_reported() {
        let rl = RateLimiter::new(false);
        rl.block(Endpoint::Ticker, Duration::from_millis(200));
        assert!(!rl.try_acquire(Endpoint::Ticker));
        let e = rl
            .acquire(Endpoint::Ticker, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(e.remaining > Duration::from_millis(150), "{e:?}");
        let waited = rl
            .acquire(Endpoint::Ticker, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(about(waited, 200), "{waited:?}");
        assert!(rl.try_acquire(Endpoint::Ticker));
    }

    #[test]
    fn disabled_limiter_never_waits() {
        let rl = RateLimiter::new(false);
        for _ in 0..1000 {
            assert!(rl.try_acquire(Endpoint::OrderBook));
        }
    }
}
