//! Projects and API keys.
//!
//! A project's id is derived from its name, so "create project NAME" is naturally
//! idempotent and names are unique without a cross-stream index.

use crate::DomainError;
use crate::ids::{ApiKeyId, EVENT_ID_NAMESPACE, ProjectId};
use crate::limits::MAX_NAME_LEN;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
    /// Whether a key with this scope may do what `needed` requires.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

pub fn project_id_for_name(name: &str) -> ProjectId {
    ProjectId(Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("project\u{0}{name}").as_bytes(),
    ))
}

pub fn validate_project_name(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "project",
            format!("must be 1 to {MAX_NAME_LEN} characters of [A-Za-z0-9._-]"),
        ))
    }
}

/// `project.created` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectCreated {
    pub project_id: ProjectId,
    pub name: String,
}

/// `api_key.created` v1. Only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    pub key_id: ApiKeyId,
    pub project_id: ProjectId,
    pub name: String,
    pub scope: Scope,
    /// Lower-case hex SHA-256 of the full secret.
    pub secret_sha256: String,
    /// The first characters of the secret, shown in listings to recognise a key.
    pub prefix: String,
}

/// `api_key.revoked` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    pub key_id: ApiKeyId,
    pub project_id: ProjectId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Admin.allows(Scope::Write));
        assert!(Scope::Write.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
    }

    #[test]
    fn project_names() {
        assert!(validate_project_name("team-a_1.x").is_ok());
        assert!(validate_project_name("").is_err());
        assert!(validate_project_name("has space").is_err());
        assert_eq!(project_id_for_name("a"), project_id_for_name("a"));
        assert_ne!(project_id_for_name("a"), project_id_for_name("b"));
    }
}
