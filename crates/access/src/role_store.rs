//! Roles as data: table `roles` (migration 0012), seeded with the built-in [`Role`]s, plus the
//! roles admins create. Every node keeps the table in memory and reloads it when it is older
//! than [`ROLE_RECHECK`], so a role change reaches keys and sessions everywhere within seconds
//! (at once on the node that made it).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use storage::Database;
use utoipa::ToSchema;

use crate::{AccessError, Permission, PermissionSet, Role};

/// How long the in-memory copy of the roles table is used before it is read again.
pub const ROLE_RECHECK: Duration = Duration::from_secs(2);

/// A role as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub permissions: Vec<Permission>,
    /// Built-in roles cannot be deleted; `admin` cannot be changed.
    pub builtin: bool,
}

#[derive(Clone)]
struct Loaded {
    roles: HashMap<String, (PermissionSet, String, bool)>,
    at: Instant,
}

/// The roles table with its cache.
#[derive(Clone)]
pub struct Roles {
    db: Database,
    cache: Arc<RwLock<Option<Loaded>>>,
    clock: Arc<dyn clock::Clock>,
}

/// Role names: 1..=50 of `a-z 0-9 _ -`, starting with a letter.
pub fn valid_role_name(name: &str) -> bool {
    (1..=50).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Parses permission names; [`AccessError::UnknownPermission`] names the first unknown one.
pub fn parse_permissions(names: &[String]) -> Result<PermissionSet, AccessError> {
    names
        .iter()
        .map(|n| Permission::parse(n).ok_or_else(|| AccessError::UnknownPermission(n.clone())))
        .collect::<Result<PermissionSet, _>>()
}

impl Roles {
    pub fn new(db: Database) -> Self {
        Roles { db, cache: Default::default(), clock: Arc::new(clock::SystemClock) }
    }

    /// Writes the built-in roles that are missing (a fresh database, or a built-in added by a
    /// newer version). `admin` is rewritten to hold every permission of this version.
    pub async fn ensure_builtin(&self) -> Result<(), AccessError> {
        let now = self.clock.now_micros();
        for role in Role::ALL {
            let permissions = role.permissions().to_text();
            storage::write!(&self.db, |conn| sqlx::query(
                "INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at) \
                 VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (name) DO NOTHING"
            )
            .bind(role.as_str())
            .bind(format!("built-in role {}", role.as_str()))
            .bind(&permissions)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
            if role == Role::Admin {
                storage::write!(&self.db, |conn| sqlx::query(
                    "UPDATE roles SET permissions = $1 WHERE name = 'admin' AND permissions <> $1"
                )
                .bind(&permissions)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))?;
            }
        }
        self.invalidate();
        Ok(())
    }

    /// Forgets the in-memory copy: the next lookup reads the table.
    pub fn invalidate(&self) {
        *self.cache.write().expect("role cache lock") = None;
    }

    async fn loaded(&self) -> Result<Loaded, AccessError> {
        if let Some(l) = self.cache.read().expect("role cache lock").as_ref().filter(|l| l.at.elapsed() < ROLE_RECHECK)
        {
            return Ok(l.clone());
        }
        let rows: Vec<(String, String, String, i64)> = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT name, description, permissions, builtin FROM roles"
        )
        .fetch_all(conn)
        .await)?;
        let mut roles = HashMap::new();
        for (name, description, permissions, builtin) in rows {
            let set = if name == Role::Admin.as_str() {
                Role::Admin.permissions()
            } else {
                // A permission a newer version wrote and this one does not know is skipped.
                permissions.split(',').filter_map(|p| Permission::parse(p.trim())).collect()
            };
            roles.insert(name, (set, description, builtin != 0));
        }
        let loaded = Loaded { roles, at: Instant::now() };
        *self.cache.write().expect("role cache lock") = Some(loaded.clone());
        Ok(loaded)
    }

    /// The permissions of role `name`; none for an unknown (or deleted) role or no role.
    pub async fn permissions(&self, name: &str) -> Result<PermissionSet, AccessError> {
        if name.is_empty() {
            return Ok(PermissionSet::EMPTY);
        }
        Ok(self.loaded().await?.roles.get(name).map(|r| r.0).unwrap_or_default())
    }

    /// Whether role `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool, AccessError> {
        Ok(self.loaded().await?.roles.contains_key(name))
    }

    /// Checks a role name given for a key or user: it must exist.
    pub async fn check(&self, name: &str) -> Result<(), AccessError> {
        if self.exists(name).await? {
            Ok(())
        } else {
            Err(AccessError::UnknownRole(name.to_string()))
        }
    }

    /// Every role, by name.
    pub async fn list(&self) -> Result<Vec<RoleView>, AccessError> {
        self.invalidate();
        let loaded = self.loaded().await?;
        let mut out: Vec<RoleView> = loaded
            .roles
            .into_iter()
            .map(|(name, (set, description, builtin))| RoleView {
                name,
                description,
                permissions: set.iter().collect(),
                builtin,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One role.
    pub async fn get(&self, name: &str) -> Result<RoleView, AccessError> {
        self.list().await?.into_iter().find(|r| r.name == name).ok_or_else(|| AccessError::UnknownRole(name.into()))
    }

    /// Creates a role; [`AccessError::RoleExists`] when the name is taken.
    pub async fn create(&self, name: &str, description: &str, permissions: &[String]) -> Result<RoleView, AccessError> {
        if !valid_role_name(name) {
            return Err(AccessError::Invalid(
                "role name must be 1..=50 of a-z, 0-9, '_' and '-', starting with a letter".into(),
            ));
        }
        let set = parse_permissions(permissions)?;
        let now = self.clock.now_micros();
        let inserted = storage::write!(&self.db, |conn| sqlx::query(
            "INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4) ON CONFLICT (name) DO NOTHING"
        )
        .bind(name)
        .bind(description)
        .bind(set.to_text())
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        if inserted == 0 {
            return Err(AccessError::RoleExists(name.to_string()));
        }
        self.invalidate();
        self.get(name).await
    }

    /// Replaces a role's permissions (and description). `admin` cannot be changed.
    pub async fn update(
        &self,
        name: &str,
        description: Option<&str>,
        permissions: &[String],
    ) -> Result<RoleView, AccessError> {
        if name == Role::Admin.as_str() {
            return Err(AccessError::BuiltinRole(name.to_string()));
        }
        let set = parse_permissions(permissions)?;
        let now = self.clock.now_micros();
        let changed = storage::write!(&self.db, |conn| {
            sqlx::query(
            "UPDATE roles SET permissions = $1, description = COALESCE($2, description), updated_at = $3 WHERE name = $4"
        )
        .bind(set.to_text())
        .bind(description)
        .bind(now)
        .bind(name)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
        })?;
        if changed == 0 {
            return Err(AccessError::UnknownRole(name.to_string()));
        }
        self.invalidate();
        self.get(name).await
    }

    /// Deletes a role nobody uses; built-in roles stay.
    pub async fn delete(&self, name: &str) -> Result<(), AccessError> {
        let role = self.get(name).await?;
        if role.builtin {
            return Err(AccessError::BuiltinRole(name.to_string()));
        }
        let (keys,): (i64,) = storage::read!(&self.db, |conn| sqlx::query_as(
            "SELECT COUNT(*) FROM api_keys WHERE role = $1 AND revoked_at IS NULL"
        )
        .bind(name)
        .fetch_one(conn)
        .await)?;
        let (users,): (i64,) =
            storage::read!(&self.db, |conn| sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = $1")
                .bind(name)
                .fetch_one(conn)
                .await)?;
        if keys + users > 0 {
            return Err(AccessError::RoleInUse { role: name.to_string(), keys, users });
        }
        storage::write!(&self.db, |conn| sqlx::query("DELETE FROM roles WHERE name = $1 AND builtin = 0")
            .bind(name)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        self.invalidate();
        Ok(())
    }
}
