//! Comparison sessions as the lab reads them: the session, each model's
//! answer per prompt, and each rater's current vote per prompt.

use super::types;
use crate::json_text::JsonText;
use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use ftl_domain::DomainEvent;
use uuid::Uuid;

pub struct ComparisonsProjection;

#[async_trait]
impl Projection for ComparisonsProjection {
    fn name(&self) -> &'static str {
        "comparisons"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["comparisons", "comparison_responses", "comparison_votes"]
    }

    fn ddl(&self, postgres: bool, s: &str) -> String {
        let t = types(postgres);
        let (u, ts) = (t.uuid, t.ts);
        format!(
            "CREATE TABLE IF NOT EXISTS comparisons{s} (
                comparison_id {u} PRIMARY KEY, project_id {u} NOT NULL, name TEXT NOT NULL,
                model_ids TEXT NOT NULL, prompts TEXT NOT NULL, created_at {ts} NOT NULL, seq BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS comparisons{s}_by_project ON comparisons{s} (project_id, seq);
             CREATE TABLE IF NOT EXISTS comparison_responses{s} (
                comparison_id {u} NOT NULL, prompt_index BIGINT NOT NULL, model_id {u} NOT NULL,
                model_name TEXT NOT NULL, prediction_id {u} NOT NULL, content TEXT NOT NULL,
                PRIMARY KEY (comparison_id, prompt_index, model_id));
             CREATE TABLE IF NOT EXISTS comparison_votes{s} (
                comparison_id {u} NOT NULL, prompt_index BIGINT NOT NULL, rater TEXT NOT NULL,
                preferences TEXT NOT NULL, at {ts} NOT NULL,
                PRIMARY KEY (comparison_id, prompt_index, rater));"
        )
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("comparison.")
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for d in events {
            match &d.event {
                DomainEvent::ComparisonCreated(e) => {
                    let sql = format!(
                        "INSERT INTO comparisons{s} (comparison_id, project_id, name, model_ids, prompts, created_at, seq)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
                    );
                    execute!(
                        tx,
                        sql,
                        e.comparison_id,
                        e.project_id.0,
                        &e.name,
                        serde_json::to_string(&e.model_ids).unwrap_or_default(),
                        serde_json::to_string(&e.prompts).unwrap_or_default(),
                        d.recorded_at,
                        d.position as i64
                    )?;
                }
                DomainEvent::ComparisonResponse(e) => {
                    let sql = format!(
                        "INSERT INTO comparison_responses{s} (comparison_id, prompt_index, model_id, model_name, prediction_id, content)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
                    );
                    execute!(
                        tx,
                        sql,
                        e.comparison_id,
                        i64::from(e.prompt_index),
                        e.model_id,
                        &e.model_name,
                        e.prediction_id,
                        &e.content
                    )?;
                }
                DomainEvent::ComparisonVoted(e) => {
                    let sql = format!(
                        "INSERT INTO comparison_votes{s} (comparison_id, prompt_index, rater, preferences, at)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (comparison_id, prompt_index, rater)
                         DO UPDATE SET preferences = excluded.preferences, at = excluded.at"
                    );
                    execute!(
                        tx,
                        sql,
                        e.comparison_id,
                        i64::from(e.prompt_index),
                        &e.rater,
                        serde_json::to_string(&e.preferences).unwrap_or_default(),
                        d.recorded_at
                    )?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The types the rows below hold as JSON text.
type Prompts = Vec<Vec<ftl_domain::prediction::ChatMessage>>;
type Preferences = std::collections::BTreeMap<Uuid, ftl_domain::comparison::Preference>;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ComparisonRow {
    pub comparison_id: Uuid,
    pub name: String,
    #[sqlx(try_from = "JsonText<Vec<Uuid>>")]
    pub model_ids: Vec<Uuid>,
    #[sqlx(try_from = "JsonText<Prompts>")]
    pub prompts: Prompts,
    pub created_at: DateTime<Utc>,
}

pub async fn comparison(
    db: &Db,
    project: Uuid,
    id: Uuid,
) -> Result<Option<ComparisonRow>, sqlx::Error> {
    let sql = "SELECT comparison_id, name, model_ids, prompts, created_at FROM comparisons
               WHERE comparison_id = $1 AND project_id = $2";
    crate::fetch!(db, fetch_optional, ComparisonRow, sql, id, project)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ResponseRow {
    pub prompt_index: i64,
    pub model_id: Uuid,
    pub model_name: String,
    pub prediction_id: Uuid,
    pub content: String,
}

pub async fn responses(db: &Db, comparison: Uuid) -> Result<Vec<ResponseRow>, sqlx::Error> {
    let sql = "SELECT prompt_index, model_id, model_name, prediction_id, content FROM comparison_responses
               WHERE comparison_id = $1 ORDER BY prompt_index";
    crate::fetch!(db, fetch_all, ResponseRow, sql, comparison)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VoteRow {
    pub prompt_index: i64,
    pub rater: String,
    #[sqlx(try_from = "JsonText<Preferences>")]
    pub preferences: Preferences,
    pub at: DateTime<Utc>,
}

pub async fn votes(db: &Db, comparison: Uuid) -> Result<Vec<VoteRow>, sqlx::Error> {
    let sql = "SELECT prompt_index, rater, preferences, at FROM comparison_votes
               WHERE comparison_id = $1 ORDER BY prompt_index, rater";
    crate::fetch!(db, fetch_all, VoteRow, sql, comparison)
}
