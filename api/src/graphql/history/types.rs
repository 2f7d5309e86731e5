//! Trends of judgments per day or week (folded from the log's judgments,
//! as of any moment), and a dataset made from conversations.

use crate::graphql::registry::Dataset;
use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use ftl_projections::views::judgments::{self, JudgmentRow, Tally};
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

pub(super) fn bucket_start(t: DateTime<Utc>, b: TrendBucket) -> DateTime<Utc> {
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
