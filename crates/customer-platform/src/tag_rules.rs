//! The customer tag rules as a running service: the built-in tags plus every version made
//! through the API, persisted in `tag_rules` and replayed over the built-ins at start-up.

use std::sync::Arc;

use customer::tags::TagVersion;
use customer::{Dimension, TagDefinition, TagRegistry};
use storage::Database;
use tokio::sync::{RwLock, RwLockReadGuard};
use uuid::Uuid;

use crate::PlatformError;

/// The live tag registry and its store. Clones share the registry.
#[derive(Clone)]
pub struct TagRules {
    db: Database,
    registry: Arc<RwLock<TagRegistry>>,
    clock: Arc<dyn clock::Clock>,
}

fn dimension_text(d: Dimension) -> String {
    serde_json::to_value(d).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The built-in tags plus every stored version, in the order they were made.
pub async fn load_registry(db: &Database) -> Result<TagRegistry, PlatformError> {
    let mut registry = TagRegistry::with_builtins()?;
    let rows: Vec<(String, i64, String, String, String)> = storage::read!(db, |conn| sqlx::query_as(
        "SELECT tag_id, version, name, dimension, rule FROM tag_rules ORDER BY created_at, tag_id, version"
    )
    .fetch_all(conn)
    .await)?;
    for (id, version, name, dimension, rule) in rows {
        let dimension: Dimension = serde_json::from_value(serde_json::Value::String(dimension))
            .map_err(|e| PlatformError::Corrupt(format!("tag {id} v{version}: {e}")))?;
        let def = TagDefinition { id: id.clone(), name, dimension, rule };
        let applied = if registry.get(&id).is_some() { registry.update(def) } else { registry.add(def) };
        applied.map_err(|e| PlatformError::Corrupt(format!("stored tag {id} v{version} no longer loads: {e}")))?;
    }
    Ok(registry)
}

impl TagRules {
    /// Loads the built-ins and the stored versions.
    pub async fn load(db: &Database) -> Result<Self, PlatformError> {
        let registry = Arc::new(RwLock::new(load_registry(db).await?));
        Ok(TagRules { db: db.clone(), registry, clock: Arc::new(clock::SystemClock) })
    }

    /// Uses `clock` for the `created_at` of new versions.
    pub fn with_clock(mut self, clock: Arc<dyn clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The registry as it is now (hold the guard briefly; clone it for long work).
    pub async fn read(&self) -> RwLockReadGuard<'_, TagRegistry> {
        self.registry.read().await
    }

    /// Adds a tag or a new version of one; returns the stored version and whether the tag is
    /// new. The rule is compiled on a copy first: a rule that does not compile, or a failed
    /// write, changes nothing.
    pub async fn save(
        &self,
        def: TagDefinition,
        created_by: Option<Uuid>,
    ) -> Result<(TagVersion, bool), PlatformError> {
        let mut registry = self.registry.write().await;
        let mut next = registry.clone();
        let id = def.id.clone();
        let created = next.get(&id).is_none();
        if created {
            next.add(def)?;
        } else {
            next.update(def)?;
        }
        let version = next.get(&id).ok_or_else(|| PlatformError::Corrupt(format!("tag {id} vanished")))?.clone();
        let d = &version.definition;
        storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO tag_rules (tag_id, version, name, dimension, rule, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(&d.id)
        .bind(i64::from(version.version))
        .bind(&d.name)
        .bind(dimension_text(d.dimension))
        .bind(&d.rule)
        .bind(created_by)
        .bind(self.clock.now_micros())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        *registry = next;
        Ok((version, created))
    }
}
