//! Limits at the HTTP edge: request rates per caller and route class, request body sizes per
//! route, and the security headers every response carries.
//!
//! * **Rate limits** (GCRA, the `governor` crate): each route belongs to a [`RouteClass`]; a
//!   caller (an API key today, a staff user later: the limiter is keyed on an identity string)
//!   gets a rate with a burst per class. Public routes (`auth` class) are keyed on the client
//!   IP. The default rates can be overridden per role and per API key in `[rate_limits]` of
//!   the config file. The check runs right after the [`crate::auth::guard`] authenticated the
//!   caller and before the body is read; a refusal is 429 `rate_limited` with `Retry-After` and
//!   the IETF draft `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers,
//!   which successful responses carry as well.
//! * **Body limits**: 64 KiB for most JSON routes, 1 MiB for rule and analysis inputs, 8 MiB for
//!   the transfer batch ([`body_limit`]); over it is 413 `payload_too_large`.
//! * **Security headers** ([`security_headers`]): `nosniff`, no framing, no referrer, no caching
//!   of API responses, HSTS, and a CSP denying everything on responses that set none.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::Deserialize;

use crate::auth::{Access, Caller};
use crate::error::ApiError;
use crate::AppState;

/// How many route classes there are.
const CLASSES: usize = 5;

/// What kind of work a route is, for its rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// Authenticated reads (GET).
    Read,
    /// Authenticated changes (POST, PUT, PATCH, DELETE).
    Write,
    /// Expensive operations: transfer batches, backtests, recomputation, end of day, VaR, bulk
    /// tag evaluation, model reload.
    Heavy,
    /// Public routes (health, the API document and explorer; sign-in later), keyed per client IP.
    Auth,
    /// Public open-banking routes (token endpoint, PAR, the consent screen, customer sign-in),
    /// keyed per client IP: partners' servers call them far more often than people sign in.
    /// The one-time codes they send have their own attempt limits.
    OpenBanking,
}

impl RouteClass {
    pub const ALL: [RouteClass; 5] =
        [RouteClass::Read, RouteClass::Write, RouteClass::Heavy, RouteClass::Auth, RouteClass::OpenBanking];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Read => "read",
            RouteClass::Write => "write",
            RouteClass::Heavy => "heavy",
            RouteClass::Auth => "auth",
            RouteClass::OpenBanking => "open_banking",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The class of a route of the route table.
    pub fn of(method: &Method, path: &str, access: Access) -> RouteClass {
        if access == Access::Public && (path.starts_with("/open-banking/") || path.starts_with("/.well-known/")) {
            RouteClass::OpenBanking
        } else if access == Access::Public {
            RouteClass::Auth
        } else if HEAVY_ROUTES.contains(&path) {
            RouteClass::Heavy
        } else if method == Method::GET || method == Method::HEAD {
            RouteClass::Read
        } else {
            RouteClass::Write
        }
    }
}

/// Routes whose work grows with their input or with the bank: the `heavy` class.
const HEAVY_ROUTES: &[&str] = &[
    "/v1/transfers/batch",
    "/v1/risk/rule-sets/{version}/backtest",
    "/v1/risk/model/reload",
    "/v1/risk/market/var",
    "/v1/customers/recompute",
    "/v1/lending/eod",
    "/v1/tags/evaluate",
    "/v1/audit/export",
    "/v1/audit/verify",
];

/// The default body limit of a JSON route.
pub const SMALL_BODY: usize = 64 * 1024;
/// Rule sources, tag rules, customer facts and analysis inputs (VaR histories, backtests).
pub const MEDIUM_BODY: usize = 1024 * 1024;
/// A full batch of 8190 transfers with metadata.
pub const LARGE_BODY: usize = 8 * 1024 * 1024;

/// The largest request body a route accepts (413 `payload_too_large` beyond it).
pub fn body_limit(path: &str) -> usize {
    const MEDIUM_ROUTES: &[&str] = &[
        "/v1/risk/rule-sets",
        "/v1/risk/rule-sets/{version}/backtest",
        "/v1/risk/market/var",
        "/v1/tags/{id}",
        "/v1/tags/evaluate",
        "/v1/customers/{id}/facts",
        "/v1/segments/{id}",
    ];
    if path == "/v1/transfers/batch" || path == "/v1/process/logs" {
        LARGE_BODY
    } else if MEDIUM_ROUTES.contains(&path) {
        MEDIUM_BODY
    } else {
        SMALL_BODY
    }
}

/// A rate: `count` requests per `per`, with bursts of up to `burst` at once. Written
/// `"1000/s burst 2000"` (also `/min`, `/h`; without `burst` the burst is the count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    pub const fn per_second(count: u32, burst: u32) -> Rate {
        Rate { count, per: Duration::from_secs(1), burst }
    }

    fn quota(self) -> Quota {
        let interval = self.per / self.count.max(1);
        Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("positive period")
            .allow_burst(NonZeroU32::new(self.burst.max(1)).expect("burst at least 1"))
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let bad = || format!("invalid rate {text:?}: expected e.g. \"1000/s burst 2000\" (units /s, /min, /h)");
        let mut words = text.split_whitespace();
        let (count, unit) = words.next().and_then(|w| w.split_once('/')).ok_or_else(bad)?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        let per = match unit {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => count,
            (Some("burst"), Some(n), None) => n.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if count == 0 || burst == 0 {
            return Err(format!("invalid rate {text:?}: the count and the burst must be at least 1"));
        }
        Ok(Rate { count, per, burst })
    }
}

impl TryFrom<String> for Rate {
    type Error = String;
    fn try_from(text: String) -> Result<Rate, String> {
        text.parse()
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "min",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit} burst {}", self.count, self.burst)
    }
}

/// Rates per route class; an absent class keeps the rate of the level below (key → role →
/// default → built-in).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassRates {
    pub read: Option<Rate>,
    pub write: Option<Rate>,
    pub heavy: Option<Rate>,
    pub auth: Option<Rate>,
    pub open_banking: Option<Rate>,
}

impl ClassRates {
    fn get(&self, class: RouteClass) -> Option<Rate> {
        match class {
            RouteClass::Read => self.read,
            RouteClass::Write => self.write,
            RouteClass::Heavy => self.heavy,
            RouteClass::Auth => self.auth,
            RouteClass::OpenBanking => self.open_banking,
        }
    }
}

/// `[rate_limits]` of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `false` turns rate limiting off (benchmarks).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// `[rate_limits.default]`: every caller.
    #[serde(default)]
    pub default: ClassRates,
    /// `[rate_limits.roles.<role>]`: callers of a role.
    #[serde(default)]
    pub roles: BTreeMap<String, ClassRates>,
    /// `[rate_limits.keys."<api key id>"]`: one API key.
    #[serde(default)]
    pub keys: BTreeMap<String, ClassRates>,
}

fn enabled() -> bool {
    true
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { enabled: true, default: ClassRates::default(), roles: BTreeMap::new(), keys: BTreeMap::new() }
    }
}

/// The built-in rate of a class: generous enough that the benchmarks are not throttled.
pub fn builtin_rate(class: RouteClass) -> Rate {
    match class {
        RouteClass::Read => Rate::per_second(1000, 2000),
        RouteClass::Write => Rate::per_second(500, 1000),
        RouteClass::Heavy => Rate::per_second(20, 40),
        RouteClass::Auth => Rate::per_second(10, 20),
        RouteClass::OpenBanking => Rate::per_second(200, 400),
    }
}

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One limiter per distinct (class, rate) in the configuration, keyed by caller identity.
struct Limiter {
    class: RouteClass,
    rate: Rate,
    keyed: KeyedLimiter,
}

struct Inner {
    limiters: Vec<Limiter>,
    /// Limiter index per class, for callers without an override.
    default: [usize; CLASSES],
    roles: HashMap<String, [usize; CLASSES]>,
    keys: HashMap<String, [usize; CLASSES]>,
}

/// The rate limiters of a server (cheap to clone; `off` limits nothing).
#[derive(Clone, Default)]
pub struct RateLimits {
    inner: Option<Arc<Inner>>,
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { limit: u32, remaining: u32, reset_secs: u64 },
    Refused { limit: u32, retry_after_secs: u64 },
}

impl RateLimits {
    /// No rate limits.
    pub fn off() -> Self {
        RateLimits { inner: None }
    }

    /// The limiters of a configuration; an unknown role or a key id that is not a UUID is an
    /// error naming it.
    pub fn new(config: &RateLimitConfig) -> Result<Self, String> {
        if !config.enabled {
            return Ok(Self::off());
        }
        let mut limiters: Vec<Limiter> = Vec::new();
        let mut index = |class: RouteClass, rate: Rate| -> usize {
            if let Some(i) = limiters.iter().position(|l| l.class == class && l.rate == rate) {
                return i;
            }
            limiters.push(Limiter { class, rate, keyed: RateLimiter::dashmap(rate.quota()).with_middleware() });
            limiters.len() - 1
        };
        let default_rates: [Rate; CLASSES] =
            RouteClass::ALL.map(|class| config.default.get(class).unwrap_or_else(|| builtin_rate(class)));
        let default = RouteClass::ALL.map(|class| index(class, default_rates[class.index()]));
        let mut roles = HashMap::new();
        for (name, rates) in &config.roles {
            // Roles are data (built-ins and roles made from permissions), so any well-formed name
            // may be configured; a role not (yet) created simply has no callers.
            if !access::valid_role_name(name) {
                return Err(format!(
                    "[rate_limits.roles.{name}]: a role name is 1 to 50 lowercase letters (first), digits, '_' or '-'"
                ));
            }
            let resolved = RouteClass::ALL.map(|class| rates.get(class).unwrap_or(default_rates[class.index()]));
            roles.insert(name.clone(), RouteClass::ALL.map(|class| index(class, resolved[class.index()])));
        }
        let mut keys = HashMap::new();
        for (id, rates) in &config.keys {
            let id = uuid::Uuid::parse_str(id)
                .map_err(|_| format!("[rate_limits.keys.\"{id}\"]: an API key id is a UUID"))?
                .to_string();
            // A key's own rates, else those of its role (known only per request), else the
            // default: a key override states every class it changes, the rest follows the role.
            let slots =
                RouteClass::ALL.map(|class| rates.get(class).map(|rate| index(class, rate)).unwrap_or(usize::MAX));
            keys.insert(id, slots);
        }
        Ok(RateLimits { inner: Some(Arc::new(Inner { limiters, default, roles, keys })) })
    }

    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Counts one request of `identity` (e.g. `key:<uuid>`, `ip:<addr>`) on a `class` route.
    /// `role` and `key_id` select the overrides that apply.
    pub fn check(
        &self,
        class: RouteClass,
        identity: &str,
        role: Option<&str>,
        key_id: Option<&str>,
    ) -> Option<Decision> {
        let inner = self.inner.as_ref()?;
        let c = class.index();
        let by_role = role.and_then(|r| inner.roles.get(r)).map(|slots| slots[c]);
        let by_key = key_id.and_then(|k| inner.keys.get(k)).map(|slots| slots[c]).filter(|&i| i != usize::MAX);
        let limiter = &inner.limiters[by_key.or(by_role).unwrap_or(inner.default[c])];
        let quota = limiter.rate.quota();
        let limit = limiter.rate.burst;
        let key = identity.to_string();
        Some(match limiter.keyed.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = limit.saturating_sub(remaining);
                let reset = quota.replenish_interval() * missing;
                Decision::Allowed { limit, remaining, reset_secs: ceil_secs(reset) }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.keyed.clock().now());
                Decision::Refused { limit, retry_after_secs: ceil_secs(wait).max(1) }
            }
        })
    }

    /// Forgets callers whose bucket is full again and gives the memory back, so a stream of
    /// distinct callers or client IPs cannot grow the limiters without bound.
    pub fn housekeep(&self) {
        if let Some(inner) = &self.inner {
            for l in &inner.limiters {
                l.keyed.retain_recent();
                l.keyed.shrink_to_fit();
            }
        }
    }

    /// Callers currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.inner.as_ref().map(|i| i.limiters.iter().map(|l| l.keyed.len()).sum()).unwrap_or(0)
    }

    /// Runs [`RateLimits::housekeep`] every `every`, for as long as the server runs.
    pub fn spawn_housekeeping(&self, every: Duration) {
        if !self.is_on() {
            return;
        }
        let limits = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                limits.housekeep();
            }
        });
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Everything the edge needs besides the handlers: rate limits and response header settings.
#[derive(Clone)]
pub struct Edge {
    pub rates: RateLimits,
    /// `Strict-Transport-Security: max-age=<this>; includeSubDomains`; 0 sends none.
    pub hsts_max_age: u64,
}

impl Default for Edge {
    fn default() -> Self {
        Edge { rates: RateLimits::new(&RateLimitConfig::default()).expect("built-in limits"), hsts_max_age: 31_536_000 }
    }
}

/// State of one route's [`enforce`] middleware.
#[derive(Clone)]
pub struct LimitState {
    pub app: AppState,
    pub class: RouteClass,
}

/// The identity a request is counted under: the authenticated caller, else the client IP (when
/// the server was started with connection info; without it, public routes are not limited).
fn identity(request: &Request) -> Option<(String, Option<String>, Option<String>)> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        let key = caller.key_id.to_string();
        let role = Some(caller.role.as_str().to_string()).filter(|r| !r.is_empty());
        return Some((format!("{}:{key}", caller.kind.as_str()), role, Some(key)));
    }
    // Partners are limited per partner (`[rate_limits.keys."<client id>"]` sets one's rates).
    if let Some(partner) = request.extensions().get::<crate::auth::PartnerCaller>() {
        let id = partner.partner.id.clone();
        return Some((format!("partner:{id}"), None, Some(id)));
    }
    if let Some(crate::auth::CustomerCaller(id)) = request.extensions().get::<crate::auth::CustomerCaller>() {
        return Some((format!("customer:{id}"), None, None));
    }
    let ip: IpAddr = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some((format!("ip:{ip}"), None, None))
}

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Counts the request against its caller's rate for the route's class; refuses it with 429
/// `rate_limited` when the caller is over it. Layered inside the guard, so the caller is known
/// and the body has not been read.
pub async fn enforce(State(state): State<LimitState>, request: Request, next: Next) -> Response {
    let Some((who, role, key)) = identity(&request) else {
        return next.run(request).await;
    };
    let Some(decision) = state.app.edge.rates.check(state.class, &who, role.as_deref(), key.as_deref()) else {
        return next.run(request).await;
    };
    match decision {
        Decision::Allowed { limit, remaining, reset_secs } => {
            let mut response = next.run(request).await;
            let h = response.headers_mut();
            h.insert(RATELIMIT_LIMIT, HeaderValue::from(limit));
            h.insert(RATELIMIT_REMAINING, HeaderValue::from(remaining));
            h.insert(RATELIMIT_RESET, HeaderValue::from(reset_secs));
            response
        }
        Decision::Refused { limit, retry_after_secs } => {
            state.app.metrics.rate_limited.with_label_values(&[state.class.as_str()]).inc();
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many {} requests: the limit is a burst of {limit}; retry in {retry_after_secs} s",
                    state.class.as_str()
                ),
            );
            e.details = Some(serde_json::json!({ "class": state.class.as_str(), "limit": limit }));
            e.retry_after = Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX));
            let mut response = e.into_response();
            let h = response.headers_mut();
            h.insert(RATELIMIT_LIMIT, HeaderValue::from(limit));
            h.insert(RATELIMIT_REMAINING, HeaderValue::from(0u32));
            h.insert(RATELIMIT_RESET, HeaderValue::from(retry_after_secs));
            response
        }
    }
}

/// The CSP of responses that set none (JSON, errors): nothing may load, nothing may frame it.
/// The explorer page sets its own, which allows its own scripts and styles.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the security headers to every response that did not set them itself: `nosniff`,
/// `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `Cache-Control: no-store` (the
/// explorer's page and assets set their own caching), a deny-all CSP, and HSTS when configured.
pub fn security_headers<S: Clone + Send + Sync + 'static>(router: axum::Router<S>, edge: &Edge) -> axum::Router<S> {
    use tower_http::set_header::SetResponseHeaderLayer as Set;
    let router = router
        .layer(Set::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(Set::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(Set::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(Set::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(Set::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP)));
    if edge.hsts_max_age == 0 {
        return router;
    }
    let hsts = HeaderValue::from_str(&format!("max-age={}; includeSubDomains", edge.hsts_max_age))
        .expect("digits are a valid header value");
    router.layer(Set::if_not_present(header::STRICT_TRANSPORT_SECURITY, hsts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "1000/s burst 2000".parse().unwrap();
        assert_eq!(r, Rate::per_second(1000, 2000));
        assert_eq!(r.to_string(), "1000/s burst 2000");
        let r: Rate = "30/min".parse().unwrap();
        assert_eq!((r.count, r.per, r.burst), (30, Duration::from_secs(60), 30));
        for bad in ["", "10", "10/d", "0/s", "10/s burst", "10/s burst 0", "10/s bust 3", "x/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overrides_apply_key_then_role_then_default() {
        let key = uuid::Uuid::now_v7().to_string();
        let config: RateLimitConfig = toml::from_str(&format!(
            "[default]\nread = \"1/min burst 5\"\n[roles.teller]\nread = \"1/min burst 2\"\n[keys.\"{key}\"]\nwrite = \"1/min burst 1\"\n"
        ))
        .unwrap();
        let limits = RateLimits::new(&config).unwrap();
        let burst = |class, who: &str, role, key: Option<&str>| {
            (0..10)
                .take_while(|_| matches!(limits.check(class, who, role, key), Some(Decision::Allowed { .. })))
                .count()
        };
        assert_eq!(burst(RouteClass::Read, "a", Some("admin"), None), 5);
        assert_eq!(burst(RouteClass::Read, "b", Some("teller"), None), 2);
        // The key's own write rate; its reads follow its role.
        assert_eq!(burst(RouteClass::Write, "c", Some("teller"), Some(&key)), 1);
        assert_eq!(burst(RouteClass::Read, "c", Some("teller"), Some(&key)), 2);
        assert!(matches!(
            limits.check(RouteClass::Read, "a", None, None),
            Some(Decision::Refused { limit: 5, retry_after_secs: 60 })
        ));
        assert!(RateLimits::new(&toml::from_str("[roles.branch-manager]\nread = \"1/s\"").unwrap()).is_ok());
        assert!(RateLimits::new(&toml::from_str("[roles.\"Bad Name\"]\nread = \"1/s\"").unwrap()).is_err());
        assert!(RateLimits::new(&toml::from_str("[keys.nope]\nread = \"1/s\"").unwrap()).is_err());
        assert!(!RateLimits::new(&toml::from_str("enabled = false").unwrap()).unwrap().is_on());
    }
}
