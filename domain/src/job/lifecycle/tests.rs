use super::*;
use crate::decider::Decider;
use crate::ids::ProjectId;
use crate::job::FailureReason;
use crate::job::JobDecider;
use crate::job::managed::{
    BudgetChange, CheckpointSaved, DatasetRef, JobValidated, ManagedEvent, PauseReason,
    RecoveryCause,
};
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
    assert!(
        h.iter().any(
            |e| matches!(e, JobEvent::Managed(ManagedEvent::Recovered(r)) if r.from_step == 10)
        )
    );
    // max_recoveries is 1: the second loss fails the job.
    let h = apply(h, lose, T0 + 9000);
    assert_eq!(status(&h), JobStatus::Failed);
    assert!(
        h.iter().any(
            |e| matches!(e, JobEvent::Failed(f) if f.reason == FailureReason::RecoveryExhausted)
        )
    );
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
