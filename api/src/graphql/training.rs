//! Managed training over GraphQL: launch (validated against the dataset),
//! pause/resume with a new budget, the job's spend, progress, checkpoints
//! and logs, errors grouped by fingerprint, datasets, models, generation and
//! the GPU/price catalog.

use super::errors::{Code, domain_error, gql_error, internal};
use super::mutation::{create, keyed, transition};
use super::query::{owned_job, parse_id};
use super::types::Job;
use super::{caller, state};
use async_graphql::{
    ComplexObject, Context, ErrorExtensions, ID, InputObject, Object, SimpleObject,
    Subscription as GqlSubscription,
};
use chrono::{DateTime, TimeZone, Utc};
use ftl_domain::DomainEvent;
use ftl_domain::ids::{JobId, derive_entity_id};
use ftl_domain::job::JobCommand;
use ftl_domain::job::managed::{BudgetChange, DatasetRef, JobValidated, PauseReason};
use ftl_domain::limits::MAX_CONFIG_BYTES;
use ftl_domain::project::Scope;
use ftl_domain::training_config::{Context as ValidationContext, validate};
use ftl_effects::training::storage;
use ftl_projections::views::{metrics, training};
use futures::stream::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

/// Longest prompt `generate` takes, and most tokens it produces.
const MAX_PROMPT_BYTES: usize = 32 * 1024;
const MAX_GENERATE_TOKENS: i32 = 2048;

fn limit(message: String) -> async_graphql::Error {
    gql_error(Code::LimitExceeded, message)
}

fn page(first: i32, max: i64) -> async_graphql::Result<i64> {
    if first < 1 || i64::from(first) > max {
        return Err(limit(format!("first must be between 1 and {max}")));
    }
    Ok(i64::from(first))
}

// ---- types ---------------------------------------------------------------

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

async fn spend(
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

fn parse_log_cursor(after: Option<&str>) -> async_graphql::Result<Option<(i64, i64)>> {
    after
        .map(|a| {
            a.split_once(':')
                .and_then(|(p, i)| Some((p.parse().ok()?, i.parse().ok()?)))
                .ok_or_else(|| gql_error(Code::InvalidInput, "malformed log cursor"))
        })
        .transpose()
}

fn parse_level(level: Option<&str>) -> async_graphql::Result<Option<i64>> {
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
pub struct Dataset {
    pub id: ID,
    pub name: String,
    pub uri: String,
    pub size: i64,
    pub sha256: String,
    /// `text`, `supervised` or `preference`.
    pub kind: String,
    pub examples: i64,
    pub created_at: DateTime<Utc>,
}

impl From<training::DatasetRow> for Dataset {
    fn from(r: training::DatasetRow) -> Self {
        Dataset {
            id: ID(r.dataset_id.to_string()),
            name: r.name,
            uri: r.uri,
            size: r.size,
            sha256: r.sha256,
            kind: r.kind,
            examples: r.examples,
            created_at: r.created_at,
        }
    }
}

/// A model of the project: trained here (a checkpoint with its lineage) or
/// an external endpoint. Its API key is never returned, only whether it has one.
#[derive(SimpleObject, Clone, Debug)]
pub struct Model {
    pub id: ID,
    pub name: String,
    /// `local` (trained here) or `external`.
    pub kind: String,
    /// `local`, `openai` (any OpenAI-compatible server) or `anthropic`.
    pub provider: String,
    pub job_id: Option<ID>,
    pub checkpoint_step: Option<i64>,
    /// What the job started from (`model.name`).
    pub base_model: Option<String>,
    pub dataset_digest: Option<String>,
    pub architecture: Option<async_graphql::Json<serde_json::Value>>,
    /// The endpoint of an external model.
    pub base_url: Option<String>,
    /// The provider's name for an external model.
    pub remote_model: Option<String>,
    pub has_api_key: bool,
    pub capabilities: ModelCapabilities,
    pub price: Option<ModelPrice>,
    pub created_at: DateTime<Utc>,
}

/// Badges for the model picker.
#[derive(SimpleObject, Clone, Debug)]
pub struct ModelCapabilities {
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
    pub json_mode: bool,
    /// `declared` (given at registration) or `default` (the provider's usual set).
    pub source: String,
}

/// USD per million tokens.
#[derive(SimpleObject, Clone, Debug)]
pub struct ModelPrice {
    #[graphql(name = "inputUsdPerMTok")]
    pub input_usd_per_mtok: f64,
    #[graphql(name = "outputUsdPerMTok")]
    pub output_usd_per_mtok: f64,
}

impl From<training::ModelRow> for Model {
    fn from(r: training::ModelRow) -> Self {
        let caps = ModelCapabilities {
            streaming: r.capabilities.streaming,
            tools: r.capabilities.tools,
            vision: r.capabilities.vision,
            json_mode: r.capabilities.json_mode,
            source: r.capabilities_source.clone(),
        };
        let price = r.price.map(|(i, o)| ModelPrice {
            input_usd_per_mtok: i,
            output_usd_per_mtok: o,
        });
        let mut m = Model {
            id: ID(r.model_id.to_string()),
            name: r.name,
            kind: "local".into(),
            provider: "local".into(),
            job_id: None,
            checkpoint_step: None,
            base_model: None,
            dataset_digest: None,
            architecture: None,
            base_url: None,
            remote_model: None,
            has_api_key: false,
            capabilities: caps,
            price,
            created_at: r.created_at,
        };
        match r.source {
            training::ModelSource::Local {
                job_id,
                checkpoint_step,
                base_model,
                dataset_digest,
                architecture,
                ..
            } => {
                m.job_id = Some(ID(job_id.to_string()));
                m.checkpoint_step = Some(checkpoint_step);
                m.base_model = Some(base_model);
                m.dataset_digest = Some(dataset_digest);
                m.architecture = Some(async_graphql::Json(architecture));
            }
            training::ModelSource::External {
                provider,
                base_url,
                remote_model,
                api_key_sealed,
            } => {
                m.kind = "external".into();
                m.provider = provider;
                m.base_url = Some(base_url);
                m.remote_model = Some(remote_model);
                m.has_api_key = api_key_sealed.is_some();
            }
        }
        m
    }
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

// ---- queries -------------------------------------------------------------

#[derive(Default)]
pub struct TrainingQuery;

#[Object]
impl TrainingQuery {
    /// A job's log lines in order (the terminal monitor): at `level` or
    /// above, containing `search`, after the cursor `after`.
    async fn job_logs(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        level: Option<String>,
        search: Option<String>,
        after: Option<String>,
        #[graphql(default = 200)] first: i32,
    ) -> async_graphql::Result<Vec<LogLine>> {
        let id = parse_id(&job_id, "jobId")?;
        let st = state(ctx)?;
        let n = page(first, st.config.limits.page_size_max.max(1000))?;
        if search.as_ref().is_some_and(|s| s.len() > 1024) {
            return Err(limit("search: at most 1024 bytes".into()));
        }
        owned_job(ctx, id, Scope::Read).await?;
        let filter = training::LogFilter {
            min_level: parse_level(level.as_deref())?,
            search,
            after: parse_log_cursor(after.as_deref())?,
        };
        Ok(training::logs(&st.effects.db, id, &filter, n)
            .await
            .map_err(internal)?
            .into_iter()
            .map(LogLine::from)
            .collect())
    }

    /// Errors that failed this project's jobs, grouped by fingerprint, with
    /// counts, first/last seen and the jobs affected.
    async fn errors(
        &self,
        ctx: &Context<'_>,
        filter: Option<ErrorFilter>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<ErrorGroup>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let n = page(first, st.config.limits.page_size_max)?;
        let f = filter.unwrap_or_default();
        let groups = training::errors(
            &st.effects.db,
            c.project_id.0,
            f.fingerprint.as_deref(),
            f.search.as_deref(),
            n as usize,
        )
        .await
        .map_err(internal)?;
        Ok(groups
            .into_iter()
            .map(|g| ErrorGroup {
                frames: serde_json::from_value::<Vec<ftl_domain::job::managed::Frame>>(g.frames)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| Frame {
                        function: f.function,
                        file: f.file,
                        line: f.line.map(i64::from),
                    })
                    .collect(),
                fingerprint: g.fingerprint,
                kind: g.kind,
                message: g.message,
                count: g.count,
                first_seen: g.first_seen,
                last_seen: g.last_seen,
                job_ids: g.job_ids.into_iter().map(|j| ID(j.to_string())).collect(),
            })
            .collect())
    }

    /// Spend of the whole project over time.
    async fn project_spend(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3600)] bucket_seconds: i32,
    ) -> async_graphql::Result<Vec<SpendPoint>> {
        let c = caller(ctx, Scope::Read)?;
        spend(
            &state(ctx)?.effects.db,
            c.project_id.0,
            None,
            bucket_seconds,
        )
        .await
    }

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

    /// GPUs and prices for the GPU selection screen, cheapest first.
    async fn gpu_catalog(
        &self,
        ctx: &Context<'_>,
        filter: Option<GpuFilter>,
    ) -> async_graphql::Result<Vec<GpuOffer>> {
        caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let f = filter.unwrap_or_default();
        Ok(st
            .effects
            .gpu_catalog
            .filter(
                f.provider.as_deref(),
                f.min_vram_gb.map(|v| v.max(0) as u32),
                f.max_usd_per_hour,
            )
            .into_iter()
            .map(|o| GpuOffer {
                provider: o.provider,
                sku: o.sku,
                name: o.name,
                vram_gb: o.vram_gb as i32,
                usd_per_hour: o.usd_per_hour,
            })
            .collect())
    }

    /// Text from a model trained here. `chat`: the prompt is a user message
    /// and the reply is the assistant's; otherwise plain continuation.
    #[allow(clippy::too_many_arguments)]
    async fn generate(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        prompt: String,
        #[graphql(default = true)] chat: bool,
        #[graphql(default = 128)] max_tokens: i32,
        #[graphql(default = 0.0)] temperature: f64,
        #[graphql(default = 1.0)] top_p: f64,
        #[graphql(default)] stop: Vec<String>,
        #[graphql(default = 0)] seed: i64,
    ) -> async_graphql::Result<Generation> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let id = parse_id(&model_id, "modelId")?;
        if prompt.len() > MAX_PROMPT_BYTES {
            return Err(limit(format!("prompt: at most {MAX_PROMPT_BYTES} bytes")));
        }
        if !(1..=MAX_GENERATE_TOKENS).contains(&max_tokens) {
            return Err(limit(format!(
                "maxTokens must be between 1 and {MAX_GENERATE_TOKENS}"
            )));
        }
        let params = ftl_trainer::GenerateParams {
            max_tokens: max_tokens as usize,
            temperature,
            top_p,
            stop,
            seed: seed as u64,
        };
        // The chat portal's rules: temperature 0 to 2, topP in (0, 1].
        ftl_effects::models::check_sampling(&params).map_err(super::errors::refusal)?;
        let prompt = if chat {
            ftl_effects::models::local::Prompt::Chat(vec![(
                ftl_trainer::tokenizer::Role::User,
                prompt,
            )])
        } else {
            ftl_effects::models::local::Prompt::Text(prompt)
        };
        let out =
            ftl_effects::models::local::generate(&st.effects, c.project_id, id, prompt, params)
                .await
                .map_err(
                    |e| match e.downcast_ref::<ftl_effects::models::local::NotLocal>() {
                        Some(n) => gql_error(Code::InvalidInput, format!("{n}: use chat")),
                        None => internal(e),
                    },
                )?
                .ok_or_else(|| gql_error(Code::NotFound, "model not found"))?;
        Ok(Generation {
            text: out.text,
            prompt_tokens: out.prompt_tokens as i32,
            completion_tokens: out.completion_tokens as i32,
            finish_reason: out.finish_reason.as_str().into(),
        })
    }
}

// ---- mutations -----------------------------------------------------------

#[derive(Default)]
pub struct TrainingMutation;

/// `CONFIG_INVALID` with every issue (path, code, message) and the warnings.
fn config_invalid(v: &ftl_domain::training_config::Validation) -> async_graphql::Error {
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

/// `DATASET_INVALID` with every problem by line number.
fn dataset_invalid(issues: &[ftl_trainer::dataset::DataIssue]) -> async_graphql::Error {
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
        let dataset = training::dataset(&st.effects.db, c.project_id.0, dataset_uuid)
            .await
            .map_err(internal)?
            .ok_or_else(|| gql_error(Code::NotFound, "dataset not found"))?;
        // A model trained here may be the starting point, by id.
        let model_name = config
            .0
            .pointer("/model/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut extra_models = vec![];
        let mut base_model_id = None;
        let mut architecture = ftl_trainer::job::preset(&model_name);
        if let Ok(model_uuid) = Uuid::parse_str(&model_name)
            && let Some(m) = training::model(&st.effects.db, c.project_id.0, model_uuid)
                .await
                .map_err(internal)?
        {
            let (_, _, _, arch) = m.local().ok_or_else(|| {
                gql_error(
                    Code::InvalidInput,
                    "model.name names an external model: only a model trained here can be fine-tuned further",
                )
            })?;
            let arch: ftl_trainer::ModelConfig =
                serde_json::from_value(arch.clone()).map_err(internal)?;
            extra_models.push((model_name.clone(), arch));
            base_model_id = Some(model_uuid);
            architecture = Some(arch);
        }
        let context = architecture.map(|a| a.context).unwrap_or(1024);
        let bytes = storage::read_dataset(&st.effects, &dataset.uri)
            .await
            .map_err(internal)?;
        let raw_text = storage::is_raw_text(&dataset.name);
        let parsed = tokio::task::spawn_blocking(move || {
            ftl_trainer::Dataset::parse(&bytes, raw_text, context)
        })
        .await
        .map_err(internal)?;
        let parsed = parsed.map_err(|issues| dataset_invalid(&issues))?;
        let (gpu_types, rate) = resources(st, &config.0);
        let vctx = ValidationContext {
            dataset: Some(ftl_trainer::job::dataset_facts(&parsed, raw_text)),
            trainer: ftl_trainer::job::support(
                &extra_models,
                ftl_effects::training::local::total_memory_bytes(),
            ),
            gpu_types,
            rate_usd_per_hour: rate,
            ..Default::default()
        };
        let v = validate(&config.0, &vctx);
        if !v.valid {
            return Err(config_invalid(&v));
        }
        let k = keyed(ctx, c, "createTrainingJob", "", idempotency_key.as_deref())?;
        let job = JobId(derive_entity_id(k.id, "job"));
        let validated = JobValidated {
            job_id: job,
            normalized_config: v.normalized_config.clone(),
            config_hash: v.config_hash.clone(),
            warnings: serde_json::to_value(&v.warnings).map_err(internal)?,
            estimates: serde_json::to_value(&v.estimates).map_err(internal)?,
            dataset: DatasetRef {
                dataset_id: dataset_uuid,
                digest: parsed.digest.clone(),
                kind: dataset.kind.clone(),
                examples: parsed.examples.len() as u64,
            },
            base_model_id,
            rate_usd_per_hour: rate.unwrap_or(0.0),
        };
        let cmd = JobCommand::CreateManaged {
            job_id: job,
            project_id: c.project_id,
            name,
            tags: tags.unwrap_or_default(),
            config: config.0,
            validated: Box::new(validated),
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
        let model =
            ftl_effects::models::local::register(&st.effects, c.project_id, JobId(id), step, name)
                .await
                .map_err(|e| gql_error(Code::InvalidInput, e.to_string()))?;
        training::model(&st.effects.db, c.project_id.0, model.0)
            .await
            .map_err(internal)?
            .map(Model::from)
            .ok_or_else(|| gql_error(Code::Internal, "the model is not readable yet; retry"))
    }
}

// ---- subscriptions -------------------------------------------------------

#[derive(Default)]
pub struct TrainingSubscription;

#[GqlSubscription]
impl TrainingSubscription {
    /// New log lines of a job as they arrive (at `level` or above).
    async fn job_log_lines(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        level: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = LogLine>> {
        let id = parse_id(&job_id, "jobId")?;
        owned_job(ctx, id, Scope::Read).await?;
        let min = parse_level(level.as_deref())?.unwrap_or(0);
        let st = state(ctx)?.clone();
        Ok(BroadcastStream::new(st.effects.feed.subscribe())
            .filter_map(move |item| {
                let lines: Vec<LogLine> = match item {
                    Ok(d) => match &d.event {
                        DomainEvent::LogsAppended(l) if l.job_id.0 == id => l
                            .lines
                            .iter()
                            .enumerate()
                            .filter(|(_, line)| line.level as i64 >= min)
                            .map(|(i, line)| LogLine {
                                cursor: format!("{}:{i}", d.position),
                                timestamp: Utc
                                    .timestamp_millis_opt(line.timestamp_ms)
                                    .single()
                                    .unwrap_or_default(),
                                level: line.level.as_str().into(),
                                source: line.source.clone(),
                                message: line.message.clone(),
                            })
                            .collect(),
                        _ => vec![],
                    },
                    Err(_) => vec![],
                };
                async move { Some(futures::stream::iter(lines)) }
            })
            .flatten())
    }

    /// Budget alerts (50/80/100 % by default) of a job: those already
    /// crossed, then each as it is crossed. Read back from the read model
    /// (also after the change feed dropped events for a slow subscriber),
    /// so none is missed or repeated.
    async fn budget_alerts(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = BudgetAlert>> {
        let id = parse_id(&job_id, "jobId")?;
        owned_job(ctx, id, Scope::Read).await?;
        let st = state(ctx)?.clone();
        let last = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(-1));
        let changes = BroadcastStream::new(st.effects.feed.subscribe()).map(Some);
        // One read at subscription, then one per relevant event (or lag).
        Ok(futures::stream::once(async { None })
            .chain(changes)
            .filter_map(move |item| {
                let st = st.clone();
                let last = last.clone();
                async move {
                    let wait_for = match &item {
                        None => None,
                        Some(Err(_)) => None,
                        Some(Ok(d)) => match &d.event {
                            DomainEvent::Job(ftl_domain::job::JobEvent::Managed(
                                ftl_domain::job::ManagedEvent::BudgetThresholdCrossed(b),
                            )) if b.job_id.0 == id => Some(d.position),
                            _ => return None,
                        },
                    };
                    if let Some(position) = wait_for {
                        st.effects
                            .projections
                            .wait_for(position, st.ryw_timeout())
                            .await;
                    }
                    let alerts = training::budget_alerts(&st.effects.db, id).await.ok()?;
                    let seen = last.load(std::sync::atomic::Ordering::SeqCst);
                    let new: Vec<BudgetAlert> = alerts
                        .into_iter()
                        .filter(|a| a.position > seen)
                        .map(|a| {
                            last.fetch_max(a.position, std::sync::atomic::Ordering::SeqCst);
                            BudgetAlert {
                                percent: a.percent,
                                spent_usd: a.spent_usd,
                                max_cost_usd: a.max_cost_usd,
                                at: a.at,
                            }
                        })
                        .collect();
                    Some(futures::stream::iter(new))
                }
            })
            .flatten())
    }
}

/// What validation knows of the resources a config asks for: the GPU ids of
/// its provider (an unknown `resources.gpu_type` is an issue) and their price
/// per hour. `validateTrainingConfig` and `createTrainingJob` check alike.
pub(crate) fn resources(
    st: &crate::AppState,
    config: &serde_json::Value,
) -> (Option<Vec<String>>, Option<f64>) {
    let provider = config
        .pointer("/resources/provider")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("local");
    let gpu_type = config
        .pointer("/resources/gpu_type")
        .and_then(serde_json::Value::as_str);
    let gpu_count = config
        .pointer("/resources/gpu_count")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1);
    (
        Some(st.effects.gpu_catalog.skus(provider)),
        st.effects.gpu_catalog.rate(provider, gpu_type, gpu_count),
    )
}
