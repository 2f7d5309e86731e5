//! The managed-training lifecycle of §6: dispatch under a lease, start and
//! recovery, pause/resume, cancel through `cancelling`, checkpoints, cost
//! ticks and budget stops. Worker commands carry their lease: a worker that
//! lost its lease can change nothing.

use super::budget::{self, Budget, OnExceed};
use super::events::*;
use super::managed::*;
use super::{FailureReason, JobCommand, JobState, JobStatus};
use crate::DomainError;
use crate::ids::JobId;
use crate::limits::MAX_ERROR_LEN;
use chrono::{DateTime, Utc};
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

fn lease_lost(job_id: JobId) -> DomainError {
    DomainError::LeaseLost {
        job: job_id.to_string(),
    }
}

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
fn releasing(
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

enum ManagedOrJob {
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

/// The managed commands; `None` for the others.
pub(super) fn decide_managed(
    state: &JobState,
    job_id: JobId,
    status: JobStatus,
    cmd: &JobCommand,
    now: DateTime<Utc>,
) -> Result<Option<Vec<JobEvent>>, DomainError> {
    use JobStatus::*;
    use ManagedOrJob::{J, M};
    let Some(m) = &state.managed else {
        return Ok(None);
    };
    let now_ms = now.timestamp_millis();
    let holds = |lease: &Uuid| m.lease == Some(*lease);
    let invalid = |verb: &str| DomainError::InvalidTransition {
        current: status.to_string(),
        command: verb.to_string(),
    };
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
            _ => return Err(invalid("dispatch")),
        },
        JobCommand::WorkerStarted {
            lease_id,
            from_step,
        } => {
            if !holds(lease_id) {
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
            if !holds(&saved.lease_id) {
                return Err(lease_lost(job_id));
            }
            if !matches!(status, Running | Pausing | Cancelling) {
                return Err(invalid("save a checkpoint of"));
            }
            vec![JobEvent::Managed(ManagedEvent::CheckpointSaved(
                CheckpointSaved {
                    job_id,
                    ..(**saved).clone()
                },
            ))]
        }
        JobCommand::PruneCheckpoint { lease_id, step } => {
            if !holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            vec![JobEvent::Managed(ManagedEvent::CheckpointPruned(
                CheckpointPruned {
                    job_id,
                    step: *step,
                },
            ))]
        }
        JobCommand::RequestPause { reason } => match status {
            Provisioning | Running => vec![JobEvent::Managed(ManagedEvent::PauseRequested(
                PauseRequested {
                    job_id,
                    reason: *reason,
                },
            ))],
            Pausing => vec![],
            _ => return Err(invalid("pause")),
        },
        JobCommand::ConfirmPaused {
            lease_id,
            checkpoint_step,
        } => {
            if !holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status != Pausing {
                return Err(invalid("confirm the pause of"));
            }
            paused(
                job_id,
                m,
                now_ms,
                checkpoint_step.or(m.last_checkpoint),
                None,
            )
        }
        JobCommand::Resume { budget } => {
            if status != Paused {
                return Err(invalid("resume"));
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
            _ => return Err(invalid("cancel")),
        },
        JobCommand::ConfirmCancelled { lease_id } => {
            if !holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status != Cancelling {
                return Err(invalid("confirm the cancellation of"));
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
            if !holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status != Running {
                return Err(invalid("complete"));
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
            if !holds(lease_id) {
                return Err(lease_lost(job_id));
            }
            if status.is_terminal() {
                return Err(invalid("fail"));
            }
            let mut error = (**error).clone();
            error.job_id = job_id;
            error.message.truncate(MAX_ERROR_LEN);
            error.frames.truncate(super::failure::MAX_FRAMES);
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
        JobCommand::LoseLease { lease_id, cause } => {
            if !holds(lease_id) {
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

/// `JobPaused` after the final cost tick; a budget stop then cancels.
fn paused(
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
fn accrue(job_id: JobId, status: JobStatus, m: &ManagedState, now_ms: i64) -> Vec<JobEvent> {
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

/// Folds a managed event into the state.
pub(super) fn evolve_managed(state: &mut JobState, event: &ManagedEvent) {
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
pub(super) fn release(state: &mut JobState) {
    if let Some(m) = state.managed.as_mut() {
        m.lease = None;
        m.cost_from_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::Decider;
    use crate::ids::ProjectId;
    use crate::job::JobDecider;
    use serde_json::json;

    const JOB: JobId = JobId(Uuid::from_u128(1));
    const LEASE: Uuid = Uuid::from_u128(7);
    const T0: i64 = 1_764_000_000_000;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    /// A created + validated managed job with this budget, at 3.6 $/h (0.001 $/s).
    fn validated(budget: serde_json::Value) -> Vec<JobEvent> {
        let config = json!({"budget": budget, "resources": {"max_recoveries": 1}});
        JobDecider::decide(
            &JobState::default(),
            &JobCommand::CreateManaged {
                job_id: JOB,
                project_id: ProjectId(Uuid::from_u128(2)),
                name: "sft".into(),
                tags: vec![],
                config: config.clone(),
                validated: Box::new(JobValidated {
                    job_id: JOB,
                    normalized_config: config,
                    config_hash: "h".into(),
                    warnings: json!([]),
                    estimates: json!({}),
                    dataset: DatasetRef {
                        dataset_id: Uuid::from_u128(3),
                        digest: "d".into(),
                        kind: "supervised".into(),
                        examples: 4,
                    },
                    base_model_id: None,
                    rate_usd_per_hour: 3.6,
                }),
            },
            at(T0),
        )
        .unwrap()
    }

    fn apply(mut history: Vec<JobEvent>, cmd: JobCommand, now_ms: i64) -> Vec<JobEvent> {
        let state = JobDecider::fold(history.iter());
        history.extend(JobDecider::decide(&state, &cmd, at(now_ms)).unwrap());
        history
    }

    fn status(history: &[JobEvent]) -> JobStatus {
        JobDecider::fold(history.iter()).status.unwrap()
    }

    fn dispatch() -> JobCommand {
        JobCommand::Dispatch {
            worker_id: "w".into(),
            lease_id: LEASE,
            token_sha256: "t".into(),
        }
    }

    fn running(budget: serde_json::Value) -> Vec<JobEvent> {
        let h = apply(validated(budget), dispatch(), T0);
        apply(
            h,
            JobCommand::WorkerStarted {
                lease_id: LEASE,
                from_step: None,
            },
            T0 + 1000,
        )
    }

    fn saved(step: u64, lease: Uuid) -> JobCommand {
        JobCommand::SaveCheckpoint(Box::new(CheckpointSaved {
            job_id: JOB,
            lease_id: lease,
            step,
            epoch: 0.0,
            path: "p".into(),
            files: vec![],
            eval_loss: None,
            train_loss: None,
            reason: "interval".into(),
            save_seconds: 2.0,
        }))
    }

    fn spent(history: &[JobEvent]) -> f64 {
        JobDecider::fold(history.iter()).managed.unwrap().spent_usd
    }

    #[test]
    fn created_validating_then_queued_then_the_whole_happy_path() {
        let h = validated(json!({}));
        assert!(matches!(h[0], JobEvent::Created(_)));
        assert_eq!(status(&h[..1]), JobStatus::Validating);
        assert_eq!(status(&h), JobStatus::Queued);
        let h = apply(h, dispatch(), T0);
        assert_eq!(status(&h), JobStatus::Provisioning);
        let h = running(json!({}));
        assert_eq!(status(&h), JobStatus::Running);
        let h = apply(h, saved(10, LEASE), T0 + 2000);
        let h = apply(h, JobCommand::Finish { lease_id: LEASE }, T0 + 11_000);
        assert_eq!(status(&h), JobStatus::Succeeded);
        // Charged from dispatch to release: 11 s at 0.001 $/s.
        assert!((spent(&h) - 0.011).abs() < 1e-12);
    }

    #[test]
    fn a_worker_without_the_lease_changes_nothing() {
        let h = running(json!({}));
        let other = Uuid::from_u128(99);
        let state = JobDecider::fold(h.iter());
        for cmd in [
            saved(1, other),
            JobCommand::Finish { lease_id: other },
            JobCommand::ConfirmCancelled { lease_id: other },
        ] {
            let err = JobDecider::decide(&state, &cmd, at(T0)).unwrap_err();
            assert_eq!(err.code(), "lease_lost", "{err}");
        }
        // A second dispatch while leased is refused.
        assert!(JobDecider::decide(&state, &dispatch(), at(T0)).is_err());
        // Reporter commands do not drive a managed job.
        assert!(JobDecider::decide(&state, &JobCommand::Complete, at(T0)).is_err());
    }

    #[test]
    fn pause_resume_and_cancel_through_cancelling() {
        let h = running(json!({}));
        let h = apply(
            h,
            JobCommand::RequestPause {
                reason: PauseReason::User,
            },
            T0 + 2000,
        );
        assert_eq!(status(&h), JobStatus::Pausing);
        let h = apply(h, saved(5, LEASE), T0 + 3000);
        let h = apply(
            h,
            JobCommand::ConfirmPaused {
                lease_id: LEASE,
                checkpoint_step: Some(5),
            },
            T0 + 4000,
        );
        assert_eq!(status(&h), JobStatus::Paused);
        assert!(JobDecider::fold(h.iter()).managed.unwrap().lease.is_none());
        let h = apply(h, JobCommand::Resume { budget: None }, T0 + 5000);
        assert_eq!(status(&h), JobStatus::Queued);
        let h = apply(h, dispatch(), T0 + 6000);
        let h = apply(h, JobCommand::Cancel { reason: None }, T0 + 7000);
        assert_eq!(status(&h), JobStatus::Cancelling);
        let h = apply(
            h,
            JobCommand::ConfirmCancelled { lease_id: LEASE },
            T0 + 8000,
        );
        assert_eq!(status(&h), JobStatus::Cancelled);
        // Billed 4 s (first lease) + 2 s (second): nothing while paused or queued.
        assert!((spent(&h) - 0.006).abs() < 1e-12, "{}", spent(&h));
    }

    #[test]
    fn a_lost_worker_recovers_until_the_recoveries_run_out() {
        let lose = JobCommand::LoseLease {
            lease_id: LEASE,
            cause: RecoveryCause::HeartbeatLost,
        };
        let h = apply(running(json!({})), lose.clone(), T0 + 5000);
        assert_eq!(status(&h), JobStatus::Recovering);
        let h = apply(h, dispatch(), T0 + 6000);
        assert_eq!(status(&h), JobStatus::Recovering);
        let h = apply(
            h,
            JobCommand::WorkerStarted {
                lease_id: LEASE,
                from_step: Some(10),
            },
            T0 + 7000,
        );
        assert_eq!(status(&h), JobStatus::Running);
        assert!(h.iter().any(
            |e| matches!(e, JobEvent::Managed(ManagedEvent::Recovered(r)) if r.from_step == 10)
        ));
        // max_recoveries is 1: the second loss fails the job.
        let h = apply(h, lose, T0 + 9000);
        assert_eq!(status(&h), JobStatus::Failed);
        assert!(h.iter().any(
            |e| matches!(e, JobEvent::Failed(f) if f.reason == FailureReason::RecoveryExhausted)
        ));
    }

    #[test]
    fn cost_ticks_alert_once_and_pause_before_the_cap() {
        // 1 $ cap at 0.001 $/s; save estimate 120 s (no save yet), margin 60 s:
        // pause once spent + 0.18 ≥ 1, i.e. at 820 s.
        let h = running(
            json!({"max_cost_usd": 1.0, "alert_thresholds_percent": [50, 80, 100], "stop_margin_s": 60}),
        );
        let h = apply(h, JobCommand::AccrueCost, T0 + 500_000);
        assert_eq!(status(&h), JobStatus::Running);
        let crossed = |h: &[JobEvent]| {
            h.iter()
                .filter_map(|e| match e {
                    JobEvent::Managed(ManagedEvent::BudgetThresholdCrossed(b)) => Some(b.percent),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(crossed(&h), vec![50]);
        let h = apply(h, JobCommand::AccrueCost, T0 + 810_000);
        assert_eq!(status(&h), JobStatus::Running);
        assert_eq!(crossed(&h), vec![50, 80]);
        let h = apply(h, JobCommand::AccrueCost, T0 + 821_000);
        assert_eq!(status(&h), JobStatus::Pausing);
        let h = apply(h, saved(40, LEASE), T0 + 830_000);
        let h = apply(
            h,
            JobCommand::ConfirmPaused {
                lease_id: LEASE,
                checkpoint_step: Some(40),
            },
            T0 + 831_000,
        );
        assert_eq!(status(&h), JobStatus::Paused);
        assert!(spent(&h) <= 1.0);
        // Resuming needs headroom: the same cap is refused, a raised one accepted.
        let state = JobDecider::fold(h.iter());
        let same = JobCommand::Resume { budget: None };
        assert!(
            JobDecider::decide(&state, &same, at(T0 + 900_000))
                .unwrap_err()
                .to_string()
                .contains("budget_exhausted")
        );
        let too_low = JobCommand::Resume {
            budget: Some(BudgetChange {
                max_cost_usd: Some(0.85),
                max_runtime_minutes: None,
            }),
        };
        // 0.831 + 0.001·(2 + 60) ≥ 0.85: no headroom.
        assert!(JobDecider::decide(&state, &too_low, at(T0 + 900_000)).is_err());
        let raised = JobCommand::Resume {
            budget: Some(BudgetChange {
                max_cost_usd: Some(2.0),
                max_runtime_minutes: None,
            }),
        };
        let h = apply(h, raised, T0 + 900_000);
        assert_eq!(status(&h), JobStatus::Queued);
    }

    #[test]
    fn the_backstop_abandons_a_slow_checkpoint() {
        let h = running(json!({"max_cost_usd": 1.0, "stop_margin_s": 0}));
        let h = apply(h, saved(10, LEASE), T0 + 100_000);
        let h = apply(
            h,
            JobCommand::RequestPause {
                reason: PauseReason::User,
            },
            T0 + 200_000,
        );
        // Still saving at 975 s: 0.975 + 0.03 ≥ 1 → paused from step 10 at once.
        let h = apply(h, JobCommand::AccrueCost, T0 + 975_000);
        assert_eq!(status(&h), JobStatus::Paused);
        let paused = h.iter().find_map(|e| match e {
            JobEvent::Managed(ManagedEvent::Paused(p)) => Some(p.clone()),
            _ => None,
        });
        let paused = paused.unwrap();
        assert_eq!(paused.checkpoint_step, Some(10));
        assert_eq!(
            paused.warning.as_deref(),
            Some("checkpoint_abandoned_for_budget")
        );
        assert!(spent(&h) < 1.0);
    }
}
