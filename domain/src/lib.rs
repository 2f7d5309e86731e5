//! FineTune Lab domain: identifiers, versioned events, and pure deciders.
//!
//! Nothing in this crate performs I/O. Every business rule is a pure function
//! `decide(state, command, now) -> Result<Vec<Event>, DomainError>` plus a fold
//! `evolve(state, event)`, so it is tested in microseconds.

pub mod agreement;
pub mod comparison;
pub mod decider;
pub mod error;
pub mod evaluation;
pub mod events;
pub mod experiment;
pub mod feedback;
pub mod float_json;
pub mod ids;
pub mod job;
pub mod limits;
pub mod metrics;
pub mod prediction;
pub mod process;
pub mod project;
pub mod registry;
pub mod stats;
pub mod training_config;

pub use decider::Decider;
pub use error::DomainError;
pub use events::{AggregateEvent, DomainEvent, EventCodecError};
pub use ids::{ApiKeyId, DatasetId, JobId, ModelId, PredictionId, ProjectId, SuiteId};
