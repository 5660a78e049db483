//! Start-up recovery: before any new order, every order left `submitting` (stored in the outbox,
//! maybe sent) or `unknown` (sent, no answer) is looked up at the venue by its client id and
//! resolved. The report is printed and stored.

use super::shell::{CycleError, Scratch, Shell};
use crate::domain::OrderStatus;
use crate::store::RecoveryRecord;

impl Shell {
    /// # Errors
    /// When the resolved orders or the report cannot be stored.
    pub async fn recover(&mut self, now_ms: i64) -> Result<RecoveryRecord, CycleError> {
        let pending: Vec<String> = self
            .live_orders
            .values()
            .filter(|o| matches!(o.status, OrderStatus::Submitting | OrderStatus::Unknown))
            .map(|o| o.client_id.clone())
            .collect();
        let mut sc = Scratch::default();
        let mut lines = Vec::new();
        let mut resolved = 0u32;
        for id in &pending {
            match self.exchange.lookup_order(id).await {
                Ok(Some(found)) => {
                    if let Some(local) = self.live_orders.get_mut(id) {
                        local.exchange_id.clone_from(&found.exchange_id);
                        local.filled_qty = found.filled_qty;
                    }
                    if self
                        .live_orders
                        .get(id)
                        .is_some_and(|o| o.status == OrderStatus::Submitting)
                    {
                        // Sent before the crash: it reached the venue.
                        self.move_order(id.clone(), OrderStatus::Unknown, now_ms, &mut sc);
                    }
                    self.move_order(id.clone(), found.status, now_ms, &mut sc);
                    lines.push(format!(
                        "{id}: found at the venue, {}",
                        found.status.as_str()
                    ));
                    resolved += 1;
                }
                Ok(None) => {
                    self.move_order(id.clone(), OrderStatus::Rejected, now_ms, &mut sc);
                    lines.push(format!("{id}: never reached the venue, marked rejected"));
                    resolved += 1;
                }
                Err(e) => {
                    self.move_order(id.clone(), OrderStatus::Unknown, now_ms, &mut sc);
                    lines.push(format!(
                        "{id}: lookup failed ({e}); left unknown for reconciliation"
                    ));
                }
            }
        }
        let changed: Vec<_> = sc.changed.into_values().collect();
        self.store.upsert_orders(&changed)?;
        self.live_orders.retain(|_, o| o.status.is_live());
        let record = RecoveryRecord {
            ts_ms: now_ms,
            found: u32::try_from(pending.len()).unwrap_or(u32::MAX),
            resolved,
            lines,
        };
        self.store.with(|s| s.record_recovery(&record))?;
        Ok(record)
    }
}
