//! `datasets`, `models`, `model`.

use super::types::*;
use crate::graphql::common::{caller, internal, parse_id, state};
use crate::graphql::training::page;
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;
use ftl_projections::views::training;

#[derive(Default)]
pub struct RegistryQuery;

#[Object]
impl RegistryQuery {
    async fn datasets(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<Dataset>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let n = page(first, st.config.limits.page_size_max)?;
        Ok(training::datasets(&st.effects.db, c.project_id.0, n)
            .await
            .map_err(internal)?
            .into_iter()
            .map(Dataset::from)
            .collect())
    }

    async fn models(
        &self,
        ctx: &Context<'_>,
        job_id: Option<ID>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<Model>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let n = page(first, st.config.limits.page_size_max)?;
        let job = job_id.map(|j| parse_id(&j, "jobId")).transpose()?;
        Ok(training::models(&st.effects.db, c.project_id.0, job, n)
            .await
            .map_err(internal)?
            .into_iter()
            .map(Model::from)
            .collect())
    }

    async fn model(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Model>> {
        let id = parse_id(&id, "id")?;
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        Ok(training::model(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .map(Model::from))
    }
}
