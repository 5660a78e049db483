-- 0003: the per-cycle portfolio snapshot: equity, PnL, drawdown and the marked positions.
-- Derived from the fills and the cycle's books; stored so reports, restarts and the risk budget
-- read the same figures the rules judged.
CREATE TABLE equity_snapshots (
    cycle_id          INTEGER PRIMARY KEY REFERENCES cycles (cycle_id),
    ts_ms             INTEGER NOT NULL,
    cash              TEXT    NOT NULL,   -- ledger quote balance, free + locked
    positions_value   TEXT    NOT NULL,
    equity            TEXT    NOT NULL,
    realized_pnl      TEXT    NOT NULL,
    unrealized_pnl    TEXT    NOT NULL,
    fees              TEXT    NOT NULL,
    peak_equity       TEXT    NOT NULL,
    drawdown          TEXT    NOT NULL,
    day_start_equity  TEXT    NOT NULL,
    week_start_equity TEXT    NOT NULL,
    gross_exposure    TEXT    NOT NULL,
    positions         TEXT    NOT NULL    -- JSON [{symbol, qty, avg_cost, mark}]
) STRICT;
