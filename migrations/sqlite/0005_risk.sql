-- Real-time risk engine: decisions (with the event and the features they were made on, for
-- audit and backtests), rule set versions, list entries, review cases and model artefacts.
-- Timestamps are microseconds since the Unix epoch. ID numbers and phones in stored events are
-- replaced by SHA-256 digests.
CREATE TABLE risk_decisions (
    id               TEXT    PRIMARY KEY,
    event_id         TEXT    NOT NULL,
    customer_id      TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    outcome          TEXT    NOT NULL,
    score            REAL    NOT NULL,
    base_score       REAL    NOT NULL,
    model_probability REAL,
    reasons          TEXT    NOT NULL,
    features         TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    rule_set_version INTEGER,
    model            TEXT,
    case_id          INTEGER,
    transfer_id      TEXT,
    elapsed_micros   INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX risk_decisions_created ON risk_decisions (created_at);

CREATE TABLE risk_rule_sets (
    version      INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    created_by   BLOB,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER
);

CREATE TABLE risk_list_entries (
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    added_at   INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (kind, subject, value)
);

CREATE TABLE risk_cases (
    id          INTEGER PRIMARY KEY,
    decision_id TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    customer_id TEXT    NOT NULL,
    transfer_id TEXT,
    score       REAL    NOT NULL,
    reasons     TEXT    NOT NULL,
    features    TEXT    NOT NULL,
    opened_at   INTEGER NOT NULL,
    resolution  TEXT,
    analyst     TEXT,
    note        TEXT,
    resolved_at INTEGER
);
CREATE INDEX risk_cases_open ON risk_cases (resolved_at, id);

CREATE TABLE risk_models (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    artefact   TEXT    NOT NULL,
    metrics    TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
