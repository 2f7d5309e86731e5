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
        &["predictions"]
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
             CREATE INDEX IF NOT EXISTS predictions{s}_by_model ON predictions{s} (project_id, model_id, seq);"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type == "prediction.recorded"
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for d in events {
            let DomainEvent::PredictionRecorded(e) = &d.event else {
                continue;
            };
            let sql = format!(
                "INSERT INTO predictions{s} (prediction_id, project_id, model_id, model_name, messages, response,
                    finish_reason, params, latency_ms, ttft_ms, prompt_tokens, completion_tokens, source, started_at, seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING"
            );
            let started =
                DateTime::<Utc>::from_timestamp_millis(e.started_ms).unwrap_or(d.recorded_at);
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
        }
        Ok(())
    }
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
