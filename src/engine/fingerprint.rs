//! The cycle fingerprint: one hash of a cycle's inputs, decisions and rule set, stored with
//! each cycle and compared by `btcbot parity`.

use super::decide::{CycleInput, Decision};
use super::plan::Action;
use crate::domain::{Anomaly, Intent, Mode, Verdict};
use sha2::{Digest, Sha256};

/// Hash of the cycle's inputs and decisions and the rule hash: equal runs give equal prints.
///
/// The body goes through a `serde_json::Value` on purpose: its objects sort their keys at every
/// level, and those bytes are what databases written by earlier builds hold, so `btcbot parity`
/// compares across versions. (Serializing the structs directly is faster but orders keys by
/// declaration, which would make every old cycle differ.)
pub fn fingerprint(input: &CycleInput, decision: &Decision, actions: &[Action]) -> String {
    let judged: Vec<_> = decision
        .judged
        .iter()
        .map(|j| (&j.intent, &j.verdict))
        .collect();
    let labels: Vec<String> = actions.iter().map(Action::label).collect();
    hash_of(&body(
        input,
        decision.mode,
        &decision.anomalies,
        &judged,
        &labels,
        &decision.rule_hash,
    ))
}

fn body(
    input: &CycleInput,
    mode: Mode,
    anomalies: &[Anomaly],
    judged: &[(&Intent, &Verdict)],
    labels: &[String],
    rule_hash: &str,
) -> serde_json::Value {
    serde_json::json!({
        "cycle": input.cycle_id,
        "now": input.now_ms,
        "markets": input.markets,
        "portfolio": input.portfolio,
        "open_orders": input.open_orders,
        "anomalies": anomalies,
        "mode": mode,
        "judged": judged,
        "actions": labels,
        "rules": rule_hash,
    })
}

/// What a cycle's fingerprint hashes, owned, so that it can be hashed on another thread (a
/// backtest's database writer) once the cycle has moved on. The cycle's input is moved in: the
/// cycle has no use for it after its record is built.
pub struct FingerprintParts {
    pub input: CycleInput,
    mode: Mode,
    anomalies: Vec<Anomaly>,
    judged: Vec<(Intent, Verdict)>,
    labels: Vec<String>,
    rule_hash: String,
}

impl FingerprintParts {
    pub fn new(input: CycleInput, decision: &Decision, actions: &[Action]) -> Self {
        Self {
            input,
            mode: decision.mode,
            anomalies: decision.anomalies.clone(),
            judged: decision
                .judged
                .iter()
                .map(|j| (j.intent.clone(), j.verdict.clone()))
                .collect(),
            labels: actions.iter().map(Action::label).collect(),
            rule_hash: decision.rule_hash.clone(),
        }
    }

    /// The same hash as [`fingerprint`] of the parts' cycle.
    pub fn hash(&self) -> String {
        let judged: Vec<_> = self.judged.iter().map(|(i, v)| (i, v)).collect();
        hash_of(&body(
            &self.input,
            self.mode,
            &self.anomalies,
            &judged,
            &self.labels,
            &self.rule_hash,
        ))
    }
}

/// The first 32 hex digits of the SHA-256 of `body`'s JSON text.
fn hash_of(body: &serde_json::Value) -> String {
    // Written straight into the hash: the very bytes of `body.to_string()`, without building
    // that string through `fmt` (most of the fingerprint's cost).
    let mut h = Sha256::new();
    let mut writer = std::io::BufWriter::with_capacity(4096, HashWriter(&mut h));
    let written = serde_json::to_writer(&mut writer, body)
        .map_err(std::io::Error::from)
        .and_then(|()| std::io::Write::flush(&mut writer));
    drop(writer);
    if written.is_err() {
        // A `Value` into a writer that cannot fail does not fail; should it, hash it whole.
        h = Sha256::new();
        h.update(body.to_string().as_bytes());
    }
    hex::encode(h.finalize())[..32].to_string()
}

/// Feeds whatever is written to it into a hash.
struct HashWriter<'h>(&'h mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text a fingerprint hashed before it was written straight into the hash.
    fn hash_of_text(body: &serde_json::Value) -> String {
        hex::encode(Sha256::digest(body.to_string().as_bytes()))[..32].to_string()
    }

    #[test]
    fn hashing_while_writing_hashes_the_json_text() {
        // Nested objects whose keys sort, escapes, non-ASCII text, and more than the writer's
        // 4 KiB buffer.
        let rows: Vec<serde_json::Value> = (0..300)
            .map(|i| {
                serde_json::json!({
                    "z": i, "a": format!("q\"uote\\ {i} ğüş\n"), "m": {"y": [1, 2], "b": null}
                })
            })
            .collect();
        let body = serde_json::json!({"rows": rows, "price": "3500000.25", "ok": true});
        assert!(body.to_string().len() > 3 * 4096);
        assert_eq!(hash_of(&body), hash_of_text(&body));
        let small = serde_json::json!({"b": 1, "a": [{}]});
        assert_eq!(hash_of(&small), hash_of_text(&small));
    }

    #[test]
    fn owned_parts_hash_as_the_cycle_does() {
        use crate::domain::{Price, Qty, Severity, Side, Symbol};
        let btc = Symbol::new("BTCTRY").unwrap_or_else(|e| panic!("{e}"));
        let input = CycleInput {
            cycle_id: 9,
            now_ms: 1_767_225_601_000,
            symbols: vec![btc.clone()],
            ..CycleInput::default()
        };
        let intent = Intent {
            symbol: btc.clone(),
            side: Side::Buy,
            price: Price::new(rust_decimal::Decimal::new(35_000_005, 1))
                .unwrap_or_else(|e| panic!("{e}")),
            qty: Qty::new(rust_decimal::Decimal::new(25, 3)).unwrap_or_else(|e| panic!("{e}")),
            tag: "mean_reversion".into(),
        };
        let decision = Decision {
            anomalies: vec![Anomaly {
                code: "SPREAD_SPIKE".into(),
                severity: Severity::Warn,
                symbol: Some(btc),
                detail: vec![("spread_bps".into(), "312.5".into())],
            }],
            mode: Mode::ReduceOnly,
            mode_reasons: vec!["DEGRADE_WARN_STREAK".into()],
            judged: vec![crate::engine::decide::Judged {
                intent,
                verdict: Verdict::Reject {
                    reason: "MODE_REDUCE_ONLY".into(),
                },
                cost: Default::default(),
            }],
            states: Default::default(),
            costs: Default::default(),
            rule_hash: "0123456789abcdef".into(),
        };
        let direct = fingerprint(&input, &decision, &[]);
        assert_eq!(FingerprintParts::new(input, &decision, &[]).hash(), direct);
    }

    /// The fingerprint's bytes are a storage format: databases written by earlier builds hold
    /// them, and `btcbot parity` compares across builds. This value was computed by the build
    /// that introduced the format; a change here needs a reason and a note.
    #[test]
    fn the_fingerprint_format_is_stable_across_builds() {
        let input = CycleInput {
            cycle_id: 7,
            now_ms: 1_767_225_600_000,
            ..CycleInput::default()
        };
        let decision = Decision {
            anomalies: Vec::new(),
            mode: Mode::Normal,
            mode_reasons: Vec::new(),
            judged: Vec::new(),
            states: Default::default(),
            costs: Default::default(),
            rule_hash: "0123456789abcdef".into(),
        };
        assert_eq!(
            fingerprint(&input, &decision, &[]),
            "3a4eb7d656214bbe4f0e833a61910aad",
        );
    }
}
