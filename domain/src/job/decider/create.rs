//! Creating a job: the run facts it starts with, its input checks and its first events.

use super::{JobCommand, MAX_RUN_TAG_VALUE_CHARS};
use crate::error::DomainError;
use crate::experiment::{DEFAULT_EXPERIMENT_ID, KeyValue, validate_key_values};
use crate::job::Provider;
use crate::job::events::{JobCreated, JobEvent, JobStarted, RunTagsSet};
use crate::job::managed::{JobValidated, ManagedEvent};
use crate::limits::{MAX_CONFIG_BYTES, MAX_NAME_LEN, MAX_TAG_LEN, MAX_TAGS};

/// Run-level facts given when a job is created (MLflow's `runs/create`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub experiment_id: String,
    pub user_id: String,
    pub start_time_ms: Option<i64>,
    /// Key/value tags to set at once.
    pub tags: Vec<KeyValue>,
    /// Start running at once (an MLflow run is `RUNNING` from creation).
    pub start: bool,
}

impl Default for RunInfo {
    fn default() -> Self {
        Self {
            experiment_id: DEFAULT_EXPERIMENT_ID.to_string(),
            user_id: String::new(),
            start_time_ms: None,
            tags: vec![],
            start: false,
        }
    }
}

fn validate_create(
    name: &str,
    config: &serde_json::Value,
    tags: &[String],
) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(DomainError::invalid("name", "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(DomainError::limit(
            "name",
            format!("at most {MAX_NAME_LEN} bytes"),
        ));
    }
    if !config.is_object() {
        return Err(DomainError::invalid("config", "must be a JSON object"));
    }
    if config.to_string().len() > MAX_CONFIG_BYTES {
        return Err(DomainError::limit(
            "config",
            format!("at most {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    if tags.len() > MAX_TAGS {
        return Err(DomainError::limit(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    if let Some(i) = tags
        .iter()
        .position(|t| t.is_empty() || t.len() > MAX_TAG_LEN)
    {
        return Err(DomainError::invalid(
            format!("tags[{i}]"),
            format!("must be 1 to {MAX_TAG_LEN} bytes"),
        ));
    }
    Ok(())
}

/// The commands a job that does not exist yet takes: the two that create it.
pub(super) fn decide_new(cmd: &JobCommand) -> Result<Vec<JobEvent>, DomainError> {
    match cmd {
        JobCommand::Create {
            job_id,
            project_id,
            name,
            config,
            tags,
            provider,
            run,
        } => {
            validate_create(name, config, tags)?;
            validate_key_values("tags", &run.tags, MAX_RUN_TAG_VALUE_CHARS)?;
            let mut out = vec![JobEvent::Created(JobCreated {
                job_id: *job_id,
                project_id: *project_id,
                name: name.trim().to_string(),
                config: config.clone(),
                tags: tags.clone(),
                provider: *provider,
                experiment_id: run.experiment_id.clone(),
                user_id: run.user_id.clone(),
                start_time_ms: run.start_time_ms,
            })];
            if run.start {
                out.push(JobEvent::Started(JobStarted {
                    job_id: *job_id,
                    from_step: None,
                }));
            }
            if !run.tags.is_empty() {
                out.push(JobEvent::RunTagsSet(RunTagsSet {
                    job_id: *job_id,
                    tags: run.tags.clone(),
                }));
            }
            Ok(out)
        }
        JobCommand::CreateManaged {
            job_id,
            project_id,
            name,
            tags,
            config,
            validated,
        } => {
            validate_create(name, config, tags)?;
            Ok(vec![
                JobEvent::Created(JobCreated {
                    job_id: *job_id,
                    project_id: *project_id,
                    name: name.trim().to_string(),
                    config: config.clone(),
                    tags: tags.clone(),
                    provider: Provider::Local,
                    experiment_id: DEFAULT_EXPERIMENT_ID.to_string(),
                    user_id: String::new(),
                    start_time_ms: None,
                }),
                JobEvent::Managed(ManagedEvent::Validated(JobValidated {
                    job_id: *job_id,
                    ..(**validated).clone()
                })),
            ])
        }
        _ => Err(DomainError::NotFound { entity: "job" }),
    }
}
