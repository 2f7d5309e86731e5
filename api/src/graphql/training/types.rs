//! The GraphQL types of managed training: budgets, spend, checkpoints,
//! progress, logs, errors, datasets, models, GPU offers, generations.

use super::*;

/// Budget of a job: caps on cost and/or wall time while it holds a machine.
#[derive(SimpleObject, Clone, Debug)]
pub struct Budget {
    pub max_cost_usd: Option<f64>,
    pub max_runtime_minutes: Option<i64>,
}

/// A new budget for `resumeJob`: both caps are replaced (null: no cap).
#[derive(InputObject, Clone, Debug)]
pub struct BudgetInput {
    pub max_cost_usd: Option<f64>,
    pub max_runtime_minutes: Option<i32>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct BudgetAlert {
    pub percent: i64,
    pub spent_usd: f64,
    pub max_cost_usd: f64,
    pub at: DateTime<Utc>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SpendPoint {
    /// Start of the bucket.
    pub at: DateTime<Utc>,
    pub usd: f64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CheckpointFile {
    pub name: String,
    pub size: i64,
    pub sha256: String,
    /// `GET` with the API key: the bytes, with `Repr-Digest`.
    pub download_path: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Checkpoint {
    pub step: i64,
    pub epoch: f64,
    pub files: Vec<CheckpointFile>,
    pub eval_loss: Option<f64>,
    pub train_loss: Option<f64>,
    /// `interval`, `pause`, `stop` or `final`.
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// Removed by keep-last-N (listed only with `includePruned`).
    pub pruned: bool,
}

impl From<training::CheckpointRow> for Checkpoint {
    fn from(r: training::CheckpointRow) -> Self {
        let files = r
            .files
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| {
                        let name = f["name"].as_str().unwrap_or_default().to_string();
                        CheckpointFile {
                            download_path: format!(
                                "/api/v1/jobs/{}/checkpoints/{}/files/{name}",
                                r.job_id, r.step
                            ),
                            size: f["size"].as_i64().unwrap_or(0),
                            sha256: f["sha256"].as_str().unwrap_or_default().to_string(),
                            name,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Checkpoint {
            step: r.step,
            epoch: r.epoch,
            files,
            eval_loss: r.eval_loss,
            train_loss: r.train_loss,
            reason: r.reason,
            created_at: r.created_at,
            pruned: r.pruned,
        }
    }
}

/// What a managed job costs, how far it is, and what it saved.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Training {
    pub dataset_id: ID,
    pub dataset_digest: String,
    pub config_hash: String,
    pub warnings: async_graphql::Json<serde_json::Value>,
    pub estimates: async_graphql::Json<serde_json::Value>,
    pub rate_usd_per_hour: f64,
    pub spent_usd: f64,
    pub billable_seconds: f64,
    pub budget: Budget,
    pub total_steps: Option<i64>,
    pub last_checkpoint_step: Option<i64>,
    pub attempt: i64,
    pub recovery_count: i64,
    pub worker_id: Option<String>,
    pub pause_reason: Option<String>,
    /// Set when a pause could not save (e.g. `checkpoint_abandoned_for_budget`).
    pub paused_warning: Option<String>,
    #[graphql(skip)]
    pub job: Uuid,
    /// The read models of an "as of" read of its job (null: the live ones).
    #[graphql(skip)]
    pub replay: Option<ftl_commands::Db>,
}

#[ComplexObject]
impl Training {
    /// The last step reported, fraction done, and time left at the latest
    /// throughput.
    async fn progress(&self, ctx: &Context<'_>) -> async_graphql::Result<Progress> {
        let st = state(ctx)?;
        let latest = metrics::latest(self.db(&st.effects.db), self.job)
            .await
            .map_err(internal)?;
        let step = latest
            .iter()
            .filter(|l| !l.key.starts_with("system/"))
            .map(|l| l.step)
            .max()
            .unwrap_or(0);
        let rate = latest
            .iter()
            .find(|l| l.key == "steps_per_second")
            .map(|l| l.value)
            .filter(|v| v.is_finite() && *v > 0.0);
        let fraction = self
            .total_steps
            .filter(|t| *t > 0)
            .map(|t| (step as f64 / t as f64).min(1.0));
        let eta = match (self.total_steps, rate) {
            (Some(t), Some(r)) => Some(((t - step).max(0) as f64) / r),
            _ => None,
        };
        Ok(Progress {
            step,
            fraction,
            eta_seconds: eta,
            projected_total_usd: eta.map(|e| self.spent_usd + e * self.rate_usd_per_hour / 3600.0),
        })
    }

    async fn checkpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_pruned: bool,
    ) -> async_graphql::Result<Vec<Checkpoint>> {
        let st = state(ctx)?;
        Ok(
            training::checkpoints(self.db(&st.effects.db), self.job, include_pruned)
                .await
                .map_err(internal)?
                .into_iter()
                .map(Checkpoint::from)
                .collect(),
        )
    }

    async fn budget_alerts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BudgetAlert>> {
        let st = state(ctx)?;
        Ok(training::budget_alerts(self.db(&st.effects.db), self.job)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|a| BudgetAlert {
                percent: a.percent,
                spent_usd: a.spent_usd,
                max_cost_usd: a.max_cost_usd,
                at: a.at,
            })
            .collect())
    }

    /// Spend over time in buckets of `bucketSeconds`.
    async fn spend(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 60)] bucket_seconds: i32,
    ) -> async_graphql::Result<Vec<SpendPoint>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        spend(
            self.db(&st.effects.db),
            c.project_id.0,
            Some(self.job),
            bucket_seconds,
        )
        .await
    }
}

impl Training {
    fn db<'a>(&'a self, live: &'a ftl_commands::Db) -> &'a ftl_commands::Db {
        self.replay.as_ref().unwrap_or(live)
    }
}

pub(super) async fn spend(
    db: &ftl_commands::Db,
    project: Uuid,
    job: Option<Uuid>,
    bucket_seconds: i32,
) -> async_graphql::Result<Vec<SpendPoint>> {
    if bucket_seconds < 1 {
        return Err(gql_error(
            Code::InvalidInput,
            "bucketSeconds must be at least 1",
        ));
    }
    Ok(
        training::spend_over_time(db, project, job, i64::from(bucket_seconds) * 1000)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(ms, usd)| SpendPoint {
                at: Utc.timestamp_millis_opt(ms).single().unwrap_or_default(),
                usd,
            })
            .collect(),
    )
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Progress {
    pub step: i64,
    /// Steps done over total steps (when the total is known).
    pub fraction: Option<f64>,
    pub eta_seconds: Option<f64>,
    /// Spend so far plus the rest at the current rate.
    pub projected_total_usd: Option<f64>,
}

impl From<training::TrainingRow> for Training {
    fn from(r: training::TrainingRow) -> Self {
        Training {
            dataset_id: ID(r.dataset_id.to_string()),
            dataset_digest: r.dataset_digest,
            config_hash: r.config_hash,
            warnings: async_graphql::Json(r.warnings),
            estimates: async_graphql::Json(r.estimates),
            rate_usd_per_hour: r.rate_usd_per_hour,
            spent_usd: r.spent_usd,
            billable_seconds: r.billable_ms as f64 / 1000.0,
            budget: Budget {
                max_cost_usd: r.max_cost_usd,
                max_runtime_minutes: r.max_runtime_minutes,
            },
            total_steps: r.total_steps,
            last_checkpoint_step: r.last_checkpoint,
            attempt: r.attempt,
            recovery_count: r.recovery_count,
            worker_id: r.worker_id,
            pause_reason: r.pause_reason,
            paused_warning: r.paused_warning,
            job: r.job_id,
            replay: None,
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LogLine {
    /// Pass as `after` to read on from here.
    pub cursor: String,
    pub timestamp: DateTime<Utc>,
    pub level: String,
    /// `trainer`, `stdout` or `stderr`.
    pub source: String,
    pub message: String,
}

impl From<training::LogRow> for LogLine {
    fn from(r: training::LogRow) -> Self {
        LogLine {
            cursor: format!("{}:{}", r.position, r.idx),
            timestamp: Utc
                .timestamp_millis_opt(r.ts_ms)
                .single()
                .unwrap_or_default(),
            level: r.level,
            source: r.source,
            message: r.message,
        }
    }
}

pub(super) fn parse_log_cursor(after: Option<&str>) -> async_graphql::Result<Option<(i64, i64)>> {
    after
        .map(|a| {
            a.split_once(':')
                .and_then(|(p, i)| Some((p.parse().ok()?, i.parse().ok()?)))
                .ok_or_else(|| gql_error(Code::InvalidInput, "malformed log cursor"))
        })
        .transpose()
}

pub(super) fn parse_level(level: Option<&str>) -> async_graphql::Result<Option<i64>> {
    level
        .map(|l| {
            ftl_domain::job::logs::LogLevel::parse(&l.to_ascii_lowercase())
                .map(|l| l as i64)
                .ok_or_else(|| {
                    gql_error(
                        Code::InvalidInput,
                        "level is one of debug, info, warn, error",
                    )
                })
        })
        .transpose()
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Frame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<i64>,
}

/// Failures with the same fingerprint across jobs.
#[derive(SimpleObject, Clone, Debug)]
pub struct ErrorGroup {
    pub fingerprint: String,
    /// `error` or `panic`.
    pub kind: String,
    /// The latest occurrence's message.
    pub message: String,
    pub frames: Vec<Frame>,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub job_ids: Vec<ID>,
}

#[derive(InputObject, Default)]
pub struct ErrorFilter {
    pub fingerprint: Option<String>,
    /// A substring of the message (case-insensitive).
    pub search: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct GpuOffer {
    pub provider: String,
    pub sku: String,
    pub name: String,
    pub vram_gb: i32,
    pub usd_per_hour: f64,
}

#[derive(InputObject, Default)]
pub struct GpuFilter {
    pub provider: Option<String>,
    pub min_vram_gb: Option<i32>,
    pub max_usd_per_hour: Option<f64>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    /// `stop` or `length`.
    pub finish_reason: String,
}
