//! What every GraphQL context uses and nothing in `graphql/` is imported
//! by: the caller and the service state from the request, ids and page
//! sizes from arguments, error codes, idempotency keys, query limits,
//! scalars, and replays "as of" a past position. A leaf: it imports no
//! other GraphQL module.

pub mod as_of;
pub mod errors;
pub mod idempotency;
pub mod limits;
pub mod scalars;

pub use errors::{Code, command_error, domain_error, gql_error, internal};
pub(crate) use idempotency::{Keyed, keyed};

use crate::auth::Caller;
use crate::state::AppState;
use async_graphql::{Context, ID};
use ftl_domain::project::Scope;
use uuid::Uuid;

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

pub(crate) fn parse_id(id: &ID, what: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| {
        let f = what.to_string();
        async_graphql::ErrorExtensions::extend_with(
            async_graphql::Error::new(format!("{what} is not a valid id")),
            move |_, e| {
                e.set("code", Code::InvalidInput.as_str());
                e.set("field", f.clone());
            },
        )
    })
}

/// Cuts a page fetched as `first + 1` rows to `first`; whether the extra
/// row was there (the connection's `hasNextPage`).
pub(crate) fn next_page<R>(rows: &mut Vec<R>, first: i32) -> bool {
    let first = usize::try_from(first).unwrap_or(0);
    let more = rows.len() > first;
    rows.truncate(first);
    more
}

/// `first` of a cursor connection: 0 to `limits.page_size_max`.
pub(crate) fn connection_page(first: i32, max: i64) -> async_graphql::Result<()> {
    if first < 0 || i64::from(first) > max {
        return Err(gql_error(
            Code::LimitExceeded,
            format!("first must be between 0 and {max}"),
        ));
    }
    Ok(())
}
