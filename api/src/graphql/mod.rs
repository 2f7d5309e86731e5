//! The GraphQL API. Every field is resolved for the caller's project only.

mod chat;
mod common;
mod comparisons;
mod evaluation;
mod feedback;
mod history;
mod jobs;
mod predictions;
mod registry;
mod training;

pub use common::limits::QueryLimits;
pub use common::{Code, gql_error};

use crate::state::AppState;
use async_graphql::{MergedObject, MergedSubscription, Schema};

#[derive(MergedObject, Default)]
pub struct Query(
    jobs::query::Query,
    training::TrainingQuery,
    registry::RegistryQuery,
    predictions::PredictionsQuery,
    feedback::FeedbackQuery,
    chat::ChatQuery,
    history::HistoryQuery,
    comparisons::ComparisonQuery,
    evaluation::EvaluationQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    jobs::mutation::Mutation,
    training::TrainingMutation,
    registry::RegistryMutation,
    feedback::FeedbackMutation,
    chat::ChatMutation,
    history::HistoryMutation,
    comparisons::ComparisonMutation,
    comparisons::PreferenceMutation,
    evaluation::EvaluationMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    jobs::subscription::Subscription,
    training::TrainingSubscription,
    chat::ChatSubscription,
);

pub type ApiSchema = Schema<Query, Mutation, Subscription>;

pub fn build_schema(
    state: Option<AppState>,
    depth: usize,
    complexity: usize,
    limits: QueryLimits,
) -> ApiSchema {
    let mut b = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(depth)
    .limit_complexity(complexity)
    .extension(limits);
    if let Some(s) = state {
        b = b.data(s);
    }
    b.finish()
}

/// The SDL as committed in `api/schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, 64, 100_000, QueryLimits::unlimited()).sdl()
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_sdl_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == super::sdl(),
            "api/schema.graphql is stale: run `finetune-lab schema > api/schema.graphql`"
        );
    }
}
