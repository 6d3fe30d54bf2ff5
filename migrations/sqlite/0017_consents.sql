-- Open banking (issue 13), part 2: customer consents, the authorization-code flow with PKCE
-- and pushed authorization requests, one-time codes, and refresh-token chains.

-- A consent a partner asked for and the customer authorised (or not). Times in microseconds.
CREATE TABLE ob_consents (
    id                TEXT PRIMARY KEY,
    partner_id        TEXT NOT NULL REFERENCES ob_partners (id),
    kind              TEXT NOT NULL,
    permissions       TEXT NOT NULL,
    status            TEXT NOT NULL,
    -- customer, partner or superseded, once revoked
    revoked_by        TEXT,
    superseded_by     TEXT,
    -- set when the customer authorises
    customer_id       TEXT,
    accounts          TEXT NOT NULL DEFAULT '',
    expires_at        INTEGER NOT NULL,
    transaction_from  INTEGER,
    transaction_to    INTEGER,
    frequency_per_day INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    status_updated_at INTEGER NOT NULL
);
CREATE INDEX ob_consents_customer ON ob_consents (customer_id, partner_id);
CREATE INDEX ob_consents_partner ON ob_consents (partner_id, id);
CREATE INDEX ob_consents_live ON ob_consents (status, expires_at);

-- Unattended calls per consent and UTC day (Berlin Group frequencyPerDay).
CREATE TABLE ob_consent_usage (
    consent_id TEXT NOT NULL,
    day        INTEGER NOT NULL,
    calls      INTEGER NOT NULL,
    PRIMARY KEY (consent_id, day)
);

-- A pushed authorization request (RFC 9126) and the customer's authorisation session it
-- starts. Secrets (session, code) are kept only as keyed hashes.
CREATE TABLE ob_authorizations (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL,
    consent_id      TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    scope           TEXT NOT NULL,
    state           TEXT,
    code_challenge  TEXT NOT NULL,
    status          TEXT NOT NULL,
    customer_id     TEXT,
    session_hash    TEXT,
    code_hash       TEXT UNIQUE,
    code_expires_at INTEGER,
    code_used_at    INTEGER,
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);

-- One-time codes sent to customers (to authorise a consent, or to sign in to their consent
-- dashboard): a keyed hash of the code, a short life, a few attempts.
CREATE TABLE ob_otp_challenges (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    verified_at INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX ob_otp_challenges_subject ON ob_otp_challenges (subject);

-- A grant: what one authorization code started. Its refresh tokens rotate on use; a spent
-- token used again revokes the grant and so every token descended from it.
CREATE TABLE ob_grants (
    id             TEXT PRIMARY KEY,
    partner_id     TEXT NOT NULL,
    consent_id     TEXT NOT NULL,
    scope          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX ob_grants_consent ON ob_grants (consent_id);

CREATE TABLE ob_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES ob_grants (id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX ob_refresh_tokens_grant ON ob_refresh_tokens (grant_id);
