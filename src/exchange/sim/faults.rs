//! Fault injection for the simulated exchange: the `--faults SPEC` grammar, a seeded PRNG, and
//! the per-request decision.
//!
//! ```text
//! SPEC  := "" | "none" | ITEM ("," ITEM)*
//! ITEM  := latency=DUR | latency=DUR..DUR          added to every request (uniform in the range)
//!        | 5xx=P                                    answer 500/502/503 (JSON, HTML or empty body)
//!        | 429=[P][/burst:N][/retry-after:S]        start a burst of N 429s (default P 0.05, N 1,
//!                                                   S 1) with `Retry-After: S`; the request
//!                                                   after a burst always passes
//!        | timeout=P[/hold:DUR]                     hold the request DUR (default 30s), then drop
//!                                                   the connection; the request is not processed
//!        | lost_order_response=P                    POST /api/v1/order: the order IS placed, then
//!                                                   the connection drops or a 5xx with an empty
//!                                                   body comes back
//!        | cancel_delay=DUR                         DELETE /api/v1/order answers 200 at once and
//!                                                   cancels DUR later (BTCTurk cancels async)
//!        | ws_cs_gap=P                              websocket: a 432 skips one `CS`
//!        | comma_decimals=on|off                    balances use `,` as the decimal separator
//!        | seed=N                                   PRNG seed (default 1)
//! DUR   := INTEGER ("ms" | "s")
//! P     := a probability in [0, 1], e.g. 0.05
//! ```
//! Draws come from one seeded SplitMix64 stream in request order, so a sequential client sees the
//! same faults on every run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What to inject; parse it with [`FaultSpec::parse`]. The default injects nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub latency_min: Duration,
    pub latency_max: Duration,
    pub rate_5xx: f64,
    pub rate_429: f64,
    pub burst_429: u32,
    pub retry_after_s: u64,
    pub rate_timeout: f64,
    pub timeout_hold: Duration,
    pub rate_lost_order: f64,
    pub cancel_delay: Duration,
    pub rate_ws_cs_gap: f64,
    pub comma_decimals: bool,
    pub seed: u64,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            latency_min: Duration::ZERO,
            latency_max: Duration::ZERO,
            rate_5xx: 0.0,
            rate_429: 0.0,
            burst_429: 1,
            retry_after_s: 1,
            rate_timeout: 0.0,
            timeout_hold: Duration::from_secs(30),
            rate_lost_order: 0.0,
            cancel_delay: Duration::ZERO,
            rate_ws_cs_gap: 0.0,
            comma_decimals: false,
            seed: 1,
        }
    }
}

impl FaultSpec {
    /// Parses the grammar in the module docs.
    ///
    /// # Errors
    /// One line naming the item that is wrong and what was expected.
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut out = FaultSpec::default();
        let spec = spec.trim();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return Ok(out);
        }
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("faults: {item:?}: expected KEY=VALUE"))?;
            let bad = |why: String| format!("faults: {item:?}: {why}");
            match key.trim().to_ascii_lowercase().as_str() {
                "latency" => {
                    let (lo, hi) = match value.split_once("..") {
                        Some((lo, hi)) => (duration(lo).map_err(bad)?, duration(hi).map_err(bad)?),
                        None => {
                            let d = duration(value).map_err(bad)?;
                            (d, d)
                        }
                    };
                    if hi < lo {
                        return Err(bad("the range's end is below its start".into()));
                    }
                    (out.latency_min, out.latency_max) = (lo, hi);
                }
                "5xx" => out.rate_5xx = probability(value).map_err(bad)?,
                "429" => {
                    out.rate_429 = 0.05;
                    for part in value.split('/').map(str::trim) {
                        match part.split_once(':') {
                            Some(("burst", n)) => {
                                out.burst_429 =
                                    n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                                        bad(format!("burst:{n}: expected N >= 1"))
                                    })?;
                            }
                            Some(("retry-after", s)) => {
                                out.retry_after_s = s.trim().parse().map_err(|_| {
                                    bad(format!("retry-after:{s}: expected whole seconds"))
                                })?;
                            }
                            Some((other, _)) => {
                                return Err(bad(format!(
                                    "unknown part {other:?}; expected burst:N or retry-after:S"
                                )));
                            }
                            None => out.rate_429 = probability(part).map_err(bad)?,
                        }
                    }
                }
                "timeout" => {
                    let (p, hold) = match value.split_once('/') {
                        Some((p, hold)) => {
                            let hold = hold.trim().strip_prefix("hold:").ok_or_else(|| {
                                bad(format!("{hold:?}: expected hold:DUR, e.g. hold:30s"))
                            })?;
                            (p, Some(duration(hold).map_err(bad)?))
                        }
                        None => (value, None),
                    };
                    out.rate_timeout = probability(p).map_err(bad)?;
                    if let Some(hold) = hold {
                        out.timeout_hold = hold;
                    }
                }
                "lost_order_response" => out.rate_lost_order = probability(value).map_err(bad)?,
                "cancel_delay" => out.cancel_delay = duration(value).map_err(bad)?,
                "ws_cs_gap" => out.rate_ws_cs_gap = probability(value).map_err(bad)?,
                "comma_decimals" => {
                    out.comma_decimals = match value.trim().to_ascii_lowercase().as_str() {
                        "on" | "true" | "1" => true,
                        "off" | "false" | "0" => false,
                        _ => return Err(bad("expected on or off".into())),
                    }
                }
                "seed" => {
                    out.seed = value
                        .trim()
                        .parse()
                        .map_err(|_| bad("expected an unsigned integer".into()))?;
                }
                other => {
                    return Err(format!(
                        "faults: unknown key {other:?}; expected latency, 5xx, 429, timeout, \
                         lost_order_response, cancel_delay, ws_cs_gap, comma_decimals or seed"
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn probability(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| format!("{:?} is not a probability in [0, 1]", text.trim()))
}

fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else {
        return Err(format!("{t:?}: expected a duration such as 50ms or 2s"));
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{t:?}: expected a whole number before the unit"))?;
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 3_600_000)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{t:?}: at most one hour"))
}

/// SplitMix64: small, seeded, no global state.
#[derive(Debug, Clone)]
pub(crate) struct Prng(u64);

impl Prng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits → [0, 1).
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// How many faults were injected, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub delayed: u64,
    pub errors_5xx: u64,
    pub errors_429: u64,
    pub timeouts: u64,
    pub lost_order_responses: u64,
    pub ws_cs_gaps: u64,
}

/// What to do with one request before it reaches its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    Pass,
    /// Hold this long, then drop the connection.
    Timeout(Duration),
    /// HTTP status and body variant (0 JSON, 1 HTML, 2 empty).
    ServerError(u16, u8),
    TooMany {
        retry_after_s: u64,
    },
}

/// How a lost order response is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Headers go out, then the connection drops before the body.
    Drop,
    /// A 5xx with an empty body.
    Empty5xx,
}

struct Dice {
    rng: Prng,
    burst_left: u32,
    just_burst: bool,
}

/// The decision maker shared by all requests.
pub(crate) struct Faults {
    spec: FaultSpec,
    dice: Mutex<Dice>,
    delayed: AtomicU64,
    e5xx: AtomicU64,
    e429: AtomicU64,
    timeouts: AtomicU64,
    lost: AtomicU64,
    gaps: AtomicU64,
}

impl Faults {
    pub(crate) fn new(spec: FaultSpec) -> Self {
        Self {
            dice: Mutex::new(Dice {
                rng: Prng::new(spec.seed),
                burst_left: 0,
                just_burst: false,
            }),
            spec,
            delayed: AtomicU64::new(0),
            e5xx: AtomicU64::new(0),
            e429: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
        }
    }

    pub(crate) fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// Added latency and the fault (if any) for the next request.
    pub(crate) fn before(&self) -> (Duration, Injected) {
        let s = &self.spec;
        let mut dice = self
            .dice
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let latency = if s.latency_max > s.latency_min {
            let span = (s.latency_max - s.latency_min).as_millis();
            let extra = dice
                .rng
                .below(u64::try_from(span).unwrap_or(u64::MAX).saturating_add(1));
            s.latency_min + Duration::from_millis(extra)
        } else {
            s.latency_min
        };
        if !latency.is_zero() {
            self.delayed.fetch_add(1, Ordering::Relaxed);
        }
        let injected = if dice.burst_left > 0 {
            dice.burst_left -= 1;
            dice.just_burst = dice.burst_left == 0;
            Injected::TooMany {
                retry_after_s: s.retry_after_s,
            }
        } else if std::mem::take(&mut dice.just_burst) {
            Injected::Pass
        } else if dice.rng.chance(s.rate_429) {
            dice.burst_left = s.burst_429.saturating_sub(1);
            dice.just_burst = dice.burst_left == 0;
            Injected::TooMany {
                retry_after_s: s.retry_after_s,
            }
        } else if dice.rng.chance(s.rate_timeout) {
            Injected::Timeout(s.timeout_hold)
        } else if dice.rng.chance(s.rate_5xx) {
            let (status, body) = match dice.rng.below(3) {
                0 => (503, 0),
                1 => (502, 1),
                _ => (500, 2),
            };
            Injected::ServerError(status, body)
        } else {
            Injected::Pass
        };
        match injected {
            Injected::TooMany { .. } => self.e429.fetch_add(1, Ordering::Relaxed),
            Injected::Timeout(_) => self.timeouts.fetch_add(1, Ordering::Relaxed),
            Injected::ServerError(..) => self.e5xx.fetch_add(1, Ordering::Relaxed),
            Injected::Pass => 0,
        };
        (latency, injected)
    }

    /// Whether (and how) to lose the response to an order that was just placed.
    pub(crate) fn lose_order_response(&self) -> Option<Lost> {
        let mut dice = self
            .dice
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !dice.rng.chance(self.spec.rate_lost_order) {
            return None;
        }
        self.lost.fetch_add(1, Ordering::Relaxed);
        Some(if dice.rng.below(2) == 0 {
            Lost::Drop
        } else {
            Lost::Empty5xx
        })
    }

    /// Whether the next websocket 432 skips a `CS`.
    pub(crate) fn ws_cs_gap(&self) -> bool {
        let mut dice = self
            .dice
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let gap = dice.rng.chance(self.spec.rate_ws_cs_gap);
        if gap {
            self.gaps.fetch_add(1, Ordering::Relaxed);
        }
        gap
    }

    pub(crate) fn stats(&self) -> FaultStats {
        FaultStats {
            delayed: self.delayed.load(Ordering::Relaxed),
            errors_5xx: self.e5xx.load(Ordering::Relaxed),
            errors_429: self.e429.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            lost_order_responses: self.lost.load(Ordering::Relaxed),
            ws_cs_gaps: self.gaps.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_spec_parses() {
        let s = FaultSpec::parse(
            "latency=50ms,5xx=0.1,timeout=0.05,429=burst:3/retry-after:1,lost_order_response=0.02,seed=7",
        )
        .unwrap_or_default();
        assert_eq!(s.latency_min, Duration::from_millis(50));
        assert_eq!(s.latency_max, Duration::from_millis(50));
        assert!((s.rate_5xx - 0.1).abs() < 1e-12);
        assert!((s.rate_timeout - 0.05).abs() < 1e-12);
        assert_eq!((s.burst_429, s.retry_after_s), (3, 1));
        assert!((s.rate_429 - 0.05).abs() < 1e-12);
        assert!((s.rate_lost_order - 0.02).abs() < 1e-12);
        assert_eq!(s.seed, 7);
        let s = FaultSpec::parse("latency=10ms..30ms, 429=1/burst:2, timeout=0.5/hold:2s")
            .unwrap_or_default();
        assert_eq!(s.latency_max, Duration::from_millis(30));
        assert_eq!(s.timeout_hold, Duration::from_secs(2));
        assert!((s.rate_429 - 1.0).abs() < 1e-12);
        assert_eq!(FaultSpec::parse("none"), Ok(FaultSpec::default()));
    }

    #[test]
    fn errors_are_one_clear_line() {
        for (spec, needle) in [
            ("5xx=1.5", "not a probability"),
            ("latency=50", "expected a duration"),
            ("jitter=1", "unknown key \"jitter\""),
            ("429=burst:0", "expected N >= 1"),
            ("timeout=0.1/30s", "expected hold:DUR"),
            ("seed", "expected KEY=VALUE"),
            ("latency=30ms..10ms", "below its start"),
        ] {
            let err = FaultSpec::parse(spec).err().unwrap_or_default();
            assert!(err.contains(needle), "{spec}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn bursts_are_followed_by_a_pass_and_draws_repeat_with_the_seed() {
        let spec = FaultSpec::parse("429=1/burst:3/retry-after:2").unwrap_or_default();
        let f = Faults::new(spec.clone());
        let seen: Vec<bool> = (0..8)
            .map(|_| matches!(f.before().1, Injected::TooMany { retry_after_s: 2 }))
            .collect();
        assert_eq!(seen, [true, true, true, false, true, true, true, false]);
        let spec = FaultSpec::parse("5xx=0.3,timeout=0.1,seed=9").unwrap_or_default();
        let (a, b) = (Faults::new(spec.clone()), Faults::new(spec));
        let run = |f: &Faults| (0..50).map(|_| f.before().1).collect::<Vec<_>>();
        assert_eq!(run(&a), run(&b));
    }
}
