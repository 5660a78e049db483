//! Live arming (DESIGN.md §5, docs/SAFETY.md): real orders need all of `mode: live`,
//! credentials, a real (not simulated) venue, and `BTCBOT_LIVE_ARMED` set to [`ARMING_ACK`].
//! Anything missing means dry run, with the exact reason (every missing piece named). Scripts
//! never see or change this.

use crate::config::TradingMode;

/// The environment variable that arms live trading.
pub const ARMING_ENV: &str = "BTCBOT_LIVE_ARMED";
/// The value it must hold, word for word.
pub const ARMING_ACK: &str = "I_UNDERSTAND_LIVE_TRADING";

/// Whether real orders may be sent, and why (not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arming {
    pub live: bool,
    /// One line for the banner, logs and `doctor`.
    pub reason: String,
}

/// What the configured venue is, as far as arming goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueKind {
    /// A replay dataset: orders fill in the replayed market.
    Replay,
    /// `exchange.simulated: true`: a simulated exchange (`btcbot sim-exchange`).
    Simulated,
    /// BTCTurk (anything not marked simulated): real money.
    Real,
}

/// Evaluates the gates. `armed_env` is the value of [`ARMING_ENV`], if set.
pub fn evaluate(
    mode: TradingMode,
    venue: VenueKind,
    has_credentials: bool,
    armed_env: Option<&str>,
) -> Arming {
    let dry = |why: &str| Arming {
        live: false,
        reason: format!("DRY RUN: {why}"),
    };
    match venue {
        VenueKind::Replay => return dry("replay venue (orders fill in the replayed market only)"),
        VenueKind::Simulated if has_credentials => {
            return dry(
                "simulated venue (orders go to the simulated exchange only; no real money)",
            );
        }
        VenueKind::Simulated => {
            return dry("simulated venue without credentials (would-be orders only)");
        }
        VenueKind::Real => {}
    }
    // Every missing piece is named, so one look at the banner or `doctor` says what to fix.
    let mut missing = Vec::new();
    if mode != TradingMode::Live {
        missing.push("bot.yaml mode is dry_run".to_string());
    }
    if !has_credentials {
        missing.push(
            "no credentials (BTCTURK_API_KEY/BTCTURK_API_SECRET or exchange.credentials_file)"
                .to_string(),
        );
    }
    match armed_env {
        None => missing.push(format!("{ARMING_ENV} is not set")),
        Some(v) if v != ARMING_ACK => missing.push(format!("{ARMING_ENV} is not {ARMING_ACK}")),
        Some(_) => {}
    }
    if missing.is_empty() {
        Arming {
            live: true,
            reason: format!("LIVE: mode live, credentials present, {ARMING_ENV} acknowledged"),
        }
    } else {
        dry(&missing.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TradingMode::{DryRun, Live};
    use VenueKind::{Real, Replay, Simulated};

    #[test]
    fn every_missing_piece_means_dry_run_with_its_reason() {
        let ack = Some(ARMING_ACK);
        assert!(evaluate(Live, Real, true, ack).live);
        let cases = [
            (evaluate(Live, Simulated, true, ack), "simulated venue"),
            (evaluate(Live, Simulated, false, ack), "without credentials"),
            (evaluate(Live, Replay, false, ack), "replay venue"),
            (evaluate(DryRun, Real, true, ack), "mode is dry_run"),
            (evaluate(Live, Real, false, ack), "no credentials"),
            (evaluate(Live, Real, true, None), "is not set"),
            (
                evaluate(Live, Real, true, Some("yes")),
                "is not I_UNDERSTAND_LIVE_TRADING",
            ),
        ];
        for (arming, why) in cases {
            assert!(!arming.live, "{why}");
            assert!(
                arming.reason.starts_with("DRY RUN") && arming.reason.contains(why),
                "{}",
                arming.reason
            );
        }
        let none = evaluate(DryRun, Real, false, None);
        assert!(!none.live);
        for why in ["mode is dry_run", "no credentials", "is not set"] {
            assert!(none.reason.contains(why), "{}", none.reason);
        }
    }
}
