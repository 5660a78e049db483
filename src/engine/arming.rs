//! Live arming (DESIGN.md §5): real orders need all of `mode: live`, credentials, a real (not
//! simulated) venue, and `BTCBOT_LIVE_ARMED` set to [`ARMING_ACK`]. Anything missing means dry
//! run, with the exact reason. Scripts never see or change this.

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

/// Evaluates the gates. `armed_env` is the value of [`ARMING_ENV`], if set.
pub fn evaluate(
    mode: TradingMode,
    simulated_venue: bool,
    has_credentials: bool,
    armed_env: Option<&str>,
) -> Arming {
    let dry = |why: &str| Arming {
        live: false,
        reason: format!("DRY RUN: {why}"),
    };
    if simulated_venue {
        return dry("simulated venue (orders fill against a simulated market only)");
    }
    if mode != TradingMode::Live {
        return dry("bot.yaml mode is dry_run");
    }
    if !has_credentials {
        return dry(
            "no credentials (BTCTURK_API_KEY/BTCTURK_API_SECRET or exchange.credentials_file)",
        );
    }
    match armed_env {
        None => dry(&format!("{ARMING_ENV} is not set")),
        Some(v) if v != ARMING_ACK => dry(&format!("{ARMING_ENV} is not {ARMING_ACK}")),
        Some(_) => Arming {
            live: true,
            reason: "LIVE: mode live, credentials present, armed".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TradingMode::{DryRun, Live};

    #[test]
    fn every_missing_piece_means_dry_run_with_its_reason() {
        let ack = Some(ARMING_ACK);
        assert!(evaluate(Live, false, true, ack).live);
        let cases = [
            (evaluate(Live, true, true, ack), "simulated venue"),
            (evaluate(DryRun, false, true, ack), "mode is dry_run"),
            (evaluate(Live, false, false, ack), "no credentials"),
            (evaluate(Live, false, true, None), "is not set"),
            (
                evaluate(Live, false, true, Some("yes")),
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
    }
}
