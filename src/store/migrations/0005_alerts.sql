-- Operator alerts (alerts.yaml): one row per raise; resolved and acknowledged in place.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    detail           TEXT    NOT NULL,
    raised_wall_ms   INTEGER NOT NULL,
    raised_cycle_id  INTEGER,
    raised_market_ms INTEGER,
    resolved_wall_ms INTEGER,
    acked_wall_ms    INTEGER
);
-- At most one active (unresolved) row per alert name.
CREATE UNIQUE INDEX alerts_one_active ON alerts(name) WHERE resolved_wall_ms IS NULL;
