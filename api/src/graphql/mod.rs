//! The GraphQL API. Every field is resolved for the caller's project only.

mod as_of;
mod chat;
mod comparisons;
mod errors;
mod history;
mod idempotency;
mod limits;
mod mutation;
mod predictions;
mod query;
mod scalars;
mod subscription;
mod training;
mod types;

pub use errors::{Code, gql_error};
pub use limits::QueryLimits;

use crate::auth::Caller;
use crate::state::AppState;
use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use ftl_domain::project::Scope;

#[derive(MergedObject, Default)]
pub struct Query(
    query::Query,
    training::TrainingQuery,
    predictions::PredictionsQuery,
    predictions::FeedbackQuery,
    chat::ChatQuery,
    history::HistoryQuery,
    comparisons::ComparisonQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::Mutation,
    training::TrainingMutation,
    predictions::FeedbackMutation,
    chat::ChatMutation,
    history::HistoryMutation,
    comparisons::ComparisonMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    subscription::Subscription,
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

pub(crate) fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
        .map_err(|_| gql_error(Code::Internal, "service state missing"))
}

/// The caller, if its key allows `needed`. Fails closed when absent.
pub(crate) fn caller<'a>(ctx: &Context<'a>, needed: Scope) -> async_graphql::Result<&'a Caller> {
    let c = ctx
        .data::<Caller>()
        .map_err(|_| gql_error(Code::Unauthenticated, "an API key is required"))?;
    if !c.scope.allows(needed) {
        return Err(gql_error(
            Code::Forbidden,
            format!(
                "this key's scope is {}; {} is needed",
                c.scope.as_str(),
                needed.as_str()
            ),
        ));
    }
    Ok(c)
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
