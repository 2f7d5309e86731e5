//! Judgment history as the history views, trends and exports read it: every
//! thumb, evaluation and rating ever given (the `feedback_history` table,
//! one row per event, in log order), folded to what was current at any
//! moment — so any view can be shown as of a past date.

use chrono::{DateTime, Utc};
use ftl_commands::Db;
use sqlx::Row;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One judgment as it was given.
#[derive(Debug, Clone, PartialEq)]
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
    pub payload: serde_json::Value,
    /// When it was given.
    pub at: DateTime<Utc>,
}

macro_rules! judgment_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<JudgmentRow, sqlx::Error> {
            let payload: String = r.try_get("payload")?;
            Ok(JudgmentRow {
                position: r.try_get("position")?,
                prediction_id: r.try_get("prediction_id")?,
                model_id: r.try_get("model_id")?,
                started_at: r.try_get("started_at")?,
                rater: r.try_get("rater")?,
                kind: r.try_get("kind")?,
                payload: serde_json::from_str(&payload).unwrap_or_default(),
                at: r.try_get("at")?,
            })
        })()
    }};
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
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(project)
        .bind(f.model_id)
        .bind(f.from)
        .bind(f.to)
        .bind(f.as_of)
        .bind(MAX_ROWS)
        .bind(f.source.clone())
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| judgment_row!(r))
        .collect())
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
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(project)
            .bind(until_position);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(pool)
            .await?
            .iter()
            .map(|r| judgment_row!(r))
            .collect()
    })
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
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(project)
            .bind(f.model_id)
            .bind(f.from)
            .bind(f.to)
            .bind(MAX_ROWS)
            .bind(f.source.clone())
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("prediction_id")?, r.try_get("started_at")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
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
