//! Error responses no handler wrote: actix-web's own 404 and 405, the
//! extractors' rejections (`Query`, `Path`, `Json`), payload limits. They
//! come as plain text or with an empty body; this middleware rewrites each
//! into the JSON error shape of the route family it belongs to, with a
//! stable code, so every client parses every error one way:
//!
//! | path                              | shape                                            |
//! |-----------------------------------|--------------------------------------------------|
//! | `/graphql`                        | `{"errors":[{"message","extensions":{"code"}}]}` |
//! | `/api/2.0/mlflow`, `/api/3.0/mlflow`, `/ajax-api` | `{"error_code","message"}` (MLflow) |
//! | `/v1/`                            | `{"error":{"message","type","param","code"}}` (OpenAI) |
//! | everything else                   | `{"code","message"}`                             |
//!
//! A response that is already JSON passes through untouched.

use crate::graphql::Code;
use crate::mlflow::wire::ErrorCode;
use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, Result};

/// The longest text body kept as the message; longer ones are cut.
const MAX_MESSAGE: usize = 2048;

pub fn middleware<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(rewrite)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    GraphQl,
    Mlflow,
    OpenAi,
    Rest,
}

impl Family {
    pub fn of(path: &str) -> Self {
        if path == "/graphql" || path.starts_with("/graphql/") {
            Self::GraphQl
        } else if ["/api/2.0/mlflow/", "/api/3.0/mlflow/", "/ajax-api/"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            Self::Mlflow
        } else if path.starts_with("/v1/") {
            Self::OpenAi
        } else {
            Self::Rest
        }
    }
}

fn is_json(res: &actix_web::dev::ResponseHead) -> bool {
    res.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        })
}

fn rewrite<B: MessageBody + 'static>(res: ServiceResponse<B>) -> Result<ErrorHandlerResponse<B>> {
    if is_json(res.response().head()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    Ok(ErrorHandlerResponse::Future(Box::pin(async move {
        let (req, res) = res.into_parts();
        let status = res.status();
        let allow = res.headers().get(header::ALLOW).cloned();
        let text = match actix_web::body::to_bytes_limited(res.into_body(), MAX_MESSAGE).await {
            Ok(Ok(b)) => String::from_utf8_lossy(&b).trim().to_string(),
            // Unreadable or longer than a message: the status says it.
            _ => String::new(),
        };
        let message = if text.is_empty() {
            default_message(status, req.method().as_str(), req.path())
        } else {
            text
        };
        let mut out = body(Family::of(req.path()), status, &message);
        if let Some(allow) = allow {
            out.headers_mut().insert(header::ALLOW, allow);
        }
        Ok(ServiceResponse::new(req, out).map_into_right_body::<B>())
    })))
}

fn default_message(status: StatusCode, method: &str, path: &str) -> String {
    match status {
        StatusCode::NOT_FOUND => format!("no route {method} {path}"),
        StatusCode::METHOD_NOT_ALLOWED => format!("{path} does not accept {method}"),
        s => s.canonical_reason().unwrap_or("error").to_string(),
    }
}

/// `status` in `family`'s error shape, with the stable code it maps to.
pub fn body(family: Family, status: StatusCode, message: &str) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    match family {
        Family::GraphQl => b.json(serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": graphql_code(status).as_str() } }]
        })),
        Family::Mlflow => b.json(serde_json::json!({
            "error_code": mlflow_code(status).as_str(), "message": message,
        })),
        Family::OpenAi => {
            let (kind, code) = openai_kind(status);
            b.json(serde_json::json!({"error": {
                "message": message, "type": kind, "param": null, "code": code,
            }}))
        }
        Family::Rest => b.json(serde_json::json!({
            "code": rest_code(status), "message": message,
        })),
    }
}

fn graphql_code(status: StatusCode) -> Code {
    match status {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::Forbidden,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT => Code::Conflict,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => Code::LimitExceeded,
        s if s.is_server_error() => Code::Internal,
        _ => Code::InvalidInput,
    }
}

fn mlflow_code(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorCode::PermissionDenied,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => ErrorCode::EndpointNotFound,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
            ErrorCode::RequestLimitExceeded
        }
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::TemporarilyUnavailable,
        StatusCode::NOT_IMPLEMENTED => ErrorCode::NotImplemented,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::BadRequest,
    }
}

/// OpenAI's `type` and `code` for a status (`invalid_request_error` for
/// what the caller can fix, as OpenAI answers an unknown URL).
fn openai_kind(status: StatusCode) -> (&'static str, Option<&'static str>) {
    match status {
        StatusCode::UNAUTHORIZED => ("authentication_error", Some("invalid_api_key")),
        StatusCode::FORBIDDEN => ("permission_error", None),
        StatusCode::NOT_FOUND => ("invalid_request_error", Some("unknown_url")),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", None),
        s if s.is_server_error() => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

/// The REST routes' snake_case codes (`training::rest::RestError`).
fn rest_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "limit_exceeded",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "invalid_input",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_path() {
        assert_eq!(Family::of("/graphql"), Family::GraphQl);
        assert_eq!(Family::of("/graphqlx"), Family::Rest);
        assert_eq!(Family::of("/api/2.0/mlflow/runs/get"), Family::Mlflow);
        assert_eq!(Family::of("/ajax-api/2.0/mlflow/x"), Family::Mlflow);
        assert_eq!(Family::of("/v1/chat/completions"), Family::OpenAi);
        assert_eq!(Family::of("/api/v1/datasets"), Family::Rest);
        assert_eq!(Family::of("/nowhere"), Family::Rest);
    }
}
