//! Hot reload: watch the config and rules directories, and on a change run the whole reload
//! path (load → validate → compile → rule tests → hash) and publish with an atomic swap.
//! The runner loads the published set once at the start of each cycle, so a reload never lands
//! mid-cycle. Any failure keeps the last good set; the outcome is reported to the runner, which
//! logs it and records it in SQLite.

use super::{RuleSet, RuleSetError};
use arc_swap::ArcSwap;
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// What one reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new set was published.
    Applied { hash: String },
    /// The files changed but the content hash did not (e.g. a touch): nothing to publish.
    Unchanged { hash: String },
    /// The new files are broken; the previous set keeps deciding.
    Failed { error: String },
}

/// The published rule set, shared between the watcher and the runner.
pub type SharedRules = Arc<ArcSwap<RuleSet>>;

/// Runs one reload attempt against `shared` (also used directly by tests and `SIGHUP`-style
/// triggers).
pub fn reload_now(config_dir: &Path, shared: &SharedRules) -> ReloadOutcome {
    match build_on_big_stack(config_dir) {
        Ok(set) => {
            let hash = set.hash.clone();
            if let Some(key) = restart_only_change(&shared.load().config, &set.config) {
                return ReloadOutcome::Failed {
                    error: format!(
                        "{}: {key} changed; restart the bot to apply it",
                        config_dir.join("bot.yaml").display()
                    ),
                };
            }
            if shared.load().hash == hash {
                ReloadOutcome::Unchanged { hash }
            } else {
                shared.store(Arc::new(set));
                ReloadOutcome::Applied { hash }
            }
        }
        Err(error) => ReloadOutcome::Failed { error },
    }
}

/// The first bot.yaml key a running bot chose at start that `new` changes: its loop, its venue
/// and its trading mode. A reload that changes one is refused, so the change is not silently
/// ignored (a live bot edited to `mode: dry_run` would go on trading) and the running rules stay.
fn restart_only_change(
    running: &crate::config::Config,
    new: &crate::config::Config,
) -> Option<&'static str> {
    let (a, b) = (&running.bot, &new.bot);
    if a.cycle.evaluate != b.cycle.evaluate {
        Some("cycle.evaluate")
    } else if a.exchange != b.exchange {
        Some("exchange")
    } else if a.mode != b.mode {
        Some("mode")
    } else {
        None
    }
}

/// Builds (and so runs the rule tests) on a thread with a generous stack: the watcher's own
/// thread has a small one, and rule tests run scripts up to `sandbox.max_call_levels` deep.
fn build_on_big_stack(config_dir: &Path) -> Result<RuleSet, String> {
    let dir = config_dir.to_path_buf();
    std::thread::Builder::new()
        .name("rules-reload".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(move || RuleSet::build(&dir).map_err(|e: RuleSetError| e.to_string()))
        .map_err(|e| format!("cannot start the reload thread: {e}"))?
        .join()
        .map_err(|_| "the reload thread crashed".to_string())?
}

/// Keeps the file watcher alive; dropping it stops watching.
pub struct RuleWatcher {
    _debouncer: Box<dyn std::any::Any + Send>,
    pub outcomes: Receiver<ReloadOutcome>,
}

/// Watches `config_dir` and `rules_dir` (recursively; editors that save by rename are seen as
/// events on the directory) and reloads after `debounce` of quiet.
///
/// # Errors
/// When the OS watcher cannot be created or a directory cannot be watched.
pub fn watch(
    config_dir: &Path,
    rules_dir: &Path,
    shared: SharedRules,
    debounce: Duration,
) -> Result<RuleWatcher, String> {
    let (tx, rx): (Sender<ReloadOutcome>, Receiver<ReloadOutcome>) = channel();
    let dir: PathBuf = config_dir.to_path_buf();
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
        let relevant = match &result {
            Ok(events) => events.iter().any(|e| {
                !e.kind.is_access()
                    && e.paths.iter().any(|p| {
                        p.extension()
                            .is_some_and(|x| x == "yaml" || x == "yml" || x == "rhai")
                    })
            }),
            Err(_) => true,
        };
        if relevant {
            let outcome = reload_now(&dir, &shared);
            let _ = tx.send(outcome);
        }
    })
    .map_err(|e| format!("cannot start file watcher: {e}"))?;
    debouncer
        .watch(config_dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", config_dir.display()))?;
    let inside = rules_dir
        .canonicalize()
        .ok()
        .zip(config_dir.canonicalize().ok())
        .is_some_and(|(r, c)| r.starts_with(c));
    if !inside {
        debouncer
            .watch(rules_dir, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch {}: {e}", rules_dir.display()))?;
    }
    Ok(RuleWatcher {
        _debouncer: Box::new(debouncer),
        outcomes: rx,
    })
}
