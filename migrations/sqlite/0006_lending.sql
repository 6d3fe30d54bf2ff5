-- Lending (GitHub issue 5): decisions, offers, contracts, loans and their ledger accounts,
-- the supply-chain document registry and receivables, end-of-day runs and the review queue.
-- Dates are ISO `YYYY-MM-DD` text (they sort as dates); timestamps are microseconds since the
-- Unix epoch; domain objects are stored whole as JSON next to the columns queries filter on.

CREATE TABLE lending_decisions (
    id TEXT PRIMARY KEY,
    applicant_id TEXT NOT NULL,
    product_code TEXT NOT NULL,
    outcome TEXT NOT NULL,
    grade TEXT,
    model_version TEXT NOT NULL,
    decision TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX lending_decisions_applicant ON lending_decisions (applicant_id);

CREATE TABLE lending_review_queue (
    decision_id TEXT PRIMARY KEY,
    applicant_id TEXT NOT NULL,
    product_code TEXT NOT NULL,
    reasons TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE lending_offers (
    id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    offer TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE lending_contracts (
    id TEXT PRIMARY KEY,
    offer_id TEXT NOT NULL,
    applicant_id TEXT NOT NULL,
    contract TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE lending_loans (
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
);
CREATE INDEX lending_loans_status ON lending_loans (status, bucket);
CREATE INDEX lending_loans_applicant ON lending_loans (applicant_id);

CREATE TABLE lending_loan_accounts (
    loan_id TEXT NOT NULL,
    role TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (loan_id, role)
);

CREATE TABLE lending_documents (
    seq BIGINT PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    party_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    entry TEXT NOT NULL
);

CREATE TABLE lending_receivables (
    id TEXT PRIMARY KEY,
    core_enterprise_id TEXT NOT NULL,
    supplier_id TEXT NOT NULL,
    status TEXT NOT NULL,
    loan_id TEXT,
    receivable TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE lending_eod_runs (
    business_date TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    report TEXT
);
