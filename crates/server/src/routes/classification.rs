//! The data classification catalogue (`access::classification`), published for auditors and
//! admins: every API field and stored column that holds personal or financial data, its level
//! and how it is masked for a caller without the permission that shows it in clear.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use access::classification::{Classified, Level, CATALOGUE};

use crate::error::ApiError;

/// One classification level.
#[derive(Serialize, ToSchema)]
pub struct LevelView {
    pub level: Level,
    pub meaning: &'static str,
}

/// The catalogue.
#[derive(Serialize, ToSchema)]
pub struct ClassificationCatalogue {
    /// The four levels, least sensitive first.
    pub levels: Vec<LevelView>,
    /// The level of an API field the catalogue does not list.
    pub default_level: Level,
    /// Every classified API field (`Schema.property`) and stored column (`table.column`).
    pub entries: Vec<Classified>,
}

#[utoipa::path(get, path = "/v1/security/classification", tag = "security",
    responses((status = 200, description = "The classification catalogue that drives masking in responses, exports and logs", body = ClassificationCatalogue)),
    security(("api_key" = [])))]
pub async fn get_classification() -> Result<Json<ClassificationCatalogue>, ApiError> {
    let levels = vec![
        LevelView { level: Level::Public, meaning: "may be shown to anyone" },
        LevelView {
            level: Level::Internal,
            meaning: "identifiers, statuses, timestamps: shown to whoever may call the route",
        },
        LevelView {
            level: Level::Confidential,
            meaning: "financial data and personal data that does not identify a person on its own: shown to \
                      whoever may call the route, never logged",
        },
        LevelView {
            level: Level::Restricted,
            meaning: "names, ID numbers, phone numbers (encrypted at rest, in clear only with customers_pii) \
                      and secrets (shown once to their creator, stored only as hashes); never logged",
        },
    ];
    Ok(Json(ClassificationCatalogue { levels, default_level: Level::Internal, entries: CATALOGUE.to_vec() }))
}

#[cfg(test)]
mod tests {
    use access::classification::{lookup, Level, Masking, Scope, CATALOGUE};
    use utoipa::OpenApi;

    /// Property names that hold (or may hold) personal data or secrets.
    const PERSONAL: &[&str] = &[
        "name",
        "id_number",
        "phone",
        "email",
        "address",
        "ip",
        "password",
        "secret",
        "token",
        "totp",
        "recovery",
        "otpauth",
        "external_id",
        "birth",
        "card",
    ];

    fn personal(property: &str) -> bool {
        let words: Vec<&str> = property.split('_').collect();
        PERSONAL.iter().any(|p| {
            let parts: Vec<&str> = p.split('_').collect();
            words.windows(parts.len()).any(|w| w == parts.as_slice())
                || words.iter().any(|w| w.strip_suffix('s') == Some(*p))
        }) || property == "username"
            || property == "display_name"
    }

    fn schemas() -> Vec<(String, String)> {
        let doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap();
        let mut out = Vec::new();
        for (schema, body) in doc["components"]["schemas"].as_object().unwrap() {
            if let Some(props) = body["properties"].as_object() {
                for p in props.keys() {
                    out.push((schema.clone(), p.clone()));
                }
            }
        }
        out
    }

    /// Every personal-looking property of the published schemas is classified (on purpose, even
    /// when it turns out internal: the name of a product is not a person's).
    #[test]
    fn the_catalogue_covers_every_personal_field_of_the_api() {
        let missing: Vec<String> = schemas()
            .into_iter()
            .filter(|(_, p)| personal(p))
            .map(|(s, p)| format!("{s}.{p}"))
            .filter(|name| lookup(Scope::Api, name).is_none())
            .collect();
        assert!(missing.is_empty(), "not in the classification catalogue: {missing:#?}");
    }

    /// The catalogue names only fields that exist.
    #[test]
    fn every_api_entry_names_a_published_field() {
        let fields: std::collections::HashSet<String> =
            schemas().into_iter().map(|(s, p)| format!("{s}.{p}")).collect();
        let unknown: Vec<&str> =
            CATALOGUE.iter().filter(|c| c.scope == Scope::Api && !fields.contains(c.name)).map(|c| c.name).collect();
        assert!(unknown.is_empty(), "not properties of the OpenAPI document: {unknown:#?}");
    }

    /// Every sealed column is restricted.
    #[test]
    fn every_encrypted_column_is_restricted() {
        let mut tables = Vec::new();
        tables.extend_from_slice(customer_platform::encryption::encrypted_tables());
        tables.extend_from_slice(lending_platform::store::ENCRYPTED_TABLES);
        tables.extend_from_slice(risk_platform::store::ENCRYPTED_TABLES);
        tables.extend_from_slice(openbank_platform::ENCRYPTED_TABLES);
        tables.extend_from_slice(webhooks::ENCRYPTED_TABLES);
        assert!(tables.len() >= 5);
        for t in tables {
            for column in t.columns {
                let name = format!("{}.{column}", t.table);
                let c = lookup(Scope::Column, &name).unwrap_or_else(|| panic!("{name} is not classified"));
                assert_eq!(c.level, Level::Restricted, "{name}");
                assert!(c.personal || c.masking == Masking::Secret, "{name}: personal data or a secret");
            }
        }
    }
}
