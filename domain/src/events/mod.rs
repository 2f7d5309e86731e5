//! Every event type the system writes, its stable name, its schema versions,
//! and the upcasters that turn any stored version into the latest struct.
//!
//! Rules: an event type name is never a Rust path and never changes; a change of
//! shape adds a schema version and an upcaster; every `(event_type, version)`
//! ever written stays in [`SCHEMAS`] with a committed JSON fixture.

mod upcast;

use crate::comparison::{ComparisonCreated, ResponseRecorded, Voted};
use crate::experiment::*;
use crate::feedback::{Evaluated, Rated, ThumbSet};
use crate::job::logs::LogsAppended;
use crate::job::*;
use crate::metrics::{MetricsLogged, MetricsLoggedV1};
use crate::prediction::PredictionRecorded;
use crate::project::*;
use crate::registry::{DatasetRegistered, ExternalModelRegistered, ModelPriceSet, ModelRegistered};
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    ProjectCreated(ProjectCreated),
    ApiKeyCreated(ApiKeyCreated),
    ApiKeyRevoked(ApiKeyRevoked),
    Job(JobEvent),
    MetricsLogged(MetricsLogged),
    Experiment(ExperimentEvent),
    /// Log lines of a job (its high-volume log stream).
    LogsAppended(LogsAppended),
    DatasetRegistered(DatasetRegistered),
    ModelRegistered(ModelRegistered),
    ExternalModelRegistered(ExternalModelRegistered),
    ModelPriceSet(ModelPriceSet),
    PredictionRecorded(PredictionRecorded),
    ThumbSet(ThumbSet),
    Evaluated(Evaluated),
    Rated(Rated),
    ComparisonCreated(ComparisonCreated),
    ComparisonResponse(ResponseRecorded),
    ComparisonVoted(Voted),
}

impl DomainEvent {
    /// Rough cost of applying this event, in items (metric points count one
    /// each): consumers bound their batches by it.
    pub fn weight(&self) -> usize {
        match self {
            DomainEvent::MetricsLogged(m) => m.points.len().max(1),
            DomainEvent::LogsAppended(l) => l.lines.len().max(1),
            _ => 1,
        }
    }
}

#[derive(Debug, Error)]
pub enum EventCodecError {
    #[error("unknown event type {event_type} v{version}")]
    Unknown { event_type: String, version: u32 },
    #[error("cannot decode {event_type} v{version}: {message}")]
    Malformed {
        event_type: String,
        version: u32,
        message: String,
    },
}

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
];

/// The version written today for an event type.
pub fn latest_version(event_type: &str) -> Option<u32> {
    SCHEMAS
        .iter()
        .filter(|(t, _)| *t == event_type)
        .map(|(_, v)| *v)
        .max()
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    // Serialising these plain structs cannot fail (no maps with non-string keys).
    serde_json::to_value(t).unwrap_or(Value::Null)
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

    /// The payload in the latest schema version.
    pub fn to_payload(&self) -> Value {
        match self {
            Self::ProjectCreated(e) => to_value(e),
            Self::ApiKeyCreated(e) => to_value(e),
            Self::ApiKeyRevoked(e) => to_value(e),
            Self::Job(JobEvent::Created(e)) => to_value(e),
            Self::Job(JobEvent::Started(e)) => to_value(e),
            Self::Job(JobEvent::Succeeded(e)) => to_value(e),
            Self::Job(JobEvent::Failed(e)) => to_value(e),
            Self::Job(JobEvent::Cancelled(e)) => to_value(e),
            Self::Job(JobEvent::Reopened(e) | JobEvent::Deleted(e) | JobEvent::Restored(e)) => {
                to_value(e)
            }
            Self::Job(JobEvent::ParamsLogged(e)) => to_value(e),
            Self::Job(JobEvent::RunTagsSet(e)) => to_value(e),
            Self::Job(JobEvent::RunTagDeleted(e)) => to_value(e),
            Self::Job(JobEvent::Renamed(e)) => to_value(e),
            Self::Job(JobEvent::RunStatusReported(e)) => to_value(e),
            Self::Job(JobEvent::ArtifactStored(e)) => to_value(e),
            Self::Job(JobEvent::ArtifactDeleted(e)) => to_value(e),
            Self::Job(JobEvent::Managed(e)) => e.to_payload(),
            Self::LogsAppended(e) => to_value(e),
            Self::DatasetRegistered(e) => to_value(e),
            Self::ModelRegistered(e) => to_value(e),
            Self::ExternalModelRegistered(e) => to_value(e),
            Self::ModelPriceSet(e) => to_value(e),
            Self::PredictionRecorded(e) => to_value(e),
            Self::ThumbSet(e) => to_value(e),
            Self::Evaluated(e) => to_value(e),
            Self::Rated(e) => to_value(e),
            Self::ComparisonCreated(e) => to_value(e),
            Self::ComparisonResponse(e) => to_value(e),
            Self::ComparisonVoted(e) => to_value(e),
            Self::MetricsLogged(e) => to_value(&MetricsLoggedV1::from(e)),
            Self::Experiment(ExperimentEvent::Created(e)) => to_value(e),
            Self::Experiment(ExperimentEvent::Renamed(e)) => to_value(e),
            Self::Experiment(ExperimentEvent::Deleted(e) | ExperimentEvent::Restored(e)) => {
                to_value(e)
            }
            Self::Experiment(ExperimentEvent::TagSet(e)) => to_value(e),
        }
    }

    /// Decodes a stored event of any known version into the latest struct.
    pub fn decode(event_type: &str, version: u32, payload: Value) -> Result<Self, EventCodecError> {
        let unknown = || EventCodecError::Unknown {
            event_type: event_type.to_string(),
            version,
        };
        let latest = latest_version(event_type).ok_or_else(unknown)?;
        if !SCHEMAS.contains(&(event_type, version)) {
            return Err(unknown());
        }
        let payload =
            upcast::to_latest(event_type, version, latest, payload).map_err(|message| {
                EventCodecError::Malformed {
                    event_type: event_type.to_string(),
                    version,
                    message,
                }
            })?;
        let malformed = |e: serde_json::Error| EventCodecError::Malformed {
            event_type: event_type.to_string(),
            version,
            message: e.to_string(),
        };
        fn de<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
            serde_json::from_value(v)
        }
        if ManagedEvent::TYPES.contains(&event_type) {
            return ManagedEvent::decode(event_type, payload)
                .map(|e| Self::Job(JobEvent::Managed(e)))
                .map_err(malformed);
        }
        Ok(match event_type {
            "job.logs_appended" => Self::LogsAppended(de(payload).map_err(malformed)?),
            "dataset.registered" => Self::DatasetRegistered(de(payload).map_err(malformed)?),
            "model.registered" => Self::ModelRegistered(de(payload).map_err(malformed)?),
            "model.external_registered" => {
                Self::ExternalModelRegistered(de(payload).map_err(malformed)?)
            }
            "model.price_set" => Self::ModelPriceSet(de(payload).map_err(malformed)?),
            "prediction.recorded" => Self::PredictionRecorded(de(payload).map_err(malformed)?),
            "prediction.thumb_set" => Self::ThumbSet(de(payload).map_err(malformed)?),
            "prediction.evaluated" => Self::Evaluated(de(payload).map_err(malformed)?),
            "prediction.rated" => Self::Rated(de(payload).map_err(malformed)?),
            "comparison.created" => Self::ComparisonCreated(de(payload).map_err(malformed)?),
            "comparison.response_recorded" => {
                Self::ComparisonResponse(de(payload).map_err(malformed)?)
            }
            "comparison.voted" => Self::ComparisonVoted(de(payload).map_err(malformed)?),
            "project.created" => Self::ProjectCreated(de(payload).map_err(malformed)?),
            "api_key.created" => Self::ApiKeyCreated(de(payload).map_err(malformed)?),
            "api_key.revoked" => Self::ApiKeyRevoked(de(payload).map_err(malformed)?),
            "job.created" => Self::Job(JobEvent::Created(de(payload).map_err(malformed)?)),
            "job.started" => Self::Job(JobEvent::Started(de(payload).map_err(malformed)?)),
            "job.succeeded" => Self::Job(JobEvent::Succeeded(de(payload).map_err(malformed)?)),
            "job.failed" => Self::Job(JobEvent::Failed(de(payload).map_err(malformed)?)),
            "job.cancelled" => Self::Job(JobEvent::Cancelled(de(payload).map_err(malformed)?)),
            "job.reopened" => Self::Job(JobEvent::Reopened(de(payload).map_err(malformed)?)),
            "job.params_logged" => {
                Self::Job(JobEvent::ParamsLogged(de(payload).map_err(malformed)?))
            }
            "job.run_tags_set" => Self::Job(JobEvent::RunTagsSet(de(payload).map_err(malformed)?)),
            "job.run_tag_deleted" => {
                Self::Job(JobEvent::RunTagDeleted(de(payload).map_err(malformed)?))
            }
            "job.renamed" => Self::Job(JobEvent::Renamed(de(payload).map_err(malformed)?)),
            "job.deleted" => Self::Job(JobEvent::Deleted(de(payload).map_err(malformed)?)),
            "job.restored" => Self::Job(JobEvent::Restored(de(payload).map_err(malformed)?)),
            "job.run_status_reported" => {
                Self::Job(JobEvent::RunStatusReported(de(payload).map_err(malformed)?))
            }
            "job.artifact_stored" => {
                Self::Job(JobEvent::ArtifactStored(de(payload).map_err(malformed)?))
            }
            "job.artifact_deleted" => {
                Self::Job(JobEvent::ArtifactDeleted(de(payload).map_err(malformed)?))
            }
            "experiment.created" => {
                Self::Experiment(ExperimentEvent::Created(de(payload).map_err(malformed)?))
            }
            "experiment.renamed" => {
                Self::Experiment(ExperimentEvent::Renamed(de(payload).map_err(malformed)?))
            }
            "experiment.deleted" => {
                Self::Experiment(ExperimentEvent::Deleted(de(payload).map_err(malformed)?))
            }
            "experiment.restored" => {
                Self::Experiment(ExperimentEvent::Restored(de(payload).map_err(malformed)?))
            }
            "experiment.tag_set" => {
                Self::Experiment(ExperimentEvent::TagSet(de(payload).map_err(malformed)?))
            }
            "job.metrics_logged" => {
                let v1: MetricsLoggedV1 = de(payload).map_err(malformed)?;
                Self::MetricsLogged(MetricsLogged::try_from(v1).map_err(|message| {
                    EventCodecError::Malformed {
                        event_type: event_type.to_string(),
                        version,
                        message,
                    }
                })?)
            }
            _ => return Err(unknown()),
        })
    }
}

/// Events of one aggregate type, as part of the [`DomainEvent`] union.
pub trait AggregateEvent: Sized + Clone {
    fn into_domain(self) -> DomainEvent;
    fn from_domain(event: DomainEvent) -> Option<Self>;
}

impl AggregateEvent for JobEvent {
    fn into_domain(self) -> DomainEvent {
        DomainEvent::Job(self)
    }
    fn from_domain(event: DomainEvent) -> Option<Self> {
        match event {
            DomainEvent::Job(e) => Some(e),
            _ => None,
        }
    }
}

impl AggregateEvent for ExperimentEvent {
    fn into_domain(self) -> DomainEvent {
        DomainEvent::Experiment(self)
    }
    fn from_domain(event: DomainEvent) -> Option<Self> {
        match event {
            DomainEvent::Experiment(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/events")
    }

    fn fixture(event_type: &str, version: u32) -> Value {
        let path = fixture_dir().join(format!("{event_type}.v{version}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("missing fixture {} ({e})", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn every_schema_version_has_a_fixture_that_decodes() {
        for (event_type, version) in SCHEMAS {
            let payload = fixture(event_type, *version);
            let event = DomainEvent::decode(event_type, *version, payload)
                .unwrap_or_else(|e| panic!("{event_type} v{version}: {e}"));
            assert_eq!(event.event_type(), *event_type);
        }
    }

    #[test]
    fn latest_fixtures_round_trip_exactly() {
        for (event_type, version) in SCHEMAS {
            if latest_version(event_type) != Some(*version) {
                continue;
            }
            let payload = fixture(event_type, *version);
            let event = DomainEvent::decode(event_type, *version, payload.clone()).unwrap();
            assert_eq!(
                event.to_payload(),
                payload,
                "{event_type} v{version} changed shape"
            );
        }
    }

    #[test]
    fn no_fixture_without_a_schema() {
        for entry in std::fs::read_dir(fixture_dir()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".json").unwrap();
            let (t, v) = stem.rsplit_once(".v").unwrap();
            let v: u32 = v.parse().unwrap();
            assert!(
                SCHEMAS.contains(&(t, v)),
                "fixture {name} names no known schema"
            );
        }
    }

    #[test]
    fn job_created_v1_upcasts_with_defaults() {
        let event = DomainEvent::decode("job.created", 1, fixture("job.created", 1)).unwrap();
        match event {
            DomainEvent::Job(JobEvent::Created(c)) => {
                assert!(c.tags.is_empty());
                assert_eq!(c.provider, Provider::External);
                assert_eq!(c.name, "imported-run");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn job_created_v2_upcasts_into_the_default_experiment() {
        let event = DomainEvent::decode("job.created", 2, fixture("job.created", 2)).unwrap();
        match event {
            DomainEvent::Job(JobEvent::Created(c)) => {
                assert_eq!(c.experiment_id, "0");
                assert_eq!(c.user_id, "");
                assert_eq!(c.start_time_ms, None);
                assert_eq!(c.tags, vec!["sft".to_string(), "llama".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prediction_recorded_v1_upcasts_as_a_local_tokenizer_count() {
        let event =
            DomainEvent::decode("prediction.recorded", 1, fixture("prediction.recorded", 1))
                .unwrap();
        let DomainEvent::PredictionRecorded(p) = event else {
            panic!()
        };
        assert_eq!(p.usage_source, "tokenizer");
        assert_eq!(p.model_version, "");
        assert_eq!(p.cost_usd, None);
        assert_eq!((p.prompt_tokens, p.completion_tokens), (14, 15));
    }

    #[test]
    fn metrics_payload_keeps_non_finite_values() {
        let event =
            DomainEvent::decode("job.metrics_logged", 1, fixture("job.metrics_logged", 1)).unwrap();
        let DomainEvent::MetricsLogged(m) = event else {
            panic!()
        };
        assert!(m.points.iter().any(|p| p.value.is_nan()));
        assert!(m.points.iter().any(|p| p.value == f64::INFINITY));
        assert!(m.points.iter().any(|p| p.value == f64::NEG_INFINITY));
    }

    #[test]
    fn unknown_types_and_versions_are_errors() {
        assert!(matches!(
            DomainEvent::decode("job.exploded", 1, Value::Null),
            Err(EventCodecError::Unknown { .. })
        ));
        assert!(matches!(
            DomainEvent::decode("job.started", 9, Value::Null),
            Err(EventCodecError::Unknown { .. })
        ));
        assert!(matches!(
            DomainEvent::decode("job.started", 1, serde_json::json!({"nope": 1})),
            Err(EventCodecError::Malformed { .. })
        ));
    }
}
