-- Threshold alerts on the KPI system (issue 14, part 4). A rule watches one indicator: above or
-- below a threshold for a duration; its state (normal, pending, firing, resolved) is moved on by
-- every KPI refresh, each transition stored in `kpi_alert_events` with the audit entry of the
-- same transaction. Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE kpi_alert_rules (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL,
    kpi              TEXT    NOT NULL,
    -- 'above' or 'below'
    comparator       TEXT    NOT NULL,
    -- decimal string in the indicator's unit (fen, a fraction of 1, seconds, a count)
    threshold        TEXT    NOT NULL,
    for_secs         INTEGER NOT NULL,
    -- 'critical', 'warning' or 'info'
    severity         TEXT    NOT NULL,
    enabled          INTEGER NOT NULL,
    -- 'normal', 'pending', 'firing' or 'resolved', and since when
    state            TEXT    NOT NULL,
    state_since      INTEGER NOT NULL,
    -- the value of the last transition
    last_value       TEXT,
    silenced_until   INTEGER,
    silenced_by      TEXT,
    silence_reason   TEXT,
    -- bumped by every change: a transition or an edit is applied only to the version it read
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    created_by       TEXT    NOT NULL,
    updated_at       INTEGER NOT NULL,
    updated_by       TEXT    NOT NULL
);
CREATE INDEX kpi_alert_rules_state ON kpi_alert_rules (state);

-- Every transition of every rule (kept when the rule is deleted: name and condition copied).
CREATE TABLE kpi_alert_events (
    id           TEXT    PRIMARY KEY,
    rule_id      TEXT    NOT NULL,
    rule_name    TEXT    NOT NULL,
    kpi          TEXT    NOT NULL,
    from_state   TEXT    NOT NULL,
    to_state     TEXT    NOT NULL,
    value        TEXT,
    comparator   TEXT    NOT NULL,
    threshold    TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    -- 1 when the rule was silenced at the time (recorded, not notified)
    silenced     INTEGER NOT NULL,
    -- 'evaluation' (a KPI refresh) or 'edit' (a person changed or disabled the rule: back to normal)
    cause        TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX kpi_alert_events_at ON kpi_alert_events (at, id);
CREATE INDEX kpi_alert_events_rule ON kpi_alert_events (rule_id, at);

-- Built-in roles of an existing database get the new permission (a new database gets it when
-- the roles are first created, after the migrations).
UPDATE roles SET permissions = permissions || ',kpi_alerts_admin' WHERE name = 'operator' AND builtin = 1;
