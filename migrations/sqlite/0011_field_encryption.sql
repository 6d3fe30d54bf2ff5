-- Field encryption at rest (GitHub issue 12). Personal data is stored as AES-256-GCM ciphertext
-- `enc:k<data key version>:<base64(nonce || ciphertext || tag)>` in the TEXT columns that held
-- it; exact lookups use a keyed blind index (HMAC-SHA-256) instead of the value or an unkeyed
-- hash. SQL cannot encrypt: rows written before this migration keep `key_version = NULL` until
-- the start-up step (access::vault + each platform's `encrypt_existing`) seals them, in pages,
-- idempotently. `key_version` is also how `digibank security rotate-key` finds rows still
-- sealed under an older data key.

-- Data keys, stored only wrapped by the master key (AES-256-GCM; the KeyProvider decides).
-- purpose `field`: the AES-256-GCM keys of the ciphertexts, one new version per rotation;
-- purpose `blind_index`: the HMAC key of the blind indexes, version 1 forever (rotating it
-- would break every lookup).
CREATE TABLE data_keys (
    purpose      TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    wrapped_key  TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER,
    PRIMARY KEY (purpose, version)
);

-- One row per `rotate-key`: the data key version re-encryption moves every row to. Unfinished
-- (`finished_at IS NULL`) = a restarted rotate-key (or serve) resumes it.
CREATE TABLE key_rotations (
    version      INTEGER PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    rows_done    INTEGER NOT NULL DEFAULT 0
);

-- Progress of one-off start-up steps that have no per-row marker (the decision log's digests).
CREATE TABLE encryption_steps (
    step         TEXT    PRIMARY KEY,
    cursor       TEXT    NOT NULL,
    finished_at  INTEGER
);

-- customers: name, id_number and phone become ciphertext; id_number_hash becomes the keyed
-- blind index of "<document type>:<number>"; phone_index the blind index of the phone.
ALTER TABLE customers ADD COLUMN phone_index BLOB;
ALTER TABLE customers ADD COLUMN key_version INTEGER;
CREATE INDEX customers_phone_index ON customers (phone_index) WHERE phone_index IS NOT NULL;
CREATE INDEX customers_key_version ON customers (key_version);

-- customer_history: from_value, to_value and note are ciphertext.
ALTER TABLE customer_history ADD COLUMN key_version INTEGER;
CREATE INDEX customer_history_key_version ON customer_history (key_version);

-- lending_decisions: the decision document (applicant name, birth date, bureau and tax data).
ALTER TABLE lending_decisions ADD COLUMN key_version INTEGER;
CREATE INDEX lending_decisions_key_version ON lending_decisions (key_version);
-- lending_review_queue: the analyst's note.
ALTER TABLE lending_review_queue ADD COLUMN key_version INTEGER;
CREATE INDEX lending_review_queue_key_version ON lending_review_queue (key_version);

-- risk_list_entries: for ID numbers and phones, `value` holds the blind index token
-- (`bi:<hex>`) the engine matches on and `display` the sealed value shown to the PII role.
ALTER TABLE risk_list_entries ADD COLUMN display TEXT;
ALTER TABLE risk_list_entries ADD COLUMN key_version INTEGER;
CREATE INDEX risk_list_entries_key_version ON risk_list_entries (key_version);
