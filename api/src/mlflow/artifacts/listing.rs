//! Artifact listings: the artifact API's `GET …/artifacts?path=` and the
//! tracking API's `artifacts/list`, both the immediate children of a folder.

use super::path::{check_relative, parse_run_path, store_path};
use super::{object_error, run_of};
use crate::auth::Caller;
use crate::mlflow::runs::{artifact_uri, read_run};
use crate::mlflow::wire::{self, MlflowError};
use crate::mlflow::{MAX_BODY, caller, decode_page_token, message};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_domain::ids::JobId;
use ftl_domain::job::run_id_text;
use ftl_domain::project::Scope;
use ftl_projections::views::tracking::RunRow;
use serde::Deserialize;
use serde_json::json;

/// Immediate children of a folder: basenames, folders first as the store
/// lists them; a path naming a file lists nothing.
async fn children(
    state: &AppState,
    c: &Caller,
    run: &RunRow,
    rel: &str,
) -> Result<Vec<serde_json::Value>, MlflowError> {
    let location = store_path(c, run, rel);
    let listing = state
        .effects
        .artifacts
        .list_dir(&location)
        .await
        .map_err(|e| object_error(e, rel))?;
    let folders = listing
        .folders
        .iter()
        .map(|name| json!({"path": name, "is_dir": true}));
    let files = listing
        .files
        .iter()
        .map(|(name, size)| json!({"path": name, "is_dir": false, "file_size": size}));
    Ok(folders.chain(files).collect())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    path: Option<String>,
}

/// `GET /api/2.0/mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts[/dir]`.
pub(super) async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let q: ListQuery = message(&req, payload, MAX_BODY, &[]).await?;
    let raw = q.path.unwrap_or_default();
    // The query value was decoded once by the query parser.
    let p = parse_run_path(&raw)?;
    let run = run_of(&state, &c, &p).await?;
    let files = children(&state, &c, &run, &p.rel).await?;
    Ok(HttpResponse::Ok().json(if files.is_empty() {
        json!({})
    } else {
        json!({ "files": files })
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RunList {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
    page_token: Option<String>,
}

/// `GET /api/2.0/mlflow/artifacts/list?run_id=…&path=…` (tracking API).
pub async fn list_for_run(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let q: RunList = message(&req, payload, MAX_BODY, &[]).await?;
    let run_id = wire::run_id(q.run_id.as_deref(), q.run_uuid.as_deref())?;
    decode_page_token(q.page_token.as_deref())?;
    let run = read_run(&state, &c, &run_id).await?;
    let rel = match q.path.as_deref() {
        None | Some("") => String::new(),
        Some(p) => check_relative(p)?,
    };
    let files: Vec<serde_json::Value> = children(&state, &c, &run, &rel)
        .await?
        .into_iter()
        .map(|mut f| {
            if let Some(name) = f["path"].as_str() {
                let full = if rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel}/{name}")
                };
                f["path"] = json!(full);
            }
            f
        })
        .collect();
    let id = run_id_text(JobId(run.job_id));
    Ok(HttpResponse::Ok().json(json!({
        "root_uri": artifact_uri(run.experiment_id, &id),
        "files": files,
    })))
}
