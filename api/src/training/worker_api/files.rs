//! The files of a job's lease: its dataset and base weights to download,
//! checkpoint files to upload and read back, and the commit of a checkpoint
//! (checksums checked, listing written, recorded, older ones pruned).

use super::{Held, ok, run};
use crate::state::AppState;
use crate::training::rest::{RestError, RestResult, json_body, read_body};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use ftl_domain::job::JobCommand;
use ftl_domain::job::managed::{CheckpointSaved, checkpoints_to_prune};
use ftl_domain::job::worker_protocol::*;
use ftl_effects::blobs::{BlobError, BlobKey};
use ftl_effects::training::checkpoints::{checkpoint_name, checkpoint_prefix, checkpoint_store};
use ftl_effects::training::storage;
use ftl_projections::views::training;
use uuid::Uuid;

/// The file in `/jobs/{job}/base/{file}`.
#[derive(serde::Deserialize)]
pub(super) struct BaseFile {
    file: String,
}

/// The step and file in `/jobs/{job}/checkpoints/{step}/files/{file}`.
#[derive(serde::Deserialize)]
pub(super) struct CheckpointFile {
    step: u64,
    file: String,
}

async fn read_object(st: &AppState, path: &BlobKey) -> RestResult<web::Bytes> {
    match st.effects.artifacts.get(path).await {
        Ok(bytes) => Ok(bytes),
        Err(BlobError::NotFound) => Err(RestError::not_found(format!(
            "{} is not stored",
            path.filename().unwrap_or_default()
        ))),
        Err(e) => Err(RestError::internal(e)),
    }
}

fn octets(bytes: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(bytes)
}

pub(super) async fn dataset(st: web::Data<AppState>, h: Held) -> RestResult {
    let d = h
        .state
        .managed
        .as_ref()
        .and_then(|m| m.dataset.clone())
        .ok_or_else(|| RestError::not_found("the job has no dataset"))?;
    let row = training::dataset(&st.effects.db, h.project.0, d.dataset_id)
        .await
        .map_err(RestError::internal)?
        .ok_or_else(|| RestError::not_found("dataset not found"))?;
    let bytes = storage::read_dataset(&st.effects, &row.uri)
        .await
        .map_err(RestError::internal)?;
    Ok(octets(bytes))
}

pub(super) async fn base_weights(
    st: web::Data<AppState>,
    h: Held,
    path: web::Path<BaseFile>,
) -> RestResult {
    let file = path.into_inner().file;
    let model_id = h
        .state
        .managed
        .as_ref()
        .and_then(|m| m.base_model_id)
        .ok_or_else(|| RestError::not_found("the job has no base model of ours"))?;
    if file != ftl_trainer::checkpoint::MODEL_FILE {
        return Err(RestError::not_found("only model.bpk is served"));
    }
    let model = training::model(&st.effects.db, h.project.0, model_id)
        .await
        .map_err(RestError::internal)?
        .ok_or_else(|| RestError::not_found("base model not found"))?;
    let (_, _, folder, _) = model
        .local()
        .ok_or_else(|| RestError::not_found("the base model is not one trained here"))?;
    let path = BlobKey::from(format!("{folder}/{file}"));
    Ok(octets(read_object(&st, &path).await?))
}

fn checkpoint_file_path(job: Uuid, step: u64, file: &str) -> RestResult<BlobKey> {
    let allowed = [
        ftl_trainer::checkpoint::MODEL_FILE,
        ftl_trainer::checkpoint::OPTIMIZER_FILE,
        ftl_trainer::checkpoint::REFERENCE_FILE,
        ftl_trainer::checkpoint::META_FILE,
    ];
    if !allowed.contains(&file) {
        return Err(RestError::invalid(format!(
            "a checkpoint file is one of {}",
            allowed.join(", ")
        )));
    }
    Ok(checkpoint_prefix(job)
        .join(checkpoint_name(step))
        .join(file))
}

pub(super) async fn put_checkpoint_file(
    st: web::Data<AppState>,
    h: Held,
    path: web::Path<CheckpointFile>,
    payload: web::Payload,
) -> RestResult {
    let CheckpointFile { step, file } = path.into_inner();
    let target = checkpoint_file_path(h.job.0, step, &file)?;
    let bytes = read_body(payload, st.config.artifacts.max_file_bytes as usize).await?;
    st.effects
        .artifacts
        .put(&target, bytes)
        .await
        .map_err(RestError::internal)?;
    ok()
}

pub(super) async fn get_checkpoint_file(
    st: web::Data<AppState>,
    h: Held,
    path: web::Path<CheckpointFile>,
) -> RestResult {
    let CheckpointFile { step, file } = path.into_inner();
    let target = checkpoint_file_path(h.job.0, step, &file)?;
    Ok(octets(read_object(&st, &target).await?))
}

/// Commits a checkpoint whose files were uploaded: checks each file's size
/// and SHA-256 against what was stored, writes the listing sidecar, records
/// `job.checkpoint_saved`, then prunes by the job's keep-last-N.
pub(super) async fn checkpoint(st: web::Data<AppState>, h: Held, body: web::Bytes) -> RestResult {
    let report: CheckpointReport = json_body(&body)?;
    let folder = checkpoint_prefix(h.job.0).join(checkpoint_name(report.step));
    for f in &report.files {
        let target = checkpoint_file_path(h.job.0, report.step, &f.name)?;
        let stored = read_object(&st, &target).await.map_err(|e| {
            if e.code == "not_found" {
                RestError::invalid(format!(
                    "checkpoint_incomplete: {} was not uploaded",
                    f.name
                ))
            } else {
                e
            }
        })?;
        let sha = ftl_commands::digest::sha256_hex(&stored);
        if stored.len() as u64 != f.size || sha != f.sha256 {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "checksum_mismatch",
                format!("{}: stored bytes differ from the report", f.name),
            ));
        }
    }
    let info = ftl_effects::training::checkpoints::CheckpointInfo {
        name: checkpoint_name(report.step),
        step: report.step,
        epoch: report.epoch,
        eval_loss: report.eval_loss,
        files: report
            .files
            .iter()
            .map(|f| ftl_effects::training::checkpoints::StoredFile {
                name: f.name.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
            })
            .collect(),
    };
    let sidecar = serde_json::to_vec_pretty(&info).map_err(RestError::internal)?;
    st.effects
        .artifacts
        .put(
            &folder
                .clone()
                .join(ftl_effects::training::checkpoints::INFO_FILE),
            sidecar,
        )
        .await
        .map_err(RestError::internal)?;
    let cmd = JobCommand::SaveCheckpoint(Box::new(CheckpointSaved {
        job_id: h.job,
        lease_id: h.lease,
        step: report.step,
        epoch: report.epoch,
        path: folder.to_string(),
        files: report.files.clone(),
        eval_loss: report.eval_loss,
        train_loss: report.train_loss,
        reason: report.reason.clone(),
        save_seconds: report.save_seconds,
    }));
    run(&st, &h, cmd, &format!("checkpoint/{}", report.step)).await?;
    prune(&st, &h, report.step).await?;
    ok()
}

async fn prune(st: &AppState, h: &Held, latest: u64) -> RestResult<()> {
    let Some(m) = &h.state.managed else {
        return Ok(());
    };
    let Some(keep) = m
        .config
        .pointer("/checkpoint/save_total_limit")
        .and_then(serde_json::Value::as_u64)
    else {
        return Ok(());
    };
    let mut live: Vec<(u64, Option<f64>)> = m.checkpoints.iter().map(|(s, l)| (*s, *l)).collect();
    if !live.iter().any(|(s, _)| *s == latest) {
        live.push((latest, None));
    }
    let store = checkpoint_store(&st.effects, h.job.0, None);
    for step in checkpoints_to_prune(&live, keep as usize) {
        if step == latest {
            continue;
        }
        let cmd = JobCommand::PruneCheckpoint {
            lease_id: h.lease,
            step,
        };
        run(st, h, cmd, &format!("prune/{step}")).await?;
        store
            .delete(&checkpoint_name(step))
            .await
            .map_err(RestError::internal)?;
    }
    Ok(())
}
