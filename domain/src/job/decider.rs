use super::events::*;
use super::{FailureReason, JobStatus, Provider};
use crate::decider::Decider;
use crate::error::DomainError;
use crate::ids::{JobId, ProjectId};
use crate::limits::*;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobState {
    pub created: Option<Created>,
    pub status: Option<JobStatus>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub job_id: JobId,
    pub project_id: ProjectId,
    pub provider: Provider,
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

impl Decider for JobDecider {
    type State = JobState;
    type Command = JobCommand;
    type Event = JobEvent;

    fn decide(
        state: &JobState,
        cmd: &JobCommand,
        _now: DateTime<Utc>,
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
                    } => {
                        validate_create(name, config, tags)?;
                        Ok(vec![JobEvent::Created(JobCreated {
                            job_id: *job_id,
                            project_id: *project_id,
                            name: name.trim().to_string(),
                            config: config.clone(),
                            tags: tags.clone(),
                            provider: *provider,
                        })])
                    }
                    _ => Err(DomainError::NotFound { entity: "job" }),
                };
            }
        };
        let job_id = created.job_id;
        use JobStatus::*;
        match (cmd, status) {
            (JobCommand::Create { .. }, _) => Err(DomainError::AlreadyExists { entity: "job" }),
            (JobCommand::Start, Queued | Provisioning) => {
                Ok(vec![JobEvent::Started(JobStarted { job_id })])
            }
            // Starting a running job again is a harmless retry.
            (JobCommand::Start, Running) => Ok(vec![]),
            (JobCommand::ReportMetrics, Queued | Provisioning) => {
                Ok(vec![JobEvent::Started(JobStarted { job_id })])
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
                });
                state.status = Some(JobStatus::Queued);
            }
            JobEvent::Started(_) => state.status = Some(JobStatus::Running),
            JobEvent::Succeeded(_) => state.status = Some(JobStatus::Succeeded),
            JobEvent::Failed(_) => state.status = Some(JobStatus::Failed),
            JobEvent::Cancelled(_) => state.status = Some(JobStatus::Cancelled),
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
        })
    }
    fn started() -> JobEvent {
        JobEvent::Started(JobStarted { job_id: ids().0 })
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
}
