-- 0004: shadow mode's "would have" rows, and each cycle's inputs (for `btcbot explain`).

-- What the candidate rule set (rules.yaml `shadow`) decided on the same inputs; never acted on.
CREATE TABLE shadow_cycles (
    cycle_id     INTEGER PRIMARY KEY REFERENCES cycles (cycle_id),
    rule_hash    TEXT    NOT NULL,
    mode         TEXT    NOT NULL,
    mode_reasons TEXT    NOT NULL,               -- JSON array of strings
    intents      INTEGER NOT NULL CHECK (intents >= 0),
    would_place  INTEGER NOT NULL CHECK (would_place >= 0)
) STRICT;

-- The candidate's verdicts, laid out as `decisions`.
CREATE TABLE shadow_decisions (
    cycle_id    INTEGER NOT NULL REFERENCES cycles (cycle_id),
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    symbol      TEXT    NOT NULL,
    side        TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    price       TEXT    NOT NULL,
    qty         TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    reason_code TEXT    NOT NULL,
    verdict_qty TEXT,
    final_qty   TEXT,
    action      TEXT    NOT NULL,
    script      TEXT    NOT NULL,
    function    TEXT    NOT NULL,
    rule_hash   TEXT    NOT NULL,
    operations  INTEGER NOT NULL CHECK (operations >= 0),
    eval_us     INTEGER NOT NULL CHECK (eval_us >= 0),
    PRIMARY KEY (cycle_id, seq)
) STRICT;

-- A summary of what each cycle decided on: the books, the engine's counters, open orders.
CREATE TABLE cycle_inputs (
    cycle_id    INTEGER PRIMARY KEY REFERENCES cycles (cycle_id),
    markets     TEXT    NOT NULL,                -- JSON [{symbol, bid, ask, bid_qty, ask_qty, age_ms}]
    stats       TEXT    NOT NULL,                -- JSON object of the stats the rules saw
    open_orders INTEGER NOT NULL CHECK (open_orders >= 0)
) STRICT;
