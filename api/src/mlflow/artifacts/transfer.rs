//! Artifact bytes in and out: `PUT` streams an upload into the store,
//! `GET` streams a download (whole or one `Range`), `DELETE` removes a
//! file or a folder; uploads and deletes are recorded on the run.

use super::path::content_type;
use super::range::{RangeAsk, parse_range, resolve_range};
use super::{Target, object_error, run_command, target};
use crate::mlflow::ok_empty;
use crate::mlflow::wire::{ErrorCode, MlflowError};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_domain::ids::JobId;
use ftl_domain::job::JobCommand;
use ftl_domain::project::Scope;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

pub(super) async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let Target {
        c,
        p,
        run,
        location,
    } = target(&state, &req, Scope::Write, false).await?;
    if run.deleted {
        return Err(MlflowError::invalid(ftl_domain::job::deleted_run_message(
            JobId(run.job_id),
        )));
    }
    let limit = state.config.artifacts.max_file_bytes;
    let mut writer = state
        .effects
        .artifacts
        .writer(&location)
        .await
        .map_err(|e| object_error(e, &p.rel))?;
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                writer.abort().await;
                return Err(MlflowError::new(
                    ErrorCode::BadRequest,
                    format!("upload interrupted: {e}"),
                ));
            }
        };
        if writer.size() + chunk.len() as u64 > limit {
            writer.abort().await;
            return Err(MlflowError::invalid(format!(
                "Artifact '{}' exceeds the {limit}-byte limit per file",
                p.rel
            )));
        }
        writer
            .write(&chunk)
            .await
            .map_err(|e| object_error(e, &p.rel))?;
    }
    let written = writer.finish().await.map_err(|e| object_error(e, &p.rel))?;
    run_command(
        &state,
        &c,
        &run,
        JobCommand::StoreArtifact {
            path: p.rel.clone(),
            size: written.size,
            sha256: written.sha256,
            content_type: content_type(&p.rel),
        },
    )
    .await?;
    Ok(ok_empty())
}

pub(super) async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    let Target { p, location, .. } = target(&state, &req, Scope::Read, true).await?;
    let ask = req
        .headers()
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .map_or(RangeAsk::Whole, parse_range);
    let ranged = ask != RangeAsk::Whole;
    // A ranged read learns the size first, so an unsatisfiable range is
    // answered 416 on every backend instead of whatever error it raises.
    let range = if ranged {
        let meta = state
            .effects
            .artifacts
            .head(&location)
            .await
            .map_err(|e| object_error(e, &p.rel))?;
        match resolve_range(ask, meta.size) {
            Some(r) => Some(r),
            None => {
                return Ok(HttpResponse::RangeNotSatisfiable()
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{}", meta.size)))
                    .json(json!({
                        "error_code": ErrorCode::InvalidParameterValue.as_str(),
                        "message": format!(
                            "Range '{}' cannot be satisfied: '{}' is {} bytes",
                            req.headers().get(header::RANGE).and_then(|h| h.to_str().ok()).unwrap_or(""),
                            p.rel,
                            meta.size
                        ),
                    })));
            }
        }
    } else {
        None
    };
    let got = state
        .effects
        .artifacts
        .read(&location, range)
        .await
        .map_err(|e| object_error(e, &p.rel))?;
    let total = got.size;
    let r = got.range.clone();
    let name = p
        .rel
        .rsplit('/')
        .next()
        .unwrap_or("artifact")
        .replace('"', "");
    let mut resp = if ranged {
        let mut b = HttpResponse::PartialContent();
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{total}", r.start, r.end.saturating_sub(1)),
        ));
        b
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::CONTENT_TYPE, content_type(&p.rel)))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .no_chunking(r.end - r.start);
    let stream = got.bytes.map_err(|e| {
        tracing::error!(error = %e, "artifact read");
        actix_web::error::ErrorInternalServerError("artifact read failed")
    });
    Ok(resp.streaming(stream))
}

pub(super) async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    let Target {
        c,
        p,
        run,
        location,
    } = target(&state, &req, Scope::Write, false).await?;
    // A file, or every file under a folder.
    state
        .effects
        .artifacts
        .delete_all(&location)
        .await
        .map_err(|e| object_error(e, &p.rel))?;
    run_command(&state, &c, &run, JobCommand::DeleteArtifact { path: p.rel }).await?;
    Ok(ok_empty())
}
