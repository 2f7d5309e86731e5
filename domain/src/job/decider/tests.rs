use super::run::MAX_PARAM_VALUE_CHARS;
use super::*;
use crate::decider::testing::given;
use crate::experiment::KeyValue;
use crate::ids::{JobId, ProjectId};
use crate::job::{FailureReason, RunStatus};
use crate::limits::{MAX_ERROR_LEN, MAX_TAGS};
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
