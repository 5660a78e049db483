//! Prometheus metrics and the bot's live status, process-wide.
//!
//! One registry per process: the engine, the exchange client and the alert evaluator record
//! into it from wherever they run, and `/metrics` renders it (see [`server`]). Money gauges are
//! converted to floating point here, for display only: every figure the bot computes with stays
//! a `Decimal`.

pub mod record;
pub mod server;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

/// Every metric family the bot exports.
pub struct Metrics {
    registry: Registry,
    pub cycles: IntCounter,
    pub cycle_seconds: Histogram,
    pub rule_eval_seconds: HistogramVec,
    pub rule_operations: IntCounterVec,
    pub verdicts: IntCounterVec,
    pub reloads: IntCounterVec,
    pub rule_set: IntGaugeVec,
    pub mode: IntGaugeVec,
    pub anomalies: IntCounterVec,
    pub orders: IntCounterVec,
    pub open_orders: IntGauge,
    pub fills: IntCounter,
    pub exchange_request_seconds: HistogramVec,
    pub exchange_requests: IntCounterVec,
    pub exchange_errors: IntCounterVec,
    pub rate_limit_waits: IntCounterVec,
    pub rate_limit_wait_seconds: HistogramVec,
    pub money: GaugeVec,
    pub live_armed: IntGauge,
    pub arming: IntGaugeVec,
    pub kill_switch: IntGauge,
    pub last_cycle_timestamp: Gauge,
    pub last_cycle_id: IntGauge,
    pub alerts_active: IntGaugeVec,
    pub alerts_raised: IntCounterVec,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable!("{name}: {e}"));
    register(r, c.clone(), name);
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("{name}: {e}"));
    register(r, c.clone(), name);
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("{name}: {e}"));
    register(r, g.clone(), name);
    g
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("{name}: {e}"));
    register(r, g.clone(), name);
    g
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| unreachable!("{name}: {e}"));
    register(r, h.clone(), name);
    h
}

// The names and label sets are constants of this file; a clash is a programming error caught
// by the first test that touches the registry.
fn register<C: prometheus::core::Collector + 'static>(r: &Registry, c: C, name: &str) {
    if let Err(e) = r.register(Box::new(c)) {
        unreachable!("metric {name} registered twice: {e}");
    }
}

/// Seconds, from 50 µs to 30 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let cycle_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "btcbot_cycle_duration_seconds",
                "Wall time of one cycle: observe, rules, plan, execute, commit.",
            )
            .buckets(latency_buckets()),
        )
        .unwrap_or_else(|e| unreachable!("cycle histogram: {e}"));
        register(&r, cycle_seconds.clone(), "btcbot_cycle_duration_seconds");
        let last_cycle_timestamp = Gauge::new(
            "btcbot_last_cycle_timestamp_seconds",
            "Wall-clock Unix time of the last committed cycle.",
        )
        .unwrap_or_else(|e| unreachable!("last cycle gauge: {e}"));
        register(
            &r,
            last_cycle_timestamp.clone(),
            "btcbot_last_cycle_timestamp_seconds",
        );
        let money = GaugeVec::new(
            Opts::new(
                "btcbot_money",
                "Portfolio figures in the quote asset at the last cycle (equity, cash, \
                 realized_pnl, unrealized_pnl, pnl_today, pnl_week, drawdown, peak_equity, fees, \
                 gross_exposure).",
            ),
            &["figure"],
        )
        .unwrap_or_else(|e| unreachable!("money gauges: {e}"));
        register(&r, money.clone(), "btcbot_money");
        Metrics {
            cycles: counter(&r, "btcbot_cycles_total", "Cycles committed."),
            cycle_seconds,
            rule_eval_seconds: histogram_vec(
                &r,
                "btcbot_rule_eval_seconds",
                "Evaluation time of each rule script per cycle.",
                &["script"],
                latency_buckets(),
            ),
            rule_operations: counter_vec(
                &r,
                "btcbot_rule_operations_total",
                "Rhai operations used by each rule script.",
                &["script"],
            ),
            verdicts: counter_vec(
                &r,
                "btcbot_verdicts_total",
                "Risk verdicts by reason code (ACCEPT, RESIZE or the rejection code).",
                &["reason"],
            ),
            reloads: counter_vec(
                &r,
                "btcbot_rule_reloads_total",
                "Hot reloads of the config and rules, by result (ok, failed).",
                &["result"],
            ),
            rule_set: gauge_vec(
                &r,
                "btcbot_rule_set_info",
                "The active rule set: 1 for its hash.",
                &["hash"],
            ),
            mode: gauge_vec(
                &r,
                "btcbot_mode",
                "Degrade mode of the last cycle: 1 for the current mode, 0 for the others.",
                &["mode"],
            ),
            anomalies: counter_vec(
                &r,
                "btcbot_anomalies_total",
                "Anomalies raised, by code and severity.",
                &["code", "severity"],
            ),
            orders: counter_vec(
                &r,
                "btcbot_orders_total",
                "Order state changes recorded, by the status entered.",
                &["status"],
            ),
            open_orders: int_gauge(&r, "btcbot_open_orders", "Orders of this bot still live."),
            fills: counter(&r, "btcbot_fills_total", "Fills booked in the ledger."),
            exchange_request_seconds: histogram_vec(
                &r,
                "btcbot_exchange_request_seconds",
                "HTTP round trip of exchange requests, by endpoint.",
                &["endpoint"],
                latency_buckets(),
            ),
            exchange_requests: counter_vec(
                &r,
                "btcbot_exchange_requests_total",
                "Exchange HTTP requests sent, by endpoint.",
                &["endpoint"],
            ),
            exchange_errors: counter_vec(
                &r,
                "btcbot_exchange_errors_total",
                "Exchange request problems by endpoint and kind (transport, server_error, \
                 rate_limited, failed = gave up after retries).",
                &["endpoint", "kind"],
            ),
            rate_limit_waits: counter_vec(
                &r,
                "btcbot_rate_limit_waits_total",
                "Requests that waited for a rate-limit token, by endpoint.",
                &["endpoint"],
            ),
            rate_limit_wait_seconds: histogram_vec(
                &r,
                "btcbot_rate_limit_wait_seconds",
                "Time spent waiting for a rate-limit token, by endpoint.",
                &["endpoint"],
                latency_buckets(),
            ),
            money,
            live_armed: int_gauge(
                &r,
                "btcbot_live_armed",
                "1 when real orders may be sent; 0 in a dry run.",
            ),
            arming: gauge_vec(
                &r,
                "btcbot_arming_info",
                "Why the bot is (not) armed: 1 for the current reason.",
                &["reason"],
            ),
            kill_switch: int_gauge(&r, "btcbot_kill_switch", "1 while the kill switch is on."),
            last_cycle_timestamp,
            last_cycle_id: int_gauge(
                &r,
                "btcbot_last_cycle_id",
                "Id of the last committed cycle.",
            ),
            alerts_active: gauge_vec(
                &r,
                "btcbot_alert_active",
                "1 while the alert is raised and not resolved.",
                &["alert"],
            ),
            alerts_raised: counter_vec(
                &r,
                "btcbot_alerts_raised_total",
                "Times each alert was raised.",
                &["alert"],
            ),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            return format!("# encoding failed: {e}\n");
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sets one money gauge (display only).
    pub fn set_money(&self, figure: &str, value: Decimal) {
        self.money
            .with_label_values(&[figure])
            .set(value.to_f64().unwrap_or(f64::NAN));
    }

    /// Marks `current` as the mode (1) and every other mode 0.
    pub fn set_mode(&self, current: &str) {
        for mode in ["normal", "reduce_only", "observe_only"] {
            self.mode
                .with_label_values(&[mode])
                .set(i64::from(mode == current));
        }
        status().set_mode(current);
    }

    /// The active rule set's hash as an info metric (the previous hash is dropped).
    pub fn set_rule_hash(&self, hash: &str) {
        self.rule_set.reset();
        self.rule_set.with_label_values(&[hash]).set(1);
    }

    /// Arming state: the gauge and the reason line.
    pub fn set_arming(&self, live: bool, reason: &str) {
        self.live_armed.set(i64::from(live));
        self.arming.reset();
        self.arming.with_label_values(&[reason]).set(1);
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// What `/healthz` reports: when the last cycle committed, in which mode.
#[derive(Debug, Default)]
pub struct Status {
    started_wall_ms: AtomicI64,
    last_cycle_wall_ms: AtomicI64,
    last_cycle_id: AtomicI64,
    mode: Mutex<String>,
}

impl Status {
    /// The run started (cycle age counts from here until the first cycle).
    pub fn mark_started(&self, wall_ms: i64) {
        self.started_wall_ms.store(wall_ms, Ordering::SeqCst);
    }

    pub fn mark_cycle(&self, cycle_id: i64, wall_ms: i64) {
        self.last_cycle_id.store(cycle_id, Ordering::SeqCst);
        self.last_cycle_wall_ms.store(wall_ms, Ordering::SeqCst);
    }

    fn set_mode(&self, mode: &str) {
        let mut m = self.mode.lock().unwrap_or_else(PoisonError::into_inner);
        mode.clone_into(&mut m);
    }

    /// Milliseconds since the last cycle committed (or since the start, before the first).
    pub fn cycle_age_ms(&self, now_ms: i64) -> i64 {
        let last = self.last_cycle_wall_ms.load(Ordering::SeqCst);
        let since = if last > 0 {
            last
        } else {
            self.started_wall_ms.load(Ordering::SeqCst)
        };
        (now_ms - since).max(0)
    }

    pub fn last_cycle_id(&self) -> Option<i64> {
        let id = self.last_cycle_id.load(Ordering::SeqCst);
        (self.last_cycle_wall_ms.load(Ordering::SeqCst) > 0).then_some(id)
    }

    pub fn mode(&self) -> String {
        let m = self.mode.lock().unwrap_or_else(PoisonError::into_inner);
        if m.is_empty() {
            "starting".into()
        } else {
            m.clone()
        }
    }
}

static STATUS: LazyLock<Status> = LazyLock::new(Status::default);

/// The process's live status.
pub fn status() -> &'static Status {
    &STATUS
}

/// Wall-clock milliseconds since the Unix epoch (the engine's clock).
pub use crate::engine::venue::wall_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_renders_once_touched() {
        let m = metrics();
        m.cycles.inc();
        m.set_mode("reduce_only");
        m.set_rule_hash("abc123");
        m.set_money("equity", Decimal::new(200_005, 1));
        let text = m.render();
        assert!(text.contains("btcbot_cycles_total"), "{text}");
        assert!(
            text.contains("btcbot_mode{mode=\"reduce_only\"} 1"),
            "{text}"
        );
        assert!(text.contains("btcbot_mode{mode=\"normal\"} 0"), "{text}");
        assert!(
            text.contains("btcbot_rule_set_info{hash=\"abc123\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("btcbot_money{figure=\"equity\"} 20000.5"),
            "{text}"
        );
        m.set_rule_hash("def456");
        assert!(!m.render().contains("abc123"));
    }

    #[test]
    fn cycle_age_counts_from_the_start_until_the_first_cycle() {
        let s = Status::default();
        s.mark_started(1_000);
        assert_eq!(s.cycle_age_ms(4_000), 3_000);
        assert_eq!(s.last_cycle_id(), None);
        s.mark_cycle(7, 5_000);
        assert_eq!(s.cycle_age_ms(5_500), 500);
        assert_eq!(s.last_cycle_id(), Some(7));
        assert_eq!(s.mode(), "starting");
    }
}
