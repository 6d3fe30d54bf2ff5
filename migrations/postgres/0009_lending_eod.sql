-- End of day walks open loans in id order through this partial index instead of sorting every
-- open loan for each page; the schedule lives in its own column so the nightly state rewrite
-- (balances, accruals, days past due) does not rewrite the whole repayment schedule.
CREATE INDEX lending_loans_open ON lending_loans (id) WHERE status IN ('active', 'overdue');
ALTER TABLE lending_loans ADD COLUMN schedule TEXT;
