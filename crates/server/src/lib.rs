//! # server
//!
//! Wires the domain crates to HTTP with axum: authentication (API keys, role-based
//! permissions), JSON errors, Prometheus metrics, the OpenAPI document (utoipa) and a
//! self-contained API explorer. Domain logic stays in the domain crates; handlers only
//! translate between HTTP and those crates.

pub mod auth;
pub mod contract;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use contract::SharedResponses;
use ledger::Ledger;
use storage::Database;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use auth::{IssuedKey, Role};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub ledger: Ledger,
    pub metrics: metrics::Metrics,
    pub keys: access::KeyStore,
    pub tags: customer_platform::TagRules,
    pub customers: customer_platform::CustomerStore,
    pub lending: lending_platform::LendingService,
    pub risk: std::sync::Arc<risk_platform::RiskService>,
}

impl AppState {
    /// Builds the state with the default risk settings.
    pub async fn load(db: Database, ledger: Ledger) -> Result<Self, error::ApiError> {
        Self::load_with(db, ledger, risk_platform::RiskConfig::default()).await
    }

    /// Builds the state, loading the customer tag rules (built-ins plus stored versions) and the
    /// risk engine's rule sets, lists, cases and model.
    pub async fn load_with(
        db: Database,
        ledger: Ledger,
        risk_config: risk_platform::RiskConfig,
    ) -> Result<Self, error::ApiError> {
        let tags = customer_platform::TagRules::load(&db).await?;
        let risk = std::sync::Arc::new(risk_platform::RiskService::load(&db, &ledger, risk_config).await?);
        let lending = lending_platform::LendingService::new(db.clone(), ledger.clone()).with_risk(risk.clone());
        // Closing a customer asks the ledger and lending whether anything is still open.
        let products: Vec<std::sync::Arc<dyn customer_platform::OpenProducts>> =
            vec![std::sync::Arc::new(ledger.clone()), std::sync::Arc::new(lending.clone())];
        let customers = customer_platform::CustomerStore::new(db.clone()).with_open_products(products);
        Ok(AppState {
            risk: risk.clone(),
            db: db.clone(),
            ledger: ledger.clone(),
            metrics: metrics::Metrics::new(),
            keys: access::KeyStore::new(db.clone()),
            tags,
            customers,
            lending,
        })
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("dbk_...").build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "digibank API", description = "Digital banking core: double-entry ledger and more. \
        Amounts are integer minor units (fen for CNY). Every endpoint except /health, /openapi.json and /docs needs `Authorization: Bearer <api key>`."),
    paths(
        routes::ledger::open_account, routes::ledger::list_accounts, routes::ledger::get_account,
        routes::ledger::freeze_account, routes::ledger::unfreeze_account, routes::ledger::close_account,
        routes::ledger::balance, routes::ledger::entries,
        routes::ledger::create_transfer, routes::ledger::create_batch, routes::ledger::get_transfer,
        routes::ledger::post_pending, routes::ledger::void_pending,
        routes::keys::create_key, routes::keys::revoke_key,
        routes::customers::create_customer, routes::customers::get_customer, routes::customers::list_customers,
        routes::customers::update_customer, routes::customers::close_customer, routes::customers::put_kyc,
        routes::customers::customer_history, routes::customers::merge_customers,
        routes::profiles::get_profile, routes::profiles::get_customer_tags, routes::profiles::get_facts, routes::profiles::put_facts,
        routes::profiles::link_identity, routes::profiles::get_recommendations, routes::profiles::churn_risk,
        routes::profiles::list_segments, routes::profiles::put_segment, routes::profiles::recompute_all,
        routes::tags::list_tags, routes::tags::get_tag, routes::tags::put_tag, routes::tags::evaluate_tags,
        routes::risk::decide, routes::risk::get_decision, routes::risk::list_rule_sets, routes::risk::get_rule_set,
        routes::risk::create_rule_set, routes::risk::activate_rule_set, routes::risk::backtest_rule_set,
        routes::risk::schema, routes::risk::list_entries, routes::risk::add_list_entry, routes::risk::delete_list_entry,
        routes::risk::list_cases, routes::risk::resolve_case, routes::risk::get_model, routes::risk::reload_model,
        routes::risk::market_var,
        routes::lending::list_products, routes::lending::apply, routes::lending::get_application,
        routes::lending::make_offer, routes::lending::accept_offer, routes::lending::get_loan, routes::lending::repay,
        routes::lending::draw, routes::lending::prepay, routes::lending::list_loans, routes::lending::run_eod,
        routes::lending::review_queue, routes::lending::approve_review, routes::lending::decline_review,
        routes::lending::write_off, routes::lending::register_document, routes::lending::register_receivable,
        routes::lending::get_receivable, routes::lending::confirm_receivable, routes::lending::finance_receivable,
        routes::system::health, routes::system::metrics, routes::system::openapi,
    ),
    modifiers(&BearerAuth, &SharedResponses),
    tags((name = "accounts"), (name = "transfers"), (name = "customers"), (name = "lending"), (name = "security"), (name = "risk"), (name = "system"))
)]
pub struct ApiDoc;

/// Request bodies up to 8 MiB: a full batch of 8190 transfers with metadata fits.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    use routes::{customers, keys, ledger as l, lending as ln, profiles, risk as r, system, tags};
    Router::new()
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .route("/", get(system::docs))
        .route("/docs", get(system::docs))
        .route("/docs/assets/{file}", get(system::docs_asset))
        .route("/v1/accounts", post(l::open_account).get(l::list_accounts))
        .route("/v1/accounts/{id}", get(l::get_account))
        .route("/v1/accounts/{id}/freeze", post(l::freeze_account))
        .route("/v1/accounts/{id}/unfreeze", post(l::unfreeze_account))
        .route("/v1/accounts/{id}/close", post(l::close_account))
        .route("/v1/accounts/{id}/balance", get(l::balance))
        .route("/v1/accounts/{id}/entries", get(l::entries))
        .route("/v1/transfers", post(l::create_transfer))
        .route("/v1/transfers/batch", post(l::create_batch))
        .route("/v1/transfers/{id}", get(l::get_transfer))
        .route("/v1/transfers/{id}/post", post(l::post_pending))
        .route("/v1/transfers/{id}/void", post(l::void_pending))
        .route("/v1/customers", post(customers::create_customer).get(customers::list_customers))
        .route(
            "/v1/customers/{id}",
            get(customers::get_customer).patch(customers::update_customer).delete(customers::close_customer),
        )
        .route("/v1/customers/{id}/kyc", axum::routing::put(customers::put_kyc))
        .route("/v1/customers/{id}/history", get(customers::customer_history))
        .route("/v1/customers/{id}/merge", post(customers::merge_customers))
        .route("/v1/customers/churn-risk", get(profiles::churn_risk))
        .route("/v1/customers/recompute", post(profiles::recompute_all))
        .route("/v1/customers/{id}/profile", get(profiles::get_profile))
        .route("/v1/customers/{id}/tags", get(profiles::get_customer_tags))
        .route("/v1/customers/{id}/facts", get(profiles::get_facts).put(profiles::put_facts))
        .route("/v1/customers/{id}/identities", post(profiles::link_identity))
        .route("/v1/customers/{id}/recommendations", get(profiles::get_recommendations))
        .route("/v1/segments", get(profiles::list_segments))
        .route("/v1/segments/{id}", axum::routing::put(profiles::put_segment))
        .route("/v1/tags", get(tags::list_tags))
        .route("/v1/tags/evaluate", post(tags::evaluate_tags))
        .route("/v1/tags/{id}", get(tags::get_tag).put(tags::put_tag))
        .route("/v1/risk/decisions", post(r::decide))
        .route("/v1/risk/decisions/{id}", get(r::get_decision))
        .route("/v1/risk/rule-sets", get(r::list_rule_sets).post(r::create_rule_set))
        .route("/v1/risk/rule-sets/{version}", get(r::get_rule_set))
        .route("/v1/risk/rule-sets/{version}/activate", post(r::activate_rule_set))
        .route("/v1/risk/rule-sets/{version}/backtest", post(r::backtest_rule_set))
        .route("/v1/risk/schema", get(r::schema))
        .route("/v1/risk/lists", get(r::list_entries).post(r::add_list_entry))
        .route("/v1/risk/lists/{kind}/{subject}/{value}", delete(r::delete_list_entry))
        .route("/v1/risk/cases", get(r::list_cases))
        .route("/v1/risk/cases/{id}/resolve", post(r::resolve_case))
        .route("/v1/risk/model", get(r::get_model))
        .route("/v1/risk/model/reload", post(r::reload_model))
        .route("/v1/risk/market/var", post(r::market_var))
        .route("/v1/lending/products", get(ln::list_products))
        .route("/v1/lending/applications", post(ln::apply))
        .route("/v1/lending/applications/{id}", get(ln::get_application))
        .route("/v1/lending/applications/{id}/offer", post(ln::make_offer))
        .route("/v1/lending/offers/{id}/accept", post(ln::accept_offer))
        .route("/v1/lending/loans", get(ln::list_loans))
        .route("/v1/lending/loans/{id}", get(ln::get_loan))
        .route("/v1/lending/loans/{id}/repayments", post(ln::repay))
        .route("/v1/lending/loans/{id}/draws", post(ln::draw))
        .route("/v1/lending/loans/{id}/prepayments", post(ln::prepay))
        .route("/v1/lending/loans/{id}/write-off", post(ln::write_off))
        .route("/v1/lending/eod", post(ln::run_eod))
        .route("/v1/lending/review-queue", get(ln::review_queue))
        .route("/v1/lending/review-queue/{decision_id}/approve", post(ln::approve_review))
        .route("/v1/lending/review-queue/{decision_id}/decline", post(ln::decline_review))
        .route("/v1/lending/documents", post(ln::register_document))
        .route("/v1/lending/receivables", post(ln::register_receivable))
        .route("/v1/lending/receivables/{id}", get(ln::get_receivable))
        .route("/v1/lending/receivables/{id}/confirm", post(ln::confirm_receivable))
        .route("/v1/lending/receivables/{id}/finance", post(ln::finance_receivable))
        .route("/v1/api-keys", post(keys::create_key))
        .route("/v1/api-keys/{id}", delete(keys::revoke_key))
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Releases expired two-phase holds once a second, for as long as the server runs.
pub fn spawn_expiry_sweeper(ledger: Ledger) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            match ledger.expire_due().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "released expired holds"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    });
}

/// Binds `addr` and serves until the process is stopped. Returns the bound address through
/// `on_bound` first (useful with port 0).
pub async fn serve(state: AppState, addr: SocketAddr, on_bound: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    on_bound(listener.local_addr()?);
    spawn_expiry_sweeper(state.ledger.clone());
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
