//! The statuses every operation shares, added to the OpenAPI document in one place so the
//! document lists every status the server can answer (the contract test in `tests/contract.rs`
//! checks that it does). Each handler documents its own success and domain errors; this adds,
//! where they apply and when the handler did not already describe them:
//!
//! * 401 and 403 on operations that need an API key (missing / bad key; role lacks permission);
//! * 400 `malformed_json`, 413 `payload_too_large` (naming the route's body limit), 415
//!   `unsupported_media_type` and 422 `invalid_request` / `unknown_field` on operations with a
//!   JSON body;
//! * 400 `invalid_path` and 404 on operations with path parameters;
//! * 400 `invalid_query` and 422 `parameter_out_of_range` on operations with query parameters;
//! * 429 `rate_limited` on every operation (with `Retry-After` and the `RateLimit-*` headers);
//! * 500 `internal` (or `record_integrity_failed`) and 503 `unavailable` on every operation.
//!
//! It also states, as `x-required-permission`, the permission each operation needs, taken from
//! the route table the router is built from (so the document cannot disagree with the guard),
//! and on operations that wait for a second person (`x-four-eyes`) their 202 answer.

use std::collections::HashMap;

use axum::http::Method;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::Modify;

use crate::auth::Access;

pub struct SharedResponses;

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build(),
    )
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description));
}

fn document_shared(op: &mut Operation, path: &str) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if secured {
        add(op, "401", "unauthorized: missing, malformed, unknown or revoked API key");
        add(
            op,
            "403",
            "forbidden: the caller's role lacks the permission this operation needs (`x-required-permission`)",
        );
    }
    if op.request_body.is_some() {
        add(op, "400", "malformed_json: the body is not JSON");
        let limit = crate::limits::body_limit(path);
        let size = if limit >= 1024 * 1024 {
            format!("{} MiB", limit / (1024 * 1024))
        } else {
            format!("{} KiB", limit / 1024)
        };
        add(op, "413", &format!("payload_too_large: the body is over this operation's limit of {size}"));
        add(op, "415", "unsupported_media_type: the body must be sent as Content-Type: application/json");
        add(
            op,
            "422",
            "invalid_request: well-formed JSON of the wrong shape (the message names the field); \
             unknown_field: a field the operation does not take (`details.field` names it)",
        );
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    let (in_path, in_query) = (
        params.iter().any(|p| p.parameter_in == ParameterIn::Path),
        params.iter().any(|p| p.parameter_in == ParameterIn::Query),
    );
    if in_path {
        add(op, "400", "invalid_path: a path parameter does not parse (e.g. not a UUID)");
        add(op, "404", "not_found: nothing with this id");
    }
    if in_query {
        add(op, "400", "invalid_query: a query parameter does not parse");
        add(op, "422", "parameter_out_of_range: a query parameter is outside its range (`details` names it)");
    }
    add(
        op,
        "429",
        "rate_limited: the caller (API key; client IP on public operations) is over its rate for this \
         class of operation (read, write, heavy, auth); retry after `Retry-After` seconds. Responses carry \
         `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`",
    );
    add(
        op,
        "500",
        "internal: an unexpected failure; details are in the server log, never in the response. \
         record_integrity_failed: a stored record's encrypted personal data failed its integrity check \
         (`details` names the table and record)",
    );
    add(
        op,
        "503",
        "unavailable or overloaded: the database is unreachable or a queue is full; retry (see `Retry-After`)",
    );
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let access: HashMap<(String, Method), (Access, bool)> = crate::endpoints()
            .into_iter()
            .map(|e| ((e.path.to_string(), e.method), (e.access, !matches!(e.four_eyes, crate::FourEyes::Never))))
            .collect();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
                (Method::PATCH, &mut item.patch),
                (Method::HEAD, &mut item.head),
                (Method::OPTIONS, &mut item.options),
                (Method::TRACE, &mut item.trace),
            ] {
                let Some(op) = op else { continue };
                document_shared(op, path);
                let Some((access, four_eyes)) = access.get(&(path.clone(), method)) else { continue };
                if let Access::Needs(permission) = access {
                    let extension = ExtensionsBuilder::new().add("x-required-permission", permission.as_str()).build();
                    op.extensions.get_or_insert_with(Default::default).merge(extension);
                }
                if *four_eyes {
                    // Maker-checker: held for a second person's approval (README "Maker-checker").
                    op.responses.responses.entry("202".to_string()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(
                                    "Held for a second person's approval (maker-checker): nothing changed yet; \
                                     `POST /v1/approvals/{id}/approve` runs it",
                                )
                                .content(
                                    "application/json",
                                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ApprovalAnswer"))).build(),
                                )
                                .build(),
                        )
                    });
                    let extension = ExtensionsBuilder::new().add("x-four-eyes", true).build();
                    op.extensions.get_or_insert_with(Default::default).merge(extension);
                }
            }
        }
    }
}
