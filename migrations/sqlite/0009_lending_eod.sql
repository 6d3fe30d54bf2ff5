-- End of day rewrites every open loan's state each night, in id order. Clustering the table by
-- id (WITHOUT ROWID) makes those writes sequential instead of one random page per loan; the
-- partial index walks open loans in id order instead of sorting them for every page; and the
-- schedule gets a table of its own: SQLite rewrites a whole row on UPDATE, so a schedule in the
-- loan row would be rewritten (with its overflow pages) by every nightly accrual.
CREATE TABLE lending_loans_by_id (
    id TEXT PRIMARY KEY,
    contract_id TEXT NOT NULL,
    applicant_id TEXT NOT NULL,
    product_code TEXT NOT NULL,
    status TEXT NOT NULL,
    bucket TEXT NOT NULL,
    dpd BIGINT NOT NULL,
    last_eod TEXT,
    customer_account TEXT NOT NULL,
    repayment_account TEXT NOT NULL,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO lending_loans_by_id (id, contract_id, applicant_id, product_code, status, bucket, dpd, last_eod,
    customer_account, repayment_account, version, state, created_at, updated_at)
SELECT id, contract_id, applicant_id, product_code, status, bucket, dpd, last_eod,
    customer_account, repayment_account, version, state, created_at, updated_at FROM lending_loans;
DROP TABLE lending_loans;
ALTER TABLE lending_loans_by_id RENAME TO lending_loans;
CREATE INDEX lending_loans_status ON lending_loans (status, bucket);
CREATE INDEX lending_loans_applicant ON lending_loans (applicant_id);
CREATE INDEX lending_loans_open ON lending_loans (id) WHERE status IN ('active', 'overdue');
CREATE TABLE lending_loan_schedules (
    loan_id TEXT PRIMARY KEY,
    schedule TEXT NOT NULL
);
INSERT INTO lending_loan_schedules (loan_id, schedule)
SELECT id, COALESCE(json_extract(state, '$.schedule'), '[]') FROM lending_loans;
