-- The wall-clock time each cycle was committed (ms since the epoch), for `btcbot health`'s
-- last-cycle age: a replay's market_ts_ms is market time, not when the row was written.
-- NULL for cycles committed before this migration.
ALTER TABLE cycles ADD COLUMN committed_wall_ms INTEGER CHECK (committed_wall_ms >= 0);
