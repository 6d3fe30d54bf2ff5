-- The audit trail (GitHub issue 12, part 5). One row per committed change (inserted in the
-- change's own transaction, see storage::audit), per read of personal data and per refused
-- request. Rows are never updated or deleted (the triggers refuse it; someone who drops them is
-- caught by the hash chain). The sealer (access::audit) chains entries in the order it finds
-- them: `audit_seals` holds each entry's chain position and SHA-256(previous hash || entry);
-- `audit_chain_head` the last position and hash, so a truncated chain is caught too.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor_kind  TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    role        TEXT,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    step        BIGINT  NOT NULL,
    ip          TEXT,
    outcome     TEXT    NOT NULL,
    -- why the data was used, as the client stated it (X-Purpose; a consent id in open banking)
    purpose     TEXT
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_resource ON audit_log (resource, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE audit_seals (
    chain_seq   BIGINT PRIMARY KEY,
    entry_id    BIGINT NOT NULL UNIQUE,
    hash        TEXT   NOT NULL,
    sealed_at   BIGINT NOT NULL
);

CREATE TABLE audit_chain_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    chain_seq   BIGINT NOT NULL,
    hash        TEXT   NOT NULL,
    -- Entries at or below this id are all sealed; the sealer looks above it.
    scan_from   BIGINT NOT NULL
);
INSERT INTO audit_chain_head (id, chain_seq, hash, scan_from)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_seals_append_only BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
