-- Customer master records. One person (or business) = one customer: the SHA-256 of the
-- identity document ("resident_id:<number>" or "uscc:<code>") is unique.
CREATE TABLE customers (
    id               TEXT    PRIMARY KEY,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    id_document_type TEXT    NOT NULL,
    id_number        TEXT    NOT NULL,
    id_number_hash   BLOB    NOT NULL UNIQUE,
    phone            TEXT,
    kyc_status       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL
);
