-- Staff identities (GitHub issue 12, part 3): roles as data, people who sign in with a
-- password and a TOTP second factor, their sessions, and API keys with expiry, last use and an
-- IP allow-list. The built-in roles (admin, operator, teller, auditor, monitoring) are written
-- by the server at start-up from `access::Role` (one definition of their permissions).

-- A role bundles permissions (comma-separated snake_case names). `builtin` roles cannot be
-- deleted; `admin` always holds every permission.
CREATE TABLE roles (
    name         TEXT    PRIMARY KEY,
    description  TEXT    NOT NULL DEFAULT '',
    permissions  TEXT    NOT NULL,
    builtin      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Keys name their role; an empty role name (no role) may do nothing.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
-- Comma-separated CIDRs the key may be used from; NULL = anywhere.
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;

-- People. The password is an argon2 hash; `totp_secret` is set once enrolment is confirmed,
-- `totp_pending` holds the secret shown at enrolment until the first code confirms it.
-- `status` is `active` or `disabled`; `locked_at` is set after too many failed sign-ins.
CREATE TABLE users (
    id               BLOB    PRIMARY KEY,
    username         TEXT    NOT NULL UNIQUE,
    display_name     TEXT    NOT NULL,
    role             TEXT,
    password_hash    TEXT    NOT NULL,
    totp_secret      TEXT,
    totp_pending     TEXT,
    status           TEXT    NOT NULL DEFAULT 'active',
    failed_attempts  INTEGER NOT NULL DEFAULT 0,
    locked_at        INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;

-- One-time recovery codes, stored as SHA-256 hex (they are 80 random bits).
CREATE TABLE recovery_codes (
    user_id      BLOB    NOT NULL,
    code_hash    TEXT    NOT NULL,
    used_at      INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- Sessions, found by the SHA-256 of their token (the token itself is never stored).
CREATE TABLE sessions (
    id            BLOB    PRIMARY KEY,
    user_id       BLOB    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    ip            TEXT
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
