//! The managed job's state, the status each managed event moves to, and how those events fold.

use crate::job::budget::{self, Budget};
use crate::job::managed::*;
use crate::job::{JobState, JobStatus};
use uuid::Uuid;

/// What a managed job carries beyond the common job state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManagedState {
    pub config: serde_json::Value,
    pub dataset: Option<DatasetRef>,
    pub base_model_id: Option<Uuid>,
    pub budget: Budget,
    pub max_recoveries: u32,
    pub rate_usd_per_hour: f64,
    pub lease: Option<Uuid>,
    /// SHA-256 of the current lease's job token.
    pub token_sha256: Option<String>,
    pub worker_id: Option<String>,
    pub attempt: u32,
    pub recovery_count: u32,
    pub last_checkpoint: Option<u64>,
    /// Stored, unpruned checkpoints: step → eval loss (keep-last-N / keep-best).
    pub checkpoints: std::collections::BTreeMap<u64, Option<f64>>,
    pub pause_reason: Option<PauseReason>,
    pub spent_usd: f64,
    /// Where the next cost tick starts (ms); `None` while nothing is held.
    pub cost_from_ms: Option<i64>,
    pub billable_ms: i64,
    pub crossed: Vec<u32>,
    pub save_est_s: Option<f64>,
}

impl ManagedState {
    pub fn save_estimate_s(&self) -> f64 {
        self.save_est_s.unwrap_or(budget::DEFAULT_SAVE_EST_S)
    }
}

impl ManagedEvent {
    /// The status this event moves a job to, if it moves it; a dispatch
    /// moves only a queued job (a recovering one stays so until its worker
    /// starts).
    pub fn status_change(&self) -> Option<JobStatus> {
        use JobStatus::*;
        Some(match self {
            Self::Validated(_) | Self::ResumeRequested(_) => Queued,
            Self::Dispatched(_) => Provisioning,
            Self::Recovered(_) => Running,
            Self::PauseRequested(_) => Pausing,
            Self::Paused(_) => Paused,
            Self::CancelRequested(_) => Cancelling,
            Self::RecoveryStarted(_) => Recovering,
            _ => return None,
        })
    }

    /// The status a job moves to with this event, from `current`.
    pub fn status_after(&self, current: JobStatus) -> JobStatus {
        match (self, self.status_change()) {
            (Self::Dispatched(_), _) if current != JobStatus::Queued => current,
            (_, Some(to)) => to,
            (_, None) => current,
        }
    }
}

/// Folds a managed event into the state.
pub(in crate::job) fn evolve_managed(state: &mut JobState, event: &ManagedEvent) {
    if let ManagedEvent::Validated(v) = event {
        let budget = Budget::from_config(&v.normalized_config);
        let max_recoveries = v
            .normalized_config
            .pointer("/resources/max_recoveries")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(3) as u32;
        state.managed = Some(ManagedState {
            config: v.normalized_config.clone(),
            dataset: Some(v.dataset.clone()),
            base_model_id: v.base_model_id,
            budget,
            max_recoveries,
            rate_usd_per_hour: v.rate_usd_per_hour,
            ..ManagedState::default()
        });
    }
    let current = state.status.unwrap_or(JobStatus::Queued);
    state.status = Some(event.status_after(current));
    let Some(m) = state.managed.as_mut() else {
        return;
    };
    match event {
        ManagedEvent::Dispatched(d) => {
            m.lease = Some(d.lease_id);
            m.token_sha256 = Some(d.token_sha256.clone());
            m.worker_id = Some(d.worker_id.clone());
            m.attempt = d.attempt;
            m.cost_from_ms = Some(d.at_ms);
        }
        ManagedEvent::PauseRequested(p) => m.pause_reason = Some(p.reason),
        ManagedEvent::Paused(_) | ManagedEvent::RecoveryStarted(_) => {
            m.lease = None;
            m.cost_from_ms = None;
            if let ManagedEvent::RecoveryStarted(r) = event {
                m.recovery_count = r.recovery_count;
            }
        }
        ManagedEvent::ResumeRequested(r) => {
            if let Some(b) = &r.budget {
                m.budget.max_cost_usd = b.max_cost_usd;
                m.budget.max_runtime_minutes = b.max_runtime_minutes;
                // Alerts start over against the new cap.
                m.crossed.clear();
            }
            m.pause_reason = None;
        }
        ManagedEvent::CheckpointSaved(c) => {
            m.last_checkpoint = Some(c.step);
            m.checkpoints.insert(c.step, c.eval_loss);
            m.save_est_s = Some(budget::next_save_estimate(m.save_est_s, c.save_seconds));
        }
        ManagedEvent::CostAccrued(c) => {
            m.spent_usd += c.usd;
            m.billable_ms += c.to_ms - c.from_ms;
            if m.cost_from_ms.is_some() {
                m.cost_from_ms = Some(c.to_ms);
            }
        }
        ManagedEvent::BudgetThresholdCrossed(b) => m.crossed.push(b.percent),
        ManagedEvent::CheckpointPruned(p) => {
            m.checkpoints.remove(&p.step);
        }
        _ => {}
    }
}

/// Terminal events release whatever a managed job held.
pub(in crate::job) fn release(state: &mut JobState) {
    if let Some(m) = state.managed.as_mut() {
        m.lease = None;
        m.cost_from_ms = None;
    }
}
