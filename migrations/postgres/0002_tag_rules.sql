-- Same shape as migrations/sqlite/0002_tag_rules.sql.
CREATE TABLE tag_rules (
    tag_id      TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    name        TEXT    NOT NULL,
    dimension   TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    created_by  UUID,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tag_id, version)
);
