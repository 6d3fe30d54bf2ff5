-- Ledger schema (SQLite). Timestamps are microseconds since the Unix epoch (UTC); amounts are
-- integer minor units; ids are UUIDs stored as 16-byte blobs.

CREATE TABLE accounts (
    id                              BLOB PRIMARY KEY,
    currency                        TEXT    NOT NULL,
    kind                            TEXT    NOT NULL,
    owner_type                      TEXT    NOT NULL,
    owner_id                        TEXT,
    code                            TEXT,
    name                            TEXT,
    debits_must_not_exceed_credits  INTEGER NOT NULL,
    credits_must_not_exceed_debits  INTEGER NOT NULL,
    overdraft_limit                 INTEGER NOT NULL,
    status                          TEXT    NOT NULL,
    debits_pending                  INTEGER NOT NULL DEFAULT 0,
    debits_posted                   INTEGER NOT NULL DEFAULT 0,
    credits_pending                 INTEGER NOT NULL DEFAULT 0,
    credits_posted                  INTEGER NOT NULL DEFAULT 0,
    created_at                      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX accounts_owner ON accounts (owner_type, owner_id);

-- The journal: one row per balance-changing event, hash-chained in seq order.
CREATE TABLE transfers (
    seq                INTEGER PRIMARY KEY,
    id                 BLOB    NOT NULL UNIQUE,
    kind               TEXT    NOT NULL,
    debit_account_id   BLOB    NOT NULL,
    credit_account_id  BLOB    NOT NULL,
    amount             INTEGER NOT NULL,
    currency           TEXT    NOT NULL,
    pending_id         BLOB,
    timeout_secs       INTEGER NOT NULL,
    linked             INTEGER NOT NULL,
    reference          TEXT,
    metadata           TEXT,
    created_at         INTEGER NOT NULL,
    hash               BLOB    NOT NULL
);

-- Per-account index of the journal, written in chunks: every INDEX_CHUNK journal entries the
-- writer indexes them in one sorted pass under a fresh `chunk` key (the chunk's first seq), so
-- the pass appends to the end of the B-tree instead of touching every account's pages (inserts
-- scattered over thousands of accounts would rewrite most index pages at every commit).
-- Statement queries walk the chunks in order, then scan the short unindexed tail of the journal
-- after journal_head.indexed_seq.
CREATE TABLE index_chunks (
    first_seq  INTEGER PRIMARY KEY,
    last_seq   INTEGER NOT NULL
);

CREATE TABLE account_entries (
    chunk       INTEGER NOT NULL,
    account_id  BLOB    NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (chunk, account_id, seq)
) WITHOUT ROWID;

-- Two-phase holds and their state; the journal itself is never updated.
CREATE TABLE pending_holds (
    transfer_id  BLOB PRIMARY KEY,
    status       TEXT    NOT NULL,
    expires_at   INTEGER
) WITHOUT ROWID;

CREATE INDEX pending_holds_expiry ON pending_holds (expires_at) WHERE status = 'pending' AND expires_at IS NOT NULL;

-- Head of the hash chain. Every writer locks this row first, which serialises writers.
CREATE TABLE journal_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    hash        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    indexed_seq INTEGER NOT NULL
);

INSERT INTO journal_head (id, seq, hash, created_at, indexed_seq) VALUES (1, 0, zeroblob(32), 0, 0);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    secret_hash  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) WITHOUT ROWID;
