//! Every event type the system writes, its stable name, its schema versions,
//! and the upcasters that turn any stored version into the latest struct.
//!
//! Rules: an event type name is never a Rust path and never changes; a change of
//! shape adds a schema version and an upcaster; every `(event_type, version)`
//! ever written stays in [`SCHEMAS`] with a committed JSON fixture.

mod codec;
mod family;
mod schemas;
mod upcast;

pub(crate) use family::event_family;
pub use schemas::{SCHEMAS, latest_version};

use crate::comparison::{ComparisonCreated, ResponseRecorded, Voted};
use crate::evaluation::suite::SuiteEvent;
use crate::experiment::*;
use crate::feedback::{Evaluated, Rated, ThumbSet};
use crate::job::logs::LogsAppended;
use crate::job::*;
use crate::metrics::MetricsLogged;
use crate::prediction::PredictionRecorded;
use crate::project::*;
use crate::registry::{DatasetRegistered, ExternalModelRegistered, ModelPriceSet, ModelRegistered};
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
    /// A test suite's creation and uploads (`suite-{id}`).
    Suite(SuiteEvent),
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
mod tests;
