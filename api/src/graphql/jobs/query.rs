use super::ops::owned_job;
use super::types::*;
use crate::graphql::common::errors::{Code, gql_error, internal};
use crate::graphql::common::{caller, state};
use crate::graphql::common::{connection_page, parse_id};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use ftl_commands::store::read_full_stream;
use ftl_domain::ids::JobId;
use ftl_domain::project::Scope;
use ftl_projections::views::{catalog, metrics};
use uuid::Uuid;

#[derive(Default)]
pub struct Query;

fn decode_cursor(after: Option<String>) -> async_graphql::Result<Option<i64>> {
    after
        .map(|a| {
            let n = a.strip_prefix("job:").and_then(|s| s.parse::<i64>().ok());
            n.ok_or_else(|| gql_error(Code::InvalidInput, "malformed cursor"))
        })
        .transpose()
}

#[Object(name = "CoreQuery")]
impl Query {
    /// The project and scope of the key making this request.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let c = caller(ctx, Scope::Read)?;
        Ok(Me {
            project_id: ID(c.project_id.to_string()),
            project: c.project_name.clone(),
            key_id: ID(c.key_id.to_string()),
            scope: c.scope.as_str().into(),
        })
    }

    /// The read models (projections) of the log: position, lag, and the
    /// progress of a rebuild beside the live generation after an upgrade
    /// changed a read model's tables.
    async fn read_models(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ReadModel>> {
        caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let list = st.effects.projections.status().await.map_err(internal)?;
        Ok(list.into_iter().map(ReadModel::from).collect())
    }

    /// Validates a training job config (`specs/training-config.md` §4) for the
    /// built-in trainer and writes nothing: every issue and warning, the
    /// normalized config, its hash, and the estimates that do not need a dataset.
    async fn validate_training_config(
        &self,
        ctx: &Context<'_>,
        config: async_graphql::Json<serde_json::Value>,
    ) -> async_graphql::Result<TrainingConfigValidation> {
        caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let size = serde_json::to_vec(&config.0).map_err(internal)?.len();
        if size > ftl_domain::limits::MAX_CONFIG_BYTES {
            return Err(gql_error(
                Code::LimitExceeded,
                format!(
                    "config is {size} bytes; the limit is {}",
                    ftl_domain::limits::MAX_CONFIG_BYTES
                ),
            ));
        }
        let (gpu_types, rate_usd_per_hour) =
            ftl_effects::training::launch::resources(&st.effects, &config.0);
        let context = ftl_domain::training_config::Context {
            trainer: ftl_trainer::job::support(
                &[],
                ftl_effects::training::local::total_memory_bytes(),
            ),
            gpu_types,
            rate_usd_per_hour,
            ..Default::default()
        };
        Ok(ftl_domain::training_config::validate(&config.0, &context).into())
    }

    /// One job of this project; with `asOf` (a log position), as it stood
    /// when the log ended there: its status, training facts and metrics
    /// folded from the events up to it (audit and replay of a run).
    async fn job(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<String>,
    ) -> async_graphql::Result<Option<Job>> {
        let id = parse_id(&id, "id")?;
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let Some(at) = crate::graphql::common::as_of::position(st, as_of.as_deref()).await? else {
            return Ok(catalog::job(&st.effects.db, c.project_id.0, id)
                .await
                .map_err(internal)?
                .map(Job::from));
        };
        // The live row says whose it is; a job of another project is none.
        if catalog::job(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Ok(None);
        }
        let r = crate::graphql::common::as_of::job(st, id, at).await?;
        Ok(catalog::job(r.db(), c.project_id.0, id)
            .await
            .map_err(internal)?
            .map(|j| Job::from(j).replayed(&r)))
    }

    /// Jobs of this project, newest first (Relay cursor pagination); with
    /// `asOf` (a log position), the jobs as they stood then.
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        filter: Option<JobFilter>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        as_of: Option<String>,
    ) -> async_graphql::Result<Connection<String, Job>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        connection_page(first, st.config.limits.page_size_max)?;
        let mut replay = match crate::graphql::common::as_of::position(st, as_of.as_deref()).await?
        {
            Some(at) => Some(crate::graphql::common::as_of::jobs(st, at).await?),
            None => None,
        };
        let f = filter.unwrap_or_default();
        let filter = catalog::JobFilter {
            status: f
                .status
                .map(|s| ftl_domain::job::JobStatus::from(s).as_str().to_string()),
            name_contains: f.name_contains,
            tag: f.tag,
        };
        let has_prev = after.is_some();
        let before = decode_cursor(after)?;
        let mut rows = catalog::jobs(
            replay.as_ref().map_or(&st.effects.db, |r| r.db()),
            c.project_id.0,
            &filter,
            before,
            i64::from(first) + 1,
        )
        .await
        .map_err(internal)?;
        let has_next = crate::graphql::common::next_page(&mut rows, first);
        if let Some(r) = replay.as_mut() {
            let ids: Vec<Uuid> = rows.iter().map(|j| j.job_id).collect();
            crate::graphql::common::as_of::add_metrics(st, r, &ids).await?;
        }
        let mut conn = Connection::new(has_prev, has_next);
        conn.edges.extend(rows.into_iter().map(|row| {
            let cursor = format!("job:{}", row.seq);
            let job = Job::from(row);
            let job = match &replay {
                Some(r) => job.replayed(r),
                None => job,
            };
            Edge::new(cursor, job)
        }));
        Ok(conn)
    }

    /// Downsampled series: at most `maxPoints` buckets per key, each with
    /// min/max/mean so a one-step spike survives. With `asOf` (a log
    /// position), the series as it was served when the log ended there.
    #[allow(clippy::too_many_arguments)]
    async fn metric_series(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        keys: Vec<String>,
        from_step: Option<i64>,
        to_step: Option<i64>,
        #[graphql(default = 1000)] max_points: i64,
        as_of: Option<String>,
    ) -> async_graphql::Result<Vec<MetricSeries>> {
        let id = parse_id(&job_id, "jobId")?;
        let st = state(ctx)?;
        let limits = &st.config.limits;
        if keys.is_empty() || keys.len() > limits.series_keys_max {
            return Err(gql_error(
                Code::LimitExceeded,
                format!("keys: 1 to {} keys", limits.series_keys_max),
            ));
        }
        if max_points < 1 || max_points > limits.series_points_max {
            return Err(gql_error(
                Code::LimitExceeded,
                format!(
                    "maxPoints must be between 1 and {}",
                    limits.series_points_max
                ),
            ));
        }
        if let (Some(from), Some(to)) = (from_step, to_step)
            && from > to
        {
            return Err(gql_error(
                Code::InvalidInput,
                format!("fromStep ({from}) is after toStep ({to}): the range is empty"),
            ));
        }
        owned_job(ctx, id, Scope::Read).await?;
        let replay = match crate::graphql::common::as_of::position(st, as_of.as_deref()).await? {
            Some(at) => Some(crate::graphql::common::as_of::job(st, id, at).await?),
            None => None,
        };
        let db = replay.as_ref().map_or(&st.effects.db, |r| r.db());
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let s = metrics::series(db, id, &key, from_step, to_step, max_points)
                .await
                .map_err(internal)?;
            out.push(MetricSeries {
                key: s.key,
                bucket_width: s.bucket_width,
                points: s.buckets.into_iter().map(MetricBucket::from).collect(),
            });
        }
        Ok(out)
    }

    /// The raw event history of a job (lifecycle and metric batches) in log
    /// order: the audit trail. `after` is a log position.
    async fn job_events(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        #[graphql(default = 100)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Vec<AuditEvent>> {
        let id = parse_id(&job_id, "jobId")?;
        let st = state(ctx)?;
        if first < 1 || i64::from(first) > st.config.limits.page_size_max {
            return Err(gql_error(
                Code::LimitExceeded,
                format!(
                    "first must be between 1 and {}",
                    st.config.limits.page_size_max
                ),
            ));
        }
        owned_job(ctx, id, Scope::Read).await?;
        let after: u64 = match after {
            Some(a) => a
                .parse()
                .map_err(|_| gql_error(Code::InvalidInput, "after must be a log position"))?,
            None => 0,
        };
        let job = JobId(id);
        let mut events = read_full_stream(st.effects.store.as_ref(), &job.stream())
            .await
            .map_err(internal)?;
        events.extend(
            read_full_stream(st.effects.store.as_ref(), &job.metrics_stream())
                .await
                .map_err(internal)?,
        );
        events.retain(|e| e.global_position > after);
        events.sort_by_key(|e| e.global_position);
        events.truncate(first as usize);
        events
            .into_iter()
            .map(|e| {
                Ok(AuditEvent {
                    payload: async_graphql::Json(e.payload_json().map_err(internal)?),
                    event_id: ID(e.event_id.to_string()),
                    position: e.global_position.to_string(),
                    stream_id: e.stream_id,
                    stream_version: e.stream_version.to_string(),
                    event_type: e.event_type,
                    schema_version: e.schema_version as i32,
                    recorded_at: e.recorded_at,
                    actor: e.metadata.actor,
                })
            })
            .collect()
    }
}
