-- Maker-checker (four eyes): a sensitive request (activating a risk rule set, a forced
-- write-off, an admin API key, a role change, a user's role change) is stored as a pending
-- approval by the guard; a different identity holding the same permission approves it (the
-- stored request is then replayed on behalf of its maker) or rejects it. Bodies of these routes
-- hold no personal data. result_body keeps the operation's answer with secrets blanked.
CREATE TABLE approvals (
    id             TEXT PRIMARY KEY,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    route          TEXT NOT NULL,
    body           TEXT,
    permission     TEXT NOT NULL,
    maker_kind     TEXT NOT NULL,
    maker_id       TEXT NOT NULL,
    maker_name     TEXT NOT NULL,
    maker_role     TEXT NOT NULL,
    reason         TEXT,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    checker_kind   TEXT,
    checker_id     TEXT,
    decided_at     BIGINT,
    note           TEXT,
    result_status  BIGINT,
    result_body    TEXT
);
CREATE INDEX approvals_status ON approvals (status, id);

-- Who made a key or a user (`key:<id>` or `user:<id>`, from the audit scope; NULL for the
-- CLI and older rows): a checker may not approve with an identity its maker made, nor the
-- other way round.
ALTER TABLE api_keys ADD COLUMN created_by TEXT;
ALTER TABLE users ADD COLUMN created_by TEXT;
