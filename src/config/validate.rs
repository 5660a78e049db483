//! Semantic checks after parsing; collects every error with its file and key path.

use super::files::{BotFile, ExchangeSection, RiskFile, RulesFile};
use super::{ConfigError, resolve_against};
use crate::domain::Mode;
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub(super) struct Validator {
    dir: PathBuf,
    errors: Vec<ConfigError>,
}

impl Validator {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            errors: Vec::new(),
        }
    }
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    fn err(&mut self, file: &str, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.dir.join(file).display().to_string(),
            line: None,
            key: Some(key.to_string()),
            message: message.into(),
        });
    }

    pub fn bot(&mut self, b: &BotFile) {
        const F: &str = "bot.yaml";
        if b.symbols.is_empty() {
            self.err(F, "symbols", "must list at least one symbol");
        }
        let mut seen = BTreeSet::new();
        for (i, s) in b.symbols.iter().enumerate() {
            if !seen.insert(s.clone()) {
                self.err(F, &format!("symbols[{i}]"), format!("{s} is listed twice"));
            }
        }
        if b.quote_asset.trim().is_empty() {
            self.err(F, "quote_asset", "must not be empty");
        }
        for (key, v) in [
            ("fees.maker_bps", b.fees.maker_bps),
            ("fees.taker_bps", b.fees.taker_bps),
        ] {
            if v < Decimal::ZERO || v > Decimal::from(1000) {
                self.err(F, key, format!("must be between 0 and 1000 bps, got {v}"));
            }
        }
        if b.cycle.interval_ms == 0 {
            self.err(F, "cycle.interval_ms", "must be > 0");
        }
        if b.cycle.jitter_ms > b.cycle.interval_ms {
            self.err(F, "cycle.jitter_ms", "must not exceed cycle.interval_ms");
        }
        if b.database.path.as_os_str().is_empty() {
            self.err(F, "database.path", "must not be empty");
        }
        if let Some(http) = &b.http {
            if http.listen.parse::<std::net::SocketAddr>().is_err() {
                self.err(
                    F,
                    "http.listen",
                    format!(
                        "{:?} is not address:port (e.g. 127.0.0.1:9464)",
                        http.listen
                    ),
                );
            }
            if http.max_cycle_age_s == 0 {
                self.err(F, "http.max_cycle_age_s", "must be > 0");
            }
        }
        if b.kill_switch.is_some() && b.kill_switch_file.is_some() {
            self.err(
                F,
                "kill_switch_file",
                "give the kill switch once: kill_switch.file (kill_switch_file is its older spelling)",
            );
        }
        if let Some(k) = &b.kill_switch
            && k.file.as_ref().is_some_and(|f| f.as_os_str().is_empty())
        {
            self.err(F, "kill_switch.file", "must not be empty");
        }
        match &b.exchange {
            // The dataset's existence is checked where it is opened (`Config::replay_dataset`):
            // a command given `--dataset` never reads the configured one, so a copied config
            // whose relative path no longer resolves still runs.
            ExchangeSection::Replay {
                dataset,
                starting_balances,
            } => {
                if dataset.as_os_str().is_empty() {
                    self.err(F, "exchange.dataset", "must not be empty");
                }
                for (asset, amount) in starting_balances {
                    if *amount < Decimal::ZERO {
                        self.err(
                            F,
                            &format!("exchange.starting_balances.{asset}"),
                            format!("must be >= 0, got {amount}"),
                        );
                    }
                }
            }
            ExchangeSection::Btcturk {
                base_url,
                simulated,
                request_timeout_ms,
                retry,
                feed,
                ..
            } => {
                if let Some(f) = feed.as_ref().filter(|f| f.enabled) {
                    if !f.url.starts_with("ws://") && !f.url.starts_with("wss://") {
                        self.err(F, "exchange.feed.url", "must start with wss:// or ws://");
                    }
                    // BTCTurk asks clients to wait at least 4 s between reconnects.
                    if f.reconnect_min_ms < 4_000 && !*simulated {
                        self.err(
                            F,
                            "exchange.feed.reconnect_min_ms",
                            "must be at least 4000 for a real exchange",
                        );
                    }
                    if f.max_connects_per_min == 0 || f.max_connects_per_min > 15 {
                        self.err(
                            F,
                            "exchange.feed.max_connects_per_min",
                            "must be between 1 and 15",
                        );
                    }
                }
                if retry.max_retries > 10 {
                    self.err(F, "exchange.retry.max_retries", "must be at most 10");
                }
                if retry.backoff_base_ms > retry.backoff_max_ms {
                    self.err(
                        F,
                        "exchange.retry.backoff_base_ms",
                        "must not exceed exchange.retry.backoff_max_ms",
                    );
                }
                let plain = base_url.starts_with("http://");
                if !plain && !base_url.starts_with("https://") {
                    self.err(
                        F,
                        "exchange.base_url",
                        "must start with https:// or http://",
                    );
                } else if plain && !*simulated && !is_loopback(base_url) {
                    self.err(
                        F,
                        "exchange.base_url",
                        "a real exchange must be reached over https (plain http only on loopback; set simulated: true for a local sim)",
                    );
                }
                // `simulated` lets orders through without live arming: never for BTCTurk itself.
                if *simulated && host_of(base_url).is_some_and(is_btcturk_host) {
                    self.err(
                        F,
                        "exchange.simulated",
                        format!("{base_url} is BTCTurk itself, not a simulated exchange"),
                    );
                }
                if *request_timeout_ms == 0 || *request_timeout_ms > 60_000 {
                    self.err(
                        F,
                        "exchange.request_timeout_ms",
                        "must be between 1 and 60000",
                    );
                }
            }
        }
    }

    pub fn risk(&mut self, r: &RiskFile) {
        for (key, v) in r.limits.entries() {
            if v <= Decimal::ZERO {
                self.err(
                    "risk.yaml",
                    &format!("limits.{key}"),
                    format!("must be > 0, got {v}"),
                );
            }
        }
        for (key, v) in [
            ("max_position_pct", r.limits.max_position_pct),
            ("stop_loss_pct", r.limits.stop_loss_pct),
            ("reduce_only_size_factor", r.limits.reduce_only_size_factor),
        ] {
            if v > Decimal::ONE {
                self.err(
                    "risk.yaml",
                    &format!("limits.{key}"),
                    format!("is a fraction and must be at most 1, got {v}"),
                );
            }
        }
    }

    pub fn rules(&mut self, r: &RulesFile) {
        const F: &str = "rules.yaml";
        let dir = resolve_against(&self.dir, &r.dir);
        if !dir.is_dir() {
            self.err(
                F,
                "dir",
                format!("rules directory {} not found", dir.display()),
            );
        }
        if let Some(shadow) = &r.shadow {
            let shadow_dir = resolve_against(&self.dir, shadow);
            if !shadow_dir.join("rules.yaml").is_file() {
                self.err(
                    F,
                    "shadow",
                    format!(
                        "{} is not a config directory (no rules.yaml)",
                        shadow_dir.display()
                    ),
                );
            }
        }
        if let Err(e) = Mode::parse(&r.degrade_on_error) {
            self.err(F, "degrade_on_error", e);
        } else if r.degrade_on_error == "normal" {
            self.err(
                F,
                "degrade_on_error",
                "must be more careful than normal (reduce_only, observe_only or halt)",
            );
        }
        let s = &r.sandbox;
        for (key, v) in [
            ("sandbox.max_operations", s.max_operations),
            ("sandbox.timeout_ms", s.timeout_ms),
            ("sandbox.max_call_levels", s.max_call_levels as u64),
            ("sandbox.max_expr_depth", s.max_expr_depth as u64),
            ("sandbox.max_string_size", s.max_string_size as u64),
            ("sandbox.max_array_size", s.max_array_size as u64),
            ("sandbox.max_map_size", s.max_map_size as u64),
        ] {
            if v == 0 {
                self.err(F, key, "must be > 0 (every sandbox limit is enforced)");
            }
        }
        // Upper bounds keep a config from switching the sandbox's protection off: deep
        // recursion or nesting past these overflows the native stack, and huge sizes let
        // `pad()` exhaust memory.
        for (key, v, max) in [
            ("sandbox.max_operations", s.max_operations, 100_000_000),
            ("sandbox.timeout_ms", s.timeout_ms, 10_000),
            ("sandbox.max_call_levels", s.max_call_levels as u64, 64),
            ("sandbox.max_expr_depth", s.max_expr_depth as u64, 128),
            (
                "sandbox.max_string_size",
                s.max_string_size as u64,
                1_048_576,
            ),
            ("sandbox.max_array_size", s.max_array_size as u64, 100_000),
            ("sandbox.max_map_size", s.max_map_size as u64, 100_000),
        ] {
            if v > max {
                self.err(F, key, format!("must be at most {max}, got {v}"));
            }
        }
    }
}

/// The host of an `http(s)://host[:port]/...` URL, lowercased (brackets kept for IPv6).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.split_once(']').map(|(h, _)| format!("{h}]"))?
    } else {
        authority.split(':').next()?.to_string()
    };
    Some(host.to_ascii_lowercase())
}

/// `127.0.0.0/8`, `localhost` or `[::1]`: traffic that never leaves the machine.
fn is_loopback(url: &str) -> bool {
    host_of(url).is_some_and(|h| {
        h == "localhost"
            || h == "[::1]"
            || h.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

fn is_btcturk_host(host: String) -> bool {
    let h = host.trim_end_matches('.');
    h == "btcturk.com" || h.ends_with(".btcturk.com")
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn hosts_loopback_and_btcturk() {
        assert_eq!(
            host_of("http://127.0.0.1:8080/api").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            host_of("https://API.btcturk.com").as_deref(),
            Some("api.btcturk.com")
        );
        assert_eq!(host_of("http://[::1]:80").as_deref(), Some("[::1]"));
        assert!(is_loopback("http://127.0.0.1:8080"));
        assert!(is_loopback("http://localhost:1"));
        assert!(!is_loopback("http://127.0.0.1.evil.example:80"));
        assert!(!is_loopback("http://10.0.0.1:80"));
        assert!(is_btcturk_host("api.btcturk.com".into()));
        assert!(is_btcturk_host("btcturk.com.".into()));
        assert!(!is_btcturk_host("notbtcturk.com".into()));
    }
}
