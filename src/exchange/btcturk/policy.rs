//! Pure transport-policy decisions: what an HTTP outcome means ([`classify`]), how long to back
//! off, and how to read `Retry-After`. `rest.rs` does the IO and follows these answers.
//!
//! | outcome | error | GET | POST/DELETE |
//! |---|---|---|---|
//! | 2xx, body parses | — | done | done |
//! | 2xx, `success:false`, code 1000 (`SYSTEM_ERROR`) | Transient | retried | may have been processed |
//! | 2xx, `success:false`, other code | Rejected(code) | final | not processed |
//! | 2xx, empty or truncated body | Transient | retried | may have been processed |
//! | 2xx, not JSON / a field missing or bad | Permanent | final | may have been processed |
//! | 401 `Invalid Nonce` | Permanent | clock resync, one more try | same (a 401 is never processed) |
//! | 401 other | Permanent (the 401 message) | final | not processed |
//! | 429 | Transient | Retry-After waited out (up to the cap), retried | not processed, not retried |
//! | 408, 5xx | Transient | retried with backoff | may have been processed |
//! | other 4xx with a BTCTurk body | Rejected(code) | final | not processed |
//! | other 4xx without one | Permanent | final | not processed |
//! | connect failure | Transient | retried | not sent |
//! | timeout, reset, unreadable body | Transient | retried | may have been processed |

use super::endpoint::Endpoint;
use super::wire::{WireError, WireErrorKind, code_text, json_body, snippet};
use crate::exchange::ExchangeError;
use serde_json::Value;
use std::time::Duration;

/// What one HTTP attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response {
        status: u16,
        /// The raw `Retry-After` header.
        retry_after: Option<String>,
        body: String,
    },
    Transport {
        /// `false` when the connection could not even be opened (nothing was sent).
        sent: bool,
        message: String,
    },
}

/// How the caller may react to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Retry with backoff if the call is idempotent.
    Backoff,
    /// 429: wait this long, then retry if the call is idempotent.
    RateLimited(Duration),
    /// 401 for the stamp: resync the clock and try once more (any method).
    ResyncClock,
    /// Give up.
    Final,
}

/// A failed attempt: the error to report, how to react, and whether the exchange may have acted
/// on it (what decides if an unanswered order must be looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub error: ExchangeError,
    pub reaction: Reaction,
    pub maybe_processed: bool,
}

fn transient(ep: Endpoint, message: String) -> ExchangeError {
    ExchangeError::Transient {
        endpoint: ep.name().to_string(),
        message,
    }
}

fn permanent(ep: Endpoint, message: String) -> ExchangeError {
    ExchangeError::Permanent {
        endpoint: ep.name().to_string(),
        message,
    }
}

/// `Retry-After` in whole (or fractional) seconds; `default` when absent or unreadable (HTTP
/// dates are not used by BTCTurk and count as unreadable).
pub fn retry_after(header: Option<&str>, default: Duration) -> Duration {
    header
        .map(str::trim)
        .and_then(|h| h.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(default, |s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// Exponential backoff with "equal jitter": half of `base * 2^attempt` (capped at `max`) plus a
/// random part of the other half. `rand` is any uniformly random u64.
pub fn backoff(attempt: u32, base: Duration, max: Duration, rand: u64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    let half = exp / 2;
    let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
    let extra = if span == 0 { 0 } else { rand % (span + 1) };
    half + Duration::from_micros(extra)
}

/// The message of a JSON error body (`message`, plus `details` when present), else a snippet.
fn body_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(o)) => {
            let m = o
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            let d = o
                .get("details")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            match (m.is_empty(), d.is_empty()) {
                (false, false) => format!("{m}: {d}"),
                (false, true) => m.to_string(),
                (true, false) => d.to_string(),
                (true, true) => snippet(body),
            }
        }
        _ if body.trim().is_empty() => "empty body".to_string(),
        _ => snippet(body),
    }
}

/// `success:false` with BTCTurk's `SYSTEM_ERROR` is the exchange failing, not a refusal.
fn is_system_error(code: &str, message: &str) -> bool {
    code == "1000" || message.eq_ignore_ascii_case("SYSTEM_ERROR")
}

fn rejected(ep: Endpoint, code: String, message: String) -> ExchangeError {
    let code = if code.is_empty() || code == "0" {
        message.clone()
    } else {
        code
    };
    ExchangeError::Rejected {
        endpoint: ep.name().to_string(),
        code,
        message,
    }
}

/// Classifies one attempt. `parse` reads a 2xx body.
///
/// # Errors
/// Every outcome but a 2xx whose body parses, as a [`Problem`] (see the module table).
pub fn classify<T>(
    ep: Endpoint,
    outcome: Outcome,
    retry_after_default: Duration,
    parse: impl FnOnce(&str) -> Result<T, WireError>,
) -> Result<T, Problem> {
    let (status, header, body) = match outcome {
        Outcome::Transport { sent, message } => {
            return Err(Problem {
                error: transient(ep, message),
                reaction: Reaction::Backoff,
                maybe_processed: sent,
            });
        }
        Outcome::Response {
            status,
            retry_after,
            body,
        } => (status, retry_after, body),
    };
    let problem = |error, reaction, maybe_processed| Problem {
        error,
        reaction,
        maybe_processed,
    };
    match status {
        200..=299 => parse(&body).map_err(|e| match e.kind {
            WireErrorKind::Failure { code, message } if is_system_error(&code, &message) => {
                let msg = format!("exchange reported failure: {message} (code {code})");
                problem(transient(ep, msg), Reaction::Backoff, true)
            }
            WireErrorKind::Failure { code, message } => {
                problem(rejected(ep, code, message), Reaction::Final, false)
            }
            WireErrorKind::Empty | WireErrorKind::Truncated { .. } => {
                let msg = format!("HTTP {status} with {}", e.kind);
                problem(transient(ep, msg), Reaction::Backoff, true)
            }
            WireErrorKind::NotJson { .. } | WireErrorKind::Field(_) => {
                problem(permanent(ep, e.kind.to_string()), Reaction::Final, true)
            }
        }),
        401 => {
            let message = body_message(&body);
            let reaction = if message.to_ascii_lowercase().contains("nonce") {
                Reaction::ResyncClock
            } else {
                Reaction::Final
            };
            Err(problem(
                permanent(ep, format!("HTTP 401: {message}")),
                reaction,
                false,
            ))
        }
        429 => {
            let wait = retry_after(header.as_deref(), retry_after_default);
            let msg = format!(
                "rate limited (HTTP 429: {}), retry after {} s",
                body_message(&body),
                wait.as_secs_f64()
            );
            Err(problem(
                transient(ep, msg),
                Reaction::RateLimited(wait),
                false,
            ))
        }
        408 | 500..=599 => Err(problem(
            transient(ep, format!("HTTP {status}: {}", body_message(&body))),
            Reaction::Backoff,
            true,
        )),
        _ => {
            let failure = json_body(ep, &body)
                .ok()
                .filter(|v| v.get("success").and_then(Value::as_bool) == Some(false))
                .map(|v| {
                    let code = code_text(v.get("code"));
                    (code, body_message(&body))
                });
            let error = match failure {
                Some((code, message)) => rejected(ep, code, message),
                None => permanent(ep, format!("HTTP {status}: {}", body_message(&body))),
            };
            Err(problem(error, Reaction::Final, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::btcturk::wire::{parse_orderbook, parse_submit};

    const EP: Endpoint = Endpoint::SubmitOrder;
    const MIN: Duration = Duration::from_secs(60);

    fn resp(status: u16, body: &str) -> Outcome {
        Outcome::Response {
            status,
            retry_after: None,
            body: body.to_string(),
        }
    }

    fn submit(outcome: Outcome) -> Problem {
        classify(EP, outcome, MIN, parse_submit).unwrap_err()
    }

    #[test]
    fn business_rejections_keep_btcturk_codes() {
        for (status, code) in [(200, "1123"), (400, "1126"), (400, "1127")] {
            let body = format!(r#"{{"success":false,"message":"FAILED","code":{code}}}"#);
            let p = submit(resp(status, &body));
            assert_eq!(p.reaction, Reaction::Final);
            assert!(!p.maybe_processed);
            assert!(
                matches!(&p.error, ExchangeError::Rejected { code: c, .. } if c == code),
                "{p:?}"
            );
        }
    }

    #[test]
    fn auth_failures_are_permanent_with_the_401_message() {
        let body = r#"{"success":false,"message":"Unauthorized - Invalid Signature","code":401}"#;
        let p = submit(resp(401, body));
        assert_eq!(
            p.error.to_string(),
            "POST /api/v1/order: HTTP 401: Unauthorized - Invalid Signature"
        );
        assert_eq!((p.reaction, p.maybe_processed), (Reaction::Final, false));
        let p = submit(resp(401, "Unauthorized - Invalid Nonce"));
        assert_eq!(p.reaction, Reaction::ResyncClock);
    }

    #[test]
    fn rate_limits_honour_retry_after_or_default_to_60_s() {
        let mut o = resp(
            429,
            r#"{"message":"TOO_MANY_REQUESTS","success":false,"code":429}"#,
        );
        if let Outcome::Response { retry_after, .. } = &mut o {
            *retry_after = Some("55".into());
        }
        let p = submit(o);
        assert_eq!(p.reaction, Reaction::RateLimited(Duration::from_secs(55)));
        assert!(matches!(p.error, ExchangeError::Transient { .. }));
        assert!(!p.maybe_processed);
        let p = submit(resp(429, ""));
        assert_eq!(p.reaction, Reaction::RateLimited(MIN));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), MIN), MIN);
        assert_eq!(retry_after(Some(" 1.5 "), MIN), Duration::from_millis(1500));
    }

    #[test]
    fn unanswered_or_garbled_submits_may_have_been_processed() {
        for o in [
            resp(502, "<html>Bad Gateway</html>"),
            resp(503, ""),
            resp(200, ""),
            resp(200, r#"{"success":true,"data":{"#),
            resp(200, "<html>ok</html>"),
            resp(200, r#"{"success":true,"code":0,"data":{"price":"1"}}"#),
            resp(
                200,
                r#"{"success":false,"message":"SYSTEM_ERROR","code":1000}"#,
            ),
            Outcome::Transport {
                sent: true,
                message: "timed out".into(),
            },
        ] {
            let p = submit(o.clone());
            assert!(p.maybe_processed, "{o:?}");
        }
        let p = submit(Outcome::Transport {
            sent: false,
            message: "refused".into(),
        });
        assert!(!p.maybe_processed);
        assert_eq!(p.reaction, Reaction::Backoff);
    }

    #[test]
    fn server_errors_back_off_and_bad_data_is_final() {
        let p = classify(Endpoint::OrderBook, resp(503, "busy"), MIN, parse_orderbook).unwrap_err();
        assert_eq!(p.reaction, Reaction::Backoff);
        assert_eq!(
            p.error.to_string(),
            "GET /api/v2/orderbook: transient: HTTP 503: busy"
        );
        let p = classify(Endpoint::OrderBook, resp(200, "{}"), MIN, parse_orderbook).unwrap_err();
        assert_eq!(p.reaction, Reaction::Final);
        assert!(matches!(p.error, ExchangeError::Permanent { .. }));
        let p = classify(
            Endpoint::OrderBook,
            resp(404, "Not Found"),
            MIN,
            parse_orderbook,
        )
        .unwrap_err();
        assert_eq!(
            p.error.to_string(),
            "GET /api/v2/orderbook: HTTP 404: Not Found"
        );
        let body = r#"{"success":false,"message":"Pair NOPEUSDT does not exists.","code":1037}"#;
        let p = classify(Endpoint::OrderBook, resp(400, body), MIN, parse_orderbook).unwrap_err();
        assert!(matches!(&p.error, ExchangeError::Rejected { code, .. } if code == "1037"));
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff(0, base, max, 0), Duration::from_millis(50));
        assert_eq!(
            backoff(0, base, max, u64::MAX),
            Duration::from_micros(50_000 + (u64::MAX % 50_001))
        );
        assert_eq!(backoff(2, base, max, 0), Duration::from_millis(200));
        for r in [0, 7, 1 << 40, u64::MAX] {
            let d = backoff(10, base, max, r);
            assert!(d >= Duration::from_millis(500) && d <= max, "{d:?}");
        }
        assert_eq!(backoff(3, Duration::ZERO, max, 99), Duration::ZERO);
    }
}
