//! `setThumb`, `evaluatePrediction`, `ratePrediction`: a judgment appended
//! to the exchange's stream, the exchange read back with it.

use super::types::*;
use crate::graphql::common::errors::{Code, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use crate::graphql::predictions::Prediction;
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;
use ftl_projections::views::predictions as view;

#[derive(Default)]
pub struct FeedbackMutation;

/// Appends a judgment to a prediction of the caller's project.
async fn judge(
    ctx: &Context<'_>,
    prediction: &ID,
    idempotency_key: Option<String>,
    event: impl FnOnce(
        ftl_domain::PredictionId,
        String,
    ) -> Result<ftl_domain::DomainEvent, ftl_domain::DomainError>,
    rater: Option<String>,
    op: &str,
) -> async_graphql::Result<Prediction> {
    use ftl_commands::store::{ExpectedVersion, NewEvent};
    let c = caller(ctx, Scope::Write)?;
    let st = state(ctx)?;
    let id = parse_id(prediction, "predictionId")?;
    view::prediction(&st.effects.db, c.project_id.0, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| gql_error(Code::NotFound, "prediction not found"))?;
    let rater = rater.unwrap_or_else(|| format!("key:{}", c.key_id));
    ftl_domain::feedback::validate_rater(&rater).map_err(crate::graphql::common::domain_error)?;
    let event =
        event(ftl_domain::PredictionId(id), rater).map_err(crate::graphql::common::domain_error)?;
    let k = crate::graphql::common::keyed(ctx, c, op, &id.to_string(), idempotency_key.as_deref())?;
    let new = NewEvent::from_domain(ftl_domain::ids::derive_event_id(k.id, 0), &event, k.meta);
    let appended = ftl_commands::handler::append_once(
        st.effects.store.as_ref(),
        &ftl_domain::PredictionId(id).stream(),
        ExpectedVersion::StreamExists,
        vec![new],
    )
    .await
    .map_err(crate::graphql::common::command_error)?;
    st.effects
        .projections
        .wait_for(appended.last_position, st.ryw_timeout())
        .await;
    view::prediction(&st.effects.db, c.project_id.0, id)
        .await
        .map_err(internal)?
        .map(Prediction::from)
        .ok_or_else(|| gql_error(Code::Internal, "the prediction is not readable yet; retry"))
}

#[Object]
impl FeedbackMutation {
    /// Thumbs up (`true`), down (`false`) or cleared (`null`); a change is a
    /// new judgment, the earlier one stays in the history. `rater` defaults
    /// to the API key.
    async fn set_thumb(
        &self,
        ctx: &Context<'_>,
        prediction_id: ID,
        up: Option<bool>,
        rater: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Prediction> {
        judge(
            ctx,
            &prediction_id,
            idempotency_key,
            |p, rater| {
                Ok(ftl_domain::DomainEvent::ThumbSet(
                    ftl_domain::feedback::ThumbSet {
                        prediction_id: p,
                        rater,
                        up,
                    },
                ))
            },
            rater,
            "setThumb",
        )
        .await
    }

    /// The detailed evaluation: success, failure tags (`failure_taxonomy_v1`;
    /// an unknown one is refused), strengths, notes, expected behaviour.
    #[allow(clippy::too_many_arguments)]
    async fn evaluate_prediction(
        &self,
        ctx: &Context<'_>,
        prediction_id: ID,
        success: bool,
        #[graphql(default)] tags: Vec<String>,
        #[graphql(default)] strengths: String,
        #[graphql(default)] notes: String,
        #[graphql(default)] expected_behaviour: String,
        #[graphql(default_with = "String::from(\"human\")")] source: String,
        rater: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Prediction> {
        judge(
            ctx,
            &prediction_id,
            idempotency_key,
            |p, rater| {
                let e = ftl_domain::feedback::Evaluated {
                    prediction_id: p,
                    rater,
                    success,
                    tags: ftl_domain::feedback::normalize_tags(&tags)?,
                    source,
                    taxonomy: ftl_domain::feedback::TAXONOMY.into(),
                    strengths,
                    notes,
                    expected_behaviour,
                };
                e.validate()?;
                Ok(ftl_domain::DomainEvent::Evaluated(e))
            },
            rater,
            "evaluatePrediction",
        )
        .await
    }

    /// A multi-axis rating (1–5 on any of clarity, accuracy, conciseness,
    /// overall); a re-rating is a new judgment and becomes the current one.
    #[allow(clippy::too_many_arguments)]
    async fn rate_prediction(
        &self,
        ctx: &Context<'_>,
        prediction_id: ID,
        axes: AxesInput,
        #[graphql(default)] comment: String,
        comparison_id: Option<ID>,
        rater: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Prediction> {
        let comparison = comparison_id
            .map(|c| parse_id(&c, "comparisonId"))
            .transpose()?;
        // A comparison named must exist in the caller's project, like every id.
        if let Some(cmp) = comparison {
            let c = caller(ctx, Scope::Write)?;
            ftl_projections::views::comparisons::comparison(
                &state(ctx)?.effects.db,
                c.project_id.0,
                cmp,
            )
            .await
            .map_err(internal)?
            .ok_or_else(|| gql_error(Code::NotFound, "comparison not found"))?;
        }
        judge(
            ctx,
            &prediction_id,
            idempotency_key,
            |p, rater| {
                let mut map = std::collections::BTreeMap::new();
                for (name, v) in [
                    ("clarity", axes.clarity),
                    ("accuracy", axes.accuracy),
                    ("conciseness", axes.conciseness),
                    ("overall", axes.overall),
                ] {
                    if let Some(v) = v {
                        let v = u8::try_from(v).map_err(|_| {
                            ftl_domain::DomainError::invalid(
                                format!("axes.{name}"),
                                "must be an integer from 1 to 5",
                            )
                        })?;
                        map.insert(name.to_string(), v);
                    }
                }
                let r = ftl_domain::feedback::Rated {
                    rating_id: uuid::Uuid::new_v4(),
                    prediction_id: p,
                    rater,
                    axes: map,
                    comment,
                    comparison_id: comparison,
                };
                r.validate()?;
                Ok(ftl_domain::DomainEvent::Rated(r))
            },
            rater,
            "ratePrediction",
        )
        .await
    }
}
