//! Predictions as the predictions table and the model pages read them:
//! one row per recorded exchange, newest first, by model.

use super::types;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use ftl_domain::DomainEvent;
use sqlx::Row;
use uuid::Uuid;

pub struct PredictionsProjection;

#[async_trait]
impl Projection for PredictionsProjection {
    fn name(&self) -> &'static str {
        "predictions"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "predictions",
            "thumbs",
            "evaluations",
            "ratings",
            "feedback_history",
        ]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, ts, f) = (t.uuid, t.ts, t.float);
        format!(
            "CREATE TABLE IF NOT EXISTS predictions{s} (
                prediction_id {u} PRIMARY KEY, project_id {u} NOT NULL, model_id {u} NOT NULL,
                model_name TEXT NOT NULL, messages TEXT NOT NULL, response TEXT NOT NULL,
                finish_reason TEXT NOT NULL, params TEXT NOT NULL, latency_ms {f} NOT NULL,
                ttft_ms {f}, prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,
                source TEXT NOT NULL, started_at {ts} NOT NULL, seq BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS predictions{s}_by_project ON predictions{s} (project_id, seq);
             CREATE INDEX IF NOT EXISTS predictions{s}_by_model ON predictions{s} (project_id, model_id, seq);
             CREATE TABLE IF NOT EXISTS thumbs{s} (
                prediction_id {u} NOT NULL, rater TEXT NOT NULL, up BOOLEAN, at {ts} NOT NULL,
                PRIMARY KEY (prediction_id, rater));
             CREATE TABLE IF NOT EXISTS evaluations{s} (
                prediction_id {u} NOT NULL, rater TEXT NOT NULL, success BOOLEAN NOT NULL, tags TEXT NOT NULL,
                source TEXT NOT NULL, strengths TEXT NOT NULL, notes TEXT NOT NULL, expected_behaviour TEXT NOT NULL,
                at {ts} NOT NULL, PRIMARY KEY (prediction_id, rater));
             CREATE TABLE IF NOT EXISTS ratings{s} (
                prediction_id {u} NOT NULL, rater TEXT NOT NULL, clarity BIGINT, accuracy BIGINT,
                conciseness BIGINT, overall BIGINT, comment TEXT NOT NULL, comparison_id {u},
                at {ts} NOT NULL, PRIMARY KEY (prediction_id, rater));
             CREATE TABLE IF NOT EXISTS feedback_history{s} (
                position BIGINT PRIMARY KEY, prediction_id {u} NOT NULL, rater TEXT NOT NULL,
                kind TEXT NOT NULL, payload TEXT NOT NULL, at {ts} NOT NULL);
             CREATE INDEX IF NOT EXISTS feedback_history{s}_by_prediction ON feedback_history{s} (prediction_id, position);"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("prediction.")
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for d in events {
            let at = d.recorded_at;
            let (prediction, rater, kind) = match &d.event {
                DomainEvent::PredictionRecorded(e) => {
                    record(tx, s, d, e).await?;
                    continue;
                }
                DomainEvent::ThumbSet(e) => {
                    let sql = format!(
                        "INSERT INTO thumbs{s} (prediction_id, rater, up, at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (prediction_id, rater) DO UPDATE SET up = excluded.up, at = excluded.at"
                    );
                    execute!(tx, sql, e.prediction_id.0, &e.rater, e.up, at)?;
                    (e.prediction_id.0, &e.rater, "thumb")
                }
                DomainEvent::Evaluated(e) => {
                    let sql = format!(
                        "INSERT INTO evaluations{s} (prediction_id, rater, success, tags, source, strengths, notes,
                            expected_behaviour, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (prediction_id, rater) DO UPDATE SET success = excluded.success,
                            tags = excluded.tags, source = excluded.source, strengths = excluded.strengths,
                            notes = excluded.notes, expected_behaviour = excluded.expected_behaviour, at = excluded.at"
                    );
                    execute!(
                        tx,
                        sql,
                        e.prediction_id.0,
                        &e.rater,
                        e.success,
                        serde_json::to_string(&e.tags).unwrap_or_else(|_| "[]".into()),
                        &e.source,
                        &e.strengths,
                        &e.notes,
                        &e.expected_behaviour,
                        at
                    )?;
                    (e.prediction_id.0, &e.rater, "evaluation")
                }
                DomainEvent::Rated(e) => {
                    let sql = format!(
                        "INSERT INTO ratings{s} (prediction_id, rater, clarity, accuracy, conciseness, overall,
                            comment, comparison_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (prediction_id, rater) DO UPDATE SET clarity = excluded.clarity,
                            accuracy = excluded.accuracy, conciseness = excluded.conciseness,
                            overall = excluded.overall, comment = excluded.comment,
                            comparison_id = excluded.comparison_id, at = excluded.at"
                    );
                    let axis = |a: &str| e.axes.get(a).map(|v| i64::from(*v));
                    execute!(
                        tx,
                        sql,
                        e.prediction_id.0,
                        &e.rater,
                        axis("clarity"),
                        axis("accuracy"),
                        axis("conciseness"),
                        axis("overall"),
                        &e.comment,
                        e.comparison_id,
                        at
                    )?;
                    (e.prediction_id.0, &e.rater, "rating")
                }
                _ => continue,
            };
            let sql = format!(
                "INSERT INTO feedback_history{s} (position, prediction_id, rater, kind, payload, at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
            );
            execute!(
                tx,
                sql,
                d.position as i64,
                prediction,
                rater,
                kind,
                d.event.to_payload().to_string(),
                at
            )?;
        }
        Ok(())
    }
}

async fn record(
    tx: &mut DbTx,
    s: &str,
    d: &Decoded,
    e: &ftl_domain::prediction::PredictionRecorded,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO predictions{s} (prediction_id, project_id, model_id, model_name, messages, response,
            finish_reason, params, latency_ms, ttft_ms, prompt_tokens, completion_tokens, source, started_at, seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING"
    );
    let started = DateTime::<Utc>::from_timestamp_millis(e.started_ms).unwrap_or(d.recorded_at);
    execute!(
        tx,
        sql,
        e.prediction_id.0,
        e.project_id.0,
        e.model_id,
        &e.model_name,
        serde_json::to_string(&e.messages).unwrap_or_else(|_| "[]".into()),
        &e.response,
        &e.finish_reason,
        e.params.to_string(),
        e.latency_ms,
        e.ttft_ms,
        e.prompt_tokens as i64,
        e.completion_tokens as i64,
        &e.source,
        started,
        d.position as i64
    )?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub prediction_id: Uuid,
    pub model_id: Uuid,
    pub model_name: String,
    pub messages: serde_json::Value,
    pub response: String,
    pub finish_reason: String,
    pub params: serde_json::Value,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub seq: i64,
}

macro_rules! prediction_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<PredictionRow, sqlx::Error> {
            let messages: String = r.try_get("messages")?;
            let params: String = r.try_get("params")?;
            Ok(PredictionRow {
                prediction_id: r.try_get("prediction_id")?,
                model_id: r.try_get("model_id")?,
                model_name: r.try_get("model_name")?,
                messages: serde_json::from_str(&messages).unwrap_or_default(),
                response: r.try_get("response")?,
                finish_reason: r.try_get("finish_reason")?,
                params: serde_json::from_str(&params).unwrap_or_default(),
                latency_ms: r.try_get("latency_ms")?,
                ttft_ms: r.try_get("ttft_ms")?,
                prompt_tokens: r.try_get("prompt_tokens")?,
                completion_tokens: r.try_get("completion_tokens")?,
                source: r.try_get("source")?,
                started_at: r.try_get("started_at")?,
                seq: r.try_get("seq")?,
            })
        })()
    }};
}

#[derive(Debug, Clone, Default)]
pub struct PredictionFilter {
    pub model_id: Option<Uuid>,
    /// A substring of the prompt or response (case-insensitive).
    pub search: Option<String>,
}

/// Newest first; `before_seq` is the cursor.
pub async fn predictions(
    db: &Db,
    project: Uuid,
    filter: &PredictionFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<PredictionRow>, sqlx::Error> {
    let like = filter
        .search
        .as_ref()
        .map(|t| format!("%{}%", super::catalog::escape_like(&t.to_lowercase())));
    let sql = "SELECT * FROM predictions WHERE project_id = $1
                 AND ($2 IS NULL OR model_id = $2)
                 AND ($3 IS NULL OR LOWER(messages) LIKE $3 ESCAPE '\\' OR LOWER(response) LIKE $3 ESCAPE '\\')
                 AND seq < $4
               ORDER BY seq DESC LIMIT $5";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(project)
        .bind(filter.model_id)
        .bind(like)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| prediction_row!(r))
        .collect())
}

pub async fn prediction(
    db: &Db,
    project: Uuid,
    id: Uuid,
) -> Result<Option<PredictionRow>, sqlx::Error> {
    let sql = "SELECT * FROM predictions WHERE prediction_id = $1 AND project_id = $2";
    crate::on_pool!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(project)
        .fetch_optional(pool)
        .await?
        .map(|r| prediction_row!(&r))
        .transpose())
}

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
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(project)
            .bind(model)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("prediction_id")?,
                    r.try_get("rater")?,
                    [
                        r.try_get("clarity")?,
                        r.try_get("accuracy")?,
                        r.try_get("conciseness")?,
                        r.try_get("overall")?,
                    ],
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
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
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(project)
            .bind(model)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| {
                let tags: String = r.try_get("tags")?;
                Ok((
                    r.try_get("success")?,
                    serde_json::from_str(&tags).unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
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
    crate::on_pool!(db, |pool| {
        let r = sqlx::query(sql)
            .bind(project)
            .bind(model)
            .fetch_one(pool)
            .await?;
        Ok((r.try_get("up")?, r.try_get("down")?))
    })
}

/// Every judgment a prediction received, in log order: (kind, payload, at).
pub async fn feedback_history(
    db: &Db,
    prediction: Uuid,
) -> Result<Vec<(String, serde_json::Value, DateTime<Utc>)>, sqlx::Error> {
    let sql =
        "SELECT kind, payload, at FROM feedback_history WHERE prediction_id = $1 ORDER BY position";
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql).bind(prediction).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok((
                    r.try_get("kind")?,
                    serde_json::from_str(&payload).unwrap_or_default(),
                    r.try_get("at")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
}
