//! Events to their latest payload, and stored payloads of any known version back to events.

use super::{DomainEvent, EventCodecError, SCHEMAS, latest_version, upcast};
use crate::evaluation::suite::SuiteEvent;
use crate::experiment::ExperimentEvent;
use crate::job::{JobEvent, ManagedEvent};
use crate::metrics::{MetricsLogged, MetricsLoggedV1};
use serde::Deserialize;
use serde_json::Value;

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    // Serialising these plain structs cannot fail (no maps with non-string keys).
    serde_json::to_value(t).unwrap_or(Value::Null)
}

impl DomainEvent {
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
            Self::Suite(e) => e.to_payload(),
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
        if SuiteEvent::TYPES.contains(&event_type) {
            let value = Value::deserialize(payload)?;
            return SuiteEvent::decode(event_type, value)
                .map(|e| Some(Self::Suite(e)))
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
