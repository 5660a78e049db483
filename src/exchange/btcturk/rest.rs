//! The REST transport: one `reqwest` client, request signing, pacing, retries and the clock
//! offset. What each outcome means is decided in `policy.rs`; this file does the IO.
//!
//! - **GETs** are retried (up to `max_retries`) on transport errors, 408/5xx and `SYSTEM_ERROR`,
//!   with exponential backoff and jitter; on a 429 they wait out `Retry-After` (60 s when absent)
//!   when it is at most `retry_after_cap`, else fail fast with `Transient`.
//! - **POST/DELETE** are never retried here. A failure carries `maybe_processed`, so the caller
//!   (the order submit) can look the order up instead of sending it twice.
//! - Every attempt first takes a token from the endpoint's buckets (`ratelimit.rs`); a 429 blocks
//!   the endpoint for `Retry-After`.
//! - Private calls are signed with `X-Stamp = local ms + offset`; the offset comes from
//!   `/api/v2/server/time` (lazily, then every `clock_sync_interval`), with a warning when the
//!   skew exceeds `clock_skew_warn`. A 401 `Invalid Nonce` resyncs and tries once more.

use super::auth::{self, Credentials};
use super::endpoint::{Endpoint, Method};
use super::policy::{self, Outcome, Problem, Reaction};
use super::ratelimit::RateLimiter;
use super::stats::{Event, RestStats};
use super::wire::{self, WireError};
use crate::exchange::ExchangeError;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The live API.
pub const BTCTURK_API: &str = "https://api.btcturk.com";

/// Transport settings. [`RestConfig::default`] suits the live API; tests shorten the waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// `https://api.btcturk.com`, or `http://127.0.0.1:PORT` for the simulated exchange.
    pub base_url: String,
    /// Whole-request timeout (send to last body byte).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts of an idempotent (GET) call.
    pub max_retries: u32,
    /// First backoff step; doubles per attempt, jittered.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Wait on a 429 without `Retry-After` (BTCTurk's documented block is 60 s).
    pub retry_after_default: Duration,
    /// The longest 429 wait a call sits out; a longer one fails fast with `Transient`.
    pub retry_after_cap: Duration,
    /// Pace requests with the documented per-endpoint token buckets.
    pub rate_limits: bool,
    /// How often to refresh the clock offset; zero never syncs (offset 0).
    pub clock_sync_interval: Duration,
    /// Warn when |server − local| exceeds this.
    pub clock_skew_warn: Duration,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            base_url: BTCTURK_API.to_string(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            retry_after_default: Duration::from_secs(60),
            retry_after_cap: Duration::from_secs(60),
            rate_limits: true,
            clock_sync_interval: Duration::from_secs(600),
            clock_skew_warn: Duration::from_secs(2),
        }
    }
}

impl RestConfig {
    /// Defaults with another base URL (trailing `/` removed).
    pub fn with_base_url(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            ..Self::default()
        }
    }
}

/// One request: endpoint, path (with the id for `order/{id}`), query and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub endpoint: Endpoint,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl Request {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            path: endpoint.path().to_string(),
            query: Vec::new(),
            body: None,
        }
    }
    #[must_use]
    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }
    /// Appends to the path (the id of `GET /api/v1/order/{id}`).
    #[must_use]
    pub fn path_suffix(mut self, suffix: &str) -> Self {
        self.path.push_str(suffix);
        self
    }
    #[must_use]
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string());
        self
    }
}

/// A failed call: the error, and whether the exchange may have acted on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub error: ExchangeError,
    pub maybe_processed: bool,
}

impl From<CallError> for ExchangeError {
    fn from(e: CallError) -> Self {
        e.error
    }
}

impl From<Problem> for CallError {
    fn from(p: Problem) -> Self {
        Self {
            error: p.error,
            maybe_processed: p.maybe_processed,
        }
    }
}

/// Local wall clock in ms since the epoch.
pub fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The HTTP side of the adapter. All methods take `&self`; it can be shared.
pub struct RestClient {
    http: reqwest::Client,
    config: RestConfig,
    credentials: Option<Credentials>,
    limiter: RateLimiter,
    stats: RestStats,
    offset_ms: AtomicI64,
    last_sync: Mutex<Option<Instant>>,
    rng: AtomicU64,
}

impl RestClient {
    /// # Errors
    /// `Permanent` when the HTTP client cannot be built.
    pub fn new(
        config: RestConfig,
        credentials: Option<Credentials>,
    ) -> Result<Self, ExchangeError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("btcbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ExchangeError::Permanent {
                endpoint: "http client".into(),
                message: e.to_string(),
            })?;
        let seed = u64::try_from(local_ms()).unwrap_or(1) ^ 0x9E37_79B9_7F4A_7C15;
        Ok(Self {
            http,
            limiter: RateLimiter::new(config.rate_limits),
            config,
            credentials,
            stats: RestStats::default(),
            offset_ms: AtomicI64::new(0),
            last_sync: Mutex::new(None),
            rng: AtomicU64::new(seed),
        })
    }

    pub fn config(&self) -> &RestConfig {
        &self.config
    }
    pub fn stats(&self) -> &RestStats {
        &self.stats
    }
    /// Server time minus local time, in ms, from the last sync.
    pub fn clock_offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
    /// Takes a token for `ep` only if one is free now (for optional requests).
    pub fn try_reserve(&self, ep: Endpoint) -> bool {
        self.limiter.try_acquire(ep)
    }

    /// SplitMix64 over an atomic counter: jitter, not cryptography.
    fn random(&self) -> u64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Reads `/api/v2/server/time` and stores `server − local` (local = the request's midpoint).
    ///
    /// # Errors
    /// When the server time cannot be read.
    pub async fn sync_clock(&self) -> Result<i64, ExchangeError> {
        let before = local_ms();
        let t = self
            .call_with(
                &Request::new(Endpoint::ServerTime),
                wire::parse_server_time,
                true,
                false,
            )
            .await?;
        let after = local_ms();
        let offset = t.server_time_ms - (before + (after - before) / 2);
        self.offset_ms.store(offset, Ordering::Relaxed);
        *self
            .last_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let warn_ms = i64::try_from(self.config.clock_skew_warn.as_millis()).unwrap_or(i64::MAX);
        if offset.abs() > warn_ms {
            tracing::warn!(
                offset_ms = offset,
                "btcturk: local clock is {offset} ms off the server's; signing with the offset"
            );
        }
        Ok(offset)
    }

    async fn ensure_clock(&self) {
        let interval = self.config.clock_sync_interval;
        if interval.is_zero() {
            return;
        }
        let due = self
            .last_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= interval);
        if due && let Err(e) = Box::pin(self.sync_clock()).await {
            // Keep the last offset; a bad stamp shows up as a 401 Invalid Nonce.
            tracing::warn!("btcturk: clock sync failed: {e}");
            *self
                .last_sync
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
    }

    /// The auth headers, marked sensitive so no HTTP layer's debug output shows them.
    fn sign(
        &self,
        ep: Endpoint,
    ) -> Result<[(&'static str, reqwest::header::HeaderValue); 3], CallError> {
        let fail = |message: String| CallError {
            error: ExchangeError::Permanent {
                endpoint: ep.name().to_string(),
                message,
            },
            maybe_processed: false,
        };
        let c = self
            .credentials
            .as_ref()
            .ok_or_else(|| fail("no API credentials configured".into()))?;
        let stamp = local_ms() + self.clock_offset_ms();
        let signature = auth::sign(&c.public_key, &c.secret_b64, stamp).map_err(fail)?;
        let sensitive = |text: &str| {
            let mut v = reqwest::header::HeaderValue::from_str(text)
                .map_err(|_| fail("the API key is not a valid HTTP header value".into()))?;
            v.set_sensitive(true);
            Ok::<_, CallError>(v)
        };
        Ok([
            ("X-PCK", sensitive(&c.public_key)?),
            ("X-Stamp", sensitive(&stamp.to_string())?),
            ("X-Signature", sensitive(&signature)?),
        ])
    }

    async fn send_once(&self, req: &Request) -> Result<Outcome, CallError> {
        let ep = req.endpoint;
        let url = format!("{}{}", self.config.base_url, req.path);
        let mut rb = match ep.method() {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
            Method::Delete => self.http.delete(url),
        };
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        if ep.is_private() {
            for (name, value) in self.sign(ep)? {
                rb = rb.header(name, value);
            }
        }
        if let Some(body) = &req.body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let started = Instant::now();
        self.stats.record(ep, Event::Request);
        let outcome = match rb.send().await {
            Err(e) => transport(&e),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match resp.text().await {
                    Ok(body) => Outcome::Response {
                        status,
                        retry_after,
                        body,
                    },
                    Err(e) => transport(&e),
                }
            }
        };
        self.stats.record(ep, Event::HttpTime(started.elapsed()));
        match &outcome {
            Outcome::Transport { .. } => self.stats.record(ep, Event::Transport),
            Outcome::Response { status: 429, .. } => self.stats.record(ep, Event::RateLimited),
            Outcome::Response { status, .. } if *status >= 500 => {
                self.stats.record(ep, Event::ServerError);
            }
            Outcome::Response { .. } => {}
        }
        Ok(outcome)
    }

    /// Sends `req` under the transport policy and parses a 2xx body with `parse`.
    ///
    /// # Errors
    /// A [`CallError`] once the policy gives up (see the module docs).
    pub async fn call<T>(
        &self,
        req: &Request,
        parse: impl Fn(&str) -> Result<T, WireError>,
    ) -> Result<T, CallError> {
        self.call_with(req, parse, false, false).await
    }

    /// Like [`RestClient::call`], but only if the endpoint's buckets have a token right now;
    /// `None` otherwise (for data the caller can do without, e.g. the last trade).
    pub async fn call_if_free<T>(
        &self,
        req: &Request,
        parse: impl Fn(&str) -> Result<T, WireError>,
    ) -> Option<Result<T, CallError>> {
        if !self.limiter.try_acquire(req.endpoint) {
            return None;
        }
        Some(self.call_with(req, parse, false, true).await)
    }

    /// `skip_clock` is for the clock sync itself; `prepaid` when the first token is taken.
    async fn call_with<T>(
        &self,
        req: &Request,
        parse: impl Fn(&str) -> Result<T, WireError>,
        skip_clock: bool,
        mut prepaid: bool,
    ) -> Result<T, CallError> {
        let ep = req.endpoint;
        let idempotent = ep.method() == Method::Get;
        if ep.is_private() && !skip_clock {
            self.ensure_clock().await;
        }
        let mut attempt: u32 = 0;
        let mut resynced = false;
        let result = loop {
            let acquired = if std::mem::take(&mut prepaid) {
                Ok(Duration::ZERO)
            } else {
                self.limiter.acquire(ep, self.config.retry_after_cap).await
            };
            match acquired {
                Ok(waited) => self.stats.record(ep, Event::ThrottleWait(waited)),
                Err(blocked) => {
                    break Err(CallError {
                        error: ExchangeError::Transient {
                            endpoint: ep.name().to_string(),
                            message: format!(
                                "rate limited (HTTP 429 earlier), blocked for {:.1} s more",
                                blocked.remaining.as_secs_f64()
                            ),
                        },
                        maybe_processed: false,
                    });
                }
            }
            let outcome = match self.send_once(req).await {
                Ok(o) => o,
                Err(e) => break Err(e),
            };
            let problem =
                match policy::classify(ep, outcome, self.config.retry_after_default, &parse) {
                    Ok(t) => break Ok(t),
                    Err(p) => p,
                };
            let retry = match problem.reaction {
                Reaction::RateLimited(wait) => {
                    self.limiter.block(ep, wait);
                    idempotent
                        && attempt < self.config.max_retries
                        && wait <= self.config.retry_after_cap
                }
                Reaction::ResyncClock if !resynced && !skip_clock => {
                    resynced = true;
                    if let Err(e) = Box::pin(self.sync_clock()).await {
                        tracing::warn!("btcturk: clock resync after a 401 failed: {e}");
                    }
                    true
                }
                Reaction::Backoff if idempotent && attempt < self.config.max_retries => {
                    let d = policy::backoff(
                        attempt,
                        self.config.backoff_base,
                        self.config.backoff_max,
                        self.random(),
                    );
                    tracing::debug!(
                        endpoint = ep.name(),
                        attempt,
                        "btcturk: retry in {d:?}: {}",
                        problem.error
                    );
                    tokio::time::sleep(d).await;
                    true
                }
                _ => false,
            };
            if !retry {
                break Err(CallError::from(problem));
            }
            attempt += 1;
            self.stats.record(ep, Event::Retry);
        };
        if result.is_err() {
            self.stats.record(ep, Event::Error);
        }
        result
    }
}

fn transport(e: &reqwest::Error) -> Outcome {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body unreadable"
    } else {
        "request failed"
    };
    let mut message = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    Outcome::Transport {
        sent: !e.is_connect(),
        message,
    }
}
