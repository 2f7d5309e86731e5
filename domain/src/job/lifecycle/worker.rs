//! The commands a worker sends under its lease: start, checkpoints, confirmations, finish, failure.

use super::Ctx;
use super::cost::{ManagedOrJob, paused, releasing};
use crate::DomainError;
use crate::ids::JobId;
use crate::job::events::*;
use crate::job::failure::MAX_FRAMES;
use crate::job::managed::*;
use crate::job::{JobCommand, JobStatus};
use crate::limits::MAX_ERROR_LEN;

fn lease_lost(job_id: JobId) -> DomainError {
    DomainError::LeaseLost {
        job: job_id.to_string(),
    }
}

/// The worker's commands; `None` for the others.
pub(super) fn decide(ctx: Ctx<'_>, cmd: &JobCommand) -> Result<Option<Vec<JobEvent>>, DomainError> {
    use JobStatus::*;
    use ManagedOrJob::{J, M};
    let Ctx {
        job_id,
        status,
        m,
        now_ms,
    } = ctx;
    let events = match cmd {
        JobCommand::WorkerStarted {
            lease_id,
            from_step,
        } => {
            if !ctx.holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            match status {
                Provisioning => vec![JobEvent::Started(JobStarted {
                    job_id,
                    from_step: from_step.filter(|s| *s > 0),
                })],
                Recovering => vec![JobEvent::Managed(ManagedEvent::Recovered(JobRecovered {
                    job_id,
                    lease_id: *lease_id,
                    from_step: from_step.unwrap_or(0),
                }))],
                _ => vec![],
            }
        }
        JobCommand::SaveCheckpoint(saved) => {
            if !ctx.holds(&saved.lease_id) {
                return Err(lease_lost(job_id));
            }
            if !matches!(status, Running | Pausing | Cancelling) {
                return Err(ctx.invalid("save a checkpoint of"));
            }
            vec![JobEvent::Managed(ManagedEvent::CheckpointSaved(
                CheckpointSaved {
                    job_id,
                    ..(**saved).clone()
                },
            ))]
        }
        JobCommand::PruneCheckpoint { lease_id, step } => {
            if !ctx.holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            vec![JobEvent::Managed(ManagedEvent::CheckpointPruned(
                CheckpointPruned {
                    job_id,
                    step: *step,
                },
            ))]
        }
        JobCommand::ConfirmPaused {
            lease_id,
            checkpoint_step,
        } => {
            if !ctx.holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status != Pausing {
                return Err(ctx.invalid("confirm the pause of"));
            }
            paused(
                job_id,
                m,
                now_ms,
                checkpoint_step.or(m.last_checkpoint),
                None,
            )
        }
        JobCommand::ConfirmCancelled { lease_id } => {
            if !ctx.holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status != Cancelling {
                return Err(ctx.invalid("confirm the cancellation of"));
            }
            releasing(
                job_id,
                m,
                now_ms,
                vec![J(JobEvent::Cancelled(JobCancelled {
                    job_id,
                    reason: None,
                }))],
            )
        }
        JobCommand::Finish { lease_id } => {
            if !ctx.holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status != Running {
                return Err(ctx.invalid("complete"));
            }
            releasing(
                job_id,
                m,
                now_ms,
                vec![J(JobEvent::Succeeded(JobSucceeded { job_id }))],
            )
        }
        JobCommand::FailRun {
            lease_id,
            reason,
            error,
        } => {
            if !ctx.holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status.is_terminal() {
                return Err(ctx.invalid("fail"));
            }
            let mut error = (**error).clone();
            error.job_id = job_id;
            error.message.truncate(MAX_ERROR_LEN);
            error.frames.truncate(MAX_FRAMES);
            let message = error.message.clone();
            releasing(
                job_id,
                m,
                now_ms,
                vec![
                    M(ManagedEvent::ErrorRecorded(error)),
                    J(JobEvent::Failed(JobFailed {
                        job_id,
                        reason: *reason,
                        message,
                    })),
                ],
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(events))
}
