//! BTCTurk request signing: `X-Signature = base64(HMAC-SHA256(base64_decode(secret),
//! public_key + stamp_ms))`. Only the key and the stamp are signed. Used by the REST client to
//! sign and by the simulated exchange to verify.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

/// API credentials. Neither the key nor the secret appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub public_key: String,
    /// Base64, as BTCTurk issues it.
    pub secret_b64: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("public_key", &"<redacted>")
            .field("secret_b64", &"<redacted>")
            .finish()
    }
}

/// The signature of `public_key + stamp_ms` under the base64-decoded secret.
///
/// # Errors
/// When the secret is not valid base64.
pub fn sign(public_key: &str, secret_b64: &str, stamp_ms: i64) -> Result<String, String> {
    let key = STANDARD
        .decode(secret_b64.trim())
        .map_err(|_| "API secret is not valid base64".to_string())?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|e| format!("API secret unusable as an HMAC key: {e}"))?;
    mac.update(format!("{public_key}{stamp_ms}").as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// Constant-time check of a received signature.
pub fn verify(public_key: &str, secret_b64: &str, stamp_ms: i64, signature: &str) -> bool {
    let Ok(key) = STANDARD.decode(secret_b64.trim()) else {
        return false;
    };
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{public_key}{stamp_ms}").as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published vector (TRCrypto.Net docs), recomputed independently.
    const KEY: &str = "test-public-key";
    const SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";

    #[test]
    fn debug_shows_neither_key_nor_secret() {
        let c = Credentials {
            public_key: KEY.into(),
            secret_b64: SECRET.into(),
        };
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains(KEY) && !shown.contains(SECRET), "{shown}");
    }

    #[test]
    fn matches_the_published_vector() {
        assert_eq!(
            sign(KEY, SECRET, 1_735_689_600_000).unwrap(),
            "7gyFGcOS+qnq46h/rl83VtpaEAsh8Th3Z3lQrF7g2I0="
        );
        assert_eq!(
            sign(KEY, SECRET, 3000).unwrap(),
            "uLpuzhycwQqE+aC+WnmBoPSIyBrCPo4I0pyJyq6uF98="
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let good = "7gyFGcOS+qnq46h/rl83VtpaEAsh8Th3Z3lQrF7g2I0=";
        assert!(verify(KEY, SECRET, 1_735_689_600_000, good));
        assert!(!verify(KEY, SECRET, 1_735_689_600_001, good));
        // The signature computed without decoding the secret is wrong.
        assert!(!verify(
            KEY,
            SECRET,
            1_735_689_600_000,
            "38qSfoys8cvFpd0FBe50RUaqT6Dl3iMO7iyblkzlqnw="
        ));
    }

    #[test]
    fn a_secret_that_is_not_base64_is_an_error_and_stays_out_of_debug() {
        assert!(sign(KEY, "not base64!!", 1).is_err());
        let c = Credentials {
            public_key: KEY.into(),
            secret_b64: SECRET.into(),
        };
        assert!(!format!("{c:?}").contains(SECRET));
    }
}
