//! Mutations of managed training: launch, pause/resume, budgets, datasets.

use super::*;

#[derive(Default)]
pub struct TrainingMutation;

/// `CONFIG_INVALID` with every issue (path, code, message) and the warnings.
pub(super) fn config_invalid(v: &ftl_domain::training_config::Validation) -> async_graphql::Error {
    let issues = serde_json::to_value(&v.issues).unwrap_or_default();
    let warnings = serde_json::to_value(&v.warnings).unwrap_or_default();
    async_graphql::Error::new(v.summary()).extend_with(move |_, e| {
        e.set("code", "CONFIG_INVALID");
        e.set(
            "issues",
            async_graphql::Value::from_json(issues.clone()).unwrap_or_default(),
        );
        e.set(
            "warnings",
            async_graphql::Value::from_json(warnings.clone()).unwrap_or_default(),
        );
    })
}

/// A launch refused: each reason with its code.
pub(super) fn launch_error(e: LaunchError) -> async_graphql::Error {
    match e {
        LaunchError::DatasetNotFound => gql_error(Code::NotFound, e.to_string()),
        LaunchError::ExternalBaseModel => gql_error(Code::InvalidInput, e.to_string()),
        LaunchError::DatasetInvalid(issues) => dataset_invalid(&issues),
        LaunchError::ConfigInvalid(v) => config_invalid(&v),
        LaunchError::Internal(e) => internal(e),
    }
}

#[Object]
impl TrainingMutation {
    /// Validates a training config against its dataset (schema, ranges,
    /// dataset shape, context vs sequence length, memory on the device,
    /// budget) and queues the job for a worker. A rejected config is a
    /// `CONFIG_INVALID` error listing every issue; nothing is created.
    async fn create_training_job(
        &self,
        ctx: &Context<'_>,
        name: String,
        config: async_graphql::Json<serde_json::Value>,
        dataset_id: ID,
        tags: Option<Vec<String>>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let size = serde_json::to_vec(&config.0).map_err(internal)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(limit(format!(
                "config is {size} bytes; the limit is {MAX_CONFIG_BYTES}"
            )));
        }
        let dataset_uuid = parse_id(&dataset_id, "datasetId")?;
        let launch = launch::check(&st.effects, c.project_id, &config.0, dataset_uuid)
            .await
            .map_err(launch_error)?;
        let k = keyed(ctx, c, "createTrainingJob", "", idempotency_key.as_deref())?;
        let job = JobId(derive_entity_id(k.id, "job"));
        let cmd = JobCommand::CreateManaged {
            job_id: job,
            project_id: c.project_id,
            name,
            tags: tags.unwrap_or_default(),
            config: config.0,
            validated: Box::new(launch.validated(job).map_err(internal)?),
        };
        create(st, c, job, &cmd, &k).await
    }

    /// Pauses a running job after a checkpoint (PAUSING, then PAUSED once the
    /// worker saved and released its machine).
    async fn pause_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        let cmd = JobCommand::RequestPause {
            reason: PauseReason::User,
        };
        transition(ctx, id, cmd, "pauseJob", idempotency_key).await
    }

    /// Queues a paused job again; it resumes from its last checkpoint. A job
    /// paused by its budget needs `newBudget` with room to continue.
    async fn resume_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        new_budget: Option<BudgetInput>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        let budget = new_budget
            .map(|b| -> async_graphql::Result<BudgetChange> {
                if b.max_cost_usd.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                    return Err(gql_error(
                        Code::InvalidInput,
                        "newBudget.maxCostUsd must be a positive number or null",
                    ));
                }
                if b.max_runtime_minutes.is_some_and(|m| m < 1) {
                    return Err(gql_error(
                        Code::InvalidInput,
                        "newBudget.maxRuntimeMinutes must be at least 1 or null",
                    ));
                }
                Ok(BudgetChange {
                    max_cost_usd: b.max_cost_usd,
                    max_runtime_minutes: b.max_runtime_minutes.map(|m| m as u64),
                })
            })
            .transpose()?;
        transition(
            ctx,
            id,
            JobCommand::Resume { budget },
            "resumeJob",
            idempotency_key,
        )
        .await
    }
}
