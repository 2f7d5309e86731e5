//! The project's datasets and models (trained here or served by another
//! API), with a model's lineage, capabilities and price.

use crate::json_text::JsonText;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use ftl_domain::registry::Capabilities;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DatasetRow {
    pub dataset_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub uri: String,
    pub size: i64,
    pub sha256: String,
    pub kind: String,
    pub examples: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn dataset(db: &Db, project: Uuid, id: Uuid) -> Result<Option<DatasetRow>, sqlx::Error> {
    let sql = "SELECT * FROM datasets WHERE dataset_id = $1 AND project_id = $2";
    crate::fetch!(db, fetch_optional, DatasetRow, sql, id, project)
}

pub async fn datasets(db: &Db, project: Uuid, limit: i64) -> Result<Vec<DatasetRow>, sqlx::Error> {
    let sql = "SELECT * FROM datasets WHERE project_id = $1 ORDER BY seq DESC LIMIT $2";
    crate::fetch!(db, fetch_all, DatasetRow, sql, project, limit)
}

/// What serves a model: its weights here, or another API.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A checkpoint trained here, with its lineage.
    Local {
        job_id: Uuid,
        checkpoint_step: i64,
        checkpoint_path: String,
        base_model: String,
        dataset_digest: String,
        architecture: serde_json::Value,
    },
    /// An OpenAI-compatible or Anthropic endpoint.
    External {
        provider: String,
        base_url: String,
        remote_model: String,
        /// Sealed; opened only to call the provider.
        api_key_sealed: Option<String>,
    },
}

/// Models trained here stream their answers; the rest they lack.
pub const LOCAL_CAPABILITIES: Capabilities = Capabilities {
    streaming: true,
    tools: false,
    vision: false,
    json_mode: false,
};

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub model_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub source: ModelSource,
    pub capabilities: Capabilities,
    /// `declared` or `default`.
    pub capabilities_source: String,
    /// USD per million input and output tokens, when priced.
    pub price: Option<(f64, f64)>,
    pub created_at: DateTime<Utc>,
}

impl ModelRow {
    /// The lineage of a model trained here.
    pub fn local(&self) -> Option<(Uuid, i64, &str, &serde_json::Value)> {
        match &self.source {
            ModelSource::Local {
                job_id,
                checkpoint_step,
                checkpoint_path,
                architecture,
                ..
            } => Some((*job_id, *checkpoint_step, checkpoint_path, architecture)),
            ModelSource::External { .. } => None,
        }
    }

    /// The cost of an exchange at this model's price, if it has one.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Option<f64> {
        self.price.map(|(input, output)| {
            (prompt_tokens as f64 * input + completion_tokens as f64 * output) / 1_000_000.0
        })
    }
}

/// The `models` table's columns as stored: the local ones are NULL for an
/// external model and the other way round.
#[derive(sqlx::FromRow)]
pub struct ModelColumns {
    model_id: Uuid,
    project_id: Uuid,
    name: String,
    kind: String,
    job_id: Option<Uuid>,
    checkpoint_step: Option<i64>,
    checkpoint_path: Option<String>,
    base_model: Option<String>,
    dataset_digest: Option<String>,
    architecture: Option<JsonText<serde_json::Value>>,
    provider: Option<String>,
    base_url: Option<String>,
    remote_model: Option<String>,
    api_key_sealed: Option<String>,
    #[sqlx(try_from = "JsonText<Capabilities>")]
    capabilities: Capabilities,
    capabilities_source: String,
    input_usd_per_mtok: Option<f64>,
    output_usd_per_mtok: Option<f64>,
    created_at: DateTime<Utc>,
}

impl From<ModelColumns> for ModelRow {
    fn from(c: ModelColumns) -> Self {
        let source = if c.kind == "local" {
            ModelSource::Local {
                job_id: c.job_id.unwrap_or_default(),
                checkpoint_step: c.checkpoint_step.unwrap_or(0),
                checkpoint_path: c.checkpoint_path.unwrap_or_default(),
                base_model: c.base_model.unwrap_or_default(),
                dataset_digest: c.dataset_digest.unwrap_or_default(),
                architecture: c.architecture.map(|a| a.0).unwrap_or_default(),
            }
        } else {
            ModelSource::External {
                provider: c.provider.unwrap_or_default(),
                base_url: c.base_url.unwrap_or_default(),
                remote_model: c.remote_model.unwrap_or_default(),
                api_key_sealed: c.api_key_sealed,
            }
        };
        ModelRow {
            model_id: c.model_id,
            project_id: c.project_id,
            name: c.name,
            source,
            capabilities: c.capabilities,
            capabilities_source: c.capabilities_source,
            price: c.input_usd_per_mtok.zip(c.output_usd_per_mtok),
            created_at: c.created_at,
        }
    }
}

/// One mapping for both pools: the stored columns, then the model.
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for ModelRow
where
    ModelColumns: sqlx::FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        ModelColumns::from_row(row).map(Self::from)
    }
}

pub(super) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub async fn model(db: &Db, project: Uuid, id: Uuid) -> Result<Option<ModelRow>, sqlx::Error> {
    let sql = "SELECT * FROM models WHERE model_id = $1 AND project_id = $2";
    crate::fetch!(db, fetch_optional, ModelRow, sql, id, project)
}

pub async fn models(
    db: &Db,
    project: Uuid,
    job: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ModelRow>, sqlx::Error> {
    let sql = "SELECT * FROM models WHERE project_id = $1 AND ($2 IS NULL OR job_id = $2)
               ORDER BY seq DESC LIMIT $3";
    crate::fetch!(db, fetch_all, ModelRow, sql, project, job, limit)
}
