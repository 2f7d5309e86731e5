//! API keys: generated once, shown once, stored as SHA-256 only.

use ftl_commands::store::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreError};
use ftl_domain::ids::{ApiKeyId, ProjectId, derive_event_id};
use ftl_domain::project::{
    ApiKeyCreated, ProjectCreated, Scope, project_id_for_name, validate_project_name,
};
use ftl_domain::{DomainError, DomainEvent};
use ftl_projections::views::catalog;
use rand::Rng;
use rand::distr::Alphanumeric;
use uuid::Uuid;

pub const KEY_PREFIX: &str = "ftl_";

pub use ftl_commands::Caller;

pub fn hash_secret(secret: &str) -> String {
    ftl_commands::digest::sha256_hex(secret.as_bytes())
}

pub fn generate_secret() -> String {
    let body: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("{KEY_PREFIX}{body}")
}

/// `Bearer <key>` → the key.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `Bearer <key>`, or `Basic base64(user:key)` (MLflow's username/password
/// settings, with the key as the password) → the key.
pub fn credential(header: &str) -> Option<String> {
    if let Some(t) = bearer(header) {
        return Some(t.to_string());
    }
    use base64::Engine;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

/// The key in a request's `Authorization` header: `Bearer <key>`, and with
/// `basic` also Basic with the key as the password (MLflow clients).
pub fn request_key(headers: &actix_web::http::header::HeaderMap, basic: bool) -> Option<String> {
    let h = headers
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    if basic {
        credential(h)
    } else {
        bearer(h).map(str::to_string)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed Authorization header (expected `Bearer <key>`)")]
    Missing,
    #[error("unknown or revoked API key")]
    Invalid,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Keys authenticated moments ago, so a client making many small calls
/// (MLflow's client sends one request per metric) does not cost a lookup
/// each. Only valid keys are kept. An entry is trusted while the catalog
/// read model (where keys and their revocations land) has not changed since
/// it was read, and for at most [`KeyCache::TTL`]: a revocation takes effect
/// as soon as this process projects it, and within the TTL where another
/// process does (PostgreSQL).
#[derive(Default)]
pub struct KeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedKey>>,
}

struct CachedKey {
    caller: Caller,
    catalog: u64,
    at: std::time::Instant,
}

impl KeyCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(1);
    /// Entries kept at most; a full cache starts over.
    pub const CAPACITY: usize = 1024;

    /// Authenticates a request's key: a cached answer when [`KeyCache`] still
    /// trusts one, the catalog read model otherwise.
    pub async fn authenticate(
        &self,
        effects: &ftl_effects::Effects,
        token: Option<&str>,
    ) -> Result<Caller, AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        if !token.starts_with(KEY_PREFIX) || token.len() > 200 {
            return Err(AuthError::Invalid);
        }
        let hash = hash_secret(token);
        // Read before the lookup: an entry is stamped with a catalog state no
        // newer than the one the lookup saw.
        let catalog = effects.projections.changes("catalog");
        if let Some(c) = self.get(&hash, catalog) {
            return Ok(c);
        }
        let row = catalog::key_by_hash(&effects.db, &hash)
            .await?
            .ok_or(AuthError::Invalid)?;
        if row.revoked {
            return Err(AuthError::Invalid);
        }
        let scope = Scope::parse(&row.scope).ok_or(AuthError::Invalid)?;
        let caller = Caller {
            project_id: ProjectId(row.project_id),
            project_name: row.project_name,
            key_id: ApiKeyId(row.key_id),
            scope,
        };
        self.put(hash, caller.clone(), catalog);
        Ok(caller)
    }

    fn get(&self, hash: &str, catalog: u64) -> Option<Caller> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(hash)?;
        (e.catalog == catalog && e.at.elapsed() < Self::TTL).then(|| e.caller.clone())
    }

    fn put(&self, hash: String, caller: Caller, catalog: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(
                hash,
                CachedKey {
                    caller,
                    catalog,
                    at: std::time::Instant::now(),
                },
            );
        }
    }
}

#[derive(Debug)]
pub struct CreatedKey {
    pub key_id: ApiKeyId,
    pub project_id: ProjectId,
    pub secret: String,
    pub position: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Creates the project if it does not exist yet, then a key for it.
pub async fn create_key(
    store: &dyn EventStore,
    project: &str,
    name: &str,
    scope: Scope,
    actor: &str,
) -> Result<CreatedKey, KeyError> {
    validate_project_name(project)?;
    if name.is_empty() || name.len() > ftl_domain::limits::MAX_NAME_LEN {
        return Err(DomainError::invalid("name", "must be 1 to 256 bytes").into());
    }
    let project_id = project_id_for_name(project);
    let meta = Metadata {
        actor: Some(actor.to_string()),
        project_id: Some(project_id),
        ..Default::default()
    };
    let created = DomainEvent::ProjectCreated(ProjectCreated {
        project_id,
        name: project.to_string(),
    });
    // The project's id is derived from its name, and so is this event's id: a
    // second "create" is a no-op rather than a conflict.
    let event = NewEvent::from_domain(derive_event_id(project_id.0, 0), &created, meta.clone());
    match store
        .append(&project_id.stream(), ExpectedVersion::NoStream, vec![event])
        .await
    {
        Ok(_) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let secret = generate_secret();
    let key_id = ApiKeyId::new();
    let event = DomainEvent::ApiKeyCreated(ApiKeyCreated {
        key_id,
        project_id,
        name: name.to_string(),
        scope,
        secret_sha256: hash_secret(&secret),
        prefix: secret.chars().take(8).collect(),
    });
    let r = store
        .append(
            &key_id.stream(),
            ExpectedVersion::NoStream,
            vec![NewEvent::from_domain(Uuid::new_v4(), &event, meta)],
        )
        .await?;
    Ok(CreatedKey {
        key_id,
        project_id,
        secret,
        position: r.last_position,
    })
}

/// Revokes one of a project's keys: from the moment the revocation is
/// projected, requests with it are refused (see [`KeyCache`]). Revoking a
/// revoked key changes nothing. Returns the position to wait for (0 when
/// nothing was written).
pub async fn revoke_key(
    store: &dyn EventStore,
    db: &ftl_commands::Db,
    project: &str,
    key_id: Uuid,
    actor: &str,
) -> Result<u64, KeyError> {
    let project_id = project_id_for_name(project);
    let key = catalog::keys_of_project(db, project_id.0)
        .await?
        .into_iter()
        .find(|k| k.key_id == key_id)
        .ok_or(DomainError::NotFound { entity: "api key" })?;
    if key.revoked {
        return Ok(0);
    }
    let event = DomainEvent::ApiKeyRevoked(ftl_domain::project::ApiKeyRevoked {
        key_id: ApiKeyId(key_id),
        project_id,
    });
    let meta = Metadata {
        actor: Some(actor.to_string()),
        project_id: Some(project_id),
        ..Default::default()
    };
    // One revocation per key: a retry finds its event stored.
    let id = derive_event_id(Uuid::new_v5(&key_id, b"revoke"), 0);
    let r = store
        .append(
            &ApiKeyId(key_id).stream(),
            ExpectedVersion::StreamExists,
            vec![NewEvent::from_domain(id, &event, meta)],
        )
        .await?;
    Ok(r.last_position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer ftl_abc"), Some("ftl_abc"));
        assert_eq!(bearer("bearer   ftl_abc "), Some("ftl_abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn credential_takes_bearer_or_basic_password() {
        assert_eq!(credential("Bearer ftl_abc").as_deref(), Some("ftl_abc"));
        // base64("mlflow:ftl_abc") = "bWxmbG93OmZ0bF9hYmM=" (computed with coreutils base64).
        assert_eq!(
            credential("Basic bWxmbG93OmZ0bF9hYmM=").as_deref(),
            Some("ftl_abc")
        );
        // base64("user:") — an empty password is no credential.
        assert_eq!(credential("Basic dXNlcjo="), None);
        assert_eq!(credential("Basic !!!"), None);
        assert_eq!(credential("Digest abc"), None);
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == 44);
        // SHA-256("test"), an independent reference value.
        assert_eq!(
            hash_secret("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
