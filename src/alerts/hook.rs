//! The alert command hook: run on its own thread so a slow pager never delays a cycle, killed
//! when it outlives its timeout. Not run through a shell: the command is an argument vector.

use crate::config::alerts::HookSection;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the hook for one raised alert; the outcome is logged.
pub(super) fn spawn(hook: &HookSection, id: i64, name: &str, kind: &str, detail: &str) {
    let Some((program, args)) = hook.command.split_first() else {
        return;
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env("BTCBOT_ALERT_ID", id.to_string())
        .env("BTCBOT_ALERT_NAME", name)
        .env("BTCBOT_ALERT_KIND", kind)
        .env("BTCBOT_ALERT_DETAIL", detail)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let timeout = Duration::from_millis(hook.timeout_ms);
    let program = program.clone();
    let name = name.to_string();
    let for_thread = name.clone();
    let spawned = std::thread::Builder::new()
        .name("alert-hook".into())
        .spawn(move || run(command, &program, &for_thread, timeout));
    if let Err(e) = spawned {
        tracing::error!(alert = %name, "alert hook thread did not start: {e}");
    }
}

fn run(mut command: Command, program: &str, name: &str, timeout: Duration) {
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(alert = %name, "alert hook {program} did not start: {e}");
            return;
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                tracing::warn!(alert = %name, "alert hook {program} failed: {status}");
                return;
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(
                    alert = %name,
                    "alert hook {program} killed after {} ms",
                    timeout.as_millis()
                );
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tracing::warn!(alert = %name, "alert hook {program}: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_gets_the_alert_in_its_environment_and_a_slow_one_is_killed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("out");
        let hook = HookSection {
            command: vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "echo \"$BTCBOT_ALERT_ID $BTCBOT_ALERT_NAME $BTCBOT_ALERT_KIND\" > '{}'",
                    out.display()
                ),
            ],
            timeout_ms: 5_000,
        };
        spawn(&hook, 7, "degraded", "mode_at_least", "mode reduce_only");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !out.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        assert_eq!(text.trim(), "7 degraded mode_at_least");

        // A hook that outlives its timeout is killed.
        let mut command = Command::new("sleep");
        command.arg("30");
        let started = Instant::now();
        run(command, "sleep", "x", Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
