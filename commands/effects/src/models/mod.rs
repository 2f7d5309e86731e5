//! Chat with any model of a project — one trained here (the trainer, on a
//! blocking thread) or an external endpoint (an OpenAI-compatible server or
//! Anthropic) — through one streaming interface that the chat subscription,
//! the OpenAI-compatible API and the comparison lab all use.

pub mod anthropic;
pub mod local;
pub mod openai_compat;

use self::local::{Loaded, Prompt};
use crate::Effects;
use crate::secrets::Sealer;
use ftl_domain::ProjectId;
use ftl_domain::prediction::ChatMessage;
use ftl_projections::views::training::{ModelRow, ModelSource};
use ftl_trainer::GenerateParams;
use ftl_trainer::tokenizer::Role;
use std::time::Instant;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How a chat ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    /// `stop`, `length`, `tool_calls`, `content_filter` or `cancelled`.
    pub finish_reason: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `tokenizer`, `provider` or `none`.
    pub usage_source: &'static str,
    /// Request start → first piece of text (ms).
    pub ttft_ms: Option<f64>,
    /// The provider's name for what answered (external), or `<job>@<step>`.
    pub model_version: String,
}

impl Reply {
    /// Nothing yet, from `model_version` (a provider's stream fills it in).
    pub(crate) fn empty(model_version: &str) -> Self {
        Reply {
            text: String::new(),
            finish_reason: "stop".into(),
            prompt_tokens: 0,
            completion_tokens: 0,
            usage_source: "none",
            ttft_ms: None,
            model_version: model_version.to_string(),
        }
    }

    /// Takes a piece of a provider's stream: times the first, keeps the
    /// text, hands it on. `Ok(false)`: the caller went away — the reply
    /// ends `cancelled` and the provider's stream should be closed.
    pub(crate) fn take_piece(
        &mut self,
        piece: &str,
        started: Instant,
        tx: &mpsc::UnboundedSender<String>,
    ) -> Result<bool, ChatError> {
        self.ttft_ms.get_or_insert_with(|| ms_since(started));
        self.text.push_str(piece);
        if tx.send(piece.to_string()).is_err() {
            self.finish_reason = "cancelled".into();
            return Ok(false);
        }
        if self.text.len() > MAX_REPLY_BYTES {
            return Err(ChatError::Stream(format!(
                "the answer passed {MAX_REPLY_BYTES} bytes"
            )));
        }
        Ok(true)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    Invalid(String),
    #[error("the provider answered {status}: {message}")]
    Provider { status: u16, message: String },
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the provider's stream broke off: {0}")]
    Stream(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ChatError {
    /// Stable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::Invalid(_) => "INVALID_INPUT",
            ChatError::Provider { .. } | ChatError::Stream(_) => "UPSTREAM_ERROR",
            ChatError::Unreachable(_) => "UPSTREAM_UNREACHABLE",
            ChatError::Internal(_) => "INTERNAL",
        }
    }
}

/// A chat in progress: pieces of text as they come, then how it ended.
/// Dropping `pieces` cancels it (the provider's connection is closed, or
/// local generation stops at the next token).
pub struct Running {
    pub pieces: mpsc::UnboundedReceiver<String>,
    pub done: tokio::task::JoinHandle<Result<Reply, ChatError>>,
}

/// An external endpoint, its key opened.
#[derive(Clone)]
pub struct Endpoint {
    pub provider: Provider,
    pub base_url: String,
    pub remote_model: String,
    pub api_key: Option<String>,
    pub client: reqwest::Client,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Endpoint")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("remote_model", &self.remote_model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<sealed>"))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            _ => None,
        }
    }
}

/// A model ready to chat (cheap to clone: one per concurrent chat).
#[derive(Clone)]
pub enum Engine {
    Local(std::sync::Arc<Loaded>),
    External(Endpoint),
}

/// A model of the project with what serving it needs.
#[derive(Clone)]
pub struct Model {
    pub row: ModelRow,
    pub engine: Engine,
}

/// Opens a model of `project` for chat; `None` if the project has no such model.
pub async fn open(st: &Effects, project: ProjectId, id: Uuid) -> Result<Option<Model>, ChatError> {
    let Some(row) = ftl_projections::views::training::model(&st.db, project.0, id)
        .await
        .map_err(|e| ChatError::Internal(e.into()))?
    else {
        return Ok(None);
    };
    let engine = match &row.source {
        ModelSource::Local { .. } => {
            let loaded = local::load_row(st, row.clone()).await?;
            Engine::Local(std::sync::Arc::new(loaded))
        }
        ModelSource::External {
            provider,
            base_url,
            remote_model,
            api_key_sealed,
        } => {
            let provider = Provider::parse(provider)
                .ok_or_else(|| ChatError::Invalid(format!("unknown provider {provider}")))?;
            let api_key = match api_key_sealed {
                Some(sealed) => Some(open_key(&st.sealer, project, id, sealed)?),
                None => None,
            };
            Engine::External(Endpoint {
                provider,
                base_url: base_url.clone(),
                remote_model: remote_model.clone(),
                api_key,
                client: st.egress_client.clone(),
            })
        }
    };
    Ok(Some(Model { row, engine }))
}

fn open_key(
    sealer: &Sealer,
    project: ProjectId,
    id: Uuid,
    sealed: &str,
) -> Result<String, ChatError> {
    let context = ftl_domain::registry::ExternalModelRegistered::secret_context(
        project,
        ftl_domain::ModelId(id),
    );
    sealer
        .open(sealed, &context)
        .map_err(|e| ChatError::Internal(anyhow::anyhow!("opening the model's API key: {e}")))
}

impl Model {
    /// Starts a chat; `started` is when the request arrived (for latency).
    pub fn start(
        &self,
        messages: Vec<ChatMessage>,
        params: GenerateParams,
        started: Instant,
    ) -> Running {
        let (tx, pieces) = mpsc::unbounded_channel::<String>();
        let done = match self.engine.clone() {
            Engine::Local(loaded) => {
                let version = match &self.row.source {
                    ModelSource::Local {
                        job_id,
                        checkpoint_step,
                        ..
                    } => {
                        format!("{job_id}@{checkpoint_step}")
                    }
                    ModelSource::External { .. } => String::new(),
                };
                tokio::task::spawn_blocking(move || {
                    local(&loaded, &messages, &params, started, &tx, version)
                })
            }
            Engine::External(endpoint) => tokio::spawn(async move {
                match endpoint.provider {
                    Provider::OpenAi => {
                        openai_compat::chat(&endpoint, &messages, &params, started, &tx).await
                    }
                    Provider::Anthropic => {
                        anthropic::chat(&endpoint, &messages, &params, started, &tx).await
                    }
                }
            }),
        };
        Running { pieces, done }
    }
}

fn role(name: &str) -> Result<Role, ChatError> {
    Ok(match name {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => return Err(ChatError::Invalid(format!("unknown role {other:?}"))),
    })
}

fn local(
    loaded: &Loaded,
    messages: &[ChatMessage],
    params: &GenerateParams,
    started: Instant,
    tx: &mpsc::UnboundedSender<String>,
    model_version: String,
) -> Result<Reply, ChatError> {
    let turns = messages
        .iter()
        .map(|m| Ok((role(&m.role)?, m.content.clone())))
        .collect::<Result<Vec<_>, ChatError>>()?;
    let tokens = Prompt::Chat(turns).tokens();
    let mut first = None;
    let g = loaded
        .generate_until(
            &tokens,
            params,
            || tx.is_closed(),
            |piece| {
                if !piece.is_empty() {
                    first.get_or_insert_with(|| ms_since(started));
                    let _ = tx.send(piece.to_string());
                }
            },
        )
        .map_err(|e| ChatError::Internal(e.into()))?;
    Ok(Reply {
        text: g.text,
        finish_reason: g.finish_reason.as_str().to_string(),
        prompt_tokens: g.prompt_tokens as u64,
        completion_tokens: g.completion_tokens as u64,
        usage_source: "tokenizer",
        ttft_ms: first,
        model_version,
    })
}

pub(crate) fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// The most text a provider's answer may carry before it is cut off.
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// A provider's error body (`{"error": {"message": …}}` in both wire
/// formats), bounded, never echoing request headers.
pub(crate) async fn provider_error(resp: reqwest::Response) -> ChatError {
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    let body = &body[..body.len().min(16 * 1024)];
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect());
    ChatError::Provider { status, message }
}

pub(crate) fn send_error(e: reqwest::Error) -> ChatError {
    // reqwest's message names the URL but never headers (the key).
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    ChatError::Unreachable(chain)
}

/// Joins a base URL and a path with exactly one slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Longest completion a request may ask for, most messages, largest message.
pub const MAX_TOKENS: usize = 4096;
pub const MAX_MESSAGES: usize = 256;
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Roles a message may have (OpenAI's).
pub const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// Why a request was refused before anything was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The parameter at fault (OpenAI's name).
    pub field: &'static str,
    pub message: String,
    /// A size limit (rather than a malformed value).
    pub limit: bool,
}

fn refuse(field: &'static str, message: impl Into<String>, limit: bool) -> Refusal {
    Refusal {
        field,
        message: message.into(),
        limit,
    }
}

/// Checks a conversation and sampling parameters before anything is sent.
pub fn check(messages: &[ChatMessage], p: &GenerateParams) -> Result<(), Refusal> {
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(refuse(
            "messages",
            format!("messages must hold 1 to {MAX_MESSAGES} messages"),
            !messages.is_empty(),
        ));
    }
    for m in messages {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(refuse(
                "messages",
                format!("unknown role {:?}", m.role),
                false,
            ));
        }
        if m.content.contains('\0') {
            // The exchange is recorded, and the log keeps no U+0000.
            return Err(refuse(
                "messages",
                "a message must not contain the NUL character (U+0000)",
                false,
            ));
        }
        if m.content.len() > MAX_MESSAGE_BYTES {
            return Err(refuse(
                "messages",
                format!("a message holds at most {MAX_MESSAGE_BYTES} bytes"),
                true,
            ));
        }
    }
    check_sampling(p)
}

/// Checks sampling parameters alone (`generate` on a local model too):
/// max_tokens, temperature in [0, 2], top_p in (0, 1], up to 4 stops.
pub fn check_sampling(p: &GenerateParams) -> Result<(), Refusal> {
    if p.max_tokens == 0 || p.max_tokens > MAX_TOKENS {
        return Err(refuse(
            "max_tokens",
            format!("max_tokens must be between 1 and {MAX_TOKENS}"),
            p.max_tokens > MAX_TOKENS,
        ));
    }
    if !(p.temperature.is_finite() && (0.0..=2.0).contains(&p.temperature)) {
        return Err(refuse(
            "temperature",
            "temperature must be between 0 and 2",
            false,
        ));
    }
    if !(p.top_p > 0.0 && p.top_p <= 1.0) {
        return Err(refuse("top_p", "top_p must be in (0, 1]", false));
    }
    if p.stop.len() > 4 || p.stop.iter().any(|s| s.is_empty() || s.len() > 64) {
        return Err(refuse(
            "stop",
            "stop: up to 4 sequences of 1 to 64 bytes",
            p.stop.len() > 4,
        ));
    }
    Ok(())
}
