//! The durable webhook outbox: see README.md. Events are rows written in the transaction of the
//! change they announce ([`event_statement`]); every node delivers due rows, claiming each one
//! with a conditional `UPDATE`, so a delivery is attempted by one node at a time and survives a
//! crash of any of them.

pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use storage::{Arg, Database, Statement};
use utoipa::ToSchema;
use uuid::Uuid;

pub use signature::{new_secret, sign, verify, VerifyError};

/// The vault field of a subscription's signing secret.
const F_SECRET: &str = "webhook_subscriptions.secret";

/// The tables of this crate with sealed columns, for `rotate-key`.
pub const ENCRYPTED_TABLES: &[access::EncryptedTable] = &[access::EncryptedTable {
    table: "webhook_subscriptions",
    key: &[("id", access::KeyType::Text)],
    columns: &["secret"],
}];

/// Owner of the bank's own subscriptions (KPI alerts and other staff channels).
pub const BANK_OWNER: &str = "bank";
/// Most event types one subscription names.
pub const MAX_EVENT_TYPES: usize = 32;
/// Most subscriptions one owner has.
pub const MAX_SUBSCRIPTIONS_PER_OWNER: i64 = 10;
/// Most bytes of a delivery's last error kept.
const MAX_ERROR_LEN: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    InvalidSubscription(String),
    #[error("no webhook subscription {0}")]
    SubscriptionNotFound(String),
    #[error("no webhook delivery {0}")]
    DeliveryNotFound(String),
    #[error("{0}")]
    NotReplayable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Vault(#[from] access::VaultError),
}

/// Delivery settings. The defaults suit production; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Attempts before a delivery is dead (10: about a day with the default schedule).
    pub max_attempts: i64,
    /// Wait after the first failure; each further one waits four times longer...
    pub retry_base: Duration,
    /// ...up to this.
    pub retry_cap: Duration,
    /// How long a node owns a delivery it is sending; a node that dies mid-send lets it go then.
    pub lease: Duration,
    /// Per request.
    pub timeout: Duration,
    /// How often each node looks for due deliveries.
    pub tick: Duration,
    /// Most deliveries one node sends in one tick, and at once.
    pub batch: i64,
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            max_attempts: 10,
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(6 * 3600),
            lease: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            batch: 200,
            concurrency: 16,
        }
    }
}

/// A subscription, without its secret (shown once, by [`Webhooks::subscribe`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    /// `partner:<client id>` or `bank`.
    pub owner: String,
    pub url: String,
    /// Event types delivered (`*`: all of the owner's).
    pub events: Vec<String>,
    /// `active` or `removed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// One event on its way to one subscription.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// The `webhook-id` the receiver sees (the same on every attempt and replay).
    pub id: String,
    pub subscription_id: String,
    pub event_type: String,
    /// The body sent: `{"type", "timestamp", "data"}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// `pending`, `delivered` or `dead` (gave up after the last attempt, or its subscription
    /// was removed).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last attempt (none: no answer).
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// An event type: lower-case words joined by `.` or `_` (`consent.revoked`), or `*`.
pub fn valid_event_type(t: &str) -> bool {
    t == "*"
        || (!t.is_empty()
            && t.len() <= 64
            && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'))
}

/// The statement that puts `event_type` with `data` in the outbox of every active subscription
/// of `owner` that wants it. Run it in the transaction of the change the event announces.
/// The body is fixed here, so every attempt (and a replay) sends the same bytes.
pub fn event_statement(owner: &str, event_type: &str, data: serde_json::Value, now_micros: i64) -> Statement {
    let event_id = format!("msg_{}", Uuid::now_v7().simple());
    let body = serde_json::json!({
        "type": event_type,
        "timestamp": time(now_micros).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": data,
    })
    .to_string();
    Statement::new(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_type, payload, status, attempts, next_at, created_at) \
         SELECT $1 || '_' || s.id, s.id, $2, $3, 'pending', 0, $4, $4 FROM webhook_subscriptions s \
         WHERE s.owner = $5 AND s.status = 'active' AND EXISTS (SELECT 1 FROM webhook_subscription_events e \
         WHERE e.subscription_id = s.id AND e.event_type IN ($2, '*'))",
        vec![
            Arg::Text(event_id),
            Arg::Text(event_type.to_string()),
            Arg::Text(body),
            Arg::Int(now_micros),
            Arg::Text(owner.to_string()),
        ],
    )
}

const SUBSCRIPTION_COLUMNS: &str = "id, owner, url, status, created_at";
const DELIVERY_COLUMNS: &str = "id, subscription_id, event_type, payload, status, attempts, next_at, last_status, \
     last_error, created_at, delivered_at";

/// Subscriptions, the outbox and its delivery loop.
#[derive(Clone)]
pub struct Webhooks {
    db: Database,
    vault: access::Vault,
    clock: Arc<dyn clock::Clock>,
    settings: WebhookSettings,
    http: reqwest::Client,
}

impl Webhooks {
    pub fn new(db: Database, vault: access::Vault, clock: Arc<dyn clock::Clock>, settings: WebhookSettings) -> Self {
        // Redirects are not followed: a receiver names its final URL when it subscribes.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .build()
            .unwrap_or_default();
        Webhooks { db, vault, clock, settings, http }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Subscribes `owner`'s `url` to `events` and returns the subscription with its signing
    /// secret (the only time the secret is shown). `https` is required unless `allow_http`
    /// (a sandbox partner, or the bank's own channels on its network).
    pub async fn subscribe(
        &self,
        owner: &str,
        url: &str,
        events: &[String],
        allow_http: bool,
    ) -> Result<(Subscription, String), WebhookError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| WebhookError::InvalidSubscription(format!("url {url:?} is not a URL: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => {
                return Err(WebhookError::InvalidSubscription(
                    "url must use https (plain http only for sandbox partners)".into(),
                ))
            }
            other => return Err(WebhookError::InvalidSubscription(format!("url scheme {other:?} is not http(s)"))),
        }
        if parsed.host_str().is_none() || !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(WebhookError::InvalidSubscription("url needs a host and no user or password".into()));
        }
        if url.len() > 2000 {
            return Err(WebhookError::InvalidSubscription("url is longer than 2000 characters".into()));
        }
        let mut events: Vec<String> = events.to_vec();
        events.sort();
        events.dedup();
        if events.is_empty() || events.len() > MAX_EVENT_TYPES {
            return Err(WebhookError::InvalidSubscription(format!(
                "name between 1 and {MAX_EVENT_TYPES} event types (or \"*\")"
            )));
        }
        if let Some(bad) = events.iter().find(|e| !valid_event_type(e)) {
            return Err(WebhookError::InvalidSubscription(format!(
                "event type {bad:?} is not lower-case words joined by '.' or '_'"
            )));
        }
        let secret = new_secret();
        let id = format!("ws_{}", Uuid::now_v7().simple());
        let now = self.clock.now_micros();
        let sealed = self.vault.seal(F_SECRET, &secret);
        storage::audit::set_resource(id.clone());
        let owner_s = owner.to_string();
        let url_s = url.to_string();
        let count: i64 = storage::transaction!(&self.db, |tx| async {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM webhook_subscriptions WHERE owner = $1 AND status = 'active'")
                    .bind(&owner_s)
                    .fetch_one(&mut *tx)
                    .await?;
            if count >= MAX_SUBSCRIPTIONS_PER_OWNER {
                return Err(WebhookError::InvalidSubscription(format!(
                    "at most {MAX_SUBSCRIPTIONS_PER_OWNER} subscriptions per owner; remove one first"
                )));
            }
            sqlx::query(
                "INSERT INTO webhook_subscriptions (id, owner, url, secret, status, created_at) \
                 VALUES ($1, $2, $3, $4, 'active', $5)",
            )
            .bind(&id)
            .bind(&owner_s)
            .bind(&url_s)
            .bind(&sealed)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for event in &events {
                sqlx::query("INSERT INTO webhook_subscription_events (subscription_id, event_type) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(event)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok::<i64, WebhookError>(count)
        }
        .await)?;
        tracing::debug!(subscription = %id, owner, existing = count, "webhook subscription created");
        Ok((self.subscription(&id).await?, secret))
    }

    async fn events_of(&self, id: &str) -> Result<Vec<String>, WebhookError> {
        Ok(storage::read!(&self.db, |conn| sqlx::query_scalar(
            "SELECT event_type FROM webhook_subscription_events WHERE subscription_id = $1 ORDER BY event_type"
        )
        .bind(id)
        .fetch_all(conn)
        .await)?)
    }

    pub async fn subscription(&self, id: &str) -> Result<Subscription, WebhookError> {
        let row: Option<SubscriptionTuple> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        let row = row.ok_or_else(|| WebhookError::SubscriptionNotFound(id.to_string()))?;
        let events = self.events_of(id).await?;
        Ok(to_subscription(row, events))
    }

    /// An owner's subscriptions, active ones first, newest first.
    pub async fn subscriptions(&self, owner: &str) -> Result<Vec<Subscription>, WebhookError> {
        let rows: Vec<SubscriptionTuple> = storage::read!(&self.db, |conn| sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE owner = $1 \
                 ORDER BY status, created_at DESC LIMIT 100"
        ))
        .bind(owner)
        .fetch_all(conn)
        .await)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let events = self.events_of(&row.0).await?;
            out.push(to_subscription(row, events));
        }
        Ok(out)
    }

    /// Removes one of `owner`'s subscriptions: nothing more is queued for it and its pending
    /// deliveries are dead (with the reason), in one transaction.
    pub async fn remove(&self, owner: &str, id: &str) -> Result<Subscription, WebhookError> {
        let existing = self.subscription(id).await?;
        if existing.owner != owner {
            return Err(WebhookError::SubscriptionNotFound(id.to_string()));
        }
        storage::audit::set_resource(id.to_string());
        let id_s = id.to_string();
        storage::transaction!(&self.db, |tx| async {
            sqlx::query("UPDATE webhook_subscriptions SET status = 'removed' WHERE id = $1")
                .bind(&id_s)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'dead', next_at = NULL, last_error = 'subscription removed' \
                 WHERE subscription_id = $1 AND status = 'pending'",
            )
            .bind(&id_s)
            .execute(&mut *tx)
            .await?;
            Ok::<(), WebhookError>(())
        }
        .await)?;
        self.subscription(id).await
    }

    /// Deliveries, newest first: of one owner (or all, for staff), optionally of one
    /// subscription and one status; `before` pages on by delivery id.
    pub async fn deliveries(
        &self,
        owner: Option<&str>,
        subscription: Option<&str>,
        status: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let mut sql = format!(
            "SELECT {} FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE 1 = 1",
            DELIVERY_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
        );
        let mut args: Vec<String> = Vec::new();
        for (column, value) in [("s.owner", owner), ("d.subscription_id", subscription), ("d.status", status)] {
            if let Some(value) = value {
                args.push(value.to_string());
                sql.push_str(&format!(" AND {column} = ${}", args.len()));
            }
        }
        if let Some(before) = before {
            args.push(before.to_string());
            sql.push_str(&format!(" AND d.id < ${}", args.len()));
        }
        sql.push_str(&format!(" ORDER BY d.id DESC LIMIT {}", limit.clamp(1, 200)));
        let rows: Vec<DeliveryTuple> = storage::read!(&self.db, |conn| {
            let mut q = sqlx::query_as(&sql);
            for a in &args {
                q = q.bind(a);
            }
            q.fetch_all(conn).await
        })?;
        Ok(rows.into_iter().map(to_delivery).collect())
    }

    pub async fn delivery(&self, id: &str) -> Result<(Delivery, String), WebhookError> {
        let sql = format!(
            "SELECT {} FROM webhook_deliveries d WHERE d.id = $1",
            DELIVERY_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
        );
        let row: Option<DeliveryTuple> =
            storage::read!(&self.db, |conn| sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?;
        let delivery = to_delivery(row.ok_or_else(|| WebhookError::DeliveryNotFound(id.to_string()))?);
        let owner = self.subscription(&delivery.subscription_id).await?.owner;
        Ok((delivery, owner))
    }

    /// Puts a dead or delivered delivery back in the queue, due now, with its attempts reset.
    /// The receiver gets the same `webhook-id` and body.
    pub async fn replay(&self, id: &str) -> Result<Delivery, WebhookError> {
        let (delivery, _) = self.delivery(id).await?;
        if delivery.status == "pending" {
            return Err(WebhookError::NotReplayable(format!("delivery {id} is pending already")));
        }
        let subscription = self.subscription(&delivery.subscription_id).await?;
        if subscription.status != "active" {
            return Err(WebhookError::NotReplayable(format!(
                "delivery {id} belongs to subscription {} which was removed",
                subscription.id
            )));
        }
        let now = self.clock.now_micros();
        storage::audit::set_resource(id.to_string());
        let changed = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = $1, last_error = NULL, \
             last_status = NULL, delivered_at = NULL WHERE id = $2 AND status IN ('dead', 'delivered')"
        )
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(WebhookError::NotReplayable(format!("delivery {id} is pending already")));
        }
        Ok(self.delivery(id).await?.0)
    }

    /// Deliveries waiting (pending) and given up (dead), for the metrics.
    pub async fn queue_depths(&self) -> Result<(i64, i64), WebhookError> {
        let (pending, dead): (i64, i64) = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) FROM webhook_deliveries"
        )
        .fetch_one(conn)
        .await)?;
        Ok((pending, dead))
    }

    /// Sends what is due (at most one batch) and returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize, WebhookError> {
        use futures::StreamExt;
        let now = self.clock.now_micros();
        let due: Vec<(String, String, String, String)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT d.id, d.payload, s.url, s.secret FROM webhook_deliveries d \
             JOIN webhook_subscriptions s ON s.id = d.subscription_id \
             WHERE d.status = 'pending' AND d.next_at <= $1 ORDER BY d.next_at, d.id LIMIT $2"
        )
        .bind(now)
        .bind(self.settings.batch)
        .fetch_all(conn)
        .await)?;
        let delivered = futures::stream::iter(due)
            .map(|(id, payload, url, sealed)| async move {
                match self.deliver_one(&id, &payload, &url, &sealed).await {
                    Ok(delivered) => delivered,
                    Err(e) => {
                        tracing::warn!(delivery = %id, error = %e, "webhook delivery bookkeeping failed; retried later");
                        false
                    }
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await;
        Ok(delivered)
    }

    /// Claims one delivery (another node may have it), sends it, records the outcome.
    async fn deliver_one(&self, id: &str, payload: &str, url: &str, sealed: &str) -> Result<bool, WebhookError> {
        let now = self.clock.now_micros();
        let claimed = storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = $1 \
             WHERE id = $2 AND status = 'pending' AND next_at <= $3"
        )
        .bind(now + micros(self.settings.lease))
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if claimed == 0 {
            return Ok(false);
        }
        let secret = self.vault.open(F_SECRET, sealed)?;
        let timestamp = now / 1_000_000;
        let signature = sign(&secret, id, timestamp, payload.as_bytes()).unwrap_or_default();
        let outcome = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload.to_string())
            .send()
            .await;
        let (ok, status, error) = match outcome {
            Ok(response) if response.status().is_success() => (true, Some(response.status().as_u16() as i64), None),
            Ok(response) => (
                false,
                Some(response.status().as_u16() as i64),
                Some(format!("the receiver answered {}", response.status())),
            ),
            // The error names the URL and the cause (refused, timed out), never the body.
            Err(e) => (false, None, Some(describe(e))),
        };
        let error = error.map(|mut e| {
            e.truncate(MAX_ERROR_LEN);
            e
        });
        let done = self.clock.now_micros();
        if ok {
            storage::write!(&self.db, |conn| sqlx::query(
                "UPDATE webhook_deliveries SET status = 'delivered', next_at = NULL, last_status = $1, \
                 last_error = NULL, delivered_at = $2 WHERE id = $3"
            )
            .bind(status)
            .bind(done)
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
            return Ok(true);
        }
        let attempts: i64 = storage::read!(&self.db, |conn| sqlx::query_scalar(
            "SELECT attempts FROM webhook_deliveries WHERE id = $1"
        )
        .bind(id)
        .fetch_one(conn)
        .await)?;
        // Dead after the last attempt: no next time, the outcome kept for staff to see.
        let next = (attempts < self.settings.max_attempts).then(|| {
            done + signature::backoff_micros(
                attempts,
                micros(self.settings.retry_base),
                micros(self.settings.retry_cap),
            )
        });
        if next.is_none() {
            tracing::warn!(delivery = %id, attempts, "webhook delivery gave up (dead letter)");
        }
        storage::write!(&self.db, |conn| sqlx::query(
            "UPDATE webhook_deliveries SET status = CASE WHEN $1 IS NULL THEN 'dead' ELSE 'pending' END, \
             next_at = $1, last_status = $2, last_error = $3 WHERE id = $4"
        )
        .bind(next)
        .bind(status)
        .bind(&error)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(ok)
    }

    /// Delivers every [`WebhookSettings::tick`] for as long as the server runs.
    pub fn spawn(&self) {
        let hooks = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(hooks.settings.tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if hooks.db.is_closed() {
                    return;
                }
                if let Err(e) = hooks.deliver_due().await {
                    tracing::warn!(error = %e, "webhook delivery failed; retrying");
                }
            }
        });
    }
}

type SubscriptionTuple = (String, String, String, String, i64);
type DeliveryTuple =
    (String, String, String, String, String, i64, Option<i64>, Option<i64>, Option<String>, i64, Option<i64>);

fn to_subscription(row: SubscriptionTuple, events: Vec<String>) -> Subscription {
    let (id, owner, url, status, created_at) = row;
    Subscription { id, owner, url, events, status, created_at: time(created_at) }
}

fn to_delivery(row: DeliveryTuple) -> Delivery {
    let (
        id,
        subscription_id,
        event_type,
        payload,
        status,
        attempts,
        next_at,
        last_status,
        last_error,
        created_at,
        delivered_at,
    ) = row;
    Delivery {
        id,
        subscription_id,
        event_type,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
        status,
        attempts,
        next_attempt_at: next_at.map(time),
        last_status,
        last_error,
        created_at: time(created_at),
        delivered_at: delivered_at.map(time),
    }
}

/// An error with its causes ("error sending request: connection refused"), without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
