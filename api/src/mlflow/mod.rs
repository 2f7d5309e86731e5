//! The MLflow tracking API (`specs/mlflow-api.md`), so training code that
//! reports to MLflow reports here by setting `MLFLOW_TRACKING_URI` and
//! `MLFLOW_TRACKING_TOKEN` alone.
//!
//! An MLflow run is a job (provider `external`), an experiment groups jobs;
//! every call goes through the same command handlers as GraphQL and appends
//! events — nothing is stored beside the event log except artifact bytes,
//! which live in the artifact store.

pub mod artifacts;
mod experiments;
mod runs;
pub mod search;
pub mod wire;

use crate::auth::{self, AuthError, Caller};
use crate::body::{BodyError, read_limited};
use crate::state::AppState;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use ftl_commands::CommandError;
use ftl_commands::store::StoreError;
use ftl_domain::DomainError;
use ftl_domain::project::Scope;
use serde::de::DeserializeOwned;
use wire::{ErrorCode, MlflowError};

/// `runs/log-batch` bodies (MLflow's `MAX_BATCH_LOG_REQUEST_SIZE`).
pub const MAX_BATCH_BODY: usize = 1_000_000;
/// Every other tracking call.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let t = |path: &str| format!("/api/2.0/mlflow/{path}");
    cfg.route("/api/3.0/mlflow/server-info", web::get().to(server_info))
        .route(
            &t("experiments/get-by-name"),
            web::get().to(experiments::get_by_name),
        )
        .route(
            &t("experiments/create"),
            web::post().to(experiments::create),
        )
        .route(&t("experiments/get"), web::get().to(experiments::get))
        .route(
            &t("experiments/search"),
            web::route().to(experiments::search),
        )
        .route(
            &t("experiments/update"),
            web::post().to(experiments::update),
        )
        .route(
            &t("experiments/delete"),
            web::post().to(experiments::delete),
        )
        .route(
            &t("experiments/restore"),
            web::post().to(experiments::restore),
        )
        .route(
            &t("experiments/set-experiment-tag"),
            web::post().to(experiments::set_tag),
        )
        .route(&t("runs/create"), web::post().to(runs::create))
        .route(&t("runs/get"), web::get().to(runs::get))
        .route(&t("runs/update"), web::post().to(runs::update))
        .route(&t("runs/delete"), web::post().to(runs::delete))
        .route(&t("runs/restore"), web::post().to(runs::restore))
        .route(&t("runs/search"), web::route().to(runs::search))
        .route(&t("runs/log-metric"), web::post().to(runs::log_metric))
        .route(
            &t("runs/log-parameter"),
            web::post().to(runs::log_parameter),
        )
        .route(&t("runs/set-tag"), web::post().to(runs::set_tag))
        .route(&t("runs/delete-tag"), web::post().to(runs::delete_tag))
        .route(&t("runs/log-batch"), web::post().to(runs::log_batch))
        .route(&t("runs/log-inputs"), web::post().to(runs::log_inputs))
        .route(&t("metrics/get-history"), web::get().to(runs::get_history))
        .route(
            &t("metrics/get-history-bulk-interval"),
            web::get().to(runs::get_history_bulk_interval),
        )
        .route(&t("artifacts/list"), web::get().to(artifacts::list_for_run))
        .route(&t("logged-models/search"), web::post().to(no_logged_models))
        .route("/api/2.0/mlflow/{tail:.*}", web::route().to(not_served));
    artifacts::configure(cfg);
}

/// The caller, from `Authorization: Bearer <key>` or Basic with the key as
/// the password (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`), with the scope the
/// call needs (a read key that writes: `PERMISSION_DENIED`).
pub async fn caller(
    state: &AppState,
    req: &HttpRequest,
    needs: Scope,
) -> Result<Caller, MlflowError> {
    let token = auth::request_key(req.headers(), true);
    let c = match state
        .keys
        .authenticate(&state.effects, token.as_deref())
        .await
    {
        Ok(c) => c,
        Err(AuthError::Db(e)) => {
            tracing::error!(error = %e, "key lookup failed");
            return Err(MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                "key lookup failed",
            ));
        }
        Err(e) => return Err(MlflowError::new(ErrorCode::Unauthenticated, e.to_string())),
    };
    if !c.scope.allows(needs) {
        return Err(MlflowError::new(
            ErrorCode::PermissionDenied,
            format!("this API key may {} only", c.scope.as_str()),
        ));
    }
    Ok(c)
}

/// The request message: the query string of a GET (keys in `repeated`
/// become lists), the JSON body otherwise (no `Content-Type` needed; an
/// empty body is `{}`). Unknown fields are ignored.
pub async fn message<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    repeated: &[&str],
) -> Result<T, MlflowError> {
    let value = if req.method() == Method::GET {
        wire::query_message(req.query_string(), repeated)
    } else {
        let body = read_limited(payload, limit).await.map_err(|e| match e {
            BodyError::TooLarge(_) => MlflowError::invalid(format!(
                "The request body is too large: at most {limit} bytes are accepted here"
            )),
            BodyError::Broken(m) => MlflowError::new(ErrorCode::BadRequest, m),
        })?;
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_none() {
            serde_json::Value::Object(Default::default())
        } else if first != Some(&b'{') {
            // A message is an object: serde would take `[]` for a struct.
            return Err(MlflowError::new(
                ErrorCode::BadRequest,
                "Invalid request message: the body must be a JSON object",
            ));
        } else if let Ok(m) = serde_json::from_slice(&body) {
            // Straight into the message: a 1,000-metric batch builds no
            // intermediate tree. Failures are parsed again below to tell
            // malformed JSON from a bad message.
            return Ok(m);
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                MlflowError::new(ErrorCode::BadRequest, format!("Malformed JSON body: {e}"))
            })?
        }
    };
    serde_json::from_value(value).map_err(|e| {
        MlflowError::new(
            ErrorCode::BadRequest,
            format!("Invalid request message: {e}"),
        )
    })
}

/// Reads see every write acknowledged before them: wait until the read
/// models reach the log's head (bounded by the read-your-writes timeout).
pub async fn settle(state: &AppState) -> Result<(), MlflowError> {
    let head = state
        .effects
        .store
        .head_position()
        .await
        .map_err(store_error)?;
    if !state
        .effects
        .projections
        .wait_for(head, state.ryw_timeout())
        .await
    {
        tracing::warn!(head, "read models did not catch up in time");
    }
    Ok(())
}

pub fn store_error(e: StoreError) -> MlflowError {
    match e {
        StoreError::Backend(m) => {
            tracing::error!(error = %m, "event store unavailable");
            MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                "the store is unavailable",
            )
        }
        other => {
            tracing::error!(error = %other, "event store");
            MlflowError::new(ErrorCode::InternalError, "internal error")
        }
    }
}

pub fn db_error(e: sqlx::Error) -> MlflowError {
    tracing::error!(error = %e, "read model query failed");
    MlflowError::new(
        ErrorCode::TemporarilyUnavailable,
        "the read model is unavailable",
    )
}

/// A rejected or failed command, in MLflow's terms. `not_found` words the
/// 404 for the entity the call names.
pub fn command_error(e: CommandError, not_found: impl FnOnce() -> String) -> MlflowError {
    match e {
        CommandError::Domain(d) => domain_error(d, not_found),
        CommandError::Store(s) => store_error(s),
        CommandError::Codec(c) => {
            tracing::error!(error = %c, "stored event unreadable");
            MlflowError::new(ErrorCode::InternalError, "internal error")
        }
    }
}

pub fn domain_error(d: DomainError, not_found: impl FnOnce() -> String) -> MlflowError {
    match d {
        DomainError::NotFound { .. } => {
            MlflowError::new(ErrorCode::ResourceDoesNotExist, not_found())
        }
        DomainError::AlreadyExists { entity } => MlflowError::new(
            ErrorCode::ResourceAlreadyExists,
            format!("{entity} already exists"),
        ),
        // These messages are MLflow's own, word for word.
        DomainError::InvalidInput { field, message }
            if matches!(field.as_str(), "params" | "run" | "experiment_id") =>
        {
            MlflowError::invalid(message)
        }
        DomainError::InvalidInput { field, message }
        | DomainError::LimitExceeded { field, message } => {
            MlflowError::invalid(format!("Invalid value for '{field}': {message}"))
        }
        DomainError::InvalidTransition { .. }
        | DomainError::LeaseLost { .. }
        | DomainError::IdempotencyKeyReused => MlflowError::invalid(d.to_string()),
    }
}

/// Opaque page tokens: an offset, base64-encoded.
pub fn encode_page_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

pub fn decode_page_token(token: Option<&str>) -> Result<usize, MlflowError> {
    let Some(t) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| MlflowError::invalid(format!("Invalid page token '{t}'")))
}

/// `max_results`: `default` when absent, 1..=`max` otherwise.
pub fn max_results(v: Option<i64>, default: usize, max: usize) -> Result<usize, MlflowError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most {max} and positive."
        ))),
    }
}

pub fn ok_empty() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({}))
}

async fn server_info(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req, Scope::Read).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
    })))
}

/// Logged models are not served, so a search finds none. The client
/// searches them whenever it lists a run's artifact folder; answering "none"
/// keeps `list_artifacts(run_id, "dir")` working.
async fn no_logged_models(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req, Scope::Read).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "models": [] })))
}

pub async fn not_served(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req, Scope::Read).await?;
    Err(MlflowError::new(
        ErrorCode::EndpointNotFound,
        format!("Endpoint not served: {} {}", req.method(), req.path()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(
            decode_page_token(Some(&encode_page_token(25000))),
            Ok(25000)
        );
        assert_eq!(decode_page_token(None), Ok(0));
        assert_eq!(
            decode_page_token(Some("???")).map_err(|e| e.code),
            Err(ErrorCode::InvalidParameterValue)
        );
    }

    #[test]
    fn max_results_bounds() {
        assert_eq!(max_results(None, 1000, 50000), Ok(1000));
        assert_eq!(max_results(Some(50000), 1000, 50000), Ok(50000));
        assert!(max_results(Some(0), 1000, 50000).is_err());
        assert!(max_results(Some(50001), 1000, 50000).is_err());
    }
}
