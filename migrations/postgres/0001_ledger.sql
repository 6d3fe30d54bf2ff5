-- Ledger schema (PostgreSQL). Same shape as migrations/sqlite/0001_ledger.sql.

CREATE TABLE accounts (
    id                              UUID PRIMARY KEY,
    currency                        TEXT    NOT NULL,
    kind                            TEXT    NOT NULL,
    owner_type                      TEXT    NOT NULL,
    owner_id                        TEXT,
    code                            TEXT,
    name                            TEXT,
    debits_must_not_exceed_credits  BOOLEAN NOT NULL,
    credits_must_not_exceed_debits  BOOLEAN NOT NULL,
    overdraft_limit                 BIGINT  NOT NULL,
    status                          TEXT    NOT NULL,
    debits_pending                  BIGINT  NOT NULL DEFAULT 0,
    debits_posted                   BIGINT  NOT NULL DEFAULT 0,
    credits_pending                 BIGINT  NOT NULL DEFAULT 0,
    credits_posted                  BIGINT  NOT NULL DEFAULT 0,
    created_at                      BIGINT  NOT NULL
);

CREATE INDEX accounts_owner ON accounts (owner_type, owner_id);

CREATE TABLE transfers (
    seq                BIGINT  PRIMARY KEY,
    id                 UUID    NOT NULL UNIQUE,
    kind               TEXT    NOT NULL,
    debit_account_id   UUID    NOT NULL,
    credit_account_id  UUID    NOT NULL,
    amount             BIGINT  NOT NULL,
    currency           TEXT    NOT NULL,
    pending_id         UUID,
    timeout_secs       BIGINT  NOT NULL,
    linked             BOOLEAN NOT NULL,
    reference          TEXT,
    metadata           TEXT,
    created_at         BIGINT  NOT NULL,
    hash               BYTEA   NOT NULL
);

CREATE INDEX transfers_debit ON transfers (debit_account_id, seq);
CREATE INDEX transfers_credit ON transfers (credit_account_id, seq);

CREATE TABLE pending_holds (
    transfer_id  UUID PRIMARY KEY,
    status       TEXT   NOT NULL,
    expires_at   BIGINT
);

CREATE INDEX pending_holds_expiry ON pending_holds (expires_at) WHERE status = 'pending' AND expires_at IS NOT NULL;

CREATE TABLE journal_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL
);

INSERT INTO journal_head (id, seq, hash, created_at) VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    name         TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    secret_hash  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
