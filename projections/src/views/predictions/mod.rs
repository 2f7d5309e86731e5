//! Predictions as the predictions table and the model pages read them:
//! one row per recorded exchange, newest first, by model.

mod feedback;
mod list;
mod record;

pub use feedback::*;
pub use list::*;

use super::types;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use ftl_domain::DomainEvent;

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

    fn hidden_tables(&self) -> &'static [&'static str] {
        // SQLite's FTS5 index; PostgreSQL keeps a tsvector column instead.
        &["predictions_fts"]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, ts, f) = (t.uuid, t.ts, t.float);
        // Full text over the messages and the response: a tsvector column
        // with a GIN index on PostgreSQL, a contentless FTS5 index keyed by
        // `seq` on SQLite (the text is stored once, in the table).
        let (search_col, search_index) = if postgres {
            (
                ", search TSVECTOR NOT NULL".to_string(),
                format!(
                    "CREATE INDEX IF NOT EXISTS predictions{s}_search ON predictions{s} USING GIN (search);"
                ),
            )
        } else {
            (
                String::new(),
                format!(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS predictions_fts{s} USING fts5(body, content='', \
                     tokenize='porter unicode61 remove_diacritics 2');"
                ),
            )
        };
        format!(
            "CREATE TABLE IF NOT EXISTS predictions{s} (
                prediction_id {u} PRIMARY KEY, project_id {u} NOT NULL, model_id {u} NOT NULL,
                model_name TEXT NOT NULL, messages TEXT NOT NULL, response TEXT NOT NULL,
                finish_reason TEXT NOT NULL, params TEXT NOT NULL, latency_ms {f} NOT NULL,
                ttft_ms {f}, prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,
                model_version TEXT NOT NULL, usage_source TEXT NOT NULL, cost_usd {f},
                source TEXT NOT NULL, started_at {ts} NOT NULL, seq BIGINT NOT NULL{search_col});
             {search_index}
             CREATE INDEX IF NOT EXISTS predictions{s}_by_project ON predictions{s} (project_id, seq);
             CREATE INDEX IF NOT EXISTS predictions{s}_by_latency ON predictions{s} (project_id, latency_ms, seq);
             CREATE INDEX IF NOT EXISTS predictions{s}_by_model ON predictions{s} (project_id, model_id, seq);
             CREATE INDEX IF NOT EXISTS predictions{s}_by_model_time ON predictions{s} (model_id, started_at);
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
                    record::record(tx, s, d, e).await?;
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
