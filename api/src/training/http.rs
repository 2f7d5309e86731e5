//! The user-facing HTTP routes of training: dataset upload (bytes do not
//! belong in GraphQL) and checkpoint downloads with their checksum.

use super::rest::{RestError, RestResult, read_body};
use crate::auth::{self, Caller};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use ftl_domain::project::Scope;
use ftl_effects::training::checkpoints::checkpoint_prefix;
use ftl_effects::training::datasets::{RegisterError, Source};
use ftl_effects::training::storage;
use ftl_projections::views::{catalog, training};
use serde::Deserialize;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/datasets", web::put().to(upload_dataset))
        .route(
            "/api/v1/jobs/{job}/checkpoints/{step}/files/{file}",
            web::get().to(download_checkpoint_file),
        );
}

pub(crate) async fn caller(st: &AppState, req: &HttpRequest, needed: Scope) -> RestResult<Caller> {
    let key = auth::request_key(req.headers(), false);
    match st.keys.authenticate(&st.effects, key.as_deref()).await {
        Ok(c) if c.scope.allows(needed) => Ok(c),
        Ok(c) => Err(RestError::forbidden(format!(
            "this key's scope is {}; {} is needed",
            c.scope.as_str(),
            needed.as_str()
        ))),
        Err(auth::AuthError::Db(e)) => Err(RestError::internal(e)),
        Err(e) => Err(RestError::unauthenticated(e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    /// The file name (`.jsonl` for chat/preference/text rows, `.txt` for raw text).
    name: String,
}

/// `PUT /api/v1/datasets?name=train.jsonl`: the body is the file. It is
/// parsed before anything is stored: a bad file is refused with every
/// problem by line number, and nothing is registered.
async fn upload_dataset(
    st: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> RestResult {
    let c = caller(&st, &req, Scope::Write).await?;
    if !storage::valid_name(&query.name) {
        return Err(RestError::invalid(
            "name must be one path segment of 1 to 200 bytes",
        ));
    }
    let bytes = read_body(payload, st.config.training.max_dataset_bytes as usize).await?;
    match ftl_effects::training::datasets::register(&st.effects, &c, &query.name, Source::Upload, bytes).await {
        Ok(r) if r.created => Ok(HttpResponse::Created().json(r)),
        Ok(r) => Ok(HttpResponse::Ok().json(r)),
        Err(RegisterError::Invalid(issues)) => {
            Ok(HttpResponse::UnprocessableEntity().json(serde_json::json!({
                "code": "dataset_invalid",
                "message": format!("dataset has {} problem(s)", issues.len()),
                "issues": issues.iter().map(|i| serde_json::json!({"line": i.line, "message": i.message})).collect::<Vec<_>>(),
            })))
        }
        Err(RegisterError::Other(e)) => Err(RestError::internal(e)),
    }
}

/// A checkpoint file of a job of the caller's project, with its SHA-256 in
/// `Repr-Digest` (RFC 9530) and `X-Checksum-Sha256` (hex), as recorded when
/// the checkpoint was saved.
async fn download_checkpoint_file(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, u64, String)>,
) -> RestResult {
    let c = caller(&st, &req, Scope::Read).await?;
    let (job, step, file) = path.into_inner();
    catalog::job(&st.effects.db, c.project_id.0, job)
        .await
        .map_err(RestError::internal)?
        .ok_or_else(|| RestError::not_found("job not found"))?;
    let checkpoints = training::checkpoints(&st.effects.db, job, false)
        .await
        .map_err(RestError::internal)?;
    let cp = checkpoints
        .iter()
        .find(|c| c.step == step as i64)
        .ok_or_else(|| RestError::not_found("no such checkpoint"))?;
    let sha = cp
        .files
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == file.as_str()))
        .and_then(|f| f["sha256"].as_str())
        .map(str::to_string)
        .ok_or_else(|| RestError::not_found("no such file in this checkpoint"))?;
    let target = checkpoint_prefix(job)
        .join(ftl_effects::training::checkpoints::checkpoint_name(step))
        .join(file.as_str());
    let bytes = st
        .effects
        .artifacts
        .get(&target)
        .await
        .map_err(RestError::internal)?;
    let digest = hex::decode(&sha).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Repr-Digest",
            format!(
                "sha-256=:{}:",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        ))
        .insert_header(("X-Checksum-Sha256", sha.clone()))
        .insert_header(("ETag", format!("\"{sha}\"")))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file}\""),
        ))
        .body(bytes))
}
