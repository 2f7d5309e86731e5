//! Chat's inputs and results: messages, sampling parameters, external
//! models and their capabilities, a chat's outcome and stream chunks, usage
//! buckets.

use async_graphql::{ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(InputObject, Clone, Debug)]
pub struct ChatMessageInput {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
}

/// Sampling parameters (defaults: 256 tokens, temperature 1, top-p 1).
#[derive(InputObject, Clone, Debug, Default)]
pub struct ChatParams {
    pub max_tokens: Option<i32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    #[graphql(default)]
    pub stop: Vec<String>,
    pub seed: Option<i64>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct CapabilitiesInput {
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
    pub json_mode: bool,
}

#[derive(InputObject)]
pub struct ExternalModelInput {
    pub name: String,
    /// `openai` (any OpenAI-compatible server: OpenAI, vLLM, Ollama, …) or `anthropic`.
    pub provider: String,
    /// The API root, e.g. `https://api.openai.com/v1`, `http://gpu-box:8000/v1`,
    /// `https://api.anthropic.com`.
    pub base_url: String,
    /// The provider's name for the model.
    pub remote_model: String,
    /// Sealed before it is stored; never returned.
    #[graphql(secret)]
    pub api_key: Option<String>,
    /// Declared badges; the provider's usual set when absent.
    pub capabilities: Option<CapabilitiesInput>,
    #[graphql(name = "inputUsdPerMTok")]
    pub input_usd_per_mtok: Option<f64>,
    #[graphql(name = "outputUsdPerMTok")]
    pub output_usd_per_mtok: Option<f64>,
}

/// How a chat ended, as recorded.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChatResult {
    pub prediction_id: ID,
    pub text: String,
    /// `stop`, `length`, `tool_calls`, `content_filter` or `cancelled`.
    pub finish_reason: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// `tokenizer`, `provider` or `none`.
    pub usage_source: String,
    pub cost_usd: Option<f64>,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub model_version: String,
}

/// A piece of a streamed chat: text as it comes (`delta`), then the result.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChatChunk {
    pub delta: String,
    /// Set on the last chunk only.
    pub result: Option<ChatResult>,
}

/// One time bucket of a model's exchanges.
#[derive(SimpleObject, Clone, Debug)]
pub struct UsageBucket {
    pub start: DateTime<Utc>,
    pub requests: i64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub ttft_p50_ms: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
}
