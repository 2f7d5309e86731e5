use super::events::*;
use super::lifecycle::{ManagedState, decide_managed, evolve_managed, release};
use super::managed::{
    BudgetChange, CheckpointSaved, ErrorRecorded, JobValidated, PauseReason, RecoveryCause,
};
use super::{FailureReason, JobStatus, Provider, RunStatus};
use crate::decider::Decider;
use crate::error::DomainError;
use crate::experiment::{DEFAULT_EXPERIMENT_ID, KeyValue, validate_key_values};
use crate::ids::{JobId, ProjectId};
use crate::limits::*;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobState {
    pub created: Option<Created>,
    pub status: Option<JobStatus>,
    pub name: String,
    /// Write-once parameters.
    pub params: BTreeMap<String, String>,
    /// Key/value run tags (last write wins).
    pub run_tags: BTreeMap<String, String>,
    /// MLflow's `lifecycle_stage = deleted`: the job rejects writes.
    pub deleted: bool,
    /// Set for managed jobs (from `job.validated`).
    pub managed: Option<ManagedState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub job_id: JobId,
    pub project_id: ProjectId,
    pub provider: Provider,
    pub experiment_id: String,
}

/// The MLflow tag holding a run's name (kept equal to the job's name).
pub const RUN_NAME_TAG: &str = "mlflow.runName";

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

/// A guard for command handlers: a job of another project does not exist.
pub fn in_project(project: ProjectId) -> impl Fn(&JobState) -> Result<(), DomainError> {
    move |s: &JobState| match &s.created {
        Some(c) if c.project_id != project => Err(DomainError::NotFound { entity: "job" }),
        _ => Ok(()),
    }
}

/// The status a new job starts in: a managed job is validated next.
pub fn created_status(provider: Provider) -> JobStatus {
    match provider {
        Provider::Local => JobStatus::Validating,
        Provider::External => JobStatus::Queued,
    }
}

/// A job id as MLflow clients see it: 32 lower-case hex characters.
pub fn run_id_text(job: JobId) -> String {
    job.0.simple().to_string()
}

pub fn deleted_run_message(job: JobId) -> String {
    format!(
        "The run {} must be in the 'active' state. Current state is deleted.",
        run_id_text(job)
    )
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    Create {
        job_id: JobId,
        project_id: ProjectId,
        name: String,
        config: serde_json::Value,
        tags: Vec<String>,
        provider: Provider,
        run: RunInfo,
    },
    Start,
    Complete,
    Fail {
        reason: FailureReason,
        message: String,
    },
    Cancel {
        reason: Option<String>,
    },
    /// Metrics arrived: a queued job becomes running; a finished one refuses them.
    ReportMetrics,
    /// Params, tags and/or metrics from a tracking client (MLflow): params are
    /// write-once, a deleted run refuses everything, a finished run accepts
    /// them (as MLflow does) and a queued one starts.
    RecordRunData {
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
        metrics: bool,
    },
    DeleteRunTag {
        key: String,
    },
    Rename {
        name: String,
    },
    Delete,
    Restore,
    /// A client's status report (MLflow `runs/update`). For jobs reported from
    /// outside it drives the lifecycle, reopening a finished run when the
    /// client resumes it; for managed jobs it is only recorded.
    ReportRunStatus {
        status: RunStatus,
        end_time_ms: Option<i64>,
    },
    StoreArtifact {
        path: String,
        size: u64,
        sha256: String,
        content_type: String,
    },
    DeleteArtifact {
        path: String,
    },
    /// A managed job whose config and dataset passed validation: created
    /// and queued in one step (`validating` → `queued`).
    CreateManaged {
        job_id: JobId,
        project_id: ProjectId,
        name: String,
        tags: Vec<String>,
        config: serde_json::Value,
        validated: Box<JobValidated>,
    },
    /// A worker takes a queued (or recovering) job under a new lease.
    Dispatch {
        worker_id: String,
        lease_id: uuid::Uuid,
        token_sha256: String,
    },
    /// The worker began training (`from_step`: where it resumed).
    WorkerStarted {
        lease_id: uuid::Uuid,
        from_step: Option<u64>,
    },
    SaveCheckpoint(Box<CheckpointSaved>),
    PruneCheckpoint {
        lease_id: uuid::Uuid,
        step: u64,
    },
    RequestPause {
        reason: PauseReason,
    },
    /// The worker saved (or could not save) and released: the job is paused.
    ConfirmPaused {
        lease_id: uuid::Uuid,
        checkpoint_step: Option<u64>,
    },
    Resume {
        budget: Option<BudgetChange>,
    },
    ConfirmCancelled {
        lease_id: uuid::Uuid,
    },
    /// Training finished and the final artifacts are recorded.
    Finish {
        lease_id: uuid::Uuid,
    },
    FailRun {
        lease_id: uuid::Uuid,
        reason: FailureReason,
        error: Box<ErrorRecorded>,
    },
    /// The lease expired without a heartbeat (the reconciler's command).
    LoseLease {
        lease_id: uuid::Uuid,
        cause: RecoveryCause,
    },
    /// A cost tick up to now, with the budget rules (the controller's command).
    AccrueCost,
}

impl JobCommand {
    fn verb(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Fail { .. } => "fail",
            Self::Cancel { .. } => "cancel",
            Self::ReportMetrics => "log metrics to",
            Self::RecordRunData { .. } => "log to",
            Self::DeleteRunTag { .. } => "delete a tag of",
            Self::Rename { .. } => "rename",
            Self::Delete => "delete",
            Self::Restore => "restore",
            Self::ReportRunStatus { .. } => "report the status of",
            Self::StoreArtifact { .. } => "store an artifact of",
            Self::DeleteArtifact { .. } => "delete an artifact of",
            Self::CreateManaged { .. } => "create",
            Self::Dispatch { .. } => "dispatch",
            Self::WorkerStarted { .. } => "start",
            Self::SaveCheckpoint(_) => "save a checkpoint of",
            Self::PruneCheckpoint { .. } => "prune a checkpoint of",
            Self::RequestPause { .. } => "pause",
            Self::ConfirmPaused { .. } => "confirm the pause of",
            Self::Resume { .. } => "resume",
            Self::ConfirmCancelled { .. } => "confirm the cancellation of",
            Self::Finish { .. } => "complete",
            Self::FailRun { .. } => "fail",
            Self::LoseLease { .. } => "recover",
            Self::AccrueCost => "charge",
        }
    }
}

pub struct JobDecider;

fn invalid(status: JobStatus, cmd: &JobCommand) -> DomainError {
    DomainError::InvalidTransition {
        current: status.to_string(),
        command: cmd.verb().to_string(),
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

/// Run parameters: values up to 6000 characters; run tags up to 8000 (MLflow's limits).
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
pub const MAX_RUN_TAG_VALUE_CHARS: usize = 8000;

/// The tracking-client commands (MLflow runs); `None` for lifecycle commands.
fn decide_run(
    state: &JobState,
    created: &Created,
    status: JobStatus,
    cmd: &JobCommand,
) -> Result<Option<Vec<JobEvent>>, DomainError> {
    let job_id = created.job_id;
    let external = created.provider == Provider::External;
    let events = match cmd {
        JobCommand::RecordRunData {
            params,
            tags,
            metrics,
        } => {
            validate_key_values("params", params, MAX_PARAM_VALUE_CHARS)?;
            validate_key_values("tags", tags, MAX_RUN_TAG_VALUE_CHARS)?;
            let mut seen = HashSet::new();
            let dups: Vec<&str> = params
                .iter()
                .filter(|p| !seen.insert(p.key.as_str()))
                .map(|p| p.key.as_str())
                .collect();
            if !dups.is_empty() {
                return Err(DomainError::invalid(
                    "params",
                    format!(
                        "Duplicate parameter keys have been submitted: [{}]. Please ensure the request contains only one param value per param key.",
                        dups.iter()
                            .map(|k| format!("'{k}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let mut new_params = Vec::new();
            for p in params {
                match state.params.get(&p.key) {
                    Some(old) if *old == p.value => {}
                    Some(old) => {
                        return Err(DomainError::invalid(
                            "params",
                            format!(
                                "Changing param values is not allowed. Param with key='{}' was already logged with value='{}' for run ID='{}'. Attempted logging new value '{}'.",
                                p.key,
                                old,
                                run_id_text(job_id),
                                p.value
                            ),
                        ));
                    }
                    None => new_params.push(p.clone()),
                }
            }
            let mut out = Vec::new();
            if *metrics && matches!(status, JobStatus::Queued | JobStatus::Provisioning) {
                out.push(JobEvent::Started(JobStarted {
                    job_id,
                    from_step: None,
                }));
            }
            if !new_params.is_empty() {
                out.push(JobEvent::ParamsLogged(ParamsLogged {
                    job_id,
                    params: new_params,
                }));
            }
            if !tags.is_empty() {
                out.push(JobEvent::RunTagsSet(RunTagsSet {
                    job_id,
                    tags: tags.clone(),
                }));
            }
            // Setting `mlflow.runName` renames the run, as in MLflow.
            if let Some(name) = tags.iter().rev().find(|t| t.key == RUN_NAME_TAG)
                && name.value != state.name
                && !name.value.trim().is_empty()
            {
                out.push(JobEvent::Renamed(JobRenamed {
                    job_id,
                    name: name.value.clone(),
                }));
            }
            out
        }
        JobCommand::DeleteRunTag { key } => {
            if !state.run_tags.contains_key(key) {
                return Err(DomainError::NotFound { entity: "tag" });
            }
            vec![JobEvent::RunTagDeleted(RunTagDeleted {
                job_id,
                key: key.clone(),
            })]
        }
        JobCommand::Rename { name } => {
            let name = name.trim();
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(DomainError::invalid(
                    "name",
                    format!("must be 1 to {MAX_NAME_LEN} bytes"),
                ));
            }
            if name == state.name {
                return Ok(Some(vec![]));
            }
            vec![
                JobEvent::Renamed(JobRenamed {
                    job_id,
                    name: name.to_string(),
                }),
                JobEvent::RunTagsSet(RunTagsSet {
                    job_id,
                    tags: vec![KeyValue::new(RUN_NAME_TAG, name)],
                }),
            ]
        }
        JobCommand::Delete if state.deleted => vec![],
        JobCommand::Delete => vec![JobEvent::Deleted(JobRef { job_id })],
        JobCommand::Restore if state.deleted => vec![JobEvent::Restored(JobRef { job_id })],
        JobCommand::Restore => vec![],
        JobCommand::ReportRunStatus {
            status: reported,
            end_time_ms,
        } => {
            let mut out = vec![JobEvent::RunStatusReported(RunStatusReported {
                job_id,
                status: *reported,
                end_time_ms: *end_time_ms,
            })];
            if external {
                out.extend(follow_reported(job_id, status, *reported));
            }
            out
        }
        JobCommand::StoreArtifact {
            path,
            size,
            sha256,
            content_type,
        } => vec![JobEvent::ArtifactStored(ArtifactStored {
            job_id,
            path: path.clone(),
            size: *size,
            sha256: sha256.clone(),
            content_type: content_type.clone(),
        })],
        JobCommand::DeleteArtifact { path } => vec![JobEvent::ArtifactDeleted(ArtifactDeleted {
            job_id,
            path: path.clone(),
        })],
        _ => return Ok(None),
    };
    Ok(Some(events))
}

/// The lifecycle events that make an external job's status match what its
/// client reported. A finished run the client reports running again (a
/// resumed MLflow run) is reopened.
fn follow_reported(job_id: JobId, current: JobStatus, reported: RunStatus) -> Vec<JobEvent> {
    let target = match reported {
        RunStatus::Scheduled => return vec![],
        RunStatus::Running => JobStatus::Running,
        RunStatus::Finished => JobStatus::Succeeded,
        RunStatus::Failed => JobStatus::Failed,
        RunStatus::Killed => JobStatus::Cancelled,
    };
    if current == target {
        return vec![];
    }
    let mut out = Vec::new();
    if current.is_terminal() {
        out.push(JobEvent::Reopened(JobRef { job_id }));
    } else if matches!(
        current,
        JobStatus::Queued | JobStatus::Provisioning | JobStatus::Validating
    ) {
        out.push(JobEvent::Started(JobStarted {
            job_id,
            from_step: None,
        }));
    }
    match target {
        JobStatus::Succeeded => out.push(JobEvent::Succeeded(JobSucceeded { job_id })),
        JobStatus::Failed => out.push(JobEvent::Failed(JobFailed {
            job_id,
            reason: FailureReason::UserCode,
            message: "the tracking client reported the run FAILED".into(),
        })),
        JobStatus::Cancelled => out.push(JobEvent::Cancelled(JobCancelled {
            job_id,
            reason: Some("the tracking client reported the run KILLED".into()),
        })),
        _ => {}
    }
    out
}

impl Decider for JobDecider {
    type State = JobState;
    type Command = JobCommand;
    type Event = JobEvent;

    fn decide(
        state: &JobState,
        cmd: &JobCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        let (created, status) = match (&state.created, state.status) {
            (Some(c), Some(s)) => (c, s),
            _ => {
                return match cmd {
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
                            JobEvent::Managed(super::managed::ManagedEvent::Validated(
                                JobValidated {
                                    job_id: *job_id,
                                    ..(**validated).clone()
                                },
                            )),
                        ])
                    }
                    _ => Err(DomainError::NotFound { entity: "job" }),
                };
            }
        };
        let job_id = created.job_id;
        if state.deleted && !matches!(cmd, JobCommand::Delete | JobCommand::Restore) {
            return Err(DomainError::invalid("run", deleted_run_message(job_id)));
        }
        if let Some(events) = decide_run(state, created, status, cmd)? {
            return Ok(events);
        }
        if let JobCommand::Create { .. } | JobCommand::CreateManaged { .. } = cmd {
            return Err(DomainError::AlreadyExists { entity: "job" });
        }
        if let Some(events) = decide_managed(state, job_id, status, cmd, now)? {
            return Ok(events);
        }
        use JobStatus::*;
        match (cmd, status) {
            // A managed job is driven by its worker, not by reporters.
            (JobCommand::Start | JobCommand::Complete | JobCommand::Fail { .. }, _)
                if state.managed.is_some() =>
            {
                Err(DomainError::invalid(
                    "job",
                    "managed_job: a managed job's lifecycle is driven by its worker; use pauseJob, resumeJob or cancelJob",
                ))
            }
            (JobCommand::ReportMetrics, s) if state.managed.is_some() && !s.is_terminal() => {
                Ok(vec![])
            }
            (JobCommand::Start, Queued | Provisioning) => Ok(vec![JobEvent::Started(JobStarted {
                job_id,
                from_step: None,
            })]),
            // Starting a running job again is a harmless retry.
            (JobCommand::Start, Running) => Ok(vec![]),
            (JobCommand::ReportMetrics, Queued | Provisioning) => {
                Ok(vec![JobEvent::Started(JobStarted {
                    job_id,
                    from_step: None,
                })])
            }
            (JobCommand::ReportMetrics, s) if !s.is_terminal() => Ok(vec![]),
            (JobCommand::Complete, Running) => {
                Ok(vec![JobEvent::Succeeded(JobSucceeded { job_id })])
            }
            (JobCommand::Fail { reason, message }, s) if !s.is_terminal() => {
                if message.len() > MAX_ERROR_LEN {
                    return Err(DomainError::limit(
                        "error",
                        format!("at most {MAX_ERROR_LEN} bytes"),
                    ));
                }
                Ok(vec![JobEvent::Failed(JobFailed {
                    job_id,
                    reason: *reason,
                    message: message.clone(),
                })])
            }
            // Nothing to release: a job that is not consuming resources ends at once.
            (JobCommand::Cancel { reason }, Validating | Queued | Paused) => {
                Ok(vec![JobEvent::Cancelled(JobCancelled {
                    job_id,
                    reason: reason.clone(),
                })])
            }
            // An external job's resources are the reporter's own: it ends at once too.
            // (Managed jobs will go through `cancelling` to release their machine.)
            (JobCommand::Cancel { reason }, s)
                if !s.is_terminal() && created.provider == Provider::External =>
            {
                Ok(vec![JobEvent::Cancelled(JobCancelled {
                    job_id,
                    reason: reason.clone(),
                })])
            }
            (cmd, s) => Err(invalid(s, cmd)),
        }
    }

    fn evolve(mut state: JobState, event: &JobEvent) -> JobState {
        match event {
            JobEvent::Created(e) => {
                state.created = Some(Created {
                    job_id: e.job_id,
                    project_id: e.project_id,
                    provider: e.provider,
                    experiment_id: e.experiment_id.clone(),
                });
                state.status = Some(created_status(e.provider));
                state.name = e.name.clone();
            }
            JobEvent::Started(_) | JobEvent::Reopened(_) => state.status = Some(JobStatus::Running),
            JobEvent::Succeeded(_) => {
                state.status = Some(JobStatus::Succeeded);
                release(&mut state);
            }
            JobEvent::Failed(_) => {
                state.status = Some(JobStatus::Failed);
                release(&mut state);
            }
            JobEvent::Cancelled(_) => {
                state.status = Some(JobStatus::Cancelled);
                release(&mut state);
            }
            JobEvent::Managed(e) => evolve_managed(&mut state, e),
            JobEvent::ParamsLogged(e) => {
                for p in &e.params {
                    state.params.insert(p.key.clone(), p.value.clone());
                }
            }
            JobEvent::RunTagsSet(e) => {
                for t in &e.tags {
                    state.run_tags.insert(t.key.clone(), t.value.clone());
                }
            }
            JobEvent::RunTagDeleted(e) => {
                state.run_tags.remove(&e.key);
            }
            JobEvent::Renamed(e) => state.name = e.name.clone(),
            JobEvent::Deleted(_) => state.deleted = true,
            JobEvent::Restored(_) => state.deleted = false,
            JobEvent::RunStatusReported(_)
            | JobEvent::ArtifactStored(_)
            | JobEvent::ArtifactDeleted(_) => {}
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::testing::given;
    use serde_json::json;

    fn ids() -> (JobId, ProjectId) {
        (
            JobId(uuid::Uuid::from_u128(1)),
            ProjectId(uuid::Uuid::from_u128(2)),
        )
    }

    fn created() -> JobEvent {
        let (job_id, project_id) = ids();
        JobEvent::Created(JobCreated {
            job_id,
            project_id,
            name: "llama-sft".into(),
            config: json!({"lr": 0.001}),
            tags: vec!["sft".into()],
            provider: Provider::External,
            experiment_id: "0".into(),
            user_id: String::new(),
            start_time_ms: None,
        })
    }
    fn started() -> JobEvent {
        JobEvent::Started(JobStarted {
            job_id: ids().0,
            from_step: None,
        })
    }
    fn succeeded() -> JobEvent {
        JobEvent::Succeeded(JobSucceeded { job_id: ids().0 })
    }
    fn cancelled() -> JobEvent {
        JobEvent::Cancelled(JobCancelled {
            job_id: ids().0,
            reason: None,
        })
    }
    fn create_cmd(name: &str) -> JobCommand {
        let (job_id, project_id) = ids();
        JobCommand::Create {
            job_id,
            project_id,
            name: name.into(),
            config: json!({"lr": 0.001}),
            tags: vec!["sft".into()],
            provider: Provider::External,
            run: RunInfo::default(),
        }
    }
    fn is_transition(current: &str, verb: &str) -> impl Fn(&DomainError) -> bool {
        let (c, v) = (current.to_string(), verb.to_string());
        move |e| matches!(e, DomainError::InvalidTransition { current, command } if *current == c && *command == v)
    }

    #[test]
    fn create_then_queued() {
        given::<JobDecider>(&[])
            .when(create_cmd("  llama-sft "))
            .then(vec![created()]);
        let s = JobDecider::fold([created()].iter());
        assert_eq!(s.status, Some(JobStatus::Queued));
    }

    #[test]
    fn create_validates_input() {
        given::<JobDecider>(&[])
            .when(create_cmd(" "))
            .then_error_matches(
                |e| matches!(e, DomainError::InvalidInput { field, .. } if field == "name"),
            );
        let (job_id, project_id) = ids();
        given::<JobDecider>(&[])
            .when(JobCommand::Create {
                job_id,
                project_id,
                name: "x".into(),
                config: json!([1]),
                tags: vec![],
                provider: Provider::External,
                run: RunInfo::default(),
            })
            .then_error_matches(
                |e| matches!(e, DomainError::InvalidInput { field, .. } if field == "config"),
            );
        given::<JobDecider>(&[])
            .when(JobCommand::Create {
                job_id,
                project_id,
                name: "x".into(),
                config: json!({}),
                tags: vec!["t".into(); MAX_TAGS + 1],
                provider: Provider::External,
                run: RunInfo::default(),
            })
            .then_error_matches(
                |e| matches!(e, DomainError::LimitExceeded { field, .. } if field == "tags"),
            );
    }

    #[test]
    fn cannot_create_twice_nor_act_on_missing_job() {
        given::<JobDecider>(&[created()])
            .when(create_cmd("again"))
            .then_error(DomainError::AlreadyExists { entity: "job" });
        given::<JobDecider>(&[])
            .when(JobCommand::Start)
            .then_error(DomainError::NotFound { entity: "job" });
    }

    #[test]
    fn happy_path_queued_running_succeeded() {
        given::<JobDecider>(&[created()])
            .when(JobCommand::Start)
            .then(vec![started()]);
        given::<JobDecider>(&[created(), started()])
            .when(JobCommand::Complete)
            .then(vec![succeeded()]);
    }

    #[test]
    fn start_is_idempotent_while_running() {
        given::<JobDecider>(&[created(), started()])
            .when(JobCommand::Start)
            .then(vec![]);
    }

    #[test]
    fn first_metric_starts_a_queued_job() {
        given::<JobDecider>(&[created()])
            .when(JobCommand::ReportMetrics)
            .then(vec![started()]);
        given::<JobDecider>(&[created(), started()])
            .when(JobCommand::ReportMetrics)
            .then(vec![]);
    }

    #[test]
    fn no_metrics_after_a_terminal_state() {
        for terminal in [succeeded(), cancelled()] {
            let history = [created(), started(), terminal];
            given::<JobDecider>(&history)
                .when(JobCommand::ReportMetrics)
                .then_error_matches(|e| matches!(e, DomainError::InvalidTransition { .. }));
        }
    }

    #[test]
    fn cannot_complete_a_queued_or_cancelled_job() {
        given::<JobDecider>(&[created()])
            .when(JobCommand::Complete)
            .then_error_matches(is_transition("queued", "complete"));
        given::<JobDecider>(&[created(), started(), cancelled()])
            .when(JobCommand::Complete)
            .then_error_matches(is_transition("cancelled", "complete"));
    }

    #[test]
    fn fail_from_running_keeps_reason_and_message() {
        let fail = JobCommand::Fail {
            reason: FailureReason::Oom,
            message: "CUDA out of memory".into(),
        };
        given::<JobDecider>(&[created(), started()])
            .when(fail.clone())
            .then(vec![JobEvent::Failed(JobFailed {
                job_id: ids().0,
                reason: FailureReason::Oom,
                message: "CUDA out of memory".into(),
            })]);
        given::<JobDecider>(&[created(), started(), succeeded()])
            .when(fail)
            .then_error_matches(is_transition("succeeded", "fail"));
    }

    #[test]
    fn cancel_from_queued_or_running_but_not_twice() {
        let cancel = JobCommand::Cancel { reason: None };
        given::<JobDecider>(&[created()])
            .when(cancel.clone())
            .then(vec![cancelled()]);
        given::<JobDecider>(&[created(), started()])
            .when(cancel.clone())
            .then(vec![cancelled()]);
        given::<JobDecider>(&[created(), started(), cancelled()])
            .when(cancel)
            .then_error_matches(is_transition("cancelled", "cancel"));
    }

    #[test]
    fn fail_message_is_limited() {
        let fail = JobCommand::Fail {
            reason: FailureReason::UserCode,
            message: "x".repeat(MAX_ERROR_LEN + 1),
        };
        given::<JobDecider>(&[created(), started()])
            .when(fail)
            .then_error_matches(|e| matches!(e, DomainError::LimitExceeded { .. }));
    }

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue::new(k, v)
    }
    fn record(params: Vec<KeyValue>, tags: Vec<KeyValue>) -> JobCommand {
        JobCommand::RecordRunData {
            params,
            tags,
            metrics: false,
        }
    }
    fn params_logged(params: Vec<KeyValue>) -> JobEvent {
        JobEvent::ParamsLogged(ParamsLogged {
            job_id: ids().0,
            params,
        })
    }
    const RUN: &str = "00000000000000000000000000000001";

    #[test]
    fn params_are_write_once_with_mlflows_message() {
        let history = [
            created(),
            started(),
            params_logged(vec![kv("lr", "0.0002")]),
        ];
        // Same value again: nothing new; a new key: only that key.
        given::<JobDecider>(&history)
            .when(record(vec![kv("lr", "0.0002"), kv("bs", "8")], vec![]))
            .then(vec![params_logged(vec![kv("bs", "8")])]);
        given::<JobDecider>(&history)
            .when(record(vec![kv("lr", "0.0003")], vec![]))
            .then_error(DomainError::invalid(
                "params",
                format!("Changing param values is not allowed. Param with key='lr' was already logged with value='0.0002' for run ID='{RUN}'. Attempted logging new value '0.0003'."),
            ));
        given::<JobDecider>(&history)
            .when(record(vec![kv("a", "1"), kv("a", "2")], vec![]))
            .then_error(DomainError::invalid(
                "params",
                "Duplicate parameter keys have been submitted: ['a']. Please ensure the request contains only one param value per param key.",
            ));
        given::<JobDecider>(&history)
            .when(record(
                vec![kv("p", &"x".repeat(MAX_PARAM_VALUE_CHARS + 1))],
                vec![],
            ))
            .then_error_matches(|e| matches!(e, DomainError::LimitExceeded { .. }));
    }

    #[test]
    fn a_deleted_run_refuses_writes_until_restored() {
        let deleted = JobEvent::Deleted(JobRef { job_id: ids().0 });
        let history = [created(), started(), deleted];
        given::<JobDecider>(&history)
            .when(record(vec![], vec![kv("t", "v")]))
            .then_error(DomainError::invalid(
                "run",
                format!("The run {RUN} must be in the 'active' state. Current state is deleted."),
            ));
        given::<JobDecider>(&history)
            .when(JobCommand::Restore)
            .then(vec![JobEvent::Restored(JobRef { job_id: ids().0 })]);
    }

    #[test]
    fn finished_runs_accept_data_and_reopen_when_resumed() {
        let history = [created(), started(), succeeded()];
        given::<JobDecider>(&history)
            .when(JobCommand::RecordRunData {
                params: vec![],
                tags: vec![],
                metrics: true,
            })
            .then(vec![]);
        let report = |status| JobCommand::ReportRunStatus {
            status,
            end_time_ms: None,
        };
        let reported = |status| {
            JobEvent::RunStatusReported(RunStatusReported {
                job_id: ids().0,
                status,
                end_time_ms: None,
            })
        };
        given::<JobDecider>(&history)
            .when(report(RunStatus::Running))
            .then(vec![
                reported(RunStatus::Running),
                JobEvent::Reopened(JobRef { job_id: ids().0 }),
            ]);
        given::<JobDecider>(&[created()])
            .when(report(RunStatus::Finished))
            .then(vec![reported(RunStatus::Finished), started(), succeeded()]);
        given::<JobDecider>(&history)
            .when(report(RunStatus::Finished))
            .then(vec![reported(RunStatus::Finished)]);
    }

    #[test]
    fn renaming_keeps_the_run_name_tag_and_the_tag_renames() {
        given::<JobDecider>(&[created(), started()])
            .when(JobCommand::Rename {
                name: "second".into(),
            })
            .then(vec![
                JobEvent::Renamed(JobRenamed {
                    job_id: ids().0,
                    name: "second".into(),
                }),
                JobEvent::RunTagsSet(RunTagsSet {
                    job_id: ids().0,
                    tags: vec![kv(RUN_NAME_TAG, "second")],
                }),
            ]);
        given::<JobDecider>(&[created(), started()])
            .when(record(vec![], vec![kv(RUN_NAME_TAG, "third")]))
            .then(vec![
                JobEvent::RunTagsSet(RunTagsSet {
                    job_id: ids().0,
                    tags: vec![kv(RUN_NAME_TAG, "third")],
                }),
                JobEvent::Renamed(JobRenamed {
                    job_id: ids().0,
                    name: "third".into(),
                }),
            ]);
        given::<JobDecider>(&[created(), started()])
            .when(JobCommand::DeleteRunTag { key: "nope".into() })
            .then_error(DomainError::NotFound { entity: "tag" });
    }
}
