-- Process intelligence (GitHub issue 15, part 1): the event log of the bank's own processes.
-- One row per business event, inserted by the platform that makes the state change, in that
-- change's own transaction (process_platform::event_statement). `at` is UTC microseconds from
-- the service's Clock; `resource` is `system`, `customer` or a staff id; `attributes` is a JSON
-- object of process::Attributes (product, amounts in minor units, channel, outcome, cost,
-- data source, service time): never personal data. Rows are never updated.
CREATE TABLE process_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    process     TEXT    NOT NULL,
    case_id     TEXT    NOT NULL,
    activity    TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    resource    TEXT    NOT NULL,
    attributes  TEXT    NOT NULL
);
CREATE INDEX process_events_process_at ON process_events (process, at, id);
CREATE INDEX process_events_case ON process_events (process, case_id, at, id);

-- Logs imported from other systems (CSV with a column mapping, XES): their own namespace,
-- analysed like the bank's own log. An import commits whole or not at all.
CREATE TABLE process_logs (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    format      TEXT    NOT NULL,
    events      INTEGER NOT NULL,
    cases       INTEGER NOT NULL,
    imported_at INTEGER NOT NULL
);
CREATE TABLE process_log_events (
    log_id      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    case_id     TEXT    NOT NULL,
    activity    TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    resource    TEXT    NOT NULL,
    attributes  TEXT    NOT NULL,
    PRIMARY KEY (log_id, seq)
);
CREATE INDEX process_log_events_at ON process_log_events (log_id, at, seq);

-- Existing built-in roles learn the new permissions (fresh databases get them from the code).
UPDATE roles SET permissions = permissions || ',process_read,process_write' WHERE name = 'operator' AND builtin = 1;
UPDATE roles SET permissions = permissions || ',process_read' WHERE name = 'auditor' AND builtin = 1;
