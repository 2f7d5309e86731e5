//! The judgments given to a project's exchanges (current ratings,
//! evaluations and thumbs, and each exchange's history), and a model's
//! usage over time.

use crate::json_text::JsonText;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use uuid::Uuid;

/// A rating as stored: prediction, rater, then the axes clarity,
/// accuracy, conciseness and overall.
type RatingRow = (
    Uuid,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// Current ratings (latest per prediction and rater) of a project's
/// predictions, optionally of one model: (prediction, rater, axes).
pub async fn ratings(
    db: &Db,
    project: Uuid,
    model: Option<Uuid>,
) -> Result<Vec<(Uuid, String, [Option<i64>; 4])>, sqlx::Error> {
    let sql = "SELECT r.prediction_id, r.rater, r.clarity, r.accuracy, r.conciseness, r.overall
               FROM ratings r JOIN predictions p ON p.prediction_id = r.prediction_id
               WHERE p.project_id = $1 AND ($2 IS NULL OR p.model_id = $2)
               ORDER BY r.prediction_id, r.rater";
    let rows = crate::fetch!(db, fetch_all, RatingRow, sql, project, model)?;
    Ok(rows
        .into_iter()
        .map(|(id, rater, c, a, k, o)| (id, rater, [c, a, k, o]))
        .collect())
}

/// The ratings given inside one comparison: (prediction, rater) → the axes
/// given (`clarity`, `accuracy`, `conciseness`, `overall`) as a JSON object.
pub async fn comparison_ratings(
    db: &Db,
    comparison: Uuid,
) -> Result<std::collections::HashMap<(Uuid, String), serde_json::Value>, sqlx::Error> {
    let sql = "SELECT prediction_id, rater, clarity, accuracy, conciseness, overall
               FROM ratings WHERE comparison_id = $1";
    let rows = crate::fetch!(db, fetch_all, RatingRow, sql, comparison)?;
    Ok(rows
        .into_iter()
        .map(|(id, rater, c, a, k, o)| {
            let axes = ["clarity", "accuracy", "conciseness", "overall"]
                .into_iter()
                .zip([c, a, k, o])
                .filter_map(|(axis, v)| Some((axis.to_string(), v?.into())))
                .collect();
            ((id, rater), serde_json::Value::Object(axes))
        })
        .collect())
}

/// Current evaluations (success, tags) of a project's predictions,
/// optionally of one model.
pub async fn evaluations(
    db: &Db,
    project: Uuid,
    model: Option<Uuid>,
) -> Result<Vec<(bool, Vec<String>)>, sqlx::Error> {
    let sql = "SELECT e.success, e.tags FROM evaluations e JOIN predictions p ON p.prediction_id = e.prediction_id
               WHERE p.project_id = $1 AND ($2 IS NULL OR p.model_id = $2)";
    let rows = crate::fetch!(
        db,
        fetch_all,
        (bool, JsonText<Vec<String>>),
        sql,
        project,
        model
    )?;
    Ok(rows.into_iter().map(|(ok, tags)| (ok, tags.0)).collect())
}

/// Thumbs up and down currently given (latest per prediction and rater).
pub async fn thumbs(
    db: &Db,
    project: Uuid,
    model: Option<Uuid>,
) -> Result<(i64, i64), sqlx::Error> {
    let sql = "SELECT COALESCE(SUM(CASE WHEN t.up THEN 1 ELSE 0 END), 0) AS up,
                      COALESCE(SUM(CASE WHEN NOT t.up THEN 1 ELSE 0 END), 0) AS down
               FROM thumbs t JOIN predictions p ON p.prediction_id = t.prediction_id
               WHERE p.project_id = $1 AND ($2 IS NULL OR p.model_id = $2) AND t.up IS NOT NULL";
    crate::fetch!(db, fetch_one, (i64, i64), sql, project, model)
}

/// Every judgment a prediction received, in log order: (kind, payload, at).
pub async fn feedback_history(
    db: &Db,
    prediction: Uuid,
) -> Result<Vec<(String, serde_json::Value, DateTime<Utc>)>, sqlx::Error> {
    let sql =
        "SELECT kind, payload, at FROM feedback_history WHERE prediction_id = $1 ORDER BY position";
    let rows = crate::fetch!(
        db,
        fetch_all,
        (String, JsonText<serde_json::Value>, DateTime<Utc>),
        sql,
        prediction
    )?;
    Ok(rows
        .into_iter()
        .map(|(kind, payload, at)| (kind, payload.0, at))
        .collect())
}

/// One exchange as the usage history reads it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UsageRow {
    pub started_at: DateTime<Utc>,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: Option<f64>,
}

/// A model's exchanges in `[from, to)`, oldest first (at most 1,000,000).
pub async fn usage(
    db: &Db,
    project: Uuid,
    model: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<UsageRow>, sqlx::Error> {
    let sql = "SELECT started_at, latency_ms, ttft_ms, prompt_tokens, completion_tokens, cost_usd
               FROM predictions WHERE model_id = $1 AND project_id = $2
                 AND started_at >= $3 AND started_at < $4
               ORDER BY started_at LIMIT 1000000";
    crate::fetch!(db, fetch_all, UsageRow, sql, model, project, from, to)
}
