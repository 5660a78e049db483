//! Dataset capture: `btcbot replay init DIR` and `btcbot replay capture --config DIR --out
//! DATASET [--duration D]`.
//!
//! - [`writer`]: the dataset side: `init_dataset`, and `DatasetWriter`, which appends rows to
//!   a native replay dataset as gzip members, resumes after the last recorded row and cuts off
//!   what a killed capture left half-written;
//! - [`segment`]: reading an events file member by member (where the complete data ends);
//! - [`recorder`]: the venue side: the BTCTurk websocket feed, REST while it is stale, the
//!   exchangeinfo payload;
//! - [`trades`]: which public trades are new across the feed, REST and restarts.

pub mod recorder;
pub mod segment;
pub mod trades;
pub mod writer;
#[cfg(test)]
mod writer_tests;

pub use recorder::{CaptureOptions, CaptureSummary, capture};
pub use writer::{DatasetWriter, Resume, WriterOptions, init_dataset};

use std::time::Duration;

/// `500ms`, `30s`, `10m`, `2h`: a whole number and a unit.
///
/// # Errors
/// Anything else, or zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("expected a duration like 30s, 10m or 2h, got {text:?}");
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(ms_per).ok_or_else(bad)?;
    if ms == 0 {
        return Err(format!("a duration must be more than zero, got {text:?}"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["30", "s", "1.5h", "-3s", "3 days", "", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
