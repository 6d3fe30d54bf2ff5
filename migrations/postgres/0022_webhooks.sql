-- The durable webhook outbox (crates/webhooks): subscriptions with their sealed signing secrets,
-- and one row per event and subscription, written in the transaction of the change it announces.
CREATE TABLE webhook_subscriptions (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,          -- partner:<client id>, or bank
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,          -- sealed by the vault
    status     TEXT NOT NULL,          -- active | removed
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_owner ON webhook_subscriptions (owner, status);

CREATE TABLE webhook_subscription_events (
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    event_type      TEXT NOT NULL,     -- or * for all of the owner's events
    PRIMARY KEY (subscription_id, event_type)
);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,  -- the webhook-id the receiver sees
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,     -- the exact body sent on every attempt
    status          TEXT NOT NULL,     -- pending | delivered | dead
    attempts        BIGINT NOT NULL,
    next_at         BIGINT,                -- due (or leased until) while pending
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);
