-- Open banking (issue 13), part 3: payment initiation. A domestic payment consent carries its
-- terms (amount, currency, creditor, reference) as JSON; a payment is made once per consent and
-- once per idempotency key.
ALTER TABLE ob_consents ADD COLUMN payment TEXT;

CREATE TABLE ob_payments (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL,
    consent_id       TEXT NOT NULL UNIQUE,
    idempotency_key  TEXT NOT NULL,
    -- SHA-256 of the request body: the same key with another body is a conflict
    request_hash     TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    debtor_account   TEXT NOT NULL,
    creditor_account TEXT NOT NULL,
    -- accepted_settlement_completed, or pending_review (held by the risk engine)
    status           TEXT NOT NULL,
    risk_decision_id TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (partner_id, idempotency_key)
);
