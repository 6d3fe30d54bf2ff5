//! # server
//!
//! Wires the domain crates to HTTP with axum: authentication (API keys, role-based
//! permissions), JSON errors, Prometheus metrics, the OpenAPI document (utoipa) and a
//! self-contained API explorer. Domain logic stays in the domain crates; handlers only
//! translate between HTTP and those crates.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod contract;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use contract::SharedResponses;
use ledger::Ledger;
use storage::Database;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use auth::{Access, IssuedKey, Permission, Role};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub ledger: Ledger,
    pub metrics: metrics::Metrics,
    pub keys: access::KeyStore,
    /// Staff users, their second factor and sessions.
    pub users: access::UserStore,
    /// Roles as data (shared cache with `keys` and `users`).
    pub roles: access::Roles,
    pub tags: customer_platform::TagRules,
    pub customers: customer_platform::CustomerStore,
    pub lending: lending_platform::LendingService,
    pub risk: std::sync::Arc<risk_platform::RiskService>,
    /// Field encryption: seals personal data, computes blind indexes.
    pub vault: access::Vault,
    /// The audit trail (queries, verification, sealing).
    pub audit: access::AuditTrail,
    /// Writes entries that have no change to commit with: reads of personal data, refusals.
    pub audit_recorder: access::AuditRecorder,
    /// Security alert detectors over the audit trail, the alert store and its webhook.
    pub alerts: access::SecurityAlerts,
    /// Rate limits and response header settings at the HTTP edge.
    pub edge: limits::Edge,
    /// Maker-checker: sensitive requests held for a second person ([`approvals`]).
    pub approvals: access::Approvals,
    /// Open banking: partners, the bank's token-signing keys, the OAuth 2.0 token service.
    pub openbank: openbank_platform::OpenBanking,
    /// The KPI system of the cockpit: indicator series, API response counts.
    pub kpis: kpi_platform::KpiService,
    /// Outgoing events: subscriptions, the outbox written with each change, its delivery loop.
    pub webhooks: webhooks::Webhooks,
    /// Process intelligence: export, import and mining of the process event log.
    pub process: process_platform::ProcessService,
    /// How often `serve` recomputes the KPIs.
    pub kpi_refresh: Duration,
    /// `false` only in `digibank bench http`, which measures what the audit trail costs by
    /// running the same load without it. `serve` has no way to turn the trail off.
    pub audit_trail: bool,
}

impl AppState {
    /// Builds the state with the default risk settings.
    pub async fn load(db: Database, ledger: Ledger, vault: access::Vault) -> Result<Self, error::ApiError> {
        Self::load_with(db, ledger, risk_platform::RiskConfig::default(), vault).await
    }

    /// Builds the state, loading the customer tag rules (built-ins plus stored versions) and the
    /// risk engine's rule sets, lists, cases and model.
    pub async fn load_with(
        db: Database,
        ledger: Ledger,
        risk_config: risk_platform::RiskConfig,
        vault: access::Vault,
    ) -> Result<Self, error::ApiError> {
        let roles = access::Roles::new(db.clone());
        roles.ensure_builtin().await?;
        let tags = customer_platform::TagRules::load(&db).await?;
        let risk =
            std::sync::Arc::new(risk_platform::RiskService::load(&db, &ledger, risk_config, vault.clone()).await?);
        let lending =
            lending_platform::LendingService::new(db.clone(), ledger.clone(), vault.clone()).with_risk(risk.clone());
        // Closing a customer asks the ledger and lending whether anything is still open.
        let products: Vec<std::sync::Arc<dyn customer_platform::OpenProducts>> =
            vec![std::sync::Arc::new(ledger.clone()), std::sync::Arc::new(lending.clone())];
        let customers = customer_platform::CustomerStore::new(db.clone(), vault.clone()).with_open_products(products);
        let audit = access::AuditTrail::with_clock(db.clone(), ledger.clock());
        // The issuer is the server's own address until `serve` knows it (or it is configured).
        let openbank =
            openbank_platform::OpenBanking::new(db.clone(), vault.clone(), ledger.clone(), "http://localhost")
                .with_risk(risk.clone())
                .with_lending(lending.clone());
        openbank.load_keys().await.map_err(error::ApiError::from)?;
        Ok(AppState {
            kpis: kpi_platform::KpiService::new(db.clone(), ledger.clock()),
            process: process_platform::ProcessService::new(db.clone(), ledger.clock()),
            kpi_refresh: kpi_platform::DEFAULT_REFRESH,
            webhooks: webhooks::Webhooks::new(
                db.clone(),
                vault.clone(),
                ledger.clock(),
                webhooks::WebhookSettings::default(),
            ),
            openbank,
            alerts: access::SecurityAlerts::new(db.clone(), ledger.clock(), access::AlertSettings::default()),
            audit_recorder: audit.spawn_recorder(),
            audit,
            risk: risk.clone(),
            db: db.clone(),
            ledger: ledger.clone(),
            metrics: metrics::Metrics::new(),
            keys: access::KeyStore::with_roles(db.clone(), roles.clone()),
            users: access::UserStore::new(db.clone(), roles.clone()),
            roles,
            tags,
            customers,
            lending,
            vault,
            edge: limits::Edge::default(),
            approvals: access::Approvals::new(db.clone(), ledger.clock(), access::ApprovalSettings::default()),
            audit_trail: true,
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
        components.add_security_scheme(
            "partner_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An open-banking access token from POST /open-banking/oauth2/token (EdDSA JWT, 5 minutes)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "customer_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A customer's consent-dashboard token from POST /open-banking/customer/sign-in/{id}/verify",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "digibank API", description = "Digital banking core: double-entry ledger and more. \
        Amounts are integer minor units (fen for CNY). Every endpoint except /health, /openapi.json, /docs and sign-in (`POST /v1/sessions`) needs `Authorization: Bearer <api key or session token>` (or the session cookie)."),
    paths(
        routes::ledger::open_account, routes::ledger::list_accounts, routes::ledger::get_account,
        routes::ledger::freeze_account, routes::ledger::unfreeze_account, routes::ledger::close_account,
        routes::ledger::balance, routes::ledger::entries,
        routes::ledger::create_transfer, routes::ledger::create_batch, routes::ledger::get_transfer,
        routes::ledger::post_pending, routes::ledger::void_pending,
        routes::keys::create_key, routes::keys::list_keys, routes::keys::revoke_key,
        routes::users::sign_in, routes::users::list_sessions, routes::users::sign_out, routes::users::change_password,
        routes::users::create_user, routes::users::list_users, routes::users::get_user, routes::users::update_user,
        routes::users::unlock_user, routes::users::disable_user, routes::users::enable_user, routes::users::reset_totp,
        routes::users::list_roles, routes::users::get_role, routes::users::create_role, routes::users::update_role,
        routes::users::delete_role,
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
        routes::risk::market_var, routes::insights::recent_decisions, routes::insights::outcome_mix,
        routes::insights::fraud_rings, routes::insights::lending_funnel, routes::insights::loan_portfolio,
        routes::lending::list_products, routes::lending::apply, routes::lending::get_application,
        routes::lending::make_offer, routes::lending::accept_offer, routes::lending::get_loan, routes::lending::repay,
        routes::lending::draw, routes::lending::prepay, routes::lending::list_loans, routes::lending::run_eod,
        routes::lending::review_queue, routes::lending::approve_review, routes::lending::decline_review,
        routes::lending::write_off, routes::lending::register_document, routes::lending::register_receivable,
        routes::lending::get_receivable, routes::lending::confirm_receivable, routes::lending::finance_receivable,
        routes::audit::list_audit, routes::audit::export_audit, routes::audit::verify_audit,
        routes::alerts::list_alerts, routes::alerts::get_alert, routes::alerts::acknowledge_alert,
        routes::classification::get_classification,
        routes::approvals::list_approvals, routes::approvals::get_approval, routes::approvals::approve,
        routes::approvals::reject,
        routes::openbank::register_partner, routes::openbank::list_partners, routes::openbank::get_partner,
        routes::openbank::suspend_partner, routes::openbank::activate_partner, routes::openbank::token,
        routes::openbank::introspect, routes::openbank::jwks, routes::openbank::discovery, routes::openbank::products,
        routes::openbank::par, routes::openbank::partner_usage, routes::openbank::set_partner_quota,
        routes::openbank::list_signing_keys, routes::openbank::rotate_signing_key, routes::consents::create_consent, routes::consents::get_consent,
        routes::consents::delete_consent, routes::consents::list_accounts, routes::consents::get_account,
        routes::consents::balances, routes::consents::transactions, routes::consents::authorize,
        routes::consents::consent_asset, routes::consents::get_authorization, routes::consents::send_authorization_code,
        routes::consents::verify_authorization_code, routes::consents::decide, routes::consents::customer_sign_in,
        routes::consents::customer_sign_in_verify, routes::consents::my_consents, routes::consents::revoke_my_consent,
        routes::consents::create_payment_consent, routes::consents::get_payment_consent,
        routes::consents::funds_confirmation, routes::consents::submit_payment, routes::consents::get_payment,
        routes::kpis::list_kpis, routes::kpi_alerts::list_rules, routes::kpi_alerts::get_rule,
        routes::kpi_alerts::create_rule, routes::kpi_alerts::update_rule, routes::kpi_alerts::delete_rule,
        routes::kpi_alerts::silence_rule, routes::kpi_alerts::unsilence_rule, routes::kpi_alerts::list_events,
        routes::embedded_lending::create_loan_consent, routes::embedded_lending::get_loan_consent,
        routes::embedded_lending::apply, routes::embedded_lending::get_application, routes::embedded_lending::accept,
        routes::webhooks::partner_subscribe, routes::webhooks::partner_subscriptions,
        routes::webhooks::partner_unsubscribe, routes::webhooks::partner_deliveries,
        routes::webhooks::bank_subscribe, routes::webhooks::bank_subscriptions, routes::webhooks::bank_unsubscribe,
        routes::webhooks::list_deliveries, routes::webhooks::get_delivery, routes::webhooks::replay_delivery,
        routes::process::list_logs, routes::process::import_log, routes::process::export, routes::process::dfg,
        routes::process::analysis, routes::process::case_events,
        routes::system::health, routes::system::metrics, routes::system::openapi,
    ),
    modifiers(&BearerAuth, &SharedResponses),
    tags((name = "accounts"), (name = "transfers"), (name = "customers"), (name = "lending"), (name = "security"), (name = "risk"), (name = "open banking"), (name = "open banking: accounts"), (name = "open banking: payments"), (name = "open banking: consent screen"), (name = "open banking: customer"), (name = "open banking: lending"), (name = "open banking: webhooks"), (name = "kpis"), (name = "webhooks"), (name = "process"), (name = "system"))
)]
pub struct ApiDoc;

/// The outer bound of any request body; each route has its own, smaller or equal
/// ([`limits::body_limit`]: 64 KiB for most, 8 MiB for the transfer batch).
const BODY_LIMIT: usize = limits::LARGE_BODY;

/// One row of the route table: an HTTP method on a path, who may call it, whether a second
/// person must approve it, and its handler.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    /// Maker-checker: whether the request waits for a second person ([`approvals`]).
    pub four_eyes: FourEyes,
    handler: MethodRouter<AppState>,
}

/// Whether a route's requests need a second person's approval.
#[derive(Debug, Clone, Copy)]
pub enum FourEyes {
    Never,
    Always,
    /// When the predicate holds for the JSON body (an admin key, a change of a user's role).
    When(fn(&serde_json::Value) -> bool),
}

impl Endpoint {
    /// Every request to this route waits for a second person.
    fn four_eyes(self) -> Endpoint {
        Endpoint { four_eyes: FourEyes::Always, ..self }
    }

    /// Requests whose JSON body satisfies `sensitive` wait for a second person.
    fn four_eyes_when(self, sensitive: fn(&serde_json::Value) -> bool) -> Endpoint {
        Endpoint { four_eyes: FourEyes::When(sensitive), ..self }
    }
}

fn endpoint<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Endpoint
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("route table methods are standard");
    Endpoint { method, path, access, four_eyes: FourEyes::Never, handler: axum::routing::on(filter, handler) }
}

/// The route table: every endpoint with the permission it needs. The router is built from it
/// (each endpoint behind its [`auth::guard`]), the OpenAPI document states each operation's
/// permission from it (`x-required-permission`), and the authorization tests walk it.
pub fn endpoints() -> Vec<Endpoint> {
    use auth::ANY_SCOPE;
    use routes::{
        alerts, approvals as ap, audit, classification, cockpit, consents as cs, customers as c,
        embedded_lending as el, insights as ins, keys, kpi_alerts as ka, kpis, ledger as l, lending as ln,
        openbank as ob, process as pm, profiles as pr, risk as r, system, tags, users as u, webhooks as wh,
    };
    use Access::{Customer, Needs, Partner, Public, Signed};
    use Permission as P;
    let (get, post, put, patch, del) = (Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE);
    vec![
        endpoint(get.clone(), "/health", Public, system::health),
        endpoint(get.clone(), "/metrics", Needs(P::MetricsRead), system::metrics),
        endpoint(get.clone(), "/v1/kpis", Needs(P::KpisRead), kpis::list_kpis),
        endpoint(get.clone(), "/v1/kpi-alerts/rules", Needs(P::KpisRead), ka::list_rules),
        endpoint(post.clone(), "/v1/kpi-alerts/rules", Needs(P::KpiAlertsAdmin), ka::create_rule),
        endpoint(get.clone(), "/v1/kpi-alerts/rules/{id}", Needs(P::KpisRead), ka::get_rule),
        endpoint(put.clone(), "/v1/kpi-alerts/rules/{id}", Needs(P::KpiAlertsAdmin), ka::update_rule),
        endpoint(del.clone(), "/v1/kpi-alerts/rules/{id}", Needs(P::KpiAlertsAdmin), ka::delete_rule),
        endpoint(post.clone(), "/v1/kpi-alerts/rules/{id}/silence", Needs(P::KpiAlertsAdmin), ka::silence_rule),
        endpoint(del.clone(), "/v1/kpi-alerts/rules/{id}/silence", Needs(P::KpiAlertsAdmin), ka::unsilence_rule),
        endpoint(get.clone(), "/v1/kpi-alerts/events", Needs(P::KpisRead), ka::list_events),
        // process intelligence
        endpoint(get.clone(), "/v1/process/logs", Needs(P::ProcessRead), pm::list_logs),
        endpoint(post.clone(), "/v1/process/logs", Needs(P::ProcessWrite), pm::import_log),
        endpoint(get.clone(), "/v1/process/export", Needs(P::ProcessRead), pm::export),
        endpoint(get.clone(), "/v1/process/dfg", Needs(P::ProcessRead), pm::dfg),
        endpoint(get.clone(), "/v1/process/analysis", Needs(P::ProcessRead), pm::analysis),
        endpoint(get.clone(), "/v1/process/cases/{id}", Needs(P::ProcessRead), pm::case_events),
        endpoint(get.clone(), "/openapi.json", Public, system::openapi),
        endpoint(get.clone(), "/", Public, cockpit::page),
        endpoint(get.clone(), "/cockpit/assets/{file}", Public, cockpit::asset),
        endpoint(get.clone(), "/docs", Public, system::docs),
        endpoint(get.clone(), "/docs/assets/{file}", Public, system::docs_asset),
        // ledger
        endpoint(post.clone(), "/v1/accounts", Needs(P::AccountsWrite), l::open_account),
        endpoint(get.clone(), "/v1/accounts", Needs(P::AccountsRead), l::list_accounts),
        endpoint(get.clone(), "/v1/accounts/{id}", Needs(P::AccountsRead), l::get_account),
        endpoint(post.clone(), "/v1/accounts/{id}/freeze", Needs(P::AccountsWrite), l::freeze_account),
        endpoint(post.clone(), "/v1/accounts/{id}/unfreeze", Needs(P::AccountsWrite), l::unfreeze_account),
        endpoint(post.clone(), "/v1/accounts/{id}/close", Needs(P::AccountsWrite), l::close_account),
        endpoint(get.clone(), "/v1/accounts/{id}/balance", Needs(P::AccountsRead), l::balance),
        endpoint(get.clone(), "/v1/accounts/{id}/entries", Needs(P::TransfersRead), l::entries),
        endpoint(post.clone(), "/v1/transfers", Needs(P::TransfersWrite), l::create_transfer),
        endpoint(post.clone(), "/v1/transfers/batch", Needs(P::TransfersWrite), l::create_batch),
        endpoint(get.clone(), "/v1/transfers/{id}", Needs(P::TransfersRead), l::get_transfer),
        endpoint(post.clone(), "/v1/transfers/{id}/post", Needs(P::TransfersWrite), l::post_pending),
        endpoint(post.clone(), "/v1/transfers/{id}/void", Needs(P::TransfersWrite), l::void_pending),
        // customers
        endpoint(post.clone(), "/v1/customers", Needs(P::CustomersWrite), c::create_customer),
        endpoint(get.clone(), "/v1/customers", Needs(P::CustomersRead), c::list_customers),
        endpoint(get.clone(), "/v1/customers/{id}", Needs(P::CustomersRead), c::get_customer),
        endpoint(patch.clone(), "/v1/customers/{id}", Needs(P::CustomersWrite), c::update_customer),
        endpoint(del.clone(), "/v1/customers/{id}", Needs(P::CustomersAdmin), c::close_customer),
        endpoint(put.clone(), "/v1/customers/{id}/kyc", Needs(P::CustomersAdmin), c::put_kyc),
        endpoint(get.clone(), "/v1/customers/{id}/history", Needs(P::CustomersRead), c::customer_history),
        endpoint(post.clone(), "/v1/customers/{id}/merge", Needs(P::CustomersAdmin), c::merge_customers),
        endpoint(get.clone(), "/v1/customers/churn-risk", Needs(P::CustomersRead), pr::churn_risk),
        endpoint(post.clone(), "/v1/customers/recompute", Needs(P::TagsWrite), pr::recompute_all),
        endpoint(get.clone(), "/v1/customers/{id}/profile", Needs(P::CustomersRead), pr::get_profile),
        endpoint(get.clone(), "/v1/customers/{id}/tags", Needs(P::TagsRead), pr::get_customer_tags),
        endpoint(get.clone(), "/v1/customers/{id}/facts", Needs(P::CustomersRead), pr::get_facts),
        endpoint(put.clone(), "/v1/customers/{id}/facts", Needs(P::CustomersWrite), pr::put_facts),
        endpoint(post.clone(), "/v1/customers/{id}/identities", Needs(P::CustomersWrite), pr::link_identity),
        endpoint(get.clone(), "/v1/customers/{id}/recommendations", Needs(P::CustomersRead), pr::get_recommendations),
        endpoint(get.clone(), "/v1/segments", Needs(P::TagsRead), pr::list_segments),
        endpoint(put.clone(), "/v1/segments/{id}", Needs(P::TagsWrite), pr::put_segment),
        endpoint(get.clone(), "/v1/tags", Needs(P::TagsRead), tags::list_tags),
        endpoint(post.clone(), "/v1/tags/evaluate", Needs(P::TagsRead), tags::evaluate_tags),
        endpoint(get.clone(), "/v1/tags/{id}", Needs(P::TagsRead), tags::get_tag),
        endpoint(put.clone(), "/v1/tags/{id}", Needs(P::TagsWrite), tags::put_tag),
        // risk
        endpoint(post.clone(), "/v1/risk/decisions", Needs(P::RiskDecide), r::decide),
        endpoint(get.clone(), "/v1/risk/decisions", Needs(P::RiskRead), ins::recent_decisions),
        endpoint(get.clone(), "/v1/risk/outcomes", Needs(P::RiskRead), ins::outcome_mix),
        endpoint(get.clone(), "/v1/risk/rings", Needs(P::RiskRead), ins::fraud_rings),
        endpoint(get.clone(), "/v1/risk/decisions/{id}", Needs(P::RiskRead), r::get_decision),
        endpoint(get.clone(), "/v1/risk/rule-sets", Needs(P::RiskRead), r::list_rule_sets),
        endpoint(post.clone(), "/v1/risk/rule-sets", Needs(P::RiskAdmin), r::create_rule_set),
        endpoint(get.clone(), "/v1/risk/rule-sets/{version}", Needs(P::RiskRead), r::get_rule_set),
        endpoint(post.clone(), "/v1/risk/rule-sets/{version}/activate", Needs(P::RiskAdmin), r::activate_rule_set)
            .four_eyes(),
        endpoint(post.clone(), "/v1/risk/rule-sets/{version}/backtest", Needs(P::RiskAdmin), r::backtest_rule_set),
        endpoint(get.clone(), "/v1/risk/schema", Needs(P::RiskRead), r::schema),
        endpoint(get.clone(), "/v1/risk/lists", Needs(P::RiskRead), r::list_entries),
        endpoint(post.clone(), "/v1/risk/lists", Needs(P::RiskAdmin), r::add_list_entry),
        endpoint(del.clone(), "/v1/risk/lists/{kind}/{subject}/{value}", Needs(P::RiskAdmin), r::delete_list_entry),
        endpoint(get.clone(), "/v1/risk/cases", Needs(P::RiskRead), r::list_cases),
        endpoint(post.clone(), "/v1/risk/cases/{id}/resolve", Needs(P::CasesResolve), r::resolve_case),
        endpoint(get.clone(), "/v1/risk/model", Needs(P::RiskRead), r::get_model),
        endpoint(post.clone(), "/v1/risk/model/reload", Needs(P::RiskAdmin), r::reload_model),
        endpoint(post.clone(), "/v1/risk/market/var", Needs(P::RiskRead), r::market_var),
        // lending
        endpoint(get.clone(), "/v1/lending/products", Needs(P::LendingRead), ln::list_products),
        endpoint(get.clone(), "/v1/lending/funnel", Needs(P::LendingRead), ins::lending_funnel),
        endpoint(get.clone(), "/v1/lending/portfolio", Needs(P::LendingRead), ins::loan_portfolio),
        endpoint(post.clone(), "/v1/lending/applications", Needs(P::LendingWrite), ln::apply),
        endpoint(get.clone(), "/v1/lending/applications/{id}", Needs(P::LendingRead), ln::get_application),
        endpoint(post.clone(), "/v1/lending/applications/{id}/offer", Needs(P::LendingWrite), ln::make_offer),
        endpoint(post.clone(), "/v1/lending/offers/{id}/accept", Needs(P::LendingWrite), ln::accept_offer),
        endpoint(get.clone(), "/v1/lending/loans", Needs(P::LendingRead), ln::list_loans),
        endpoint(get.clone(), "/v1/lending/loans/{id}", Needs(P::LendingRead), ln::get_loan),
        endpoint(post.clone(), "/v1/lending/loans/{id}/repayments", Needs(P::LendingWrite), ln::repay),
        endpoint(post.clone(), "/v1/lending/loans/{id}/draws", Needs(P::LendingWrite), ln::draw),
        endpoint(post.clone(), "/v1/lending/loans/{id}/prepayments", Needs(P::LendingWrite), ln::prepay),
        endpoint(post.clone(), "/v1/lending/loans/{id}/write-off", Needs(P::LendingAdmin), ln::write_off).four_eyes(),
        endpoint(post.clone(), "/v1/lending/eod", Needs(P::LendingAdmin), ln::run_eod),
        endpoint(get.clone(), "/v1/lending/review-queue", Needs(P::LendingRead), ln::review_queue),
        endpoint(
            post.clone(),
            "/v1/lending/review-queue/{decision_id}/approve",
            Needs(P::LendingReview),
            ln::approve_review,
        ),
        endpoint(
            post.clone(),
            "/v1/lending/review-queue/{decision_id}/decline",
            Needs(P::LendingReview),
            ln::decline_review,
        ),
        endpoint(post.clone(), "/v1/lending/documents", Needs(P::LendingWrite), ln::register_document),
        endpoint(post.clone(), "/v1/lending/receivables", Needs(P::LendingWrite), ln::register_receivable),
        endpoint(get.clone(), "/v1/lending/receivables/{id}", Needs(P::LendingRead), ln::get_receivable),
        endpoint(post.clone(), "/v1/lending/receivables/{id}/confirm", Needs(P::LendingWrite), ln::confirm_receivable),
        endpoint(post.clone(), "/v1/lending/receivables/{id}/finance", Needs(P::LendingWrite), ln::finance_receivable),
        // security
        endpoint(post.clone(), "/v1/api-keys", Needs(P::KeysAdmin), keys::create_key)
            .four_eyes_when(approvals::issues_admin_key),
        endpoint(get.clone(), "/v1/api-keys", Needs(P::KeysAdmin), keys::list_keys),
        endpoint(del.clone(), "/v1/api-keys/{id}", Needs(P::KeysAdmin), keys::revoke_key),
        endpoint(post.clone(), "/v1/sessions", Public, u::sign_in),
        endpoint(get.clone(), "/v1/sessions", Signed, u::list_sessions),
        endpoint(del.clone(), "/v1/sessions/current", Signed, u::sign_out),
        endpoint(post.clone(), "/v1/sessions/current/password", Signed, u::change_password),
        endpoint(post.clone(), "/v1/users", Needs(P::UsersAdmin), u::create_user),
        endpoint(get.clone(), "/v1/users", Needs(P::UsersAdmin), u::list_users),
        endpoint(get.clone(), "/v1/users/{id}", Needs(P::UsersAdmin), u::get_user),
        endpoint(patch, "/v1/users/{id}", Needs(P::UsersAdmin), u::update_user).four_eyes_when(approvals::changes_role),
        endpoint(post.clone(), "/v1/users/{id}/unlock", Needs(P::UsersAdmin), u::unlock_user),
        endpoint(post.clone(), "/v1/users/{id}/disable", Needs(P::UsersAdmin), u::disable_user),
        endpoint(post.clone(), "/v1/users/{id}/enable", Needs(P::UsersAdmin), u::enable_user),
        endpoint(post.clone(), "/v1/users/{id}/reset-totp", Needs(P::UsersAdmin), u::reset_totp),
        endpoint(get.clone(), "/v1/roles", Needs(P::RolesAdmin), u::list_roles),
        endpoint(post.clone(), "/v1/roles", Needs(P::RolesAdmin), u::create_role).four_eyes(),
        endpoint(get.clone(), "/v1/roles/{name}", Needs(P::RolesAdmin), u::get_role),
        endpoint(put.clone(), "/v1/roles/{name}", Needs(P::RolesAdmin), u::update_role).four_eyes(),
        endpoint(del.clone(), "/v1/roles/{name}", Needs(P::RolesAdmin), u::delete_role).four_eyes(),
        endpoint(get.clone(), "/v1/audit", Needs(P::AuditRead), audit::list_audit),
        endpoint(get.clone(), "/v1/audit/export", Needs(P::AuditExport), audit::export_audit),
        endpoint(get.clone(), "/v1/audit/verify", Needs(P::AuditRead), audit::verify_audit),
        endpoint(get.clone(), "/v1/security/alerts", Needs(P::AuditRead), alerts::list_alerts),
        endpoint(get.clone(), "/v1/security/classification", Needs(P::AuditRead), classification::get_classification),
        endpoint(get.clone(), "/v1/security/alerts/{id}", Needs(P::AuditRead), alerts::get_alert),
        endpoint(
            post.clone(),
            "/v1/security/alerts/{id}/acknowledge",
            Needs(P::AlertsAcknowledge),
            alerts::acknowledge_alert,
        ),
        // maker-checker: approving or rejecting also needs the permission of the held operation
        endpoint(get.clone(), "/v1/approvals", Needs(P::ApprovalsRead), ap::list_approvals),
        endpoint(get.clone(), "/v1/approvals/{id}", Needs(P::ApprovalsRead), ap::get_approval),
        endpoint(post.clone(), "/v1/approvals/{id}/approve", Needs(P::ApprovalsRead), ap::approve),
        endpoint(post.clone(), "/v1/approvals/{id}/reject", Needs(P::ApprovalsRead), ap::reject),
        // open banking: staff manage partners; partners authenticate with client assertions
        endpoint(post.clone(), "/v1/open-banking/partners", Needs(P::PartnersAdmin), ob::register_partner)
            .four_eyes_when(ob::onboards_production_partner),
        endpoint(get.clone(), "/v1/open-banking/partners", Needs(P::PartnersRead), ob::list_partners),
        endpoint(get.clone(), "/v1/open-banking/partners/{id}", Needs(P::PartnersRead), ob::get_partner),
        endpoint(get.clone(), "/v1/open-banking/partners/{id}/usage", Needs(P::PartnersRead), ob::partner_usage),
        endpoint(post.clone(), "/v1/open-banking/partners/{id}/suspend", Needs(P::PartnersAdmin), ob::suspend_partner),
        endpoint(put, "/v1/open-banking/partners/{id}/quota", Needs(P::PartnersAdmin), ob::set_partner_quota),
        endpoint(get.clone(), "/v1/open-banking/signing-keys", Needs(P::PartnersRead), ob::list_signing_keys),
        endpoint(post.clone(), "/v1/open-banking/signing-keys/rotate", Needs(P::PartnersAdmin), ob::rotate_signing_key),
        endpoint(
            post.clone(),
            "/v1/open-banking/partners/{id}/activate",
            Needs(P::PartnersAdmin),
            ob::activate_partner,
        ),
        endpoint(post.clone(), "/open-banking/oauth2/token", Public, ob::token),
        endpoint(post.clone(), "/open-banking/oauth2/introspect", Public, ob::introspect),
        endpoint(post.clone(), "/open-banking/oauth2/par", Public, ob::par),
        endpoint(get.clone(), "/open-banking/oauth2/authorize", Public, cs::authorize),
        endpoint(get.clone(), "/open-banking/assets/{file}", Public, cs::consent_asset),
        // the consent screen's steps (the customer, at the bank)
        endpoint(get.clone(), "/open-banking/authorizations/{id}", Public, cs::get_authorization),
        endpoint(post.clone(), "/open-banking/authorizations/{id}/code", Public, cs::send_authorization_code),
        endpoint(post.clone(), "/open-banking/authorizations/{id}/verify", Public, cs::verify_authorization_code),
        endpoint(post.clone(), "/open-banking/authorizations/{id}/decision", Public, cs::decide),
        // the customer's consent dashboard
        endpoint(post.clone(), "/open-banking/customer/sign-in", Public, cs::customer_sign_in),
        endpoint(post.clone(), "/open-banking/customer/sign-in/{id}/verify", Public, cs::customer_sign_in_verify),
        endpoint(get.clone(), "/open-banking/customer/consents", Customer, cs::my_consents),
        endpoint(post.clone(), "/open-banking/customer/consents/{id}/revoke", Customer, cs::revoke_my_consent),
        // partner APIs
        endpoint(post.clone(), "/open-banking/v1/account-access-consents", Partner("accounts"), cs::create_consent),
        endpoint(get.clone(), "/open-banking/v1/account-access-consents/{id}", Partner("accounts"), cs::get_consent),
        endpoint(del.clone(), "/open-banking/v1/account-access-consents/{id}", Partner("accounts"), cs::delete_consent),
        endpoint(
            post.clone(),
            "/open-banking/v1/domestic-payment-consents",
            Partner("payments"),
            cs::create_payment_consent,
        ),
        endpoint(
            get.clone(),
            "/open-banking/v1/domestic-payment-consents/{id}",
            Partner("payments"),
            cs::get_payment_consent,
        ),
        endpoint(
            get.clone(),
            "/open-banking/v1/domestic-payment-consents/{id}/funds-confirmation",
            Partner("payments"),
            cs::funds_confirmation,
        ),
        endpoint(post.clone(), "/open-banking/v1/domestic-payments", Partner("payments"), cs::submit_payment),
        endpoint(get.clone(), "/open-banking/v1/domestic-payments/{id}", Partner("payments"), cs::get_payment),
        endpoint(get.clone(), "/open-banking/v1/accounts", Partner("accounts"), cs::list_accounts),
        endpoint(get.clone(), "/open-banking/v1/accounts/{id}", Partner("accounts"), cs::get_account),
        endpoint(get.clone(), "/open-banking/v1/accounts/{id}/balances", Partner("accounts"), cs::balances),
        endpoint(get.clone(), "/open-banking/v1/accounts/{id}/transactions", Partner("accounts"), cs::transactions),
        // embedded lending: one application per loan consent, followed to the loan
        endpoint(
            post.clone(),
            "/open-banking/v1/loan-application-consents",
            Partner("lending"),
            el::create_loan_consent,
        ),
        endpoint(
            get.clone(),
            "/open-banking/v1/loan-application-consents/{id}",
            Partner("lending"),
            el::get_loan_consent,
        ),
        endpoint(post.clone(), "/open-banking/v1/loan-applications", Partner("lending"), el::apply),
        endpoint(get.clone(), "/open-banking/v1/loan-applications/{id}", Partner("lending"), el::get_application),
        endpoint(post.clone(), "/open-banking/v1/loan-applications/{id}/acceptance", Partner("lending"), el::accept),
        // webhooks: partners subscribe to their own events (any scope); staff look after delivery
        endpoint(post.clone(), "/open-banking/v1/webhooks", Partner(ANY_SCOPE), wh::partner_subscribe),
        endpoint(get.clone(), "/open-banking/v1/webhooks", Partner(ANY_SCOPE), wh::partner_subscriptions),
        endpoint(get.clone(), "/open-banking/v1/webhooks/deliveries", Partner(ANY_SCOPE), wh::partner_deliveries),
        endpoint(del.clone(), "/open-banking/v1/webhooks/{id}", Partner(ANY_SCOPE), wh::partner_unsubscribe),
        endpoint(post.clone(), "/v1/webhooks/subscriptions", Needs(P::WebhooksAdmin), wh::bank_subscribe),
        endpoint(get.clone(), "/v1/webhooks/subscriptions", Needs(P::WebhooksAdmin), wh::bank_subscriptions),
        endpoint(del.clone(), "/v1/webhooks/subscriptions/{id}", Needs(P::WebhooksAdmin), wh::bank_unsubscribe),
        endpoint(get.clone(), "/v1/webhooks/deliveries", Needs(P::WebhooksAdmin), wh::list_deliveries),
        endpoint(get.clone(), "/v1/webhooks/deliveries/{id}", Needs(P::WebhooksAdmin), wh::get_delivery),
        endpoint(post.clone(), "/v1/webhooks/deliveries/{id}/replay", Needs(P::WebhooksAdmin), wh::replay_delivery),
        endpoint(get.clone(), "/.well-known/jwks.json", Public, ob::jwks),
        endpoint(get.clone(), "/open-banking/v1/products", Public, ob::products),
        endpoint(get, "/.well-known/openid-configuration", Public, ob::discovery),
    ]
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for e in endpoints() {
        let guard = auth::GuardState { app: state.clone(), access: e.access };
        // Runs after the guard (the caller is known) and before the body is read.
        let rate =
            limits::LimitState { app: state.clone(), class: limits::RouteClass::of(&e.method, e.path, e.access) };
        let mut handler = e.handler.layer(DefaultBodyLimit::max(limits::body_limit(e.path)));
        if !matches!(e.four_eyes, FourEyes::Never) {
            // After the guard and the rate limit, inside the audit scope, before the handler.
            let hold = approvals::HoldState { app: state.clone(), access: e.access, four_eyes: e.four_eyes };
            handler = handler.route_layer(axum::middleware::from_fn_with_state(hold, approvals::hold));
        }
        let handler = handler
            .route_layer(axum::middleware::from_fn_with_state(rate, limits::enforce))
            .route_layer(axum::middleware::from_fn_with_state(guard, auth::guard));
        router = router.route(e.path, handler);
    }
    let router = router
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http().make_span_with(request_span));
    limits::security_headers(router, &state.edge).with_state(state)
}

/// The span of one request: its method and route template, never the URI. Paths and query
/// strings can carry personal data (`/v1/risk/lists/black/phone/{value}`, `?phone=`), and the
/// classification catalogue keeps that out of the log.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request.extensions().get::<axum::extract::MatchedPath>().map_or("(no route)", |p| p.as_str());
    tracing::debug_span!("request", method = %request.method(), route = %route)
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
    let bound = listener.local_addr()?;
    // Tokens name their issuer; without a configured public URL it is this server's address.
    if state.openbank.issuer() == "http://localhost" {
        state.openbank.set_issuer(&format!("http://{bound}"));
    }
    on_bound(bound);
    spawn_expiry_sweeper(state.ledger.clone());
    state.audit.spawn_sealer();
    state.kpis.spawn(state.kpi_refresh);
    state.alerts.spawn();
    state.openbank.spawn_housekeeping();
    state.webhooks.spawn();
    state.edge.rates.spawn_housekeeping(Duration::from_secs(60));
    // With the client's address (`ConnectInfo`): API key IP allow-lists, sign-in throttling, the
    // audit trail, the alerts and the rate limits of public routes.
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
