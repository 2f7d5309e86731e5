//! The chat portal over GraphQL: the model registry's external endpoints
//! (OpenAI-compatible servers and Anthropic, keys sealed at rest), a price
//! table, chat with any model — streamed over a subscription or answered
//! whole — and each model's latency and usage history.

use super::errors::{Code, gql_error, internal};
use super::query::parse_id;
use super::training::Model;
use super::{caller, state};
use crate::state::AppState;
use async_graphql::{
    Context, ErrorExtensions, ID, InputObject, Object, SimpleObject, Subscription,
};
use chrono::{DateTime, Utc};
use ftl_commands::store::{ExpectedVersion, Metadata, NewEvent, StoreError};
use ftl_domain::ids::derive_event_id;
use ftl_domain::prediction::ChatMessage;
use ftl_domain::project::Scope;
use ftl_domain::registry::{Capabilities, ExternalModelRegistered, ModelPriceSet};
use ftl_domain::stats::quantile;
use ftl_domain::{DomainEvent, ModelId, PredictionId};
use ftl_effects::models::{self, ChatError};
use ftl_effects::predictions::Recorder;
use ftl_projections::views::training as view;
use futures::{Stream, StreamExt};
use std::time::Instant;
use uuid::Uuid;

/// A chat failure with a stable code.
pub(crate) fn chat_error(e: ChatError) -> async_graphql::Error {
    match e {
        ChatError::Internal(e) => internal(e),
        other => {
            let code = other.code();
            async_graphql::Error::new(other.to_string())
                .extend_with(move |_, x| x.set("code", code))
        }
    }
}

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

fn params_of(p: Option<ChatParams>) -> async_graphql::Result<ftl_trainer::GenerateParams> {
    let p = p.unwrap_or_default();
    let max_tokens = p.max_tokens.unwrap_or(256);
    Ok(ftl_trainer::GenerateParams {
        max_tokens: usize::try_from(max_tokens).unwrap_or(0),
        temperature: p.temperature.unwrap_or(1.0),
        top_p: p.top_p.unwrap_or(1.0),
        stop: p.stop,
        seed: u64::try_from(p.seed.unwrap_or(0))
            .map_err(|_| gql_error(Code::InvalidInput, "seed must not be negative"))?,
    })
}

/// What a started chat hands over: its pieces of text as they come, then
/// its outcome once recorded.
type Started = (
    tokio::sync::mpsc::UnboundedReceiver<String>,
    tokio::sync::oneshot::Receiver<
        Result<(models::Reply, ftl_effects::predictions::Recorded), ChatError>,
    >,
);

/// Checks the request, opens the model and starts the chat; it is recorded
/// when it ends (however the caller leaves).
async fn start_chat(
    ctx: &Context<'_>,
    model_id: &ID,
    messages: Vec<ChatMessageInput>,
    params: Option<ChatParams>,
) -> async_graphql::Result<Started> {
    let started = Instant::now();
    let started_ms = Utc::now().timestamp_millis();
    let c = caller(ctx, Scope::Write)?.clone();
    let st = state(ctx)?.clone();
    let id = parse_id(model_id, "modelId")?;
    let messages: Vec<ChatMessage> = messages
        .into_iter()
        .map(|m| ChatMessage {
            role: m.role,
            content: m.content,
        })
        .collect();
    let params = params_of(params)?;
    models::check(&messages, &params).map_err(super::errors::refusal)?;
    let model = models::open(&st.effects, c.project_id, id)
        .await
        .map_err(chat_error)?
        .ok_or_else(|| gql_error(Code::NotFound, "model not found"))?;
    let recorder = Recorder {
        st: st.effects.clone(),
        caller: c,
        prediction: PredictionId(Uuid::new_v4()),
        messages,
        params,
        started,
        started_ms,
        source: "graphql",
    };
    let running = model.start(
        recorder.messages.clone(),
        recorder.params.clone(),
        recorder.started,
    );
    let done = recorder.record_when_done(model.row, running.done);
    Ok((running.pieces, done))
}

fn result_of(reply: models::Reply, recorded: ftl_effects::predictions::Recorded) -> ChatResult {
    ChatResult {
        prediction_id: ID(recorded.prediction.0.to_string()),
        prompt_tokens: reply.prompt_tokens as i64,
        completion_tokens: reply.completion_tokens as i64,
        total_tokens: (reply.prompt_tokens + reply.completion_tokens) as i64,
        usage_source: reply.usage_source.into(),
        cost_usd: recorded.cost_usd,
        latency_ms: recorded.latency_ms,
        ttft_ms: reply.ttft_ms,
        model_version: reply.model_version,
        finish_reason: reply.finish_reason,
        text: reply.text,
    }
}

async fn append_model_event(
    st: &AppState,
    project: ftl_domain::ProjectId,
    model: ModelId,
    event: DomainEvent,
    expected: ExpectedVersion,
    command: Uuid,
) -> Result<(), StoreError> {
    let meta = Metadata {
        project_id: Some(project),
        command_id: Some(command),
        ..Metadata::default()
    };
    let new = NewEvent::from_domain(derive_event_id(command, 0), &event, meta);
    let a = st
        .effects
        .store
        .append(&model.stream(), expected, vec![new])
        .await?;
    st.effects
        .projections
        .wait_for(a.last_position, st.ryw_timeout())
        .await;
    Ok(())
}

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// A model's exchanges over time in buckets of `bucketSeconds`: request
    /// count, latency and time-to-first-token percentiles, tokens and cost.
    async fn model_usage(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default = 3600)] bucket_seconds: i32,
    ) -> async_graphql::Result<Vec<UsageBucket>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let id = parse_id(&model_id, "modelId")?;
        if bucket_seconds < 1 || to <= from {
            return Err(gql_error(
                Code::InvalidInput,
                "bucketSeconds must be at least 1 and `to` after `from`",
            ));
        }
        let width = i64::from(bucket_seconds) * 1000;
        let buckets = (to - from).num_milliseconds() / width + 1;
        if buckets > 10_000 {
            return Err(gql_error(
                Code::LimitExceeded,
                "at most 10000 buckets: widen bucketSeconds or narrow the range",
            ));
        }
        let rows = ftl_projections::views::predictions::usage(
            &st.effects.db,
            c.project_id.0,
            id,
            from,
            to,
        )
        .await
        .map_err(internal)?;
        Ok(usage_buckets(&rows, from, width))
    }
}

/// Groups exchanges (time-ordered) into buckets of `width` ms from `from`.
fn usage_buckets(
    rows: &[ftl_projections::views::predictions::UsageRow],
    from: DateTime<Utc>,
    width: i64,
) -> Vec<UsageBucket> {
    let origin = from.timestamp_millis();
    let mut out: Vec<UsageBucket> = vec![];
    let mut i = 0;
    while i < rows.len() {
        let b = (rows[i].started_at.timestamp_millis() - origin).div_euclid(width);
        let mut j = i;
        while j < rows.len()
            && (rows[j].started_at.timestamp_millis() - origin).div_euclid(width) == b
        {
            j += 1;
        }
        let group = &rows[i..j];
        let mut lat: Vec<f64> = group.iter().map(|r| r.latency_ms).collect();
        lat.sort_by(f64::total_cmp);
        let mut ttft: Vec<f64> = group.iter().filter_map(|r| r.ttft_ms).collect();
        ttft.sort_by(f64::total_cmp);
        out.push(UsageBucket {
            start: DateTime::<Utc>::from_timestamp_millis(origin + b * width).unwrap_or(from),
            requests: group.len() as i64,
            latency_p50_ms: quantile(&lat, 0.5).unwrap_or(0.0),
            latency_p95_ms: quantile(&lat, 0.95).unwrap_or(0.0),
            ttft_p50_ms: quantile(&ttft, 0.5),
            prompt_tokens: group.iter().map(|r| r.prompt_tokens).sum(),
            completion_tokens: group.iter().map(|r| r.completion_tokens).sum(),
            cost_usd: group.iter().filter_map(|r| r.cost_usd).sum(),
        });
        i = j;
    }
    out
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Registers a model served by another API. The base URL must be public
    /// (or in a network the operator allowed); the API key is sealed with
    /// the server's key and never returned.
    async fn register_external_model(
        &self,
        ctx: &Context<'_>,
        input: ExternalModelInput,
    ) -> async_graphql::Result<Model> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = ModelId(Uuid::new_v4());
        // The key is sealed first: a server without `[secrets]
        // encryption_key` refuses before anything reaches the network (DNS).
        let api_key_sealed = match input.api_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => {
                if k.len() > 4096 {
                    return Err(gql_error(Code::LimitExceeded, "apiKey: at most 4096 bytes"));
                }
                let context = ExternalModelRegistered::secret_context(c.project_id, id);
                Some(st.effects.sealer.seal(k, &context).map_err(|e| {
                    gql_error_code("NOT_CONFIGURED", format!("cannot store an API key: {e}"))
                })?)
            }
            _ => None,
        };
        let url = st
            .effects
            .egress
            .check_url(&input.base_url)
            .map_err(|e| gql_error_code(e.code(), e.to_string()))?;
        st.effects
            .egress
            .check_resolved(&url)
            .await
            .map_err(|e| gql_error_code(e.code(), e.to_string()))?;
        let (capabilities, capabilities_source) = match input.capabilities {
            Some(cap) => (
                Capabilities {
                    streaming: cap.streaming,
                    tools: cap.tools,
                    vision: cap.vision,
                    json_mode: cap.json_mode,
                },
                "declared",
            ),
            None => (provider_defaults(&input.provider), "default"),
        };
        let event = ExternalModelRegistered {
            model_id: id,
            project_id: c.project_id,
            name: input.name.trim().to_string(),
            provider: input.provider,
            base_url: url.as_str().trim_end_matches('/').to_string(),
            remote_model: input.remote_model.trim().to_string(),
            api_key_sealed,
            capabilities,
            capabilities_source: capabilities_source.into(),
        };
        event
            .validate()
            .map_err(|m| gql_error(Code::InvalidInput, m))?;
        let price = match (input.input_usd_per_mtok, input.output_usd_per_mtok) {
            (None, None) => None,
            (i, o) => {
                let p = ModelPriceSet {
                    model_id: id,
                    project_id: c.project_id,
                    input_usd_per_mtok: i.unwrap_or(0.0),
                    output_usd_per_mtok: o.unwrap_or(0.0),
                };
                p.validate().map_err(|m| gql_error(Code::InvalidInput, m))?;
                Some(p)
            }
        };
        append_model_event(
            st,
            c.project_id,
            id,
            DomainEvent::ExternalModelRegistered(event),
            ExpectedVersion::NoStream,
            id.0,
        )
        .await
        .map_err(internal)?;
        if let Some(p) = price {
            append_model_event(
                st,
                c.project_id,
                id,
                DomainEvent::ModelPriceSet(p),
                ExpectedVersion::Any,
                Uuid::new_v4(),
            )
            .await
            .map_err(internal)?;
        }
        read_model(st, c.project_id.0, id.0).await
    }

    /// Sets a model's price (USD per million input/output tokens) for the
    /// exchanges from now on; earlier predictions keep the cost they had.
    async fn set_model_price(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        #[graphql(name = "inputUsdPerMTok")] input_usd_per_mtok: f64,
        #[graphql(name = "outputUsdPerMTok")] output_usd_per_mtok: f64,
    ) -> async_graphql::Result<Model> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = parse_id(&model_id, "modelId")?;
        view::model(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| gql_error(Code::NotFound, "model not found"))?;
        let p = ModelPriceSet {
            model_id: ModelId(id),
            project_id: c.project_id,
            input_usd_per_mtok,
            output_usd_per_mtok,
        };
        p.validate().map_err(|m| gql_error(Code::InvalidInput, m))?;
        append_model_event(
            st,
            c.project_id,
            ModelId(id),
            DomainEvent::ModelPriceSet(p),
            ExpectedVersion::StreamExists,
            Uuid::new_v4(),
        )
        .await
        .map_err(internal)?;
        read_model(st, c.project_id.0, id).await
    }

    /// Chat with any model of the project, answered whole (the
    /// subscription of the same name streams it); recorded as a prediction.
    async fn chat(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        messages: Vec<ChatMessageInput>,
        params: Option<ChatParams>,
    ) -> async_graphql::Result<ChatResult> {
        // The receiver lives until the end: a whole answer is not cancelled.
        let (_pieces, done) = start_chat(ctx, &model_id, messages, params).await?;
        let (reply, recorded) = done.await.map_err(internal)?.map_err(chat_error)?;
        Ok(result_of(reply, recorded))
    }
}

fn gql_error_code(code: &'static str, message: String) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(move |_, e| e.set("code", code))
}

/// The badges a provider's chat models usually have.
fn provider_defaults(provider: &str) -> Capabilities {
    match provider {
        "anthropic" => Capabilities {
            streaming: true,
            tools: true,
            vision: true,
            json_mode: false,
        },
        _ => Capabilities {
            streaming: true,
            tools: false,
            vision: false,
            json_mode: false,
        },
    }
}

async fn read_model(st: &AppState, project: Uuid, id: Uuid) -> async_graphql::Result<Model> {
    view::model(&st.effects.db, project, id)
        .await
        .map_err(internal)?
        .map(Model::from)
        .ok_or_else(|| gql_error(Code::Internal, "the model is not in the read model yet"))
}

#[derive(Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// Chat with any model of the project, streamed: a chunk per piece of
    /// text as the model produces it, then one with the recorded result.
    /// Ending the subscription early cancels the chat (recorded `cancelled`).
    async fn chat(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        messages: Vec<ChatMessageInput>,
        params: Option<ChatParams>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ChatChunk>>> {
        let (pieces, done) = start_chat(ctx, &model_id, messages, params).await?;
        let pieces = tokio_stream::wrappers::UnboundedReceiverStream::new(pieces).map(|delta| {
            Ok(ChatChunk {
                delta,
                result: None,
            })
        });
        let last = futures::stream::once(async move {
            match done.await {
                Ok(Ok((reply, recorded))) => Ok(ChatChunk {
                    delta: String::new(),
                    result: Some(result_of(reply, recorded)),
                }),
                Ok(Err(e)) => Err(chat_error(e)),
                Err(e) => Err(internal(e)),
            }
        });
        Ok(pieces.chain(last))
    }
}
