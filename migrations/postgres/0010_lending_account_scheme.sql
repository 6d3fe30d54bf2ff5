-- How a loan's receivable account ids are derived. Loans opened before this migration keep
-- UUID v5 ids (0); new loans get ids that sort next to the loan (1), so end of day touches
-- neighbouring rows instead of one random page per account (see accounts::clustered_id).
ALTER TABLE lending_loans ADD COLUMN account_scheme BIGINT NOT NULL DEFAULT 0;
