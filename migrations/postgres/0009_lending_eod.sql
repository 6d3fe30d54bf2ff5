-- End of day walks open loans in id order through this partial index instead of sorting every
-- open loan for each page; the schedule gets a table of its own so the nightly state rewrite
-- (balances, accruals, days past due) does not rewrite the whole repayment schedule.
CREATE INDEX lending_loans_open ON lending_loans (id) WHERE status IN ('active', 'overdue');
CREATE TABLE lending_loan_schedules (
    loan_id TEXT PRIMARY KEY,
    schedule TEXT NOT NULL
);
INSERT INTO lending_loan_schedules (loan_id, schedule)
SELECT id, COALESCE((state::jsonb -> 'schedule')::text, '[]') FROM lending_loans;
