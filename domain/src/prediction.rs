//! Predictions: every exchange with a model (chat portal, OpenAI-compatible
//! API, comparisons) recorded once, immutable, in its own stream — the raw
//! material of feedback, comparisons and judgments.

use crate::ids::{PredictionId, ProjectId};
use serde::{Deserialize, Serialize};

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
}

/// `prediction.recorded` v2 (v1 had no version, usage source or cost).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecorded {
    pub prediction_id: PredictionId,
    pub project_id: ProjectId,
    pub model_id: uuid::Uuid,
    /// The model's name when it answered.
    pub model_name: String,
    pub messages: Vec<ChatMessage>,
    pub response: String,
    /// `stop` or `length`.
    pub finish_reason: String,
    /// Sampling parameters as sent (max tokens, temperature, top_p, stop, seed).
    pub params: serde_json::Value,
    /// Request received → last token (ms).
    pub latency_ms: f64,
    /// Request received → first token (ms); absent when nothing was produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// What answered: `<job>@<step>` for a model trained here, the
    /// provider's reported model for an external one.
    pub model_version: String,
    /// Counted by the model's own tokenizer (the provider's usage for external models).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Where the counts come from: `tokenizer`, `provider`, or `none` (a
    /// provider that reported no usage: counts are 0, never guessed).
    pub usage_source: String,
    /// From the model's price table when it answered; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// `openai_api` or `graphql`.
    pub source: String,
    /// When the request arrived (ms since the epoch).
    pub started_ms: i64,
}
