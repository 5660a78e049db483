//! Realized PnL and fees inside the current UTC day and ISO week of *market* time, and the streak
//! of consecutive losing sells. The seed reported all-time fees as "fees today" and passed a loss
//! streak of 0; these are measured from the fills themselves.

use rust_decimal::Decimal;

const DAY_MS: i64 = 86_400_000;

/// The UTC day number of a timestamp (days since 1970-01-01).
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// The ISO week number of a timestamp, counted from the Monday before the epoch (1970-01-01 was
/// a Thursday), so weeks start on Monday 00:00 UTC.
pub fn week_of(ts_ms: i64) -> i64 {
    (day_of(ts_ms) + 3).div_euclid(7)
}

/// Running figures for the current day and week.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PnlWindows {
    day: Option<i64>,
    week: Option<i64>,
    realized_day: Decimal,
    fees_day: Decimal,
    realized_week: Decimal,
    fees_week: Decimal,
    loss_streak: i64,
    /// The order whose losing fills the streak last counted: partial fills of one order are one loss.
    last_loss_order: Option<String>,
}

/// The windows as seen at a given moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowFigures {
    pub realized_today: Decimal,
    pub fees_today: Decimal,
    pub realized_week: Decimal,
    pub fees_week: Decimal,
    pub loss_streak: i64,
}

impl PnlWindows {
    /// Records one fill: its realized PnL (zero for a buy), its fee in the quote currency and, for
    /// a sell, whether it lost money net of its own fee.
    pub fn record(
        &mut self,
        ts_ms: i64,
        realized: Decimal,
        quote_fee: Decimal,
        sell_of_order: Option<&str>,
    ) {
        let (day, week) = (day_of(ts_ms), week_of(ts_ms));
        if self.day.is_none_or(|d| day > d) {
            self.day = Some(day);
            self.realized_day = Decimal::ZERO;
            self.fees_day = Decimal::ZERO;
        }
        if self.week.is_none_or(|w| week > w) {
            self.week = Some(week);
            self.realized_week = Decimal::ZERO;
            self.fees_week = Decimal::ZERO;
        }
        // A fill stamped before the current day (late delivery) still counts towards its week.
        if Some(day) == self.day {
            self.realized_day += realized;
            self.fees_day += quote_fee;
        }
        if Some(week) == self.week {
            self.realized_week += realized;
            self.fees_week += quote_fee;
        }
        if let Some(order) = sell_of_order {
            let net = realized - quote_fee;
            if net < Decimal::ZERO {
                if self.last_loss_order.as_deref() != Some(order) {
                    self.loss_streak += 1;
                    self.last_loss_order = Some(order.to_string());
                }
            } else if net > Decimal::ZERO {
                self.loss_streak = 0;
                self.last_loss_order = None;
            }
        }
    }

    /// The figures at `now_ms`: a day or week that has ended reads as zero.
    pub fn at(&self, now_ms: i64) -> WindowFigures {
        let today = self.day == Some(day_of(now_ms));
        let this_week = self.week == Some(week_of(now_ms));
        WindowFigures {
            realized_today: if today {
                self.realized_day
            } else {
                Decimal::ZERO
            },
            fees_today: if today { self.fees_day } else { Decimal::ZERO },
            realized_week: if this_week {
                self.realized_week
            } else {
                Decimal::ZERO
            },
            fees_week: if this_week {
                self.fees_week
            } else {
                Decimal::ZERO
            },
            loss_streak: self.loss_streak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONDAY_2026_01_05: i64 = 1_767_571_200_000;

    #[test]
    fn weeks_start_on_monday_utc() {
        assert_eq!(
            week_of(MONDAY_2026_01_05),
            week_of(MONDAY_2026_01_05 + 6 * DAY_MS + DAY_MS - 1)
        );
        assert_eq!(
            week_of(MONDAY_2026_01_05 - 1) + 1,
            week_of(MONDAY_2026_01_05)
        );
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn today_resets_at_midnight_but_the_week_keeps_counting() {
        let mut w = PnlWindows::default();
        w.record(
            MONDAY_2026_01_05 + 1000,
            Decimal::from(-40),
            Decimal::from(2),
            Some("a"),
        );
        let tuesday = MONDAY_2026_01_05 + DAY_MS + 5;
        assert_eq!(
            w.at(MONDAY_2026_01_05 + 2000).realized_today,
            Decimal::from(-40)
        );
        assert_eq!(w.at(tuesday).realized_today, Decimal::ZERO);
        assert_eq!(w.at(tuesday).fees_today, Decimal::ZERO);
        assert_eq!(w.at(tuesday).realized_week, Decimal::from(-40));
        w.record(tuesday, Decimal::from(10), Decimal::from(1), Some("b"));
        let f = w.at(tuesday);
        assert_eq!(
            (f.realized_today, f.fees_today),
            (Decimal::from(10), Decimal::ONE)
        );
        assert_eq!(
            (f.realized_week, f.fees_week),
            (Decimal::from(-30), Decimal::from(3))
        );
        let next_monday = MONDAY_2026_01_05 + 7 * DAY_MS;
        assert_eq!(w.at(next_monday).realized_week, Decimal::ZERO);
    }

    #[test]
    fn the_loss_streak_counts_losing_orders_and_a_win_resets_it() {
        let mut w = PnlWindows::default();
        for (order, realized) in [("a", -5), ("a", -5), ("b", -1), ("c", 3)] {
            w.record(0, Decimal::from(realized), Decimal::ZERO, Some(order));
        }
        assert_eq!(w.at(0).loss_streak, 0);
        w.record(0, Decimal::from(-2), Decimal::ZERO, Some("d"));
        w.record(0, Decimal::ZERO, Decimal::ONE, None);
        // A sell that clears its price but not its fee is a loss.
        w.record(0, Decimal::ONE, Decimal::from(2), Some("e"));
        assert_eq!(w.at(0).loss_streak, 2);
    }
}
