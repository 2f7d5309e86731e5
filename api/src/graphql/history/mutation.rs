//! `createDatasetFromConversations`: recorded exchanges as an SFT dataset.

use super::types::*;
use crate::graphql::common::errors::{Code, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use crate::graphql::registry::Dataset;
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;
use ftl_projections::views::judgments::{self};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct HistoryMutation;

/// Most conversations one dataset takes.
const MAX_CONVERSATIONS: usize = 10_000;

#[Object]
impl HistoryMutation {
    /// Turns recorded exchanges into an OpenAI chat fine-tuning dataset
    /// (`formats.md` §5: each one's messages, system first, then its
    /// answer) that a training job can use directly. An answer judged bad
    /// (thumb down, failed evaluation) gets `weight: 0`, or with
    /// `dropBadConversations` its conversation is left out. `datasetName`
    /// ends in `.jsonl`.
    async fn create_dataset_from_conversations(
        &self,
        ctx: &Context<'_>,
        prediction_ids: Vec<ID>,
        dataset_name: String,
        drop_bad_conversations: Option<bool>,
    ) -> async_graphql::Result<ConversationDataset> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        if prediction_ids.is_empty() || prediction_ids.len() > MAX_CONVERSATIONS {
            return Err(gql_error(
                Code::LimitExceeded,
                format!("predictionIds: 1 to {MAX_CONVERSATIONS}"),
            ));
        }
        if !ftl_effects::training::storage::valid_name(&dataset_name)
            || !dataset_name.ends_with(".jsonl")
        {
            return Err(gql_error(
                Code::InvalidInput,
                "datasetName is one path segment ending in .jsonl",
            ));
        }
        let ids = prediction_ids
            .iter()
            .map(|id| parse_id(id, "predictionIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut jsonl = String::new();
        let (mut rows, mut skipped) = (0, 0);
        for chunk in ids.chunks(500) {
            let history = judgments::history_of(&st.effects.db, c.project_id.0, chunk, None)
                .await
                .map_err(internal)?;
            let by = judgments::by_exchange(history);
            let found: BTreeMap<uuid::Uuid, _> =
                ftl_projections::views::predictions::predictions_with_ids(
                    &st.effects.db,
                    c.project_id.0,
                    chunk,
                )
                .await
                .map_err(internal)?
                .into_iter()
                .map(|r| (r.prediction_id, r))
                .collect();
            for uuid in chunk {
                let row = found.get(uuid).ok_or_else(|| {
                    gql_error(Code::NotFound, format!("prediction {uuid} not found"))
                })?;
                let mine = by.get(uuid).map_or(&[][..], Vec::as_slice);
                let drop_bad = drop_bad_conversations.unwrap_or(false);
                match ftl_projections::export::sft_row(row, mine, drop_bad) {
                    Some(record) => {
                        jsonl.push_str(&record.to_string());
                        jsonl.push('\n');
                        rows += 1;
                    }
                    None => skipped += 1,
                }
            }
        }
        if jsonl.is_empty() {
            return Err(gql_error(
                Code::InvalidInput,
                "every conversation was left out (judged bad): nothing to train on",
            ));
        }
        let r = ftl_effects::training::datasets::register(
            &st.effects,
            c,
            &dataset_name,
            ftl_effects::training::datasets::Source::Upload,
            jsonl.into(),
        )
        .await
        .map_err(|e| match e {
            ftl_effects::training::datasets::RegisterError::Invalid(issues) => gql_error(
                Code::InvalidInput,
                format!(
                    "the conversations do not make a chat dataset: {}",
                    issues
                        .iter()
                        .take(3)
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            other => internal(other),
        })?;
        let dataset =
            ftl_projections::views::training::dataset(&st.effects.db, c.project_id.0, r.id)
                .await
                .map_err(internal)?
                .map(Dataset::from)
                .ok_or_else(|| {
                    gql_error(Code::Internal, "the dataset is not in the read model yet")
                })?;
        Ok(ConversationDataset {
            dataset,
            rows,
            skipped,
        })
    }
}
