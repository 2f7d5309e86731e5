//! Stable error codes in `extensions.code`.

use async_graphql::ErrorExtensions;
use ftl_commands::{CommandError, StoreError};
use ftl_domain::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    InvalidInput,
    Conflict,
    LimitExceeded,
    IdempotencyKeyReused,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::InvalidInput => "INVALID_INPUT",
            Code::Conflict => "CONFLICT",
            Code::LimitExceeded => "LIMIT_EXCEEDED",
            Code::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Code::Internal => "INTERNAL",
        }
    }
}

pub fn gql_error(code: Code, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set("code", code.as_str()))
}

/// A chat or generation request refused before anything ran, with the
/// parameter at fault (`field`, OpenAI's name).
pub fn refusal(r: ftl_effects::models::Refusal) -> async_graphql::Error {
    let code = if r.limit {
        Code::LimitExceeded
    } else {
        Code::InvalidInput
    };
    with_field(code, r.field, r.message)
}

fn with_field(code: Code, field: &str, message: String) -> async_graphql::Error {
    let f = field.to_string();
    async_graphql::Error::new(message).extend_with(move |_, e| {
        e.set("code", code.as_str());
        e.set("field", f.clone());
    })
}

pub fn domain_error(e: DomainError) -> async_graphql::Error {
    match &e {
        DomainError::InvalidTransition { current, .. } => {
            let cur = current.clone();
            async_graphql::Error::new(e.to_string()).extend_with(move |_, x| {
                x.set("code", Code::Conflict.as_str());
                x.set("reason", "invalid_transition");
                x.set("currentStatus", cur.clone());
            })
        }
        DomainError::NotFound { .. } => gql_error(Code::NotFound, e.to_string()),
        DomainError::AlreadyExists { .. } => gql_error(Code::Conflict, e.to_string()),
        DomainError::InvalidInput { field, message } => {
            with_field(Code::InvalidInput, field, format!("{field}: {message}"))
        }
        DomainError::LimitExceeded { field, message } => {
            with_field(Code::LimitExceeded, field, format!("{field}: {message}"))
        }
        DomainError::LeaseLost { .. } => {
            async_graphql::Error::new(e.to_string()).extend_with(|_, x| {
                x.set("code", Code::Conflict.as_str());
                x.set("reason", "lease_lost");
            })
        }
        DomainError::IdempotencyKeyReused => gql_error(Code::IdempotencyKeyReused, e.to_string()),
    }
}

pub fn internal(e: impl std::fmt::Display) -> async_graphql::Error {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %e, "internal error");
    gql_error(Code::Internal, format!("internal error (id {id})"))
}

pub fn command_error(e: CommandError) -> async_graphql::Error {
    match e {
        CommandError::Domain(d) => domain_error(d),
        CommandError::Store(StoreError::Conflict { .. }) => {
            gql_error(Code::Conflict, "concurrent update; retry")
        }
        CommandError::Store(StoreError::IdempotencyMismatch(_)) => {
            domain_error(DomainError::IdempotencyKeyReused)
        }
        other => internal(other),
    }
}

/// A chat failure with a stable code.
pub fn chat_error(e: ftl_effects::models::ChatError) -> async_graphql::Error {
    match e {
        ftl_effects::models::ChatError::Internal(e) => internal(e),
        other => {
            let code = other.code();
            async_graphql::Error::new(other.to_string())
                .extend_with(move |_, x| x.set("code", code))
        }
    }
}
