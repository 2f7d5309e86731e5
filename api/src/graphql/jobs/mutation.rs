use super::ops::{create, transition};
use super::types::*;
use crate::graphql::common::errors::{command_error, domain_error};
use crate::graphql::common::keyed;
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use async_graphql::{Context, ID, Object};
use chrono::Utc;
use ftl_commands::handler::{append_metrics, handle};
use ftl_domain::DomainError;
use ftl_domain::ids::{JobId, derive_entity_id};
use ftl_domain::job::{JobCommand, JobDecider, Provider, RunInfo, in_project};
use ftl_domain::metrics::{MetricPoint, canonical_key, validate_points};
use ftl_domain::project::Scope;
use uuid::Uuid;

#[derive(Default)]
pub struct Mutation;

#[Object(name = "CoreMutation")]
impl Mutation {
    /// Registers a job reported from outside (any training script). It starts
    /// `QUEUED` and becomes `RUNNING` on `startJob` or its first metrics.
    async fn create_job(
        &self,
        ctx: &Context<'_>,
        name: String,
        config: Option<async_graphql::Json<serde_json::Value>>,
        tags: Option<Vec<String>>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let k = keyed(ctx, c, "createJob", "", idempotency_key.as_deref())?;
        // With an idempotency key the job id is derived too, so a retry lands
        // on the same stream and returns the same job.
        let job = JobId(derive_entity_id(k.id, "job"));
        let cmd = JobCommand::Create {
            job_id: job,
            project_id: c.project_id,
            name,
            config: config.map(|j| j.0).unwrap_or_else(|| serde_json::json!({})),
            tags: tags.unwrap_or_default(),
            provider: Provider::External,
            run: RunInfo::default(),
        };
        create(st, c, job, &cmd, &k).await
    }

    /// QUEUED → RUNNING.
    async fn start_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        transition(ctx, id, JobCommand::Start, "startJob", idempotency_key).await
    }

    /// RUNNING → SUCCEEDED.
    async fn complete_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        transition(
            ctx,
            id,
            JobCommand::Complete,
            "completeJob",
            idempotency_key,
        )
        .await
    }

    /// Any non-terminal status → FAILED, keeping the error message.
    async fn fail_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        error: String,
        #[graphql(default_with = "FailureReason::UserCode")] reason: FailureReason,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        let cmd = JobCommand::Fail {
            reason: reason.into(),
            message: error,
        };
        transition(ctx, id, cmd, "failJob", idempotency_key).await
    }

    /// Stops a job (a reported job ends at once: nothing to release).
    async fn cancel_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Job> {
        if reason
            .as_ref()
            .is_some_and(|r| r.len() > ftl_domain::limits::MAX_ERROR_LEN)
        {
            return Err(domain_error(DomainError::limit(
                "reason",
                "at most 16384 bytes",
            )));
        }
        transition(
            ctx,
            id,
            JobCommand::Cancel { reason },
            "cancelJob",
            idempotency_key,
        )
        .await
    }

    /// Logs up to 10,000 points in one call. NaN and ±Infinity are kept. With
    /// an `idempotencyKey`, a retried call stores nothing twice.
    async fn log_metrics(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        points: Vec<MetricPointInput>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<LogMetricsResult> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let job = JobId(parse_id(&job_id, "jobId")?);
        let now = Utc::now().timestamp_millis();
        let points: Vec<MetricPoint> = points
            .into_iter()
            .map(|p| MetricPoint {
                key: canonical_key(&p.key).to_string(),
                step: p.step,
                value: p.value.0,
                timestamp_ms: p.timestamp.map(|t| t.timestamp_millis()).unwrap_or(now),
            })
            .collect();
        validate_points(&points).map_err(domain_error)?;
        let k = keyed(
            ctx,
            c,
            "logMetrics",
            &job.to_string(),
            idempotency_key.as_deref(),
        )?;
        let (cid, meta) = (k.id, k.meta);
        // The lifecycle check (and a queued job's start) on the job stream...
        let lifecycle = handle::<JobDecider>(
            st.effects.store.as_ref(),
            &job.stream(),
            &JobCommand::ReportMetrics,
            Uuid::new_v5(&cid, b"lifecycle"),
            &meta,
            in_project(c.project_id),
        )
        .await
        .map_err(command_error)?;
        // ...then the batch on the job's metric stream, without a version check.
        let n = points.len() as i32;
        let appended = append_metrics(st.effects.store.as_ref(), job, points, cid, &meta)
            .await
            .map_err(command_error)?;
        let position = appended.last_position.max(lifecycle.position());
        if !st
            .effects
            .projections
            .wait_for(position, st.ryw_timeout())
            .await
        {
            tracing::warn!(position, "read models did not catch up in time");
        }
        Ok(LogMetricsResult {
            accepted: n,
            deduplicated: appended.deduplicated,
            position: appended.last_position.to_string(),
        })
    }
}
