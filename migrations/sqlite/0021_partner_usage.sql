-- Open banking (issue 13), part 5: metering. Calls per partner, API and UTC day, for billing
-- and the cockpit; each node adds its counts every minute (and before a staff read).
CREATE TABLE ob_usage (
    partner_id TEXT NOT NULL,
    day        INTEGER NOT NULL,
    api        TEXT NOT NULL,
    calls      INTEGER NOT NULL,
    refused    INTEGER NOT NULL,
    PRIMARY KEY (partner_id, day, api)
);
