//! `registerDataset` (read in place from a configured source) and
//! `registerModel` (a job's stored checkpoint).

use super::types::*;
use crate::graphql::common::{Code, caller, domain_error, gql_error, internal, parse_id, state};
use crate::graphql::jobs::ops::owned_job;
use crate::graphql::training::limit;
use async_graphql::{Context, ID, Object};
use ftl_domain::ids::JobId;
use ftl_domain::project::Scope;
use ftl_effects::training::storage;
use ftl_projections::views::training;

#[derive(Default)]
pub struct RegistryMutation;

#[Object]
impl RegistryMutation {
    /// Registers a dataset read in place from a URL (`s3://…`, `file:///…`)
    /// under one of the configured `training.dataset_sources`. It is parsed
    /// now (`DATASET_INVALID` with every bad line) and its digest kept: a job
    /// fails clearly if the object changes before it trains.
    async fn register_dataset(
        &self,
        ctx: &Context<'_>,
        uri: String,
        name: Option<String>,
    ) -> async_graphql::Result<Dataset> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        if uri.len() > 2048 {
            return Err(limit("uri: at most 2048 bytes".into()));
        }
        if !storage::allowed_source(&st.effects, &uri) {
            return Err(gql_error(
                Code::Forbidden,
                "uri is not under a configured training.dataset_sources prefix",
            ));
        }
        let name = name.unwrap_or_else(|| uri.rsplit('/').next().unwrap_or_default().to_string());
        if !storage::valid_name(&name) {
            return Err(gql_error(
                Code::InvalidInput,
                "name must be one path segment of 1 to 200 bytes",
            ));
        }
        let bytes = storage::read_dataset(&st.effects, &uri)
            .await
            .map_err(|e| gql_error(Code::InvalidInput, format!("reading {uri}: {e:#}")))?;
        let r = ftl_effects::training::datasets::register(
            &st.effects,
            c,
            &name,
            ftl_effects::training::datasets::Source::InPlace(uri),
            bytes.into(),
        )
        .await
        .map_err(|e| match e {
            ftl_effects::training::datasets::RegisterError::Invalid(issues) => {
                dataset_invalid(&issues)
            }
            ftl_effects::training::datasets::RegisterError::Other(e) => internal(e),
        })?;
        training::dataset(&st.effects.db, c.project_id.0, r.id)
            .await
            .map_err(internal)?
            .map(Dataset::from)
            .ok_or_else(|| gql_error(Code::Internal, "the dataset is not readable yet; retry"))
    }

    /// Makes a model of a job's stored checkpoint (the final one is
    /// registered when the job succeeds).
    async fn register_model(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        step: i64,
        name: Option<String>,
    ) -> async_graphql::Result<Model> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = parse_id(&job_id, "jobId")?;
        owned_job(ctx, id, Scope::Write).await?;
        if name.as_ref().is_some_and(|n| n.is_empty() || n.len() > 200) {
            return Err(domain_error(ftl_domain::DomainError::invalid(
                "name",
                "must be 1 to 200 bytes",
            )));
        }
        let step = u64::try_from(step)
            .map_err(|_| gql_error(Code::InvalidInput, "step must not be negative"))?;
        let (model, position) =
            ftl_effects::models::local::register(&st.effects, c.project_id, JobId(id), step, name)
                .await
                .map_err(|e| gql_error(Code::InvalidInput, e.to_string()))?;
        st.effects
            .projections
            .wait_for(position, st.effects.ryw_timeout())
            .await;
        training::model(&st.effects.db, c.project_id.0, model.0)
            .await
            .map_err(internal)?
            .map(Model::from)
            .ok_or_else(|| gql_error(Code::Internal, "the model is not readable yet; retry"))
    }
}
