//! What the chat resolvers share: a chat checked, opened and started (it
//! is recorded when it ends), its outcome, and model-registry events
//! appended and read back.

use super::types::*;
use crate::graphql::common::errors::{Code, chat_error, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use crate::graphql::registry::Model;
use crate::state::AppState;
use async_graphql::{Context, ErrorExtensions, ID};
use chrono::Utc;
use ftl_commands::store::{ExpectedVersion, Metadata, NewEvent, StoreError};
use ftl_domain::ids::derive_event_id;
use ftl_domain::prediction::ChatMessage;
use ftl_domain::project::Scope;
use ftl_domain::registry::Capabilities;
use ftl_domain::{DomainEvent, ModelId, PredictionId};
use ftl_effects::models::{self, ChatError};
use ftl_effects::predictions::Recorder;
use ftl_projections::views::training as view;
use std::time::Instant;
use uuid::Uuid;

pub(super) fn params_of(
    p: Option<ChatParams>,
) -> async_graphql::Result<ftl_trainer::GenerateParams> {
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
pub(super) type Started = (
    tokio::sync::mpsc::UnboundedReceiver<String>,
    tokio::sync::oneshot::Receiver<
        Result<(models::Reply, ftl_effects::predictions::Recorded), ChatError>,
    >,
);

/// Checks the request, opens the model and starts the chat; it is recorded
/// when it ends (however the caller leaves).
pub(super) async fn start_chat(
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
    models::check(&messages, &params).map_err(crate::graphql::common::errors::refusal)?;
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

pub(super) fn result_of(
    reply: models::Reply,
    recorded: ftl_effects::predictions::Recorded,
) -> ChatResult {
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

pub(super) async fn append_model_event(
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

pub(super) fn gql_error_code(code: &'static str, message: String) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(move |_, e| e.set("code", code))
}

/// The badges a provider's chat models usually have.
pub(super) fn provider_defaults(provider: &str) -> Capabilities {
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

pub(super) async fn read_model(
    st: &AppState,
    project: Uuid,
    id: Uuid,
) -> async_graphql::Result<Model> {
    view::model(&st.effects.db, project, id)
        .await
        .map_err(internal)?
        .map(Model::from)
        .ok_or_else(|| gql_error(Code::Internal, "the model is not in the read model yet"))
}
