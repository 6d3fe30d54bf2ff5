-- Open banking (issue 13), part 1: partners (third-party providers) and the OAuth 2.0 token
-- service. A partner's id is its client_id; it authenticates with client assertions signed by
-- one of the public keys of its JWK Set (private_key_jwt, RFC 7523).
CREATE TABLE ob_partners (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    roles         TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    jwks          TEXT NOT NULL,
    environment   TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A client assertion is accepted once: its jti is kept until the assertion expires.
CREATE TABLE ob_assertion_jtis (
    partner_id TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (partner_id, jti)
);

-- The bank's token-signing keys (Ed25519); the private half sealed by the vault.
CREATE TABLE ob_signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    -- the data key that sealed private_key (rotate-key re-seals older ones)
    key_version INTEGER
);

-- Built-in roles of an existing database get the new permissions (a new database gets them
-- when the roles are first created, after the migrations).
UPDATE roles SET permissions = permissions || ',partners_read,partners_admin' WHERE name = 'operator' AND builtin = 1;
UPDATE roles SET permissions = permissions || ',partners_read' WHERE name = 'auditor' AND builtin = 1;
