//! Recording exchanges with models as `prediction.recorded` events.

use crate::auth::Caller;
use crate::state::AppState;
use ftl_commands::store::{ExpectedVersion, NewEvent};
use ftl_domain::ids::derive_event_id;
use ftl_domain::prediction::{ChatMessage, PredictionRecorded};
use ftl_domain::{DomainEvent, PredictionId};
use ftl_trainer::GenerateParams;
use std::time::Instant;

/// Records the exchange as a prediction (after the response is produced).
pub struct Recorder {
    pub st: AppState,
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
    pub async fn record(
        self,
        row: &ftl_projections::views::training::ModelRow,
        response: &str,
        finish: &str,
        ttft_ms: Option<f64>,
        prompt_tokens: usize,
        completion_tokens: usize,
    ) {
        let event = DomainEvent::PredictionRecorded(PredictionRecorded {
            prediction_id: self.prediction,
            project_id: self.caller.project_id,
            model_id: row.model_id,
            model_name: row.name.clone(),
            messages: self.messages,
            response: response.to_string(),
            finish_reason: finish.to_string(),
            params: serde_json::to_value(&self.params).unwrap_or_default(),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            ttft_ms,
            prompt_tokens: prompt_tokens as u64,
            completion_tokens: completion_tokens as u64,
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
                tracing::error!(error = %e, prediction = %self.prediction.0, "recording a prediction")
            }
        }
    }
}
