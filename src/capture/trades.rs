//! Which public trades are new. The feed's 422s and the REST `trades` list overlap (REST is
//! polled while the feed is down, and returns the last N trades whatever was seen before), so
//! each symbol remembers the ids of its recent trades and the newest trade time seen.

use std::collections::{HashSet, VecDeque};

/// Ids remembered per symbol: far more than one REST page (BTCTurk returns at most 50).
const REMEMBERED: usize = 4096;

/// One symbol's recent trades.
#[derive(Debug, Default)]
pub struct TradeTrack {
    order: VecDeque<String>,
    ids: HashSet<String>,
    /// The newest exchange time seen; `None` until the first list or trade.
    watermark: Option<i64>,
}

impl TradeTrack {
    fn remember(&mut self, id: &str, ts_ms: i64) {
        self.watermark = Some(self.watermark.map_or(ts_ms, |w| w.max(ts_ms)));
        if self.ids.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.ids.remove(&old);
            }
        }
    }

    /// Trades from before this capture (the feed's 421 on join): remembered, never recorded.
    pub fn history<'a>(&mut self, trades: impl IntoIterator<Item = (&'a str, i64)>) {
        for (id, ts) in trades {
            self.remember(id, ts);
        }
    }

    /// A live trade (a 422): `true` when it was not seen before.
    pub fn live(&mut self, id: &str, ts_ms: i64) -> bool {
        let new = !self.ids.contains(id);
        self.remember(id, ts_ms);
        new
    }

    /// A REST page (any order): the indices of the new trades, oldest first. The first page a
    /// symbol sees only sets the starting point (those trades happened before the capture).
    /// After that a trade is new when its id is unknown and it is not older than the newest
    /// trade seen, so a page reaching further back than the memory cannot replay old trades.
    pub fn page(&mut self, trades: &[(&str, i64)]) -> Vec<usize> {
        let Some(watermark) = self.watermark else {
            self.history(trades.iter().copied());
            return Vec::new();
        };
        let mut in_page = HashSet::new();
        let mut new: Vec<usize> = (0..trades.len())
            .filter(|&i| {
                let (id, ts) = trades[i];
                ts >= watermark && !self.ids.contains(id) && in_page.insert(id)
            })
            .collect();
        // Oldest first; equal times keep the exchange's newest-first order reversed.
        new.sort_by_key(|&i| (trades[i].1, std::cmp::Reverse(i)));
        for &i in &new {
            self.remember(trades[i].0, trades[i].1);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_is_history_then_only_new_ids_count() {
        let mut t = TradeTrack::default();
        assert!(t.page(&[("3", 30), ("2", 20), ("1", 10)]).is_empty());
        // Newest first, as BTCTurk sends it: 5 and 4 are new, 3 was seen.
        let page = [("5", 40), ("4", 40), ("3", 30), ("2", 20)];
        let new = t.page(&page);
        assert_eq!(
            new.iter().map(|&i| page[i].0).collect::<Vec<_>>(),
            ["4", "5"]
        );
        assert!(t.page(&page).is_empty(), "a repeated page adds nothing");
    }

    #[test]
    fn feed_and_rest_share_what_was_seen() {
        let mut t = TradeTrack::default();
        t.history([("1", 10)]);
        assert!(t.live("2", 20));
        assert!(!t.live("2", 20), "the same 422 twice");
        let page = [("3", 30), ("2", 20), ("1", 10)];
        assert_eq!(t.page(&page), vec![0]);
        // An unknown id older than the newest trade is from before the capture or a reordering
        // the REST page cannot explain: not recorded.
        assert!(t.page(&[("0", 5), ("3", 30)]).is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = TradeTrack::default();
        for i in 0..(REMEMBERED as i64 + 100) {
            assert!(t.live(&i.to_string(), i));
        }
        assert_eq!(t.ids.len(), REMEMBERED);
        assert_eq!(t.order.len(), REMEMBERED);
    }
}
