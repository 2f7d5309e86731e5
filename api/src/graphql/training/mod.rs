//! Managed training over GraphQL: launch (validated against the dataset),
//! pause/resume with a new budget, the job's spend, progress, checkpoints
//! and logs, errors grouped by fingerprint, datasets, models, generation and
//! the GPU/price catalog.

use crate::graphql::common::errors::{Code, gql_error, internal};
use crate::graphql::common::keyed;
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use crate::graphql::jobs::Job;
use crate::graphql::jobs::ops::owned_job;
use crate::graphql::jobs::ops::{create, transition};
use crate::graphql::registry::dataset_invalid;
use async_graphql::{
    ComplexObject, Context, ErrorExtensions, ID, InputObject, Object, SimpleObject,
    Subscription as GqlSubscription,
};
use chrono::{DateTime, TimeZone, Utc};
use ftl_domain::DomainEvent;
use ftl_domain::ids::{JobId, derive_entity_id};
use ftl_domain::job::JobCommand;
use ftl_domain::job::managed::{BudgetChange, PauseReason};
use ftl_domain::limits::MAX_CONFIG_BYTES;
use ftl_domain::project::Scope;
use ftl_effects::training::launch::{self, LaunchError};
use ftl_projections::views::{metrics, training};
use futures::stream::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

/// Longest prompt `generate` takes, and most tokens it produces.
pub(super) const MAX_PROMPT_BYTES: usize = 32 * 1024;
pub(super) const MAX_GENERATE_TOKENS: i32 = 2048;

pub(crate) fn limit(message: String) -> async_graphql::Error {
    gql_error(Code::LimitExceeded, message)
}

pub(crate) fn page(first: i32, max: i64) -> async_graphql::Result<i64> {
    if first < 1 || i64::from(first) > max {
        return Err(limit(format!("first must be between 1 and {max}")));
    }
    Ok(i64::from(first))
}

mod mutation;
mod query;
mod subscription;
mod types;

pub use mutation::TrainingMutation;
pub use query::TrainingQuery;
pub use subscription::TrainingSubscription;
pub use types::*;
