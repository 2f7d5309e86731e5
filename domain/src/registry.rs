//! Datasets and models: registered once, immutable, each in its own stream.
//! A dataset is a file (uploaded, or read in place from a bucket URL); a
//! model is a checkpoint with its lineage.

use crate::ids::{DatasetId, JobId, ModelId, ProjectId};
use serde::{Deserialize, Serialize};

/// `dataset.registered` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRegistered {
    pub dataset_id: DatasetId,
    pub project_id: ProjectId,
    pub name: String,
    /// Where the bytes are: `artifacts:<path>` for uploads, or a bucket URL.
    pub uri: String,
    pub size: u64,
    pub sha256: String,
    /// `text`, `supervised` or `preference`.
    pub kind: String,
    pub examples: u64,
}

/// `model.registered` v1: a checkpoint that `generate` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRegistered {
    pub model_id: ModelId,
    pub project_id: ProjectId,
    pub name: String,
    pub job_id: JobId,
    pub checkpoint_step: u64,
    /// Object-store folder of the model's weights (`model.bpk`, `meta.json`:
    /// a copy of the checkpoint's, kept whatever the job prunes).
    pub checkpoint_path: String,
    /// What the job started from (`model.name` of its config).
    pub base_model: String,
    pub dataset_digest: String,
    /// Layers, width, heads, context of the network.
    pub architecture: serde_json::Value,
}

/// What a model can do, as badges for the model picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
    pub json_mode: bool,
}

/// The providers an external model can be served by.
pub const PROVIDERS: &[&str] = &["openai", "anthropic"];

/// `model.external_registered` v1: a model served by another API — any
/// OpenAI-compatible server (OpenAI, vLLM, Ollama, …) or Anthropic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalModelRegistered {
    pub model_id: ModelId,
    pub project_id: ProjectId,
    pub name: String,
    /// One of [`PROVIDERS`].
    pub provider: String,
    /// The API root, e.g. `https://api.openai.com/v1`, `http://gpu-box:8000/v1`,
    /// `https://api.anthropic.com`.
    pub base_url: String,
    /// The provider's name for the model (`gpt-4o-mini`, `llama3.1:8b`, …).
    pub remote_model: String,
    /// The API key sealed with the server's encryption key; never plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_sealed: Option<String>,
    pub capabilities: Capabilities,
    /// `declared` (given at registration) or `default` (the provider's usual set).
    pub capabilities_source: String,
}

impl ExternalModelRegistered {
    /// What the sealed key is bound to: it opens for this model only.
    pub fn secret_context(project: ProjectId, model: ModelId) -> String {
        format!("ftl/model-api-key/{}/{}", project.0, model.0)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !PROVIDERS.contains(&self.provider.as_str()) {
            return Err(format!("provider must be one of {}", PROVIDERS.join(", ")));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("name: 1 to 200 bytes".into());
        }
        if self.remote_model.trim().is_empty() || self.remote_model.len() > 200 {
            return Err("remoteModel: 1 to 200 bytes".into());
        }
        if self.base_url.len() > 2048 {
            return Err("baseUrl: at most 2048 bytes".into());
        }
        Ok(())
    }
}

/// `model.price_set` v1: the model's price from now on (any model: an
/// external one's list price, or what serving a local one costs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPriceSet {
    pub model_id: ModelId,
    pub project_id: ProjectId,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
}

impl ModelPriceSet {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("inputUsdPerMTok", self.input_usd_per_mtok),
            ("outputUsdPerMTok", self.output_usd_per_mtok),
        ] {
            if !(v.is_finite() && (0.0..=1_000_000.0).contains(&v)) {
                return Err(format!("{name} must be between 0 and 1000000"));
            }
        }
        Ok(())
    }

    /// Cost of one exchange in USD.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        (prompt_tokens as f64 * self.input_usd_per_mtok
            + completion_tokens as f64 * self.output_usd_per_mtok)
            / 1_000_000.0
    }
}
