//! `judgmentTrends` and judgments as of a past moment.

use super::types::*;
use crate::graphql::common::errors::{Code, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use ftl_domain::project::Scope;
use ftl_projections::views::judgments::{self, HistoryFilter, Tally};

#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// What raters said per day or week of the judged exchanges (of one
    /// model, or all), as it stood at `asOf` (default: now) — every
    /// judgment is in the log, so any past view can be rebuilt exactly.
    /// `source` narrows to a kind of prompt (`graphql`: the chat portal,
    /// `openai_api`, `comparison`: the lab); `tag` to exchanges whose
    /// evaluation (as of then) carries that failure tag.
    #[allow(clippy::too_many_arguments)]
    async fn judgment_trends(
        &self,
        ctx: &Context<'_>,
        model_id: Option<ID>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(default_with = "TrendBucket::Day")] bucket: TrendBucket,
        as_of: Option<DateTime<Utc>>,
        source: Option<String>,
        tag: Option<String>,
    ) -> async_graphql::Result<Vec<JudgmentTrend>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            return Err(gql_error(Code::InvalidInput, "`to` must be after `from`"));
        }
        ftl_domain::feedback::check_tag_filter(tag.as_deref())
            .map_err(|m| gql_error(Code::InvalidInput, m))?;
        let filter = HistoryFilter {
            model_id: model_id.map(|m| parse_id(&m, "modelId")).transpose()?,
            from,
            to,
            as_of,
            source,
        };
        let times = judgments::prediction_times(&st.effects.db, c.project_id.0, &filter)
            .await
            .map_err(internal)?;
        let history = judgments::history(&st.effects.db, c.project_id.0, &filter)
            .await
            .map_err(internal)?;
        // Exchanges that happened after `asOf` did not exist yet.
        let mut times: Vec<(uuid::Uuid, DateTime<Utc>)> = match as_of {
            Some(a) => times.into_iter().filter(|(_, t)| *t <= a).collect(),
            None => times,
        };
        let mut history = history;
        if let Some(t) = &tag {
            let by = judgments::by_exchange(history.iter().cloned());
            let tagged: std::collections::BTreeSet<uuid::Uuid> = by
                .into_iter()
                .filter(|(_, rows)| Tally::of_current(rows).any_tags.contains(t.as_str()))
                .map(|(id, _)| id)
                .collect();
            times.retain(|(id, _)| tagged.contains(id));
            history.retain(|h| tagged.contains(&h.prediction_id));
        }
        let times: Vec<DateTime<Utc>> = times.into_iter().map(|(_, t)| t).collect();
        Ok(trends(&times, &history, bucket))
    }
}
