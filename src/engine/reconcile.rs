//! Reconciliation (every cycle): the bot's live orders against the venue's open orders, and
//! open orders past their TTL. The venue is the truth; every change goes through the lifecycle
//! table.

use super::shell::{Scratch, Shell};
use crate::config::UnknownOrderPolicy;
use crate::domain::{Anomaly, Order, OrderStatus, Severity};
use std::collections::BTreeSet;

impl Shell {
    /// Brings the bot's live orders in line with `venue_open` (the venue's open orders, read
    /// this cycle after its fills were applied).
    pub(super) async fn reconcile(&mut self, venue_open: &[Order], now_ms: i64, s: &mut Scratch) {
        let at_venue: BTreeSet<&str> = venue_open.iter().map(|o| o.client_id.as_str()).collect();

        // Orders the venue shows as open: take its status and id (this resolves `unknown`).
        for v in venue_open {
            let Some(local) = self.live_orders.get_mut(&v.client_id) else {
                continue;
            };
            if local.exchange_id.is_none() {
                local.exchange_id.clone_from(&v.exchange_id);
            }
            let want = if v.filled_qty.value().is_zero() {
                OrderStatus::Open
            } else {
                OrderStatus::PartiallyFilled
            };
            let keep = local.status == want
                || local.status == OrderStatus::CancelRequested
                || (local.status == OrderStatus::PartiallyFilled && want == OrderStatus::Open);
            if !keep {
                self.move_order(v.client_id.clone(), want, now_ms, s);
            }
        }

        // Venue orders this bot does not track.
        let strangers: Vec<&Order> = venue_open
            .iter()
            .filter(|v| !self.live_orders.contains_key(&v.client_id))
            .collect();
        for v in strangers {
            match self.unknown_orders {
                UnknownOrderPolicy::Ignore => s.anomalies.push(unknown_order(v, "ignored")),
                UnknownOrderPolicy::Adopt => {
                    let mut adopted = v.clone();
                    adopted.cycle_id = 0;
                    s.changed.insert(adopted.client_id.clone(), adopted.clone());
                    self.live_orders.insert(adopted.client_id.clone(), adopted);
                    s.anomalies.push(unknown_order(v, "adopted"));
                }
                // A dry run sends nothing, not even this cancel.
                UnknownOrderPolicy::Cancel if !self.gates.orders_reach_venue() => {
                    s.anomalies.push(unknown_order(v, "not canceled (dry run)"));
                }
                UnknownOrderPolicy::Cancel => {
                    if let Some(id) = &v.exchange_id {
                        match self.exchange.cancel(id).await {
                            Ok(()) => s.anomalies.push(unknown_order(v, "canceled")),
                            Err(e) => s.exchange_error(&e),
                        }
                    }
                }
            }
        }

        // Our live orders the venue no longer shows as open: finished, one way or another.
        let gone: Vec<Order> = self
            .live_orders
            .values()
            .filter(|o| {
                o.status != OrderStatus::Submitting && !at_venue.contains(o.client_id.as_str())
            })
            .cloned()
            .collect();
        for o in gone {
            if o.filled_qty >= o.qty {
                self.move_order(o.client_id.clone(), OrderStatus::Filled, now_ms, s);
                continue;
            }
            let to = match self.exchange.lookup_order(&o.client_id).await {
                Ok(Some(found)) if found.status.is_terminal() => found.status,
                // Still open at the venue after all (listed late): leave it for next cycle.
                Ok(Some(_)) => continue,
                // The venue never saw it: a submit that did not arrive.
                Ok(None) if o.status == OrderStatus::Unknown => OrderStatus::Rejected,
                // Gone without all its fills and unknown to the lookup: canceled there.
                Ok(None) => OrderStatus::Canceled,
                Err(e) => {
                    s.exchange_error(&e);
                    continue;
                }
            };
            self.move_order(o.client_id.clone(), to, now_ms, s);
        }
    }

    /// Requests the cancel of every live order older than the TTL. BTCTurk's cancel is
    /// asynchronous, so the order becomes `cancel_requested` until the venue drops it.
    pub(super) async fn cancel_stale(&mut self, now_ms: i64, s: &mut Scratch) -> u32 {
        let ttl = self.order_ttl_ms;
        self.cancel_open(now_ms, s, |o| now_ms - o.created_ms > ttl)
            .await
    }

    /// Requests the cancel of every open (or partially filled) order `pick` selects; the
    /// number requested. A dry run sends nothing. Orders still `submitting` or `unknown` have
    /// no exchange id yet: reconciliation resolves them first.
    pub(super) async fn cancel_open(
        &mut self,
        now_ms: i64,
        s: &mut Scratch,
        pick: impl Fn(&Order) -> bool,
    ) -> u32 {
        if !self.gates.orders_reach_venue() {
            return 0;
        }
        let chosen: Vec<Order> = self
            .live_orders
            .values()
            .filter(|o| {
                matches!(o.status, OrderStatus::Open | OrderStatus::PartiallyFilled) && pick(o)
            })
            .cloned()
            .collect();
        let mut requested = 0;
        for o in chosen {
            let Some(exchange_id) = &o.exchange_id else {
                continue;
            };
            match self.exchange.cancel(exchange_id).await {
                Ok(()) => {
                    self.move_order(o.client_id.clone(), OrderStatus::CancelRequested, now_ms, s);
                    requested += 1;
                }
                Err(e) => s.exchange_error(&e),
            }
        }
        requested
    }
}

fn unknown_order(o: &Order, what: &str) -> Anomaly {
    Anomaly {
        code: "UNKNOWN_VENUE_ORDER".into(),
        severity: Severity::Warn,
        symbol: Some(o.symbol.clone()),
        detail: vec![
            ("client_id".into(), o.client_id.clone()),
            (
                "exchange_id".into(),
                o.exchange_id.clone().unwrap_or_default(),
            ),
            ("action".into(), what.into()),
        ],
    }
}
