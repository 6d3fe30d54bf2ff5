-- Customer data platform (SQLite). The profile is a pure function of `facts`, so storing the
-- facts plus the rule versions used makes every computed tag reproducible.

-- Profile inputs, one row per customer. `ordinal` is a dense number used as the bit position
-- in the membership bitmaps below.
CREATE TABLE customer_profiles (
    customer_id       TEXT    PRIMARY KEY,
    ordinal           INTEGER NOT NULL UNIQUE,
    facts             TEXT    NOT NULL,
    facts_updated_at  INTEGER NOT NULL,
    -- RFM inputs derived from the facts, so fitting the population's quintile cuts reads three
    -- numbers per customer instead of parsing every facts document.
    rfm_recency_days  INTEGER,
    rfm_frequency     INTEGER NOT NULL,
    rfm_monetary      INTEGER NOT NULL
);

-- Customers whose facts changed since the last recomputation (a row per customer; a separate
-- narrow table, so clearing a million flags does not rewrite every facts document).
CREATE TABLE customer_dirty (
    ordinal    INTEGER PRIMARY KEY,
    marked_at  INTEGER NOT NULL
);

-- The latest computed results per customer, keyed by ordinal: a full recomputation writes in
-- ordinal order, so rows append instead of landing on random pages of a UUID-keyed tree.
CREATE TABLE customer_results (
    ordinal        INTEGER PRIMARY KEY,
    customer_id    TEXT    NOT NULL,
    tags           TEXT    NOT NULL,
    tier           TEXT    NOT NULL,
    rfm_r          INTEGER NOT NULL,
    rfm_f          INTEGER NOT NULL,
    rfm_m          INTEGER NOT NULL,
    rfm_segment    TEXT    NOT NULL,
    lifecycle      TEXT    NOT NULL,
    aum_minor      INTEGER NOT NULL,
    churn_score    REAL,
    churn_factors  TEXT,
    computed_at    INTEGER NOT NULL
);
CREATE INDEX customer_results_churn ON customer_results (churn_score);

-- Who belongs to what: tags (`tag:<id>`), tiers (`tier:wealth`), RFM segments (`rfm:champions`),
-- lifecycle stages (`lifecycle:dormant`) and defined segments (`segment:<id>`), as one
-- compressed (roaring) bitmap of customer ordinals per 65,536 ordinals. Search and counts are
-- bitmap operations instead of scans, and an incremental update rewrites only touched chunks.
CREATE TABLE customer_memberships (
    key    TEXT    NOT NULL,
    chunk  INTEGER NOT NULL,
    bits   BLOB    NOT NULL,
    PRIMARY KEY (key, chunk)
) WITHOUT ROWID;

-- Tag rule versions the stored results were computed with: a rule changed since then is
-- re-evaluated for everyone by an incremental run, the other rules only for dirty customers.
CREATE TABLE customer_computed_rules (
    rule_id  TEXT    PRIMARY KEY,
    version  INTEGER NOT NULL
);

-- Segments defined as boolean rules over tags, versioned like tag rules.
CREATE TABLE customer_segments (
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (id, version)
);

-- Trained models and fitted population statistics (churn model, RFM cut points), versioned.
CREATE TABLE customer_models (
    kind        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, version)
);

-- Channel identities (app user id, partner open id, ...) linked to one customer.
CREATE TABLE customer_identities (
    channel      TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    customer_id  TEXT    NOT NULL,
    linked_at    INTEGER NOT NULL,
    PRIMARY KEY (channel, external_id)
);
CREATE INDEX customer_identities_customer ON customer_identities (customer_id);

-- Recomputation runs, for operations and the audit trail.
CREATE TABLE customer_recompute_runs (
    id           INTEGER PRIMARY KEY,
    mode         TEXT    NOT NULL,
    customers    INTEGER NOT NULL,
    rules        INTEGER NOT NULL,
    millis       INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL
);
