-- Customer tag rules added or changed through the API. Built-in tags live in code at version 1;
-- every stored row is one version of one tag, replayed in order at start-up.
CREATE TABLE tag_rules (
    tag_id      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    dimension   TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    created_by  BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tag_id, version)
);
