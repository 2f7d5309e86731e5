//! Who a command comes from: an authenticated project key (the edge checks
//! the key; the write side only needs its identity for the events' metadata).

use crate::store::Metadata;
use ftl_domain::ids::{ApiKeyId, ProjectId};
use ftl_domain::project::Scope;
use uuid::Uuid;

/// The authenticated caller of a request: one project, one scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub project_id: ProjectId,
    pub project_name: String,
    pub key_id: ApiKeyId,
    pub scope: Scope,
}

impl Caller {
    /// Metadata of the events this caller's requests write.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            actor: Some(format!("key:{}", self.key_id)),
            project_id: Some(self.project_id),
            correlation_id: Some(Uuid::new_v4()),
            ..Default::default()
        }
    }
}
