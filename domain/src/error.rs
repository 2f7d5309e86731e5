//! Rejections of commands by the domain. These are user errors, never
//! infrastructure failures: a handler keeps the two apart.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// The command is not allowed in the aggregate's current status.
    #[error("invalid_transition: cannot {command} a job that is {current}")]
    InvalidTransition { current: String, command: String },
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{entity} already exists")]
    AlreadyExists { entity: &'static str },
    #[error("invalid input at {field}: {message}")]
    InvalidInput { field: String, message: String },
    #[error("limit exceeded at {field}: {message}")]
    LimitExceeded { field: String, message: String },
    /// A worker acted on a job under a lease it no longer holds (expired and
    /// reclaimed, or the job was dispatched again).
    #[error("lease_lost: this worker no longer holds job {job}")]
    LeaseLost { job: String },
    /// An idempotency key sent again with a different request: the first
    /// request's outcome stands and the new one is refused, not merged.
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,
}

impl DomainError {
    /// A stable snake_case code for REST bodies (GraphQL maps to its own).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::NotFound { .. } => "not_found",
            Self::AlreadyExists { .. } => "already_exists",
            Self::InvalidInput { .. } => "invalid_input",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::LeaseLost { .. } => "lease_lost",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn limit(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::LimitExceeded {
            field: field.into(),
            message: message.into(),
        }
    }
}
