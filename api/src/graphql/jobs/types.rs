//! GraphQL object and input types.

use crate::graphql::common::scalars::MetricFloat;
use crate::graphql::common::{internal, state};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use ftl_projections::views::{catalog::JobRow, metrics};
use uuid::Uuid;

/// Job status (`specs/training-config.md` §6).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "ftl_domain::job::JobStatus")]
pub enum JobStatus {
    Validating,
    Queued,
    Provisioning,
    Running,
    Pausing,
    Paused,
    Recovering,
    Cancelling,
    Succeeded,
    Failed,
    Cancelled,
}

/// `failure_reason` (spec §6).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "ftl_domain::job::FailureReason")]
pub enum FailureReason {
    Prechecks,
    NoResource,
    Setup,
    UserCode,
    Oom,
    DataError,
    Lost,
    RecoveryExhausted,
    ProviderError,
    Controller,
    Timeout,
    Internal,
}

/// A training job.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Job {
    pub id: ID,
    pub name: String,
    pub status: JobStatus,
    /// `external` for jobs reported by any training script.
    pub provider: String,
    /// Hyperparameters and settings, as given at creation.
    pub config: async_graphql::Json<serde_json::Value>,
    pub tags: Vec<String>,
    /// Set when the job failed (`user_code`, `oom`, …).
    pub failure_reason: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The log position this job was read as of (`asOf`); null when live.
    pub as_of: Option<String>,
    #[graphql(skip)]
    pub uuid: Uuid,
    /// The read models of an "as of" read (null: the live ones); what is
    /// nested under this job is read from the same.
    #[graphql(skip)]
    pub replay: Option<ftl_commands::Db>,
}

impl Job {
    /// This job as read from `replay`, the read models at `as_of`.
    pub fn replayed(mut self, replay: &ftl_projections::replay::Replay) -> Self {
        self.as_of = Some(replay.as_of().to_string());
        self.replay = Some(replay.db().clone());
        self
    }

    /// Where what is nested under this job is read.
    pub fn db<'a>(&'a self, live: &'a ftl_commands::Db) -> &'a ftl_commands::Db {
        self.replay.as_ref().unwrap_or(live)
    }
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        let status = ftl_domain::job::JobStatus::parse(&r.status)
            .map(JobStatus::from)
            .unwrap_or(JobStatus::Queued);
        Job {
            id: ID(r.job_id.to_string()),
            name: r.name,
            status,
            provider: r.provider,
            config: async_graphql::Json(r.config),
            tags: r.tags,
            failure_reason: r.failure_reason,
            error: r.error,
            created_at: r.created_at,
            started_at: r.started_at,
            ended_at: r.ended_at,
            updated_at: r.updated_at,
            as_of: None,
            uuid: r.job_id,
            replay: None,
        }
    }
}

#[ComplexObject]
impl Job {
    /// The latest value of each metric key (by step).
    async fn latest_metrics(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LatestMetric>> {
        let st = state(ctx)?;
        let rows = metrics::latest(self.db(&st.effects.db), self.uuid)
            .await
            .map_err(internal)?;
        Ok(rows
            .into_iter()
            .map(|r| LatestMetric {
                key: r.key,
                step: r.step,
                value: MetricFloat(r.value),
                timestamp_ms: r.timestamp_ms,
            })
            .collect())
    }

    /// Managed training facts (null for jobs reported from outside).
    async fn training(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::training::Training>> {
        let st = state(ctx)?;
        Ok(
            ftl_projections::views::training::training(self.db(&st.effects.db), self.uuid)
                .await
                .map_err(internal)?
                .map(|r| crate::graphql::training::Training {
                    replay: self.replay.clone(),
                    ..crate::graphql::training::Training::from(r)
                }),
        )
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LatestMetric {
    pub key: String,
    pub step: i64,
    pub value: MetricFloat,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    /// Substring of the job name.
    pub name_contains: Option<String>,
    pub tag: Option<String>,
}

/// One metric point. Keys use canonical names; known aliases (HF `loss`,
/// OpenAI `valid_loss`, …) are mapped on ingestion.
#[derive(InputObject, Clone, Debug)]
pub struct MetricPointInput {
    pub key: String,
    /// Optimizer steps completed (≥ 0).
    pub step: i64,
    pub value: MetricFloat,
    /// When it was measured; defaults to the time of the call.
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LogMetricsResult {
    pub accepted: i32,
    /// True when this idempotency key had already been applied: nothing new was stored.
    pub deduplicated: bool,
    /// Log position of the batch.
    pub position: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct MetricSeries {
    pub key: String,
    /// Steps per bucket (1 when points come back as logged).
    pub bucket_width: i64,
    pub points: Vec<MetricBucket>,
}

/// A downsampled bucket. `min` and `max` keep spikes visible.
#[derive(SimpleObject, Clone, Debug)]
pub struct MetricBucket {
    /// First step in the bucket.
    pub step: i64,
    pub last_step: i64,
    pub count: i64,
    pub nan_count: i64,
    pub min: MetricFloat,
    pub max: MetricFloat,
    pub mean: MetricFloat,
    /// The value at `lastStep`.
    pub last: MetricFloat,
}

impl From<metrics::Bucket> for MetricBucket {
    fn from(b: metrics::Bucket) -> Self {
        let a = b.agg;
        MetricBucket {
            step: b.step,
            last_step: b.last_step,
            count: a.n,
            nan_count: a.nan_n,
            min: MetricFloat(a.min.unwrap_or(f64::NAN)),
            max: MetricFloat(a.max.unwrap_or(f64::NAN)),
            mean: MetricFloat(a.mean()),
            last: MetricFloat(a.last_value),
        }
    }
}

/// A raw event from the log: the audit trail.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditEvent {
    pub event_id: ID,
    pub position: String,
    pub stream_id: String,
    pub stream_version: String,
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: DateTime<Utc>,
    pub actor: Option<String>,
    pub payload: async_graphql::Json<serde_json::Value>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Me {
    pub project_id: ID,
    pub project: String,
    pub key_id: ID,
    pub scope: String,
}

/// Points pushed by the `jobMetrics` subscription.
#[derive(SimpleObject, Clone, Debug)]
pub struct MetricPointBatch {
    pub job_id: ID,
    pub position: String,
    pub points: Vec<MetricPointOut>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct MetricPointOut {
    pub key: String,
    pub step: i64,
    pub value: MetricFloat,
    pub timestamp_ms: i64,
}

/// One problem with a training config (`specs/training-config.md` §4).
#[derive(SimpleObject)]
pub struct ConfigIssue {
    /// Dotted path, `[i]` for list items.
    pub path: String,
    /// Stable rule code: `out_of_range`, `invalid_enum`, `unsupported_by_trainer`, …
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    pub message: String,
    pub value: Option<async_graphql::Json<serde_json::Value>>,
    pub constraint: Option<async_graphql::Json<serde_json::Value>>,
    pub fields: Vec<String>,
}

impl From<ftl_domain::training_config::Issue> for ConfigIssue {
    fn from(i: ftl_domain::training_config::Issue) -> Self {
        Self {
            path: i.path,
            code: i.code.to_string(),
            severity: match i.severity {
                ftl_domain::training_config::Severity::Error => "error".into(),
                ftl_domain::training_config::Severity::Warning => "warning".into(),
            },
            message: i.message,
            value: i.value.map(async_graphql::Json),
            constraint: i.constraint.map(async_graphql::Json),
            fields: i.fields,
        }
    }
}

/// Estimates of a validated config (absent where the inputs are unknown).
#[derive(SimpleObject)]
pub struct ConfigEstimates {
    pub total_steps: Option<u64>,
    pub tokens: Option<u64>,
    /// Peak training memory, GiB.
    pub vram_gb: Option<f64>,
    pub duration_s: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// The result of validating a training config: nothing is written.
#[derive(SimpleObject)]
pub struct TrainingConfigValidation {
    pub valid: bool,
    /// Errors, sorted by path then code.
    pub issues: Vec<ConfigIssue>,
    pub warnings: Vec<ConfigIssue>,
    /// Legacy names mapped, every default filled, keys sorted.
    pub normalized_config: async_graphql::Json<serde_json::Value>,
    /// SHA-256 of the normalized config's canonical JSON.
    pub config_hash: String,
    pub estimates: ConfigEstimates,
}

impl From<ftl_domain::training_config::Validation> for TrainingConfigValidation {
    fn from(v: ftl_domain::training_config::Validation) -> Self {
        Self {
            valid: v.valid,
            issues: v.issues.into_iter().map(ConfigIssue::from).collect(),
            warnings: v.warnings.into_iter().map(ConfigIssue::from).collect(),
            normalized_config: async_graphql::Json(v.normalized_config),
            config_hash: v.config_hash,
            estimates: ConfigEstimates {
                total_steps: v.estimates.total_steps,
                tokens: v.estimates.tokens,
                vram_gb: v.estimates.vram_gb,
                duration_s: v.estimates.duration_s,
                cost_usd: v.estimates.cost_usd,
            },
        }
    }
}

/// A read model of the log (a projection): how far it has applied it, and
/// the rebuild beside it while one runs.
#[derive(SimpleObject)]
pub struct ReadModel {
    pub name: String,
    /// The generation serving reads.
    pub generation: i64,
    /// The log position it has applied (a string: positions are 64-bit).
    pub position: String,
    /// The log's head position.
    pub head: String,
    /// Events it has yet to apply.
    pub lag: String,
    /// Set while its tables changed shape and the next generation is being
    /// built beside this one (reads are of the old shape until the switch).
    pub rebuilding: Option<ReadModelRebuild>,
}

/// A rebuild's progress.
#[derive(SimpleObject)]
pub struct ReadModelRebuild {
    /// The generation being built.
    pub generation: i64,
    /// The log position it has applied.
    pub position: String,
    /// Its share of the log applied, 0 to 1.
    pub progress: f64,
    /// When it began; null while it waits for its turn.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ftl_projections::ProjectionStatus> for ReadModel {
    fn from(s: ftl_projections::ProjectionStatus) -> Self {
        let head = s.head;
        Self {
            lag: s.lag().to_string(),
            name: s.name,
            generation: s.generation,
            position: s.position.to_string(),
            head: head.to_string(),
            rebuilding: s.rebuilding.map(|r| ReadModelRebuild {
                generation: r.generation,
                position: r.position.to_string(),
                progress: if head == 0 {
                    1.0
                } else {
                    (r.position as f64 / head as f64).min(1.0)
                },
                started_at: r.started_at,
            }),
        }
    }
}
