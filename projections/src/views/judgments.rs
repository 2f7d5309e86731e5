//! Judgment history as the history views, trends and exports read it: every
//! thumb, evaluation and rating ever given (the `feedback_history` table,
//! one row per event, in log order), folded to what was current at any
//! moment — so any view can be shown as of a past date.

use crate::json_text::JsonText;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One judgment as it was given.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JudgmentRow {
    pub position: i64,
    pub prediction_id: Uuid,
    pub model_id: Uuid,
    /// When the judged exchange happened.
    pub started_at: DateTime<Utc>,
    pub rater: String,
    /// `thumb`, `evaluation` or `rating`.
    pub kind: String,
    /// The event's payload (`up`; `success`, `tags`, …; `axes`, `comment`).
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub payload: serde_json::Value,
    /// When it was given.
    pub at: DateTime<Utc>,
}

/// Which judgments to read.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub model_id: Option<Uuid>,
    /// Judged exchanges that started in `[from, to)`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only judgments given at or before this moment.
    pub as_of: Option<DateTime<Utc>>,
    /// Where the exchanges came from (the kind of prompt): `graphql` (the
    /// chat portal), `openai_api` or `comparison` (the lab).
    pub source: Option<String>,
}

/// The most judgment rows one read returns.
pub const MAX_ROWS: i64 = 2_000_000;

/// Judgments of a project's exchanges, in log order.
pub async fn history(
    db: &Db,
    project: Uuid,
    f: &HistoryFilter,
) -> Result<Vec<JudgmentRow>, sqlx::Error> {
    let sql = "SELECT h.position, h.prediction_id, p.model_id, p.started_at, h.rater, h.kind, h.payload, h.at
               FROM feedback_history h JOIN predictions p ON p.prediction_id = h.prediction_id
               WHERE p.project_id = $1 AND ($2 IS NULL OR p.model_id = $2)
                 AND ($3 IS NULL OR p.started_at >= $3) AND ($4 IS NULL OR p.started_at < $4)
                 AND ($5 IS NULL OR h.at <= $5) AND ($7 IS NULL OR p.source = $7)
               ORDER BY h.position LIMIT $6";
    crate::fetch!(
        db,
        fetch_all,
        JudgmentRow,
        sql,
        project,
        f.model_id,
        f.from,
        f.to,
        f.as_of,
        MAX_ROWS,
        f.source.clone()
    )
}

/// Every judgment of these exchanges (of `project`) recorded at or before
/// `until_position` (all when `None`), in log order.
pub async fn history_of(
    db: &Db,
    project: Uuid,
    ids: &[Uuid],
    until_position: Option<i64>,
) -> Result<Vec<JudgmentRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT h.position, h.prediction_id, p.model_id, p.started_at, h.rater, h.kind, h.payload, h.at
         FROM feedback_history h JOIN predictions p ON p.prediction_id = h.prediction_id
         WHERE p.project_id = $1 AND ($2 IS NULL OR h.position <= $2) AND h.prediction_id IN ({})
         ORDER BY h.position",
        list.join(", ")
    );
    crate::on_pool!(db, |pool| {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(project)
            .bind(until_position);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(pool).await
    })
}

/// Judgments grouped by their exchange (each group in log order).
pub fn by_exchange(
    rows: impl IntoIterator<Item = JudgmentRow>,
) -> BTreeMap<Uuid, Vec<JudgmentRow>> {
    let mut by: BTreeMap<Uuid, Vec<JudgmentRow>> = BTreeMap::new();
    for r in rows {
        by.entry(r.prediction_id).or_default().push(r);
    }
    by
}

/// Exchanges of a project (optionally one model, one source) that started
/// in `[from, to)`: their ids and start times, oldest first.
pub async fn prediction_times(
    db: &Db,
    project: Uuid,
    f: &HistoryFilter,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    let sql = "SELECT prediction_id, started_at FROM predictions WHERE project_id = $1
                 AND ($2 IS NULL OR model_id = $2)
                 AND ($3 IS NULL OR started_at >= $3) AND ($4 IS NULL OR started_at < $4)
                 AND ($6 IS NULL OR source = $6)
               ORDER BY started_at LIMIT $5";
    crate::fetch!(
        db,
        fetch_all,
        (Uuid, DateTime<Utc>),
        sql,
        project,
        f.model_id,
        f.from,
        f.to,
        MAX_ROWS,
        f.source.clone()
    )
}

/// What was current: the latest judgment per (exchange, rater, kind) among
/// `rows` (in log order). A cleared thumb (`up: null`) counts as none.
pub fn current(rows: &[JudgmentRow]) -> Vec<&JudgmentRow> {
    let mut latest: BTreeMap<(Uuid, &str, &str), &JudgmentRow> = BTreeMap::new();
    for r in rows {
        latest.insert((r.prediction_id, r.rater.as_str(), r.kind.as_str()), r);
    }
    latest
        .into_values()
        .filter(|r| !(r.kind == "thumb" && r.payload["up"].is_null()))
        .collect()
}

/// What current judgments add up to (of one exchange, or of many): the
/// one place a thumb, an evaluation and a rating are read out of a payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Exchanges with at least one judgment counted.
    pub judged: std::collections::BTreeSet<Uuid>,
    pub thumbs_up: i64,
    pub thumbs_down: i64,
    /// The latest thumb counted: +1 or −1.
    pub latest_thumb: Option<i64>,
    pub successes: i64,
    pub failures: i64,
    /// The latest evaluation counted: success, and its tags.
    pub latest_success: Option<bool>,
    pub latest_tags: Vec<String>,
    /// Tags of failed evaluations, with counts.
    pub failure_tags: BTreeMap<String, i64>,
    /// Tags of any evaluation counted (successes' too).
    pub any_tags: std::collections::BTreeSet<String>,
    /// Ratings with an overall score: how many, their sum, the latest.
    pub ratings: i64,
    pub overall_sum: f64,
    pub latest_overall: Option<f64>,
}

impl Tally {
    /// The current judgments among `rows` (log order), tallied in log order.
    pub fn of_current(rows: &[JudgmentRow]) -> Self {
        let mut now = current(rows);
        now.sort_by_key(|j| j.position);
        let mut t = Tally::default();
        for j in now {
            t.add(j);
        }
        t
    }

    /// Counts one current judgment (call in log order for `latest_*`).
    pub fn add(&mut self, j: &JudgmentRow) {
        self.judged.insert(j.prediction_id);
        let p = &j.payload;
        match j.kind.as_str() {
            "thumb" => {
                let up = p["up"] == true;
                if up {
                    self.thumbs_up += 1;
                } else {
                    self.thumbs_down += 1;
                }
                self.latest_thumb = Some(if up { 1 } else { -1 });
            }
            "evaluation" => {
                let ok = p["success"] == true;
                let tags: Vec<String> = p["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                if ok {
                    self.successes += 1;
                } else {
                    self.failures += 1;
                    for t in &tags {
                        *self.failure_tags.entry(t.clone()).or_default() += 1;
                    }
                }
                self.any_tags.extend(tags.iter().cloned());
                self.latest_success = Some(ok);
                self.latest_tags = tags;
            }
            _ => {
                if let Some(o) = p["axes"]["overall"].as_f64() {
                    self.ratings += 1;
                    self.overall_sum += o;
                    self.latest_overall = Some(o);
                }
            }
        }
    }

    pub fn evaluations(&self) -> i64 {
        self.successes + self.failures
    }

    pub fn success_rate(&self) -> Option<f64> {
        (self.evaluations() > 0).then(|| self.successes as f64 / self.evaluations() as f64)
    }

    pub fn mean_overall(&self) -> Option<f64> {
        (self.ratings > 0).then(|| self.overall_sum / self.ratings as f64)
    }

    /// Judged bad: the latest evaluation failed or the latest thumb is down.
    pub fn bad(&self) -> bool {
        self.latest_success == Some(false) || self.latest_thumb == Some(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(pos: i64, p: u128, rater: &str, kind: &str, payload: serde_json::Value) -> JudgmentRow {
        JudgmentRow {
            position: pos,
            prediction_id: Uuid::from_u128(p),
            model_id: Uuid::nil(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            rater: rater.into(),
            kind: kind.into(),
            payload,
            at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_latest_judgment_per_rater_and_kind_is_current() {
        let rows = vec![
            row(1, 1, "ann", "thumb", json!({"up": true})),
            row(2, 1, "ann", "thumb", json!({"up": false})),
            row(3, 1, "bob", "thumb", json!({"up": true})),
            row(4, 1, "bob", "thumb", json!({"up": null})),
            row(5, 1, "ann", "rating", json!({"axes": {"overall": 2}})),
            row(6, 2, "ann", "rating", json!({"axes": {"overall": 5}})),
            row(7, 1, "ann", "rating", json!({"axes": {"overall": 4}})),
        ];
        let now: Vec<i64> = current(&rows).iter().map(|r| r.position).collect();
        assert_eq!(
            now,
            vec![7, 2, 6],
            "bob cleared his thumb; ann's later ones win"
        );
        let before: Vec<i64> = current(&rows[..3]).iter().map(|r| r.position).collect();
        assert_eq!(before, vec![2, 3]);
    }
}
