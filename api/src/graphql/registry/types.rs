//! A dataset and a model as GraphQL shows them, and a dataset's refusal.

use async_graphql::ID;
use async_graphql::{ErrorExtensions, SimpleObject};
use chrono::{DateTime, Utc};
use ftl_projections::views::training;

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

/// `DATASET_INVALID` with every problem by line number.
pub(crate) fn dataset_invalid(issues: &[ftl_trainer::dataset::DataIssue]) -> async_graphql::Error {
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
