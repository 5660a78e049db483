//! The kill switch (DESIGN.md §5, docs/SAFETY.md): a file (bot.yaml `kill_switch.file`) or the
//! environment (`BTCBOT_KILL_SWITCH`), read at the start of every cycle. While it is on the
//! engine's mode floor is `observe_only` (no new orders), the cycle records `KILL_SWITCH` among
//! its mode reasons, cancels still go out, and with `kill_switch.cancel_all` every open order of
//! the bot is canceled. Turning on and off is logged once each.

use super::shell::{Scratch, Shell};
use crate::config::Config;
use std::path::PathBuf;

/// The environment variable that turns the switch on (any value but empty or `0`).
pub const KILL_SWITCH_ENV: &str = "BTCBOT_KILL_SWITCH";
/// The mode reason a cycle records while the switch is on.
pub const KILL_SWITCH_REASON: &str = "KILL_SWITCH";

/// The switch as configured, and whether it was on at the last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitch {
    /// Resolved against the config directory.
    pub file: Option<PathBuf>,
    pub cancel_all: bool,
    on: bool,
}

impl KillSwitch {
    pub fn from_config(config: &Config) -> Self {
        let (file, cancel_all) = config.bot.kill_switch_settings();
        Self {
            file: file.map(|p| config.resolve(p)),
            cancel_all,
            on: false,
        }
    }

    /// Reads the environment and the file now: `Some(why)` when the switch is on. Fails
    /// closed: a file whose existence cannot be checked counts as present.
    pub fn probe(&self) -> Option<String> {
        if let Some(v) = std::env::var_os(KILL_SWITCH_ENV)
            && !v.is_empty()
            && v != "0"
        {
            return Some(format!("{KILL_SWITCH_ENV} is set"));
        }
        let file = self.file.as_ref()?;
        match std::fs::symlink_metadata(file) {
            Ok(_) => Some(format!("{} exists", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!("{} cannot be checked ({e})", file.display())),
        }
    }

    /// The check of one cycle: whether the switch is on. Logs when it turns on or off.
    pub fn check(&mut self) -> bool {
        let why = self.probe();
        let on = why.is_some();
        match (&why, self.on) {
            (Some(why), false) => {
                let extra = if self.cancel_all {
                    "; canceling every open order"
                } else {
                    ""
                };
                tracing::warn!("kill switch ON ({why}): no new orders{extra}");
            }
            (None, true) => tracing::warn!("kill switch OFF: new orders allowed again"),
            _ => {}
        }
        self.on = on;
        on
    }

    pub fn is_on(&self) -> bool {
        self.on
    }
}

impl Shell {
    /// Requests the cancel of every open order of the bot (the kill switch's `cancel_all`).
    /// Orders still `submitting` or `unknown` are resolved by reconciliation first and
    /// canceled in a later cycle; `cancel_requested` ones are not asked twice.
    pub(super) async fn cancel_all_open(&mut self, now_ms: i64, s: &mut Scratch) -> u32 {
        self.cancel_open(now_ms, s, |_| true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_turns_it_on_and_off_and_an_unreadable_path_counts_as_on() {
        if std::env::var_os(KILL_SWITCH_ENV).is_some() {
            return; // the environment decides; the file is not consulted
        }
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = tmp.path().join("KILL");
        let mut k = KillSwitch {
            file: Some(file.clone()),
            cancel_all: true,
            on: false,
        };
        assert!(!k.check());
        std::fs::write(&file, "").unwrap_or_else(|e| panic!("{e}"));
        assert!(k.check() && k.is_on());
        std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!k.check());
        // A path under a regular file cannot be checked: fail closed.
        let blocker = tmp.path().join("plain");
        std::fs::write(&blocker, "").unwrap_or_else(|e| panic!("{e}"));
        k.file = Some(blocker.join("KILL"));
        let why = k.probe().unwrap_or_default();
        assert!(why.contains("cannot be checked"), "{why}");
        k.file = None;
        assert!(!k.check());
    }
}
