//! The user-facing HTTP routes of training: dataset upload (bytes do not
//! belong in GraphQL) and checkpoint downloads with their checksum.

use super::rest::{RestError, RestResult, read_body};
use super::storage;
use super::worker_api::checkpoint_prefix;
use crate::auth::{self, Caller};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use ftl_commands::store::{ExpectedVersion, NewEvent};
use ftl_domain::ids::derive_event_id;
use ftl_domain::project::Scope;
use ftl_domain::registry::DatasetRegistered;
use ftl_domain::{DatasetId, DomainEvent};
use ftl_projections::views::{catalog, training};
use object_store::ObjectStoreExt;
use serde::Deserialize;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/datasets", web::put().to(upload_dataset))
        .route(
            "/api/v1/jobs/{job}/checkpoints/{step}/files/{file}",
            web::get().to(download_checkpoint_file),
        );
}

async fn caller(st: &AppState, req: &HttpRequest, needed: Scope) -> RestResult<Caller> {
    let key = auth::request_key(req.headers(), false);
    match auth::authenticate(&st.db, key.as_deref()).await {
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
    let raw_text = storage::is_raw_text(&query.name);
    let parse_bytes = bytes.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        ftl_trainer::Dataset::parse(&parse_bytes, raw_text, 1024)
    })
    .await
    .map_err(RestError::internal)?;
    let dataset = match parsed {
        Ok(d) => d,
        Err(issues) => {
            return Ok(HttpResponse::UnprocessableEntity().json(serde_json::json!({
                "code": "dataset_invalid",
                "message": format!("dataset has {} problem(s)", issues.len()),
                "issues": issues.iter().map(|i| serde_json::json!({"line": i.line, "message": i.message})).collect::<Vec<_>>(),
            })));
        }
    };
    // The same bytes under the same name in a project are the same dataset.
    let id = DatasetId(Uuid::new_v5(
        &c.project_id.0,
        format!("dataset/{}/{}", query.name, dataset.digest).as_bytes(),
    ));
    let uri = storage::upload_uri(id.0, &query.name);
    storage::write_upload(&st, &uri, bytes.clone())
        .await
        .map_err(RestError::internal)?;
    let kind = match dataset.kind {
        ftl_trainer::DatasetKind::Text => "text",
        ftl_trainer::DatasetKind::Supervised => "supervised",
        ftl_trainer::DatasetKind::Preference => "preference",
    };
    let event = DomainEvent::DatasetRegistered(DatasetRegistered {
        dataset_id: id,
        project_id: c.project_id,
        name: query.name.clone(),
        uri,
        size: bytes.len() as u64,
        sha256: dataset.digest.clone(),
        kind: kind.into(),
        examples: dataset.examples.len() as u64,
    });
    let mut meta = c.metadata();
    meta.command_id = Some(id.0);
    let new = NewEvent::from_domain(derive_event_id(id.0, 0), &event, meta);
    let created = match st
        .store
        .append(&id.stream(), ExpectedVersion::NoStream, vec![new])
        .await
    {
        Ok(a) => {
            st.projections
                .wait_for(a.last_position, st.ryw_timeout())
                .await;
            true
        }
        Err(ftl_commands::StoreError::Conflict { .. }) => false,
        Err(e) => return Err(RestError::internal(e)),
    };
    let body = serde_json::json!({
        "id": id.0.to_string(), "name": query.name, "sha256": dataset.digest, "size": bytes.len(),
        "kind": kind, "examples": dataset.examples.len(), "created": created,
    });
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
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
    catalog::job(&st.db, c.project_id.0, job)
        .await
        .map_err(RestError::internal)?
        .ok_or_else(|| RestError::not_found("job not found"))?;
    let checkpoints = training::checkpoints(&st.db, job, false)
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
        .join(super::checkpoints::checkpoint_name(step))
        .join(file.as_str());
    let bytes = st
        .artifacts
        .get(&target)
        .await
        .map_err(RestError::internal)?
        .bytes()
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
