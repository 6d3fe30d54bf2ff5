-- Security alerts (GitHub issue 12, part 7): raised by detectors over the audit trail
-- (access::alerts), with their evidence (counts and ids, never personal data), acknowledged by
-- a person, delivered to a webhook with retries. dedupe_key = rule:subject:window, so a pattern
-- is alerted once per window however many nodes run the detectors.
CREATE TABLE security_alerts (
    id               TEXT PRIMARY KEY,
    rule             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL UNIQUE,
    severity         TEXT NOT NULL,
    summary          TEXT NOT NULL,
    evidence         TEXT NOT NULL,
    raised_at        INTEGER NOT NULL,
    first_seen_at    INTEGER NOT NULL,
    status           TEXT NOT NULL,
    acknowledged_by  TEXT,
    acknowledged_at  INTEGER,
    note             TEXT,
    webhook_status   TEXT NOT NULL,
    webhook_attempts INTEGER NOT NULL,
    webhook_next_at  INTEGER
);
CREATE INDEX security_alerts_webhook ON security_alerts (webhook_status, webhook_next_at);
