-- Lending operations (GitHub issue 5): manual review decisions and write-offs.
-- Review items record who decided them (API key id and role), when, the analyst's note and,
-- for declines, the reason code. A written-off loan gets one row with the amounts charged off.

ALTER TABLE lending_review_queue ADD COLUMN decided_by TEXT;
ALTER TABLE lending_review_queue ADD COLUMN decided_role TEXT;
ALTER TABLE lending_review_queue ADD COLUMN decided_at BIGINT;
ALTER TABLE lending_review_queue ADD COLUMN note TEXT;
ALTER TABLE lending_review_queue ADD COLUMN reason_code TEXT;
CREATE INDEX lending_review_queue_status ON lending_review_queue (status, created_at);

CREATE TABLE lending_write_offs (
    loan_id TEXT PRIMARY KEY,
    business_date TEXT NOT NULL,
    reason TEXT NOT NULL,
    forced BIGINT NOT NULL,
    written_off_by TEXT NOT NULL,
    written_off_role TEXT NOT NULL,
    principal_minor BIGINT NOT NULL,
    interest_minor BIGINT NOT NULL,
    penalty_minor BIGINT NOT NULL,
    fees_minor BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
