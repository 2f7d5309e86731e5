//! `predictions` (a page) and `prediction` (one).

use super::types::*;
use crate::graphql::common::errors::internal;
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;
use ftl_projections::views::predictions as view;

#[derive(Default)]
pub struct PredictionsQuery;

#[Object]
impl PredictionsQuery {
    /// Recorded exchanges of this project (the predictions table): full-text
    /// search, filters, newest/oldest/slowest/fastest first, cursor pagination.
    async fn predictions(
        &self,
        ctx: &Context<'_>,
        filter: Option<PredictionFilter>,
        #[graphql(default)] sort: PredictionSort,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Prediction>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        crate::graphql::common::connection_page(first, st.config.limits.page_size_max)?;
        let filter = filter.unwrap_or_default().into_view()?;
        let cursor = after.as_deref().map(decode_cursor).transpose()?;
        let sort = match sort {
            PredictionSort::Newest => view::PredictionSort::Newest,
            PredictionSort::Oldest => view::PredictionSort::Oldest,
            PredictionSort::Slowest => view::PredictionSort::Slowest,
            PredictionSort::Fastest => view::PredictionSort::Fastest,
        };
        let mut rows = view::predictions(
            &st.effects.db,
            c.project_id.0,
            &filter,
            sort,
            cursor,
            i64::from(first) + 1,
        )
        .await
        .map_err(internal)?;
        let has_next = crate::graphql::common::next_page(&mut rows, first);
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(encode_cursor(view::Cursor::of(&r)), Prediction::from(r))),
        );
        Ok(conn)
    }

    async fn prediction(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Prediction>> {
        let id = parse_id(&id, "id")?;
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        Ok(view::prediction(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .map(Prediction::from))
    }
}
