//! Commands from outside the worker: dispatch, pause/resume/cancel, lost leases, cost ticks.

use super::Ctx;
use super::cost::{ManagedOrJob, accrue, paused, releasing};
use crate::DomainError;
use crate::job::budget;
use crate::job::events::*;
use crate::job::managed::*;
use crate::job::{FailureReason, JobCommand, JobStatus};

/// The commands of users, the dispatcher, the reconciler and the controller;
/// `None` for the others.
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
        JobCommand::Dispatch {
            worker_id,
            lease_id,
            token_sha256,
        } => match status {
            Queued | Recovering if m.lease.is_none() => {
                vec![JobEvent::Managed(ManagedEvent::Dispatched(JobDispatched {
                    job_id,
                    worker_id: worker_id.clone(),
                    lease_id: *lease_id,
                    token_sha256: token_sha256.clone(),
                    attempt: m.attempt + 1,
                    at_ms: now_ms,
                }))]
            }
            _ => return Err(ctx.invalid("dispatch")),
        },
        JobCommand::RequestPause { reason } => match status {
            Provisioning | Running => vec![JobEvent::Managed(ManagedEvent::PauseRequested(
                PauseRequested {
                    job_id,
                    reason: *reason,
                },
            ))],
            Pausing => vec![],
            _ => return Err(ctx.invalid("pause")),
        },
        JobCommand::Resume { budget } => {
            if status != Paused {
                return Err(ctx.invalid("resume"));
            }
            let mut effective = m.budget.clone();
            if let Some(b) = budget {
                effective.max_cost_usd = b.max_cost_usd;
                effective.max_runtime_minutes = b.max_runtime_minutes;
            }
            if m.pause_reason == Some(PauseReason::Budget) {
                if budget.is_none() {
                    return Err(DomainError::invalid(
                        "budget",
                        "budget_exhausted: a job paused by its budget resumes with a new budget (raise max_cost_usd or max_runtime_minutes, or set them to null)",
                    ));
                }
                if let Some(cap) = effective.max_cost_usd
                    && budget::predictive_stop(
                        m.spent_usd,
                        m.rate_usd_per_hour,
                        m.save_estimate_s(),
                        effective.stop_margin_s,
                        cap,
                    )
                {
                    return Err(DomainError::invalid(
                        "budget.max_cost_usd",
                        format!(
                            "budget_exhausted: {:.4} USD of {cap} spent; raise max_cost_usd (or set it to null) to resume",
                            m.spent_usd
                        ),
                    ));
                }
                if let Some(minutes) = effective.max_runtime_minutes
                    && budget::runtime_stop(
                        m.billable_ms as f64 / 1000.0,
                        m.save_estimate_s(),
                        effective.stop_margin_s,
                        minutes,
                    )
                {
                    return Err(DomainError::invalid(
                        "budget.max_runtime_minutes",
                        "budget_exhausted: raise max_runtime_minutes (or set it to null) to resume",
                    ));
                }
            }
            vec![JobEvent::Managed(ManagedEvent::ResumeRequested(
                ResumeRequested {
                    job_id,
                    budget: budget.clone(),
                },
            ))]
        }
        JobCommand::Cancel { reason } => match status {
            Validating | Queued | Paused => vec![JobEvent::Cancelled(JobCancelled {
                job_id,
                reason: reason.clone(),
            })],
            Recovering if m.lease.is_none() => vec![JobEvent::Cancelled(JobCancelled {
                job_id,
                reason: reason.clone(),
            })],
            Provisioning | Running | Pausing | Recovering => vec![JobEvent::Managed(
                ManagedEvent::CancelRequested(CancelRequested {
                    job_id,
                    reason: reason.clone(),
                }),
            )],
            Cancelling => vec![],
            _ => return Err(ctx.invalid("cancel")),
        },
        JobCommand::LoseLease { lease_id, cause } => {
            if !ctx.holds(lease_id) {
                // Already recovered or finished: nothing to do.
                return Ok(Some(vec![]));
            }
            match status {
                Provisioning | Running | Recovering => {
                    if m.recovery_count < m.max_recoveries {
                        releasing(
                            job_id,
                            m,
                            now_ms,
                            vec![M(ManagedEvent::RecoveryStarted(RecoveryStarted {
                                job_id,
                                cause: *cause,
                                recovery_count: m.recovery_count + 1,
                            }))],
                        )
                    } else {
                        releasing(
                            job_id,
                            m,
                            now_ms,
                            vec![J(JobEvent::Failed(JobFailed {
                                job_id,
                                reason: if m.max_recoveries == 0 {
                                    FailureReason::Lost
                                } else {
                                    FailureReason::RecoveryExhausted
                                },
                                message: format!(
                                    "worker lost ({cause:?}) after {} recoveries",
                                    m.recovery_count
                                ),
                            }))],
                        )
                    }
                }
                Pausing => paused(
                    job_id,
                    m,
                    now_ms,
                    m.last_checkpoint,
                    Some("worker_lost_while_pausing"),
                ),
                Cancelling => releasing(
                    job_id,
                    m,
                    now_ms,
                    vec![J(JobEvent::Cancelled(JobCancelled {
                        job_id,
                        reason: Some("worker lost while cancelling".into()),
                    }))],
                ),
                _ => vec![],
            }
        }
        JobCommand::AccrueCost => accrue(job_id, status, m, now_ms),
        _ => return Ok(None),
    };
    Ok(Some(events))
}
