-- Open banking (issue 13): embedded lending. A loan application consent carries its terms
-- (product, most amount, currency); one application per consent, linked to its decision and,
-- once accepted, its loan (written in the lending transaction each belongs to).
ALTER TABLE ob_consents ADD COLUMN loan TEXT;

CREATE TABLE ob_loan_applications (
    consent_id  TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL,
    decision_id TEXT NOT NULL UNIQUE,
    loan_id     TEXT UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
