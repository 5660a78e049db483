//! Orders, upserted by client order id. The store does not judge lifecycle transitions (the
//! orders module does); it only refuses an upsert that would change what an order *is* —
//! symbol, side, price, quantity — since that means two orders share a client id.

use super::codec::{Cols, dec, query_all};
use super::{Store, StoreError};
use crate::domain::{Order, OrderStatus};
use rusqlite::{Connection, params};

impl Store {
    /// Every stored order, by creation time then client id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn orders(&self) -> Result<Vec<Order>, StoreError> {
        query_all(
            &self.conn,
            "orders",
            "SELECT * FROM orders ORDER BY created_ms, client_id",
            [],
            decode,
        )
    }

    /// Orders whose status [`OrderStatus::is_live`], by creation time then client id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn open_orders(&self) -> Result<Vec<Order>, StoreError> {
        let live: Vec<String> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.is_live())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "SELECT * FROM orders WHERE status IN ({}) ORDER BY created_ms, client_id",
            live.join(", ")
        );
        query_all(&self.conn, "orders", &sql, [], decode)
    }

    /// One order by client id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a stored value does not decode.
    pub fn order(&self, client_id: &str) -> Result<Option<Order>, StoreError> {
        existing(&self.conn, client_id)
    }

    /// Upserts orders in their own transaction, outside a cycle commit: the outbox write made
    /// before an order is sent, so a restart finds it and never sends it twice.
    ///
    /// # Errors
    /// As for the order part of [`Store::commit_cycle`]; nothing is written on error.
    pub fn upsert_orders(&mut self, orders: &[Order]) -> Result<(), StoreError> {
        self.write_unit("order upsert", |tx| upsert_all(tx, orders))
    }
}

fn decode(c: &Cols<'_, '_>) -> Result<Order, StoreError> {
    Ok(Order {
        client_id: c.text("client_id")?,
        exchange_id: c.opt_text("exchange_id")?,
        symbol: c.symbol("symbol")?,
        side: c.side("side")?,
        price: c.price("price")?,
        qty: c.qty("qty")?,
        filled_qty: c.qty("filled_qty")?,
        status: c.status("status")?,
        cycle_id: c.i64("cycle_id")?,
        created_ms: c.i64("created_ms")?,
        updated_ms: c.i64("updated_ms")?,
    })
}

/// Inserts new orders and updates changed ones (every column but the client id), after checking
/// that an existing order keeps its symbol, side, price and quantity.
pub(crate) fn upsert_all(conn: &Connection, orders: &[Order]) -> Result<(), StoreError> {
    for o in orders {
        if let Some(stored) = existing(conn, &o.client_id)? {
            check_identity(&stored, o)?;
        }
        conn.prepare_cached(
            "INSERT INTO orders (client_id, exchange_id, symbol, side, price, qty, filled_qty, \
             status, cycle_id, created_ms, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (client_id) DO UPDATE SET exchange_id = excluded.exchange_id, \
             symbol = excluded.symbol, side = excluded.side, price = excluded.price, \
             qty = excluded.qty, filled_qty = excluded.filled_qty, status = excluded.status, \
             cycle_id = excluded.cycle_id, created_ms = excluded.created_ms, \
             updated_ms = excluded.updated_ms",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                o.client_id,
                o.exchange_id,
                o.symbol.as_str(),
                o.side.as_str(),
                dec(o.price.value()),
                dec(o.qty.value()),
                dec(o.filled_qty.value()),
                o.status.as_str(),
                o.cycle_id,
                o.created_ms,
                o.updated_ms,
            ])
        })
        .map_err(StoreError::sql("upsert order"))?;
    }
    Ok(())
}

fn existing(conn: &Connection, client_id: &str) -> Result<Option<Order>, StoreError> {
    let mut found = query_all(
        conn,
        "orders",
        "SELECT * FROM orders WHERE client_id = ?1",
        [client_id],
        decode,
    )?;
    Ok(found.pop())
}

fn check_identity(stored: &Order, new: &Order) -> Result<(), StoreError> {
    let conflict = |field, was: String, now: String| StoreError::OrderConflict {
        client_id: new.client_id.clone(),
        field,
        stored: was,
        new: now,
    };
    if stored.symbol != new.symbol {
        return Err(conflict(
            "symbol",
            stored.symbol.to_string(),
            new.symbol.to_string(),
        ));
    }
    if stored.side != new.side {
        return Err(conflict(
            "side",
            stored.side.to_string(),
            new.side.to_string(),
        ));
    }
    // Decimal equality is numeric: "1.50" equals "1.5".
    if stored.price != new.price {
        return Err(conflict(
            "price",
            stored.price.to_string(),
            new.price.to_string(),
        ));
    }
    if stored.qty != new.qty {
        return Err(conflict("qty", stored.qty.to_string(), new.qty.to_string()));
    }
    Ok(())
}
