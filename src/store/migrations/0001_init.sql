-- 0001: initial schema.
-- Money and quantities are TEXT holding rust_decimal's exact rendering; never REAL.
-- Tables are STRICT so a wrongly typed write fails instead of being silently coerced.

-- One row per committed cycle. Append-only.
CREATE TABLE cycles (
    cycle_id        INTEGER PRIMARY KEY,
    market_ts_ms    INTEGER NOT NULL,
    rule_hash       TEXT    NOT NULL,
    mode            TEXT    NOT NULL,
    mode_reasons    TEXT    NOT NULL,          -- JSON array of strings
    intents         INTEGER NOT NULL CHECK (intents >= 0),
    orders_placed   INTEGER NOT NULL CHECK (orders_placed >= 0),
    orders_canceled INTEGER NOT NULL CHECK (orders_canceled >= 0),
    equity          TEXT    NOT NULL,
    realized_pnl    TEXT    NOT NULL,
    fees            TEXT    NOT NULL,
    eval_us         INTEGER NOT NULL CHECK (eval_us >= 0),
    fingerprint     TEXT    NOT NULL
) STRICT;

-- Anomalies noticed in a cycle, in the order reported. Append-only.
CREATE TABLE anomalies (
    cycle_id INTEGER NOT NULL REFERENCES cycles (cycle_id),
    seq      INTEGER NOT NULL CHECK (seq >= 0),
    code     TEXT    NOT NULL,
    severity TEXT    NOT NULL,
    symbol   TEXT,
    detail   TEXT    NOT NULL,                 -- JSON array of [name, value] pairs
    PRIMARY KEY (cycle_id, seq)
) STRICT;

-- One row per intent: the risk verdict and what the engine did with it. Append-only.
CREATE TABLE decisions (
    cycle_id    INTEGER NOT NULL REFERENCES cycles (cycle_id),
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    symbol      TEXT    NOT NULL,
    side        TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    price       TEXT    NOT NULL,
    qty         TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,              -- accept | resize | reject
    reason_code TEXT    NOT NULL,
    verdict_qty TEXT,                          -- the resize target; NULL unless verdict = resize
    final_qty   TEXT,
    action      TEXT    NOT NULL,
    script      TEXT    NOT NULL,
    function    TEXT    NOT NULL,
    rule_hash   TEXT    NOT NULL,
    operations  INTEGER NOT NULL CHECK (operations >= 0),
    eval_us     INTEGER NOT NULL CHECK (eval_us >= 0),
    PRIMARY KEY (cycle_id, seq)
) STRICT;

-- Orders as the bot tracks them, upserted by client id. `cycle_id` is the creating cycle and
-- deliberately has no foreign key: the outbox writes an order before its cycle is committed.
CREATE TABLE orders (
    client_id   TEXT    PRIMARY KEY,
    exchange_id TEXT,
    symbol      TEXT    NOT NULL,
    side        TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    price       TEXT    NOT NULL,
    qty         TEXT    NOT NULL,
    filled_qty  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    cycle_id    INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX orders_by_status ON orders (status);

-- Every execution, immutable. `client_order_id` has no foreign key: fills of orders the bot
-- did not place (adopted or manual) are still recorded.
CREATE TABLE fills (
    trade_id        TEXT    NOT NULL UNIQUE,
    client_order_id TEXT    NOT NULL,
    symbol          TEXT    NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    price           TEXT    NOT NULL,
    qty             TEXT    NOT NULL,
    fee             TEXT    NOT NULL,
    fee_asset       TEXT    NOT NULL,
    maker           INTEGER NOT NULL CHECK (maker IN (0, 1)),
    ts_ms           INTEGER NOT NULL,
    cycle_id        INTEGER NOT NULL REFERENCES cycles (cycle_id)
) STRICT;

CREATE INDEX fills_by_order ON fills (client_order_id);

-- Every rule-set reload attempt, good or failed.
CREATE TABLE rule_reloads (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms     INTEGER NOT NULL,
    rule_hash TEXT,
    ok        INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error     TEXT
) STRICT;

-- The latest persisted `state` map of each script.
CREATE TABLE script_state (
    script        TEXT    PRIMARY KEY,
    json          TEXT    NOT NULL,
    updated_cycle INTEGER NOT NULL REFERENCES cycles (cycle_id)
) STRICT;

-- Small key/value facts (the fill cursor).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
