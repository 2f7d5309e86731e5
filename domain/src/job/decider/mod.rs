//! The job decider: commands checked against a job's state, and its events folded into it.

mod command;
mod create;
mod run;
mod state;

pub use command::JobCommand;
pub use create::RunInfo;
pub use run::{MAX_RUN_TAG_VALUE_CHARS, RUN_NAME_TAG, deleted_run_message, run_id_text};
pub use state::{Created, JobState, created_status, in_project};

use super::events::*;
use super::lifecycle::{decide_managed, evolve_managed, release};
use super::{JobStatus, Provider};
use crate::decider::Decider;
use crate::error::DomainError;
use crate::limits::MAX_ERROR_LEN;
use chrono::{DateTime, Utc};
use command::invalid;
use create::decide_new;
use run::decide_run;

pub struct JobDecider;

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
            _ => return decide_new(cmd),
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
mod tests;
