//! API credentials: from the environment (`BTCTURK_API_KEY`, `BTCTURK_API_SECRET`) or from a YAML
//! file readable by its owner only. Never logged, never stored in SQLite (the `Debug` of
//! `Credentials` is redacted).

use crate::exchange::btcturk::auth::{Credentials, sign};
use serde::Deserialize;
use std::path::Path;

pub const ENV_KEY: &str = "BTCTURK_API_KEY";
pub const ENV_SECRET: &str = "BTCTURK_API_SECRET";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    public_key: String,
    secret: String,
}

/// Loads credentials: the environment first, then `file` (if given).
///
/// # Errors
/// Only one of the two variables set, a file that is missing, unreadable, malformed or
/// readable by others, or a secret that is not base64. The message never holds the secret.
///
/// `shared_file_ok` accepts a file others can read: only for a simulated venue, whose test keys
/// guard no money (a warning is still logged).
pub fn load_credentials(
    file: Option<&Path>,
    shared_file_ok: bool,
) -> Result<Option<Credentials>, String> {
    let key = std::env::var(ENV_KEY).ok().filter(|v| !v.trim().is_empty());
    let secret = std::env::var(ENV_SECRET)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let creds = match (key, secret) {
        (Some(public_key), Some(secret_b64)) => Credentials {
            public_key,
            secret_b64,
        },
        (Some(_), None) => return Err(format!("{ENV_KEY} is set but {ENV_SECRET} is not")),
        (None, Some(_)) => return Err(format!("{ENV_SECRET} is set but {ENV_KEY} is not")),
        (None, None) => match file {
            None => return Ok(None),
            Some(path) => read_file(path, shared_file_ok)?,
        },
    };
    sign(&creds.public_key, &creds.secret_b64, 0).map_err(|e| format!("credentials: {e}"))?;
    Ok(Some(creds))
}

fn read_file(path: &Path, shared_file_ok: bool) -> Result<Credentials, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 && shared_file_ok {
            tracing::warn!(
                "{shown}: credentials file has mode {mode:04o}; accepted for a simulated venue only"
            );
        } else if mode & 0o077 != 0 {
            return Err(format!(
                "{shown}: credentials file has mode {mode:04o}; it must be readable by its owner only (chmod 600)"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    // serde_norway's messages quote only keys and types, never the values we refuse.
    let parsed: CredentialsFile = serde_norway::from_str(&text).map_err(|e| {
        let line = e
            .location()
            .map(|l| format!(":{}", l.line()))
            .unwrap_or_default();
        format!("{shown}{line}: malformed credentials file (expected public_key and secret)")
    })?;
    Ok(Credentials {
        public_key: parsed.public_key,
        secret_b64: parsed.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz";

    fn write(dir: &Path, mode: u32, text: &str) -> std::path::PathBuf {
        let p = dir.join("creds.yaml");
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        p
    }

    // The environment is process-wide, so these file tests assume the two variables are unset,
    // as they are in the test suite.
    #[test]
    fn a_private_file_loads_and_a_shared_one_is_refused() {
        if std::env::var(ENV_KEY).is_ok() || std::env::var(ENV_SECRET).is_ok() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let text = format!("public_key: pk\nsecret: {SECRET}\n");
        let p = write(tmp.path(), 0o600, &text);
        let c = load_credentials(Some(&p), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.map(|c| c.public_key), Some("pk".to_string()));
        let p = write(tmp.path(), 0o644, &text);
        let e = load_credentials(Some(&p), false).err().unwrap_or_default();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains(SECRET));
        // A simulated venue's test keys may sit in a shared file.
        assert!(load_credentials(Some(&p), true).is_ok());
    }

    #[test]
    fn a_bad_secret_is_refused_without_echoing_it() {
        if std::env::var(ENV_KEY).is_ok() || std::env::var(ENV_SECRET).is_ok() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = write(
            tmp.path(),
            0o600,
            "public_key: pk\nsecret: not*base64*at*all\n",
        );
        let e = load_credentials(Some(&p), false).err().unwrap_or_default();
        assert!(e.contains("not valid base64"), "{e}");
        assert!(!e.contains("not*base64"), "{e}");
        let p = write(tmp.path(), 0o600, "public_key: pk\nsecrt: x\n");
        let e = load_credentials(Some(&p), false).err().unwrap_or_default();
        assert!(e.contains("malformed credentials file"), "{e}");
        assert!(
            load_credentials(None, false)
                .unwrap_or_else(|e| panic!("{e}"))
                .is_none()
        );
    }
}
