//! Turning domain values into SQL values and back. Reading never trusts the file: every column
//! is decoded through [`Cols`], which reports a bad value as [`StoreError::Corrupt`] naming the
//! table and column, never a panic.

use super::StoreError;
use crate::domain::{Mode, OrderStatus, Price, Qty, Severity, Side, Symbol};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::str::FromStr;

/// The exact text form of a decimal (keeps its scale: `1.50` stays `1.50`).
pub(crate) fn dec(d: Decimal) -> String {
    d.to_string()
}

/// A `u64` counter as SQLite's signed integer.
pub(crate) fn u64_to_sql(what: &'static str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidInput {
        what,
        detail: format!("{v} exceeds the largest storable integer {}", i64::MAX),
    })
}

pub(crate) fn to_json<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidInput {
        what,
        detail: e.to_string(),
    })
}

/// The columns of one row of `table`, decoded by name.
pub(crate) struct Cols<'r, 's> {
    row: &'r Row<'s>,
    table: &'static str,
}

impl<'r, 's> Cols<'r, 's> {
    pub(crate) fn new(row: &'r Row<'s>, table: &'static str) -> Self {
        Self { row, table }
    }

    fn corrupt(&self, column: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::corrupt(self.table, column, detail)
    }

    pub(crate) fn get<T: FromSql>(&self, column: &'static str) -> Result<T, StoreError> {
        self.row.get(column).map_err(|e| match e {
            rusqlite::Error::InvalidColumnType(_, _, ty) => {
                self.corrupt(column, format!("unexpected {ty} value"))
            }
            rusqlite::Error::IntegralValueOutOfRange(_, v) => {
                self.corrupt(column, format!("{v} is out of range"))
            }
            rusqlite::Error::FromSqlConversionFailure(_, _, err) => {
                self.corrupt(column, err.to_string())
            }
            other => StoreError::Sqlite {
                op: "read row",
                source: other,
            },
        })
    }

    pub(crate) fn text(&self, column: &'static str) -> Result<String, StoreError> {
        self.get(column)
    }

    pub(crate) fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        self.get(column)
    }

    pub(crate) fn i64(&self, column: &'static str) -> Result<i64, StoreError> {
        self.get(column)
    }

    pub(crate) fn opt_i64(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }

    pub(crate) fn u32(&self, column: &'static str) -> Result<u32, StoreError> {
        let v = self.i64(column)?;
        u32::try_from(v).map_err(|_| self.corrupt(column, format!("{v} is not a u32")))
    }

    pub(crate) fn u64(&self, column: &'static str) -> Result<u64, StoreError> {
        let v = self.i64(column)?;
        u64::try_from(v).map_err(|_| self.corrupt(column, format!("{v} is negative")))
    }

    pub(crate) fn bool(&self, column: &'static str) -> Result<bool, StoreError> {
        match self.i64(column)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.corrupt(column, format!("{v} is not 0 or 1"))),
        }
    }

    fn parse_decimal(&self, column: &'static str, text: &str) -> Result<Decimal, StoreError> {
        Decimal::from_str(text)
            .map_err(|_| self.corrupt(column, format!("{text:?} is not a decimal")))
    }

    pub(crate) fn decimal(&self, column: &'static str) -> Result<Decimal, StoreError> {
        let text = self.text(column)?;
        self.parse_decimal(column, &text)
    }

    pub(crate) fn opt_decimal(&self, column: &'static str) -> Result<Option<Decimal>, StoreError> {
        match self.opt_text(column)? {
            Some(text) => self.parse_decimal(column, &text).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn price(&self, column: &'static str) -> Result<Price, StoreError> {
        Price::new(self.decimal(column)?).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn qty(&self, column: &'static str) -> Result<Qty, StoreError> {
        Qty::new(self.decimal(column)?).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn opt_qty(&self, column: &'static str) -> Result<Option<Qty>, StoreError> {
        match self.opt_decimal(column)? {
            Some(d) => Qty::new(d).map(Some).map_err(|e| self.corrupt(column, e)),
            None => Ok(None),
        }
    }

    pub(crate) fn symbol(&self, column: &'static str) -> Result<Symbol, StoreError> {
        let text = self.text(column)?;
        Symbol::new(&text).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn opt_symbol(&self, column: &'static str) -> Result<Option<Symbol>, StoreError> {
        match self.opt_text(column)? {
            Some(text) => Symbol::new(&text)
                .map(Some)
                .map_err(|e| self.corrupt(column, e)),
            None => Ok(None),
        }
    }

    pub(crate) fn side(&self, column: &'static str) -> Result<Side, StoreError> {
        let text = self.text(column)?;
        // Stored lower case by `Side::as_str`; anything else is not ours.
        match text.as_str() {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err(self.corrupt(column, format!("{text:?} is not a side"))),
        }
    }

    pub(crate) fn mode(&self, column: &'static str) -> Result<Mode, StoreError> {
        let text = self.text(column)?;
        Mode::parse(&text).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn status(&self, column: &'static str) -> Result<OrderStatus, StoreError> {
        let text = self.text(column)?;
        OrderStatus::parse(&text).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn severity(&self, column: &'static str) -> Result<Severity, StoreError> {
        let text = self.text(column)?;
        match text.as_str() {
            "info" => Ok(Severity::Info),
            "warn" => Ok(Severity::Warn),
            "error" => Ok(Severity::Error),
            _ => Err(self.corrupt(column, format!("{text:?} is not a severity"))),
        }
    }

    pub(crate) fn json<T: DeserializeOwned>(&self, column: &'static str) -> Result<T, StoreError> {
        let text = self.text(column)?;
        serde_json::from_str(&text).map_err(|e| self.corrupt(column, format!("bad JSON: {e}")))
    }
}

/// Runs `sql` and decodes every row of `table` with `decode`.
pub(crate) fn query_all<T, P: Params>(
    conn: &Connection,
    table: &'static str,
    sql: &str,
    params: P,
    mut decode: impl FnMut(&Cols<'_, '_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(StoreError::sql("prepare query"))?;
    let mut rows = stmt.query(params).map_err(StoreError::sql("query"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(StoreError::sql("read row"))? {
        out.push(decode(&Cols::new(row, table))?);
    }
    Ok(out)
}

/// Like [`query_all`], but hands each decoded row to `each` instead of collecting: memory stays
/// flat however many rows there are.
pub(crate) fn query_each<T, P: Params>(
    conn: &Connection,
    table: &'static str,
    sql: &str,
    params: P,
    mut decode: impl FnMut(&Cols<'_, '_>) -> Result<T, StoreError>,
    mut each: impl FnMut(T),
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(StoreError::sql("prepare query"))?;
    let mut rows = stmt.query(params).map_err(StoreError::sql("query"))?;
    while let Some(row) = rows.next().map_err(StoreError::sql("read row"))? {
        each(decode(&Cols::new(row, table))?);
    }
    Ok(())
}

/// The rows of `sql` as an iterator handed to `body`: two databases can then be walked side by
/// side (a merge) with memory flat in their size, which callbacks cannot do.
pub(crate) fn query_with<T, P: Params, R>(
    conn: &Connection,
    table: &'static str,
    sql: &str,
    params: P,
    decode: impl Fn(&Cols<'_, '_>) -> Result<T, StoreError>,
    body: impl FnOnce(&mut dyn Iterator<Item = Result<T, StoreError>>) -> R,
) -> Result<R, StoreError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(StoreError::sql("prepare query"))?;
    let mut rows = stmt.query(params).map_err(StoreError::sql("query"))?;
    let mut iter = std::iter::from_fn(|| match rows.next() {
        Ok(Some(row)) => Some(decode(&Cols::new(row, table))),
        Ok(None) => None,
        Err(e) => Some(Err(StoreError::sql("read row")(e))),
    });
    Ok(body(&mut iter))
}

/// A list position as a stored `seq`.
pub(crate) fn seq(what: &'static str, index: usize) -> Result<u32, StoreError> {
    u32::try_from(index).map_err(|_| StoreError::InvalidInput {
        what,
        detail: format!("more than {} entries in one cycle", u32::MAX),
    })
}
