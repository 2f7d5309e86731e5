//! The comparison lab's use cases: a session created with every model's
//! answer to every prompt (generated in parallel, each recorded as a
//! prediction), and a session's events appended with ids derived from the
//! command, read back once the read models show them.

use crate::Effects;
use crate::models::{self, ChatError};
use crate::predictions::Recorder;
use ftl_commands::Caller;
use ftl_commands::store::{ExpectedVersion, Metadata, NewEvent, StoreError};
use ftl_domain::comparison::{ComparisonCreated, ResponseRecorded};
use ftl_domain::ids::derive_event_id;
use ftl_domain::prediction::ChatMessage;
use ftl_domain::{DomainError, DomainEvent, PredictionId};
use std::time::Instant;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("model {0} not found")]
    ModelNotFound(Uuid),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a generation stopped: {0}")]
    Internal(String),
}

/// A session's stream.
pub fn stream(id: Uuid) -> String {
    format!("comparison-{id}")
}

/// Appends `events` to session `id` (event ids derived from `command`, so a
/// retry lands once), then waits for the read models to show them.
pub async fn append(
    effects: &Effects,
    id: Uuid,
    expected: ExpectedVersion,
    events: Vec<DomainEvent>,
    meta: &Metadata,
    command: Uuid,
) -> Result<(), StoreError> {
    let mut meta = meta.clone();
    meta.command_id = Some(command);
    let new: Vec<NewEvent> = events
        .iter()
        .enumerate()
        .map(|(i, e)| NewEvent::from_domain(derive_event_id(command, i), e, meta.clone()))
        .collect();
    let a = effects.store.append(&stream(id), expected, new).await?;
    effects
        .projections
        .wait_for(a.last_position, effects.ryw_timeout())
        .await;
    Ok(())
}

/// Creates session `name`: every model answers every prompt (a user message
/// each) at once — local models on the blocking pool, external ones as
/// concurrent requests — and each answer is recorded as a prediction.
/// Returns the session's id once the read models show it.
pub async fn create(
    effects: &Effects,
    caller: &Caller,
    name: String,
    model_ids: Vec<Uuid>,
    prompts: Vec<String>,
    max_tokens: usize,
) -> Result<Uuid, CreateError> {
    let id = Uuid::new_v4();
    let user = |p: &String| {
        vec![ChatMessage {
            role: "user".into(),
            content: p.clone(),
        }]
    };
    let created = ComparisonCreated {
        comparison_id: id,
        project_id: caller.project_id,
        name,
        model_ids: model_ids.clone(),
        prompts: prompts.iter().map(user).collect(),
    };
    created.validate()?;
    let mut opened = Vec::with_capacity(model_ids.len());
    for m in &model_ids {
        let model = models::open(effects, caller.project_id, *m)
            .await?
            .ok_or(CreateError::ModelNotFound(*m))?;
        opened.push(model);
    }
    let params = ftl_trainer::GenerateParams {
        max_tokens,
        ..Default::default()
    };
    let mut tasks = vec![];
    for (pi, prompt) in prompts.iter().enumerate() {
        for (mi, model) in opened.iter().enumerate() {
            let messages = user(prompt);
            let started = Instant::now();
            let started_ms = chrono::Utc::now().timestamp_millis();
            let running = model.start(messages.clone(), params.clone(), started);
            tasks.push(async move {
                let _pieces = running.pieces;
                let out = running.done.await;
                (pi, mi, messages, started, started_ms, out)
            });
        }
    }
    let done = futures::future::join_all(tasks).await;
    let meta = caller.metadata();
    let created = vec![DomainEvent::ComparisonCreated(created)];
    append(
        effects,
        id,
        ExpectedVersion::NoStream,
        created,
        &meta,
        Uuid::new_v4(),
    )
    .await?;
    let mut recorded = vec![];
    for (pi, mi, messages, started, started_ms, out) in done {
        let reply = out.map_err(|e| CreateError::Internal(e.to_string()))??;
        let prediction = PredictionId(Uuid::new_v4());
        let row = &opened[mi].row;
        Recorder {
            st: effects.clone(),
            caller: caller.clone(),
            prediction,
            messages,
            params: params.clone(),
            started,
            started_ms,
            source: "comparison",
        }
        .record(row, &reply)
        .await;
        recorded.push(DomainEvent::ComparisonResponse(ResponseRecorded {
            comparison_id: id,
            prompt_index: pi as u32,
            model_id: model_ids[mi],
            model_name: row.name.clone(),
            prediction_id: prediction.0,
            content: reply.text,
        }));
    }
    let exists = ExpectedVersion::StreamExists;
    append(effects, id, exists, recorded, &meta, Uuid::new_v4()).await?;
    Ok(id)
}
