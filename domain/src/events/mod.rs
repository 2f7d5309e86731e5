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
use serde::Deserialize;
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
    /// The event types that carry bulk (many points or lines): readers that
    /// skip them ask the store to leave their payloads out.
    pub const BULK_TYPES: &'static [&'static str] = &["job.metrics_logged", "job.logs_appended"];

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
        let latest = Self::check_known(event_type, version)?;
        let malformed = |message: String| EventCodecError::Malformed {
            event_type: event_type.to_string(),
            version,
            message,
        };
        let payload = upcast::to_latest(event_type, version, latest, payload).map_err(malformed)?;
        Self::from_latest(event_type, payload)
            .map_err(|e| malformed(e.to_string()))?
            .ok_or_else(|| Self::unknown(event_type, version))
    }

    /// Decodes a stored payload given as JSON text. An event in its latest
    /// version is read straight into its struct, without an intermediate
    /// `serde_json::Value` (a 10,000-point metric batch is 40,000 values
    /// fewer to allocate); an older one goes through the upcasters.
    pub fn decode_text(
        event_type: &str,
        version: u32,
        payload: &str,
    ) -> Result<Self, EventCodecError> {
        let latest = Self::check_known(event_type, version)?;
        let malformed = |e: serde_json::Error| EventCodecError::Malformed {
            event_type: event_type.to_string(),
            version,
            message: e.to_string(),
        };
        if version != latest {
            let value: Value = serde_json::from_str(payload).map_err(malformed)?;
            return Self::decode(event_type, version, value);
        }
        let mut de = serde_json::Deserializer::from_str(payload);
        let event = Self::from_latest(event_type, &mut de).map_err(malformed)?;
        de.end().map_err(malformed)?;
        event.ok_or_else(|| Self::unknown(event_type, version))
    }

    fn unknown(event_type: &str, version: u32) -> EventCodecError {
        EventCodecError::Unknown {
            event_type: event_type.to_string(),
            version,
        }
    }

    /// The latest version of a known `(event_type, version)`.
    fn check_known(event_type: &str, version: u32) -> Result<u32, EventCodecError> {
        let latest =
            latest_version(event_type).ok_or_else(|| Self::unknown(event_type, version))?;
        if !SCHEMAS.contains(&(event_type, version)) {
            return Err(Self::unknown(event_type, version));
        }
        Ok(latest)
    }

    /// The event from a payload in its type's latest schema, from any JSON
    /// deserializer; `None` for an unknown type.
    fn from_latest<'de, D>(event_type: &str, payload: D) -> Result<Option<Self>, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        use serde::de::Error as _;
        if ManagedEvent::TYPES.contains(&event_type) {
            let value = Value::deserialize(payload)?;
            return ManagedEvent::decode(event_type, value)
                .map(|e| Some(Self::Job(JobEvent::Managed(e))))
                .map_err(D::Error::custom);
        }
        Ok(Some(match event_type {
            "job.logs_appended" => Self::LogsAppended(Deserialize::deserialize(payload)?),
            "dataset.registered" => Self::DatasetRegistered(Deserialize::deserialize(payload)?),
            "model.registered" => Self::ModelRegistered(Deserialize::deserialize(payload)?),
            "model.external_registered" => {
                Self::ExternalModelRegistered(Deserialize::deserialize(payload)?)
            }
            "model.price_set" => Self::ModelPriceSet(Deserialize::deserialize(payload)?),
            "prediction.recorded" => Self::PredictionRecorded(Deserialize::deserialize(payload)?),
            "prediction.thumb_set" => Self::ThumbSet(Deserialize::deserialize(payload)?),
            "prediction.evaluated" => Self::Evaluated(Deserialize::deserialize(payload)?),
            "prediction.rated" => Self::Rated(Deserialize::deserialize(payload)?),
            "comparison.created" => Self::ComparisonCreated(Deserialize::deserialize(payload)?),
            "comparison.response_recorded" => {
                Self::ComparisonResponse(Deserialize::deserialize(payload)?)
            }
            "comparison.voted" => Self::ComparisonVoted(Deserialize::deserialize(payload)?),
            "project.created" => Self::ProjectCreated(Deserialize::deserialize(payload)?),
            "api_key.created" => Self::ApiKeyCreated(Deserialize::deserialize(payload)?),
            "api_key.revoked" => Self::ApiKeyRevoked(Deserialize::deserialize(payload)?),
            "job.created" => Self::Job(JobEvent::Created(Deserialize::deserialize(payload)?)),
            "job.started" => Self::Job(JobEvent::Started(Deserialize::deserialize(payload)?)),
            "job.succeeded" => Self::Job(JobEvent::Succeeded(Deserialize::deserialize(payload)?)),
            "job.failed" => Self::Job(JobEvent::Failed(Deserialize::deserialize(payload)?)),
            "job.cancelled" => Self::Job(JobEvent::Cancelled(Deserialize::deserialize(payload)?)),
            "job.reopened" => Self::Job(JobEvent::Reopened(Deserialize::deserialize(payload)?)),
            "job.params_logged" => {
                Self::Job(JobEvent::ParamsLogged(Deserialize::deserialize(payload)?))
            }
            "job.run_tags_set" => {
                Self::Job(JobEvent::RunTagsSet(Deserialize::deserialize(payload)?))
            }
            "job.run_tag_deleted" => {
                Self::Job(JobEvent::RunTagDeleted(Deserialize::deserialize(payload)?))
            }
            "job.renamed" => Self::Job(JobEvent::Renamed(Deserialize::deserialize(payload)?)),
            "job.deleted" => Self::Job(JobEvent::Deleted(Deserialize::deserialize(payload)?)),
            "job.restored" => Self::Job(JobEvent::Restored(Deserialize::deserialize(payload)?)),
            "job.run_status_reported" => Self::Job(JobEvent::RunStatusReported(
                Deserialize::deserialize(payload)?,
            )),
            "job.artifact_stored" => {
                Self::Job(JobEvent::ArtifactStored(Deserialize::deserialize(payload)?))
            }
            "job.artifact_deleted" => Self::Job(JobEvent::ArtifactDeleted(
                Deserialize::deserialize(payload)?,
            )),
            "experiment.created" => {
                Self::Experiment(ExperimentEvent::Created(Deserialize::deserialize(payload)?))
            }
            "experiment.renamed" => {
                Self::Experiment(ExperimentEvent::Renamed(Deserialize::deserialize(payload)?))
            }
            "experiment.deleted" => {
                Self::Experiment(ExperimentEvent::Deleted(Deserialize::deserialize(payload)?))
            }
            "experiment.restored" => Self::Experiment(ExperimentEvent::Restored(
                Deserialize::deserialize(payload)?,
            )),
            "experiment.tag_set" => {
                Self::Experiment(ExperimentEvent::TagSet(Deserialize::deserialize(payload)?))
            }
            "job.metrics_logged" => {
                let v1: MetricsLoggedV1 = Deserialize::deserialize(payload)?;
                Self::MetricsLogged(MetricsLogged::try_from(v1).map_err(D::Error::custom)?)
            }
            _ => return Ok(None),
        }))
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
    fn text_decoding_agrees_with_value_decoding() {
        for (event_type, version) in SCHEMAS {
            let path = fixture_dir().join(format!("{event_type}.v{version}.json"));
            let text = std::fs::read_to_string(&path).unwrap();
            let from_text = DomainEvent::decode_text(event_type, *version, &text)
                .unwrap_or_else(|e| panic!("{event_type} v{version}: {e}"));
            let from_value =
                DomainEvent::decode(event_type, *version, serde_json::from_str(&text).unwrap())
                    .unwrap();
            assert_eq!(
                from_text.to_payload(),
                from_value.to_payload(),
                "{event_type} v{version}"
            );
        }
    }

    #[test]
    fn text_decoding_rejects_what_value_decoding_rejects() {
        let text = std::fs::read_to_string(fixture_dir().join("job.started.v1.json")).unwrap();
        let trailing = format!("{text} {{}}");
        assert!(matches!(
            DomainEvent::decode_text("job.started", 1, &trailing),
            Err(EventCodecError::Malformed { .. })
        ));
        assert!(matches!(
            DomainEvent::decode_text("job.started", 1, "{\"job_id\": 7}"),
            Err(EventCodecError::Malformed { .. })
        ));
        assert!(matches!(
            DomainEvent::decode_text("job.no_such_event", 1, "{}"),
            Err(EventCodecError::Unknown { .. })
        ));
        assert!(matches!(
            DomainEvent::decode_text("job.started", 99, &text),
            Err(EventCodecError::Unknown { .. })
        ));
        // A metric batch whose rows name a key index that does not exist.
        let bad = r#"{"job_id":"6f1c2f0e-8d9b-4c59-9f57-1f0a4c1d2e3f","keys":["loss"],"points":[[3,1,0.5,1700000000000]]}"#;
        assert!(matches!(
            DomainEvent::decode_text("job.metrics_logged", 1, bad),
            Err(EventCodecError::Malformed { .. })
        ));
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
