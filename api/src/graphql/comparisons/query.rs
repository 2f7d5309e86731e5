//! `comparison`: a session as the caller (or a named rater) sees it.

use super::session::*;
use super::types::*;
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;

#[derive(Default)]
pub struct ComparisonQuery;

#[Object]
impl ComparisonQuery {
    /// A session, blind for `rater` (default: the API key) until it votes.
    async fn comparison(
        &self,
        ctx: &Context<'_>,
        id: ID,
        rater: Option<String>,
    ) -> async_graphql::Result<Comparison> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let id = parse_id(&id, "id")?;
        let rater = rater_of(c, rater)?;
        read(st, c.project_id.0, id, &rater).await
    }
}
