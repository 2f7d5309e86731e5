//! `createComparison` (every model answers every prompt, in parallel) and
//! `voteComparison`.

use super::session::*;
use super::types::*;
use crate::graphql::common::errors::chat_error;
use crate::graphql::common::errors::{Code, domain_error, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use async_graphql::{Context, ID, Object};
use ftl_commands::store::ExpectedVersion;
use ftl_domain::DomainEvent;
use ftl_domain::comparison::{self as cmp, Preference, Voted};
use ftl_domain::project::Scope;
use ftl_effects::comparisons::{self, CreateError};
use ftl_projections::views::comparisons as view;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Default)]
pub struct ComparisonMutation;

#[Object]
impl ComparisonMutation {
    /// A session: every model answers every prompt (a user message each),
    /// in parallel; each answer is also recorded as a prediction.
    async fn create_comparison(
        &self,
        ctx: &Context<'_>,
        name: String,
        model_ids: Vec<ID>,
        prompts: Vec<String>,
        #[graphql(default = 128)] max_tokens: i32,
    ) -> async_graphql::Result<Comparison> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        if !(1..=2048).contains(&max_tokens) {
            return Err(gql_error(
                Code::LimitExceeded,
                "maxTokens must be between 1 and 2048",
            ));
        }
        if prompts.iter().any(|p| p.is_empty() || p.len() > 32 * 1024) {
            return Err(gql_error(
                Code::InvalidInput,
                "each prompt is 1 to 32768 bytes",
            ));
        }
        let ids = model_ids
            .iter()
            .map(|m| parse_id(m, "modelIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let id = comparisons::create(&st.effects, c, name, ids, prompts, max_tokens as usize)
            .await
            .map_err(|e| match e {
                CreateError::Invalid(e) => domain_error(e),
                CreateError::ModelNotFound(m) => {
                    gql_error(Code::NotFound, format!("model {m} not found"))
                }
                CreateError::Chat(e) => chat_error(e),
                CreateError::Store(e) => internal(e),
                CreateError::Internal(e) => internal(e),
            })?;
        read(st, c.project_id.0, id, &rater_of(c, None)?).await
    }

    /// A vote on one prompt, by display position: `preferred` (null: a tie,
    /// everything neutral), the positions in `neutral` neutral, all others
    /// rejected. Voting again replaces this rater's vote; the models of the
    /// prompt are revealed to the rater in the answer.
    async fn vote_comparison(
        &self,
        ctx: &Context<'_>,
        comparison_id: ID,
        prompt_index: i32,
        preferred: Option<i32>,
        #[graphql(default)] neutral: Vec<i32>,
        rater: Option<String>,
    ) -> async_graphql::Result<Comparison> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = parse_id(&comparison_id, "comparisonId")?;
        let rater = rater_of(c, rater)?;
        let session = view::comparison(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| gql_error(Code::NotFound, "comparison not found"))?;
        let index = u32::try_from(prompt_index)
            .map_err(|_| gql_error(Code::InvalidInput, "promptIndex must not be negative"))?;
        let n = session.model_ids.len();
        let order = cmp::column_order(id, index, n);
        let in_range = |p: i32| (0..n as i32).contains(&p);
        if preferred.is_some_and(|p| !in_range(p)) || neutral.iter().any(|p| !in_range(*p)) {
            return Err(gql_error(
                Code::InvalidInput,
                format!("positions are 0 to {}", n - 1),
            ));
        }
        let preferences: BTreeMap<Uuid, Preference> = order
            .iter()
            .enumerate()
            .map(|(position, m)| {
                let p = position as i32;
                let pref = match preferred {
                    None => Preference::Neutral,
                    Some(x) if x == p => Preference::Preferred,
                    Some(_) if neutral.contains(&p) => Preference::Neutral,
                    Some(_) => Preference::Rejected,
                };
                (session.model_ids[*m], pref)
            })
            .collect();
        let vote = Voted {
            comparison_id: id,
            prompt_index: index,
            rater: rater.clone(),
            preferences,
        };
        vote.validate(&session.model_ids, session.prompts.len())
            .map_err(domain_error)?;
        append(
            st,
            id,
            ExpectedVersion::StreamExists,
            vec![DomainEvent::ComparisonVoted(vote)],
            &c.metadata(),
            Uuid::new_v4(),
        )
        .await?;
        read(st, c.project_id.0, id, &rater).await
    }
}
