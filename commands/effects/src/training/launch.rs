//! Launching a managed job, the body of `createTrainingJob`: the config is
//! checked against everything it will train with — its dataset (parsed off
//! the async threads), a base model trained here (by id), what the trainer
//! supports and the machine's memory, the GPU catalog's types and rates —
//! and what passes becomes the job's `JobValidated` facts. Nothing is
//! written here: the caller derives the job id from its idempotency key and
//! runs the command.

use crate::Effects;
use crate::training::storage;
use ftl_domain::ProjectId;
use ftl_domain::ids::JobId;
use ftl_domain::job::managed::{DatasetRef, JobValidated};
use ftl_domain::training_config::{Context as ValidationContext, Validation, validate};
use ftl_projections::views::training;
use ftl_trainer::dataset::DataIssue;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("dataset not found")]
    DatasetNotFound,
    #[error(
        "model.name names an external model: only a model trained here can be fine-tuned further"
    )]
    ExternalBaseModel,
    #[error("dataset has {} problem(s)", .0.len())]
    DatasetInvalid(Vec<DataIssue>),
    #[error("{}", .0.summary())]
    ConfigInvalid(Box<Validation>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for LaunchError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// A config that passed, with what the job records about its inputs.
#[derive(Debug, Clone)]
pub struct Launch {
    pub validation: Validation,
    pub dataset: DatasetRef,
    pub base_model_id: Option<Uuid>,
    pub rate_usd_per_hour: f64,
}

impl Launch {
    /// The validated facts of job `job`.
    pub fn validated(&self, job: JobId) -> Result<JobValidated, serde_json::Error> {
        let v = &self.validation;
        Ok(JobValidated {
            job_id: job,
            normalized_config: v.normalized_config.clone(),
            config_hash: v.config_hash.clone(),
            warnings: serde_json::to_value(&v.warnings)?,
            estimates: serde_json::to_value(&v.estimates)?,
            dataset: self.dataset.clone(),
            base_model_id: self.base_model_id,
            rate_usd_per_hour: self.rate_usd_per_hour,
        })
    }
}

/// The GPU types the config's provider offers and its hourly rate for the
/// config's GPUs (`resources.provider`, `gpu_type`, `gpu_count`).
pub fn resources(fx: &Effects, config: &Value) -> (Option<Vec<String>>, Option<f64>) {
    let provider = config
        .pointer("/resources/provider")
        .and_then(Value::as_str)
        .unwrap_or("local");
    let gpu_type = config
        .pointer("/resources/gpu_type")
        .and_then(Value::as_str);
    let gpu_count = config
        .pointer("/resources/gpu_count")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    (
        Some(fx.gpu_catalog.skus(provider)),
        fx.gpu_catalog.rate(provider, gpu_type, gpu_count),
    )
}

/// Checks `config` for a job of `project` training on `dataset_id`.
pub async fn check(
    fx: &Effects,
    project: ProjectId,
    config: &Value,
    dataset_id: Uuid,
) -> Result<Launch, LaunchError> {
    let dataset = training::dataset(&fx.db, project.0, dataset_id)
        .await?
        .ok_or(LaunchError::DatasetNotFound)?;
    // A model trained here may be the starting point, by id.
    let model_name = config
        .pointer("/model/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut extra_models = vec![];
    let mut base_model_id = None;
    let mut architecture = ftl_trainer::job::preset(&model_name);
    if let Ok(model_uuid) = Uuid::parse_str(&model_name)
        && let Some(m) = training::model(&fx.db, project.0, model_uuid).await?
    {
        let (_, _, _, arch) = m.local().ok_or(LaunchError::ExternalBaseModel)?;
        let arch: ftl_trainer::ModelConfig =
            serde_json::from_value(arch.clone()).map_err(anyhow::Error::from)?;
        extra_models.push((model_name.clone(), arch));
        base_model_id = Some(model_uuid);
        architecture = Some(arch);
    }
    let context = architecture.map(|a| a.context).unwrap_or(1024);
    let bytes = storage::read_dataset(fx, &dataset.uri).await?;
    let raw_text = storage::is_raw_text(&dataset.name);
    let parsed =
        tokio::task::spawn_blocking(move || ftl_trainer::Dataset::parse(&bytes, raw_text, context))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(LaunchError::DatasetInvalid)?;
    let (gpu_types, rate) = resources(fx, config);
    let vctx = ValidationContext {
        dataset: Some(ftl_trainer::job::dataset_facts(&parsed, raw_text)),
        trainer: ftl_trainer::job::support(&extra_models, super::local::total_memory_bytes()),
        gpu_types,
        rate_usd_per_hour: rate,
        ..Default::default()
    };
    let validation = validate(config, &vctx);
    if !validation.valid {
        return Err(LaunchError::ConfigInvalid(Box::new(validation)));
    }
    Ok(Launch {
        validation,
        dataset: DatasetRef {
            dataset_id,
            digest: parsed.digest.clone(),
            kind: dataset.kind.clone(),
            examples: parsed.examples.len() as u64,
        },
        base_model_id,
        rate_usd_per_hour: rate.unwrap_or(0.0),
    })
}
