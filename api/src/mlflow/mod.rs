//! The MLflow tracking API (`specs/mlflow-api.md`), so training code that
//! reports to MLflow reports here by setting `MLFLOW_TRACKING_URI` and
//! `MLFLOW_TRACKING_TOKEN` alone.
//!
//! Served so far: authentication (Bearer, or Basic with the key as password),
//! `GET /api/3.0/mlflow/server-info`, and MLflow's own error shape for every
//! route under `/api/2.0/mlflow` and `/api/2.0/mlflow-artifacts` that is not
//! served yet (`ENDPOINT_NOT_FOUND`).

pub mod wire;

use crate::auth::{self, AuthError, Caller};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use wire::{ErrorCode, MlflowError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/3.0/mlflow/server-info", web::get().to(server_info))
        .route("/api/2.0/mlflow/{tail:.*}", web::route().to(not_served))
        .route(
            "/api/2.0/mlflow-artifacts/{tail:.*}",
            web::route().to(not_served),
        );
}

/// The caller, from `Authorization: Bearer <key>` or Basic with the key as
/// the password (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`).
pub async fn caller(state: &AppState, req: &HttpRequest) -> Result<Caller, MlflowError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let token = header.and_then(auth::credential);
    match auth::authenticate(&state.db, token.as_deref()).await {
        Ok(c) => Ok(c),
        Err(AuthError::Db(e)) => {
            tracing::error!(error = %e, "key lookup failed");
            Err(MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                "key lookup failed",
            ))
        }
        Err(e) => Err(MlflowError::new(ErrorCode::Unauthenticated, e.to_string())),
    }
}

async fn server_info(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
    })))
}

async fn not_served(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req).await?;
    Err(MlflowError::new(
        ErrorCode::EndpointNotFound,
        format!("Endpoint not served: {} {}", req.method(), req.path()),
    ))
}
