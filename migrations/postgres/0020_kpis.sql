-- The KPI system of the operations cockpit (issue 14, part 3). Indicator values are kept as
-- hourly and daily series (the last value computed in each hour / day), so trends survive
-- restarts; the inputs that cannot be read from other tables at any time are accumulated here
-- incrementally. Timestamps are microseconds since the Unix epoch (UTC).

-- One value per indicator, granularity ('hour' or 'day') and bucket (the start of the UTC hour
-- or day). `value` is a decimal string (exact: money in minor units, ratios, seconds); NULL
-- means there was no data to compute it from (e.g. a ratio with no denominator).
CREATE TABLE kpi_points (
    kpi          TEXT    NOT NULL,
    granularity  TEXT    NOT NULL,
    bucket       BIGINT NOT NULL,
    value        TEXT,
    computed_at  BIGINT NOT NULL,
    PRIMARY KEY (kpi, granularity, bucket)
);
CREATE INDEX kpi_points_recent ON kpi_points (granularity, bucket);

-- How far the incremental readers got (`journal`: the last journal seq counted).
CREATE TABLE kpi_cursors (
    name        TEXT    PRIMARY KEY,
    position    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
INSERT INTO kpi_cursors (name, position, updated_at) VALUES ('journal', 0, 0);

-- Journal entries (posted or pending) with a metadata.channel per UTC hour of their creation,
-- and how many of them came through a digital channel.
CREATE TABLE kpi_channel_hours (
    hour          BIGINT PRIMARY KEY,
    transactions  BIGINT NOT NULL,
    digital       BIGINT NOT NULL
);

-- The last time in each calendar quarter a customer initiated a transaction (one of its
-- accounts was debited): active customers and quarter-on-quarter retention.
CREATE TABLE kpi_customer_activity (
    customer_id     TEXT    NOT NULL,
    quarter         BIGINT NOT NULL,
    last_active_at  BIGINT NOT NULL,
    PRIMARY KEY (customer_id, quarter)
);
CREATE INDEX kpi_customer_activity_last ON kpi_customer_activity (last_active_at);

-- API responses per UTC hour; every node adds its own counts.
CREATE TABLE kpi_api_requests (
    hour           BIGINT PRIMARY KEY,
    requests       BIGINT NOT NULL,
    server_errors  BIGINT NOT NULL,
    client_errors  BIGINT NOT NULL
);

-- How long the automated decision of a loan application took (from the application reaching
-- the platform to the decision stored); NULL for decisions stored before this migration.
ALTER TABLE lending_decisions ADD COLUMN decision_micros BIGINT;
CREATE INDEX lending_decisions_created ON lending_decisions (created_at);
CREATE INDEX customers_created ON customers (created_at);

-- VaR figures recorded for the treasury positions (POST /v1/risk/market/var with record = true).
CREATE TABLE risk_var_reports (
    id                   TEXT    PRIMARY KEY,
    method               TEXT    NOT NULL,
    confidence_bp        BIGINT NOT NULL,
    horizon_days         BIGINT NOT NULL,
    currency             TEXT    NOT NULL,
    portfolio_value      BIGINT NOT NULL,
    value_at_risk        BIGINT NOT NULL,
    expected_shortfall   BIGINT NOT NULL,
    observations         BIGINT NOT NULL,
    created_at           BIGINT NOT NULL
);
CREATE INDEX risk_var_reports_created ON risk_var_reports (created_at);

-- Built-in roles of an existing database get the new permission (a new database gets it when
-- the roles are first created, after the migrations).
UPDATE roles SET permissions = permissions || ',kpis_read' WHERE name IN ('operator', 'auditor') AND builtin = 1;
