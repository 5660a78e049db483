//! The cycle fingerprint: one hash of a cycle's inputs, decisions and rule set, stored with
//! each cycle and compared by `btcbot parity`.

use super::decide::{CycleInput, Decision};
use super::plan::Action;
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
    let body = serde_json::json!({
        "cycle": input.cycle_id,
        "now": input.now_ms,
        "markets": input.markets,
        "portfolio": input.portfolio,
        "open_orders": input.open_orders,
        "anomalies": decision.anomalies,
        "mode": decision.mode,
        "judged": judged,
        "actions": labels,
        "rules": decision.rule_hash,
    });
    hash_of(&body)
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
    use crate::domain::Mode;

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
