-- 0002: start-up recovery reports, one row per start, append-only.
CREATE TABLE recoveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms       INTEGER NOT NULL,
    found       INTEGER NOT NULL CHECK (found >= 0),     -- orders in submitting/unknown at start
    resolved    INTEGER NOT NULL CHECK (resolved >= 0),
    report      TEXT    NOT NULL                         -- JSON array of lines
) STRICT;
