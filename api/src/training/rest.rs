//! Errors of the training REST routes (worker protocol, uploads,
//! downloads): `{"code": "…", "message": "…"}` with a stable snake_case code.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use ftl_commands::CommandError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RestError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub type RestResult<T = HttpResponse> = Result<T, RestError>;

impl RestError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Logs the cause with an id; the client sees only the id.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4();
        tracing::error!(error_id = %id, error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (id {id})"),
        )
    }

    pub fn command(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => {
                let status = match d {
                    ftl_domain::DomainError::NotFound { .. } => StatusCode::NOT_FOUND,
                    ftl_domain::DomainError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
                    ftl_domain::DomainError::LimitExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    ftl_domain::DomainError::IdempotencyKeyReused => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    _ => StatusCode::CONFLICT,
                };
                Self::new(status, d.code(), d.to_string())
            }
            other => Self::internal(other),
        }
    }
}

impl ResponseError for RestError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({
            "code": self.code,
            "message": self.message,
        }))
    }
}

/// The digest of a request body sent under an idempotency key (a batch id):
/// a retry sends the same bytes; the same key with other bytes is refused
/// (`idempotency_key_reused`, 422).
pub fn body_digest(body: &[u8]) -> String {
    ftl_commands::digest::sha256_hex16(body)
}

/// A JSON body, or `invalid_input` saying why not.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> RestResult<T> {
    serde_json::from_slice(body).map_err(|e| RestError::invalid(format!("malformed body: {e}")))
}

/// Reads a body up to `limit` bytes (413 past it).
pub async fn read_body(
    payload: actix_web::web::Payload,
    limit: usize,
) -> RestResult<actix_web::web::Bytes> {
    match crate::body::read_limited(payload, limit).await {
        Ok(b) => Ok(b.freeze()),
        Err(e @ crate::body::BodyError::TooLarge(_)) => Err(RestError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit_exceeded",
            e.to_string(),
        )),
        Err(e) => Err(RestError::invalid(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_lost_lease_travels_as_its_code_not_its_wording() {
        use actix_web::ResponseError;
        let e = crate::training::rest::RestError::command(ftl_commands::CommandError::Domain(
            ftl_domain::DomainError::LeaseLost { job: "j1".into() },
        ));
        assert_eq!(e.status_code(), actix_web::http::StatusCode::CONFLICT);
        let body = actix_web::body::to_bytes(e.error_response().into_body())
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(
            ftl_domain::job::worker_protocol::error_code(&body).as_deref(),
            Some("lease_lost"),
            "{body}"
        );
        // Another conflict that merely mentions a lease is not a lost lease.
        let other = r#"{"code": "invalid_transition", "message": "lease_lost was logged"}"#;
        assert_eq!(
            ftl_domain::job::worker_protocol::error_code(other).as_deref(),
            Some("invalid_transition")
        );
        assert_eq!(
            ftl_domain::job::worker_protocol::error_code("not json"),
            None
        );
    }
}
