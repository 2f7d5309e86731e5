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

/// `DATASET_INVALID` with every problem by line number.
pub(super) fn dataset_invalid(issues: &[ftl_trainer::dataset::DataIssue]) -> async_graphql::Error {
    let list = serde_json::json!(
        issues
            .iter()
            .map(|i| serde_json::json!({"line": i.line, "message": i.message}))
            .collect::<Vec<_>>()
    );
    async_graphql::Error::new(format!("dataset has {} problem(s)", issues.len())).extend_with(
        move |_, e| {
            e.set("code", "DATASET_INVALID");
            e.set(
                "issues",
                async_graphql::Value::from_json(list.clone()).unwrap_or_default(),
            );
        },
    )
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
