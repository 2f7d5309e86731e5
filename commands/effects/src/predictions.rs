//! Recording exchanges with models as `prediction.recorded` events.

use crate::Effects;
use crate::models::{ChatError, Reply};
use ftl_commands::Caller;
use ftl_commands::store::{ExpectedVersion, NewEvent};
use ftl_domain::ids::derive_event_id;
use ftl_domain::prediction::{ChatMessage, PredictionRecorded};
use ftl_domain::{DomainEvent, PredictionId};
use ftl_projections::views::training::ModelRow;
use ftl_trainer::GenerateParams;
use std::time::Instant;

/// Records the exchange as a prediction (after the response is produced).
pub struct Recorder {
    pub st: Effects,
    pub caller: Caller,
    pub prediction: PredictionId,
    pub messages: Vec<ChatMessage>,
    pub params: GenerateParams,
    pub started: Instant,
    pub started_ms: i64,
    /// `openai_api`, `graphql` or `comparison`.
    pub source: &'static str,
}

impl Recorder {
    /// Appends the prediction (cost from the model's price table) and
    /// waits for the read models to show it.
    pub async fn record(self, row: &ModelRow, reply: &Reply) -> Recorded {
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let cost_usd = row.cost(reply.prompt_tokens, reply.completion_tokens);
        let prediction = self.prediction;
        let event = DomainEvent::PredictionRecorded(PredictionRecorded {
            prediction_id: self.prediction,
            project_id: self.caller.project_id,
            model_id: row.model_id,
            model_name: row.name.clone(),
            messages: self.messages,
            response: reply.text.clone(),
            finish_reason: reply.finish_reason.clone(),
            params: serde_json::to_value(&self.params).unwrap_or_default(),
            latency_ms,
            ttft_ms: reply.ttft_ms,
            model_version: reply.model_version.clone(),
            prompt_tokens: reply.prompt_tokens,
            completion_tokens: reply.completion_tokens,
            usage_source: reply.usage_source.into(),
            cost_usd,
            source: self.source.into(),
            started_ms: self.started_ms,
        });
        let mut meta = self.caller.metadata();
        meta.command_id = Some(self.prediction.0);
        let new = NewEvent::from_domain(derive_event_id(self.prediction.0, 0), &event, meta);
        match self
            .st
            .store
            .append(
                &self.prediction.stream(),
                ExpectedVersion::NoStream,
                vec![new],
            )
            .await
        {
            Ok(a) => {
                self.st
                    .projections
                    .wait_for(a.last_position, self.st.ryw_timeout())
                    .await;
            }
            Err(e) => {
                tracing::error!(error = %e, prediction = %prediction.0, "recording a prediction")
            }
        }
        Recorded {
            prediction,
            latency_ms,
            cost_usd,
        }
    }

    /// Records the chat once it ends, in a task of its own — a client that
    /// goes away drops its stream, not the record (the exchange then ends
    /// `cancelled`) — and hands over the outcome.
    pub fn record_when_done(
        self,
        row: ModelRow,
        done: tokio::task::JoinHandle<Result<Reply, ChatError>>,
    ) -> tokio::sync::oneshot::Receiver<Result<(Reply, Recorded), ChatError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let outcome = match done.await {
                Ok(Ok(reply)) => {
                    let recorded = self.record(&row, &reply).await;
                    Ok((reply, recorded))
                }
                Ok(Err(e)) => Err(e),
                Err(e) => Err(ChatError::Internal(e.into())),
            };
            let _ = tx.send(outcome);
        });
        rx
    }
}

/// A recorded exchange.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    pub prediction: PredictionId,
    pub latency_ms: f64,
    pub cost_usd: Option<f64>,
}
