//! Every `(event_type, schema_version)` ever written, and each event's type name.

use super::DomainEvent;
use crate::experiment::ExperimentEvent;
use crate::job::JobEvent;

/// Every `(event_type, schema_version)` that has ever been written.
pub const SCHEMAS: &[(&str, u32)] = &[
    ("project.created", 1),
    ("api_key.created", 1),
    ("api_key.revoked", 1),
    ("job.created", 1),
    ("job.created", 2),
    ("job.created", 3),
    ("job.started", 1),
    ("job.succeeded", 1),
    ("job.failed", 1),
    ("job.cancelled", 1),
    ("job.metrics_logged", 1),
    ("job.reopened", 1),
    ("job.params_logged", 1),
    ("job.run_tags_set", 1),
    ("job.run_tag_deleted", 1),
    ("job.renamed", 1),
    ("job.deleted", 1),
    ("job.restored", 1),
    ("job.run_status_reported", 1),
    ("job.artifact_stored", 1),
    ("job.artifact_deleted", 1),
    ("job.validated", 1),
    ("job.dispatched", 1),
    ("job.recovered", 1),
    ("job.pause_requested", 1),
    ("job.paused", 1),
    ("job.resume_requested", 1),
    ("job.cancel_requested", 1),
    ("job.recovery_started", 1),
    ("job.checkpoint_saved", 1),
    ("job.checkpoint_pruned", 1),
    ("job.cost_accrued", 1),
    ("job.budget_threshold_crossed", 1),
    ("job.error_recorded", 1),
    ("job.logs_appended", 1),
    ("dataset.registered", 1),
    ("model.registered", 1),
    ("prediction.recorded", 1),
    ("prediction.recorded", 2),
    ("model.external_registered", 1),
    ("model.price_set", 1),
    ("prediction.thumb_set", 1),
    ("prediction.evaluated", 1),
    ("prediction.rated", 1),
    ("comparison.created", 1),
    ("comparison.response_recorded", 1),
    ("comparison.voted", 1),
    ("experiment.created", 1),
    ("experiment.renamed", 1),
    ("experiment.deleted", 1),
    ("experiment.restored", 1),
    ("experiment.tag_set", 1),
    ("test_suite.created", 1),
    ("test_suite.cases_uploaded", 1),
];

/// The version written today for an event type.
pub fn latest_version(event_type: &str) -> Option<u32> {
    SCHEMAS
        .iter()
        .filter(|(t, _)| *t == event_type)
        .map(|(_, v)| *v)
        .max()
}

impl DomainEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ProjectCreated(_) => "project.created",
            Self::ApiKeyCreated(_) => "api_key.created",
            Self::ApiKeyRevoked(_) => "api_key.revoked",
            Self::Job(JobEvent::Created(_)) => "job.created",
            Self::Job(JobEvent::Started(_)) => "job.started",
            Self::Job(JobEvent::Succeeded(_)) => "job.succeeded",
            Self::Job(JobEvent::Failed(_)) => "job.failed",
            Self::Job(JobEvent::Cancelled(_)) => "job.cancelled",
            Self::Job(JobEvent::Reopened(_)) => "job.reopened",
            Self::Job(JobEvent::ParamsLogged(_)) => "job.params_logged",
            Self::Job(JobEvent::RunTagsSet(_)) => "job.run_tags_set",
            Self::Job(JobEvent::RunTagDeleted(_)) => "job.run_tag_deleted",
            Self::Job(JobEvent::Renamed(_)) => "job.renamed",
            Self::Job(JobEvent::Deleted(_)) => "job.deleted",
            Self::Job(JobEvent::Restored(_)) => "job.restored",
            Self::Job(JobEvent::RunStatusReported(_)) => "job.run_status_reported",
            Self::Job(JobEvent::ArtifactStored(_)) => "job.artifact_stored",
            Self::Job(JobEvent::ArtifactDeleted(_)) => "job.artifact_deleted",
            Self::Job(JobEvent::Managed(e)) => e.event_type(),
            Self::Suite(e) => e.event_type(),
            Self::LogsAppended(_) => "job.logs_appended",
            Self::DatasetRegistered(_) => "dataset.registered",
            Self::ModelRegistered(_) => "model.registered",
            Self::ExternalModelRegistered(_) => "model.external_registered",
            Self::ModelPriceSet(_) => "model.price_set",
            Self::PredictionRecorded(_) => "prediction.recorded",
            Self::ThumbSet(_) => "prediction.thumb_set",
            Self::Evaluated(_) => "prediction.evaluated",
            Self::Rated(_) => "prediction.rated",
            Self::ComparisonCreated(_) => "comparison.created",
            Self::ComparisonResponse(_) => "comparison.response_recorded",
            Self::ComparisonVoted(_) => "comparison.voted",
            Self::MetricsLogged(_) => "job.metrics_logged",
            Self::Experiment(ExperimentEvent::Created(_)) => "experiment.created",
            Self::Experiment(ExperimentEvent::Renamed(_)) => "experiment.renamed",
            Self::Experiment(ExperimentEvent::Deleted(_)) => "experiment.deleted",
            Self::Experiment(ExperimentEvent::Restored(_)) => "experiment.restored",
            Self::Experiment(ExperimentEvent::TagSet(_)) => "experiment.tag_set",
        }
    }

    pub fn schema_version(&self) -> u32 {
        latest_version(self.event_type()).unwrap_or(1)
    }
}
