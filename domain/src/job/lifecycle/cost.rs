//! Cost ticks, the final tick when resources are released, and the budget rules (§5).

use super::ManagedState;
use crate::ids::JobId;
use crate::job::JobStatus;
use crate::job::budget::{self, OnExceed};
use crate::job::events::*;
use crate::job::managed::*;

fn cost_tick(job_id: JobId, m: &ManagedState, now_ms: i64) -> Option<CostAccrued> {
    let from = m.cost_from_ms?;
    let to = now_ms.max(from);
    Some(CostAccrued {
        job_id,
        from_ms: from,
        to_ms: to,
        usd: m.rate_usd_per_hour * (to - from) as f64 / 3_600_000.0,
        rate_usd_per_hour: m.rate_usd_per_hour,
        source: "estimate".into(),
    })
}

/// The final cost tick when resources are released, then `events`.
pub(super) fn releasing(
    job_id: JobId,
    m: &ManagedState,
    now_ms: i64,
    events: Vec<ManagedOrJob>,
) -> Vec<JobEvent> {
    let mut out: Vec<JobEvent> = cost_tick(job_id, m, now_ms)
        .map(|c| JobEvent::Managed(ManagedEvent::CostAccrued(c)))
        .into_iter()
        .collect();
    out.extend(events.into_iter().map(ManagedOrJob::into_job));
    out
}

pub(super) enum ManagedOrJob {
    M(ManagedEvent),
    J(JobEvent),
}

impl ManagedOrJob {
    fn into_job(self) -> JobEvent {
        match self {
            Self::M(m) => JobEvent::Managed(m),
            Self::J(j) => j,
        }
    }
}

/// `JobPaused` after the final cost tick; a budget stop then cancels.
pub(super) fn paused(
    job_id: JobId,
    m: &ManagedState,
    now_ms: i64,
    checkpoint_step: Option<u64>,
    warning: Option<&str>,
) -> Vec<JobEvent> {
    let reason = m.pause_reason.unwrap_or(PauseReason::User);
    let mut events = vec![ManagedOrJob::M(ManagedEvent::Paused(JobPaused {
        job_id,
        reason,
        checkpoint_step,
        warning: warning.map(str::to_string),
    }))];
    if reason == PauseReason::Budget && m.budget.on_exceed == OnExceed::Stop {
        events.push(ManagedOrJob::J(JobEvent::Cancelled(JobCancelled {
            job_id,
            reason: Some("budget".into()),
        })));
    }
    releasing(job_id, m, now_ms, events)
}

/// A cost tick, the thresholds it crosses, and the budget rules (§5).
pub(super) fn accrue(
    job_id: JobId,
    status: JobStatus,
    m: &ManagedState,
    now_ms: i64,
) -> Vec<JobEvent> {
    let Some(tick) = cost_tick(job_id, m, now_ms) else {
        return vec![];
    };
    let spent = m.spent_usd + tick.usd;
    let elapsed_s = (m.billable_ms + tick.to_ms - tick.from_ms) as f64 / 1000.0;
    let rate = m.rate_usd_per_hour;
    let mut out = vec![JobEvent::Managed(ManagedEvent::CostAccrued(tick))];
    if let Some(cap) = m.budget.max_cost_usd {
        for percent in
            budget::thresholds_crossed(spent, cap, &m.budget.alert_thresholds_percent, &m.crossed)
        {
            out.push(JobEvent::Managed(ManagedEvent::BudgetThresholdCrossed(
                BudgetThresholdCrossed {
                    job_id,
                    percent,
                    spent_usd: spent,
                    max_cost_usd: cap,
                },
            )));
        }
    }
    if m.budget.on_exceed == OnExceed::Notify {
        return out;
    }
    let save = m.save_estimate_s();
    let margin = m.budget.stop_margin_s;
    let over_cost = m
        .budget
        .max_cost_usd
        .is_some_and(|cap| budget::predictive_stop(spent, rate, save, margin, cap));
    let over_time = m
        .budget
        .max_runtime_minutes
        .is_some_and(|cap| budget::runtime_stop(elapsed_s, save, margin, cap));
    match status {
        JobStatus::Provisioning | JobStatus::Running if over_cost || over_time => {
            out.push(JobEvent::Managed(ManagedEvent::PauseRequested(
                PauseRequested {
                    job_id,
                    reason: PauseReason::Budget,
                },
            )));
        }
        JobStatus::Pausing => {
            let backstop_cost = m
                .budget
                .max_cost_usd
                .is_some_and(|cap| budget::backstop(spent, rate, cap));
            let backstop_time = m
                .budget
                .max_runtime_minutes
                .is_some_and(|cap| elapsed_s + budget::RELEASE_S >= cap as f64 * 60.0);
            if backstop_cost || backstop_time {
                // Abandon the checkpoint in progress: pause from the previous one.
                out.push(JobEvent::Managed(ManagedEvent::Paused(JobPaused {
                    job_id,
                    reason: m.pause_reason.unwrap_or(PauseReason::Budget),
                    checkpoint_step: m.last_checkpoint,
                    warning: Some("checkpoint_abandoned_for_budget".into()),
                })));
            }
        }
        _ => {}
    }
    out
}
