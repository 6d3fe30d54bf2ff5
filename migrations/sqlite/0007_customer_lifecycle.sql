-- Customer lifecycle (GitHub issue 3): updates, KYC changes, closure and merges, with history.
-- A bank keeps customer records (retention rules), so nothing is deleted: a closed customer has
-- `status = 'closed'`, a record merged into another `status = 'merged'` and `merged_into`.
ALTER TABLE customers ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE customers ADD COLUMN closed_at INTEGER;
ALTER TABLE customers ADD COLUMN merged_into TEXT;
CREATE INDEX customers_merged_into ON customers (merged_into) WHERE merged_into IS NOT NULL;

-- Facts of closed and merged customers are kept but retired: recomputation skips them, so they
-- leave the membership bitmaps, counts and search. NULL = active.
ALTER TABLE customer_profiles ADD COLUMN retired_at INTEGER;

-- Every change of a master record, oldest first: field changes (`name_changed`,
-- `phone_changed`, `id_number_corrected`), `kyc_changed`, `closed`, `merged_in` (on the
-- survivor) and `merged_into` (on the absorbed record). `from_value` / `to_value` may hold
-- personal data: the API masks them like the record itself.
CREATE TABLE customer_history (
    id                 INTEGER PRIMARY KEY,
    customer_id        TEXT    NOT NULL,
    event              TEXT    NOT NULL,
    from_value         TEXT,
    to_value           TEXT,
    other_customer_id  TEXT,
    note               TEXT,
    actor_key_id       TEXT    NOT NULL,
    actor_role         TEXT    NOT NULL,
    at                 INTEGER NOT NULL
);
CREATE INDEX customer_history_customer ON customer_history (customer_id, id);
