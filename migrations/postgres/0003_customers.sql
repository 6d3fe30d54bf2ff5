-- Same shape as migrations/sqlite/0003_customers.sql.
CREATE TABLE customers (
    id               TEXT    PRIMARY KEY,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    id_document_type TEXT    NOT NULL,
    id_number        TEXT    NOT NULL,
    id_number_hash   BYTEA   NOT NULL UNIQUE,
    phone            TEXT,
    kyc_status       TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL
);
