//! Judgment history over GraphQL: trends of what raters said per day or
//! week of the judged exchanges ("quality improved after retraining"),
//! any of them as of a past moment (folded from the log's judgments), and
//! conversations turned into a fine-tuning dataset.

use super::errors::{Code, gql_error, internal};
use super::query::parse_id;
use super::training::Dataset;
use super::{caller, state};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use ftl_domain::project::Scope;
use ftl_projections::views::judgments::{self, HistoryFilter, JudgmentRow, Tally};
use std::collections::BTreeMap;

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrendBucket {
    /// UTC days.
    Day,
    /// ISO weeks (Monday 00:00 UTC).
    Week,
    /// One bucket over the whole range.
    All,
}

#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct TagTally {
    pub tag: String,
    pub count: i64,
}

/// What raters said about the exchanges of one bucket (by when the
/// exchange happened), as it stood at `asOf`.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct JudgmentTrend {
    /// The bucket's start (the first exchange's time for `ALL`).
    pub start: DateTime<Utc>,
    pub predictions: i64,
    /// Exchanges with at least one current judgment.
    pub judged: i64,
    pub thumbs_up: i64,
    pub thumbs_down: i64,
    /// Current evaluations, and the share of them that are successes.
    pub evaluations: i64,
    pub success_rate: Option<f64>,
    /// Failure tags of current failed evaluations, most frequent first.
    pub failure_tags: Vec<TagTally>,
    /// Current ratings with an overall score, and their mean.
    pub ratings: i64,
    pub mean_overall: Option<f64>,
}

fn bucket_start(t: DateTime<Utc>, b: TrendBucket) -> DateTime<Utc> {
    let day = Utc
        .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .unwrap_or(t);
    match b {
        TrendBucket::Day => day,
        TrendBucket::Week => day - Duration::days(i64::from(t.weekday().num_days_from_monday())),
        TrendBucket::All => DateTime::<Utc>::UNIX_EPOCH,
    }
}

/// Folds exchanges and their judgments (log order) into buckets.
pub fn trends(
    times: &[DateTime<Utc>],
    history: &[JudgmentRow],
    bucket: TrendBucket,
) -> Vec<JudgmentTrend> {
    let mut out: BTreeMap<DateTime<Utc>, JudgmentTrend> = BTreeMap::new();
    let empty = |start| JudgmentTrend {
        start,
        predictions: 0,
        judged: 0,
        thumbs_up: 0,
        thumbs_down: 0,
        evaluations: 0,
        success_rate: None,
        failure_tags: vec![],
        ratings: 0,
        mean_overall: None,
    };
    for t in times {
        let s = bucket_start(*t, bucket);
        out.entry(s).or_insert_with(|| empty(s)).predictions += 1;
    }
    // Current judgments in log order, tallied per bucket of their exchange.
    let mut now = judgments::current(history);
    now.sort_by_key(|j| j.position);
    let mut tallies: BTreeMap<DateTime<Utc>, Tally> = BTreeMap::new();
    for j in now {
        tallies
            .entry(bucket_start(j.started_at, bucket))
            .or_default()
            .add(j);
    }
    for (s, t) in tallies {
        let b = out.entry(s).or_insert_with(|| empty(s));
        b.judged = t.judged.len() as i64;
        b.thumbs_up = t.thumbs_up;
        b.thumbs_down = t.thumbs_down;
        b.evaluations = t.evaluations();
        b.success_rate = t.success_rate();
        b.ratings = t.ratings;
        b.mean_overall = t.mean_overall();
        let mut tags: Vec<TagTally> = t
            .failure_tags
            .into_iter()
            .map(|(tag, count)| TagTally { tag, count })
            .collect();
        tags.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.tag.cmp(&b.tag)));
        b.failure_tags = tags;
    }
    let mut v: Vec<JudgmentTrend> = out.into_values().collect();
    if bucket == TrendBucket::All
        && let (Some(b), Some(first)) = (v.first_mut(), times.first())
    {
        b.start = *first;
    }
    v
}

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

/// A dataset made from conversations.
#[derive(SimpleObject)]
pub struct ConversationDataset {
    pub dataset: Dataset,
    /// Conversations written as training rows.
    pub rows: i32,
    /// Conversations left out: judged bad and dropped, or with nothing
    /// left to train on once their bad answer was weighted 0.
    pub skipped: i32,
}

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
                match crate::exports::sft_row(row, mine, drop_bad) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    fn j(
        pos: i64,
        p: u128,
        started: DateTime<Utc>,
        rater: &str,
        kind: &str,
        payload: serde_json::Value,
    ) -> JudgmentRow {
        JudgmentRow {
            position: pos,
            prediction_id: uuid::Uuid::from_u128(p),
            model_id: uuid::Uuid::nil(),
            started_at: started,
            rater: rater.into(),
            kind: kind.into(),
            payload,
            at: started,
        }
    }

    #[test]
    fn trends_bucket_by_day_and_iso_week_worked_by_hand() {
        // 2026-11-29 is a Sunday, 11-30 a Monday.
        let (sun, mon) = (at(29, 10), at(30, 9));
        let times = vec![sun, sun, mon];
        let history = vec![
            j(
                1,
                1,
                sun,
                "ann",
                "evaluation",
                json!({"success": false, "tags": ["hallucination", "incomplete"]}),
            ),
            j(
                2,
                2,
                sun,
                "ann",
                "evaluation",
                json!({"success": true, "tags": []}),
            ),
            j(3, 1, sun, "ann", "rating", json!({"axes": {"overall": 2}})),
            j(4, 3, mon, "bob", "rating", json!({"axes": {"overall": 5}})),
            j(5, 3, mon, "ann", "rating", json!({"axes": {"overall": 4}})),
            j(6, 3, mon, "ann", "thumb", json!({"up": true})),
            j(
                7,
                1,
                sun,
                "bob",
                "evaluation",
                json!({"success": false, "tags": ["hallucination"]}),
            ),
        ];
        let days = trends(&times, &history, TrendBucket::Day);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].start, at(29, 0));
        assert_eq!((days[0].predictions, days[0].judged), (2, 2));
        assert_eq!(days[0].evaluations, 3);
        assert_eq!(days[0].success_rate, Some(1.0 / 3.0));
        assert_eq!(
            days[0].failure_tags,
            vec![
                TagTally {
                    tag: "hallucination".into(),
                    count: 2
                },
                TagTally {
                    tag: "incomplete".into(),
                    count: 1
                }
            ]
        );
        assert_eq!((days[0].ratings, days[0].mean_overall), (1, Some(2.0)));
        assert_eq!(days[1].start, at(30, 0));
        assert_eq!(
            (days[1].predictions, days[1].thumbs_up, days[1].ratings),
            (1, 1, 2)
        );
        assert_eq!(days[1].mean_overall, Some(4.5));
        // Sunday belongs to the week of Monday 11-23; Monday starts a new one.
        let weeks = trends(&times, &history, TrendBucket::Week);
        assert_eq!(
            weeks.iter().map(|w| w.start).collect::<Vec<_>>(),
            vec![at(23, 0), at(30, 0)]
        );
        let all = trends(&times, &history, TrendBucket::All);
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].start, all[0].predictions, all[0].ratings),
            (sun, 3, 3)
        );
        assert_eq!(all[0].mean_overall, Some(11.0 / 3.0));
    }
}
