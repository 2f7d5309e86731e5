//! The managed-training lifecycle of §6: dispatch under a lease, start and
//! recovery, pause/resume, cancel through `cancelling`, checkpoints, cost
//! ticks and budget stops. Worker commands carry their lease: a worker that
//! lost its lease can change nothing.

mod control;
mod cost;
mod state;
mod worker;

pub use state::ManagedState;
pub(super) use state::{evolve_managed, release};

use super::events::JobEvent;
use super::{JobCommand, JobState, JobStatus};
use crate::DomainError;
use crate::ids::JobId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The managed job a command is decided against, and when.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    job_id: JobId,
    status: JobStatus,
    m: &'a ManagedState,
    now_ms: i64,
}

impl Ctx<'_> {
    /// Whether `lease` is the job's current lease.
    fn holds(&self, lease: &Uuid) -> bool {
        self.m.lease == Some(*lease)
    }

    fn invalid(&self, verb: &str) -> DomainError {
        DomainError::InvalidTransition {
            current: self.status.to_string(),
            command: verb.to_string(),
        }
    }
}

/// The managed commands; `None` for the others.
pub(super) fn decide_managed(
    state: &JobState,
    job_id: JobId,
    status: JobStatus,
    cmd: &JobCommand,
    now: DateTime<Utc>,
) -> Result<Option<Vec<JobEvent>>, DomainError> {
    let Some(m) = &state.managed else {
        return Ok(None);
    };
    let ctx = Ctx {
        job_id,
        status,
        m,
        now_ms: now.timestamp_millis(),
    };
    match worker::decide(ctx, cmd)? {
        Some(events) => Ok(Some(events)),
        None => control::decide(ctx, cmd),
    }
}

#[cfg(test)]
mod tests;
