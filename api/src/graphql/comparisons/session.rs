//! A session read as a rater sees it (blind order, models revealed where
//! they voted), the rater of a call, and a session's events appended.

use super::types::*;
use crate::graphql::common::errors::{Code, domain_error, gql_error, internal};
use crate::state::AppState;
use async_graphql::ID;
use ftl_commands::store::{ExpectedVersion, Metadata};
use ftl_domain::DomainEvent;
use ftl_domain::comparison::{self as cmp, Preference};
use ftl_projections::views::comparisons as view;
use uuid::Uuid;

/// The session as a rater sees it: answers in blind order, models revealed
/// on the prompts this rater voted on.
pub(super) async fn read(
    st: &AppState,
    project: Uuid,
    id: Uuid,
    rater: &str,
) -> async_graphql::Result<Comparison> {
    let c = view::comparison(&st.effects.db, project, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| gql_error(Code::NotFound, "comparison not found"))?;
    let responses = view::responses(&st.effects.db, id)
        .await
        .map_err(internal)?;
    let votes = view::votes(&st.effects.db, id).await.map_err(internal)?;
    let mut prompts = Vec::with_capacity(c.prompts.len());
    for (i, context) in c.prompts.iter().enumerate() {
        let order = cmp::column_order(id, i as u32, c.model_ids.len());
        let voted = votes
            .iter()
            .any(|v| v.prompt_index == i as i64 && v.rater == rater);
        let shown: Vec<LabResponse> = order
            .iter()
            .enumerate()
            .filter_map(|(position, m)| {
                let model = c.model_ids.get(*m)?;
                let r = responses
                    .iter()
                    .find(|r| r.prompt_index == i as i64 && r.model_id == *model)?;
                Some(LabResponse {
                    position: position as i32,
                    content: r.content.clone(),
                    prediction_id: ID(r.prediction_id.to_string()),
                    model: voted.then(|| LabModel {
                        id: ID(model.to_string()),
                        name: r.model_name.clone(),
                    }),
                })
            })
            .collect();
        let prompt_votes = votes
            .iter()
            .filter(|v| v.prompt_index == i as i64)
            .map(|v| LabVote {
                rater: v.rater.clone(),
                preferences: order
                    .iter()
                    .map(|m| {
                        c.model_ids
                            .get(*m)
                            .and_then(|model| v.preferences.get(model))
                            .copied()
                            .unwrap_or(Preference::Neutral)
                            .into()
                    })
                    .collect(),
            })
            .collect();
        prompts.push(LabPrompt {
            index: i as i32,
            context: context
                .iter()
                .map(|m| LabMessage {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
                .collect(),
            responses: shown,
            votes: prompt_votes,
        });
    }
    Ok(Comparison {
        id: ID(id.to_string()),
        name: c.name,
        prompts,
    })
}

pub(super) fn rater_of(
    c: &crate::auth::Caller,
    rater: Option<String>,
) -> async_graphql::Result<String> {
    let r = rater.unwrap_or_else(|| format!("key:{}", c.key_id));
    ftl_domain::feedback::validate_rater(&r).map_err(domain_error)?;
    Ok(r)
}

pub(super) async fn append(
    st: &AppState,
    id: Uuid,
    expected: ExpectedVersion,
    events: Vec<DomainEvent>,
    meta: &Metadata,
    command: Uuid,
) -> async_graphql::Result<()> {
    ftl_effects::comparisons::append(&st.effects, id, expected, events, meta, command)
        .await
        .map_err(internal)
}
