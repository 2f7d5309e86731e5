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

/// The text search looks in: every message's content, then the response.
fn search_text(e: &ftl_domain::prediction::PredictionRecorded) -> String {
    let mut text = String::new();
    for m in &e.messages {
        text.push_str(&m.content);
        text.push('\n');
    }
    text.push_str(&e.response);
    text
}

/// The text search configuration of PostgreSQL (English stemming, like
/// SQLite's porter tokenizer).
const PG_TEXT_CONFIG: &str = "english";

async fn record(
    tx: &mut DbTx,
    s: &str,
    d: &Decoded,
    e: &ftl_domain::prediction::PredictionRecorded,
) -> Result<(), ProjectionError> {
    let postgres = tx.is_postgres();
    let (search_col, search_val) = if postgres {
        (
            ", search",
            format!(", to_tsvector('{PG_TEXT_CONFIG}', $19)"),
        )
    } else {
        ("", String::new())
    };
    let sql = format!(
        "INSERT INTO predictions{s} (prediction_id, project_id, model_id, model_name, messages, response,
            finish_reason, params, latency_ms, ttft_ms, prompt_tokens, completion_tokens, model_version,
            usage_source, cost_usd, source, started_at, seq{search_col})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18{search_val})
         ON CONFLICT DO NOTHING"
    );
    let started = DateTime::<Utc>::from_timestamp_millis(e.started_ms).unwrap_or(d.recorded_at);
    let text = search_text(e);
    let messages = serde_json::to_string(&e.messages).unwrap_or_else(|_| "[]".into());
    let params = e.params.to_string();
    let seq = d.position as i64;
    macro_rules! insert {
        ($($extra:expr),*) => {
            execute!(
                tx,
                sql,
                e.prediction_id.0,
                e.project_id.0,
                e.model_id,
                &e.model_name,
                &messages,
                &e.response,
                &e.finish_reason,
                &params,
                e.latency_ms,
                e.ttft_ms,
                e.prompt_tokens as i64,
                e.completion_tokens as i64,
                &e.model_version,
                &e.usage_source,
                e.cost_usd,
                &e.source,
                started,
                seq
                $(, $extra)*
            )
        };
    }
    if postgres {
        insert!(&text)?;
    } else if insert!()? == 1 {
        let sql = format!("INSERT INTO predictions_fts{s} (rowid, body) VALUES ($1, $2)");
        execute!(tx, sql, seq, &text)?;
    }
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
    pub model_version: String,
    /// `tokenizer`, `provider` or `none`.
    pub usage_source: String,
    pub cost_usd: Option<f64>,
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub seq: i64,
}

macro_rules! prediction_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<PredictionRow, sqlx::Error> {
            Ok(PredictionRow {
                prediction_id: r.try_get("prediction_id")?,
                model_id: r.try_get("model_id")?,
                model_name: r.try_get("model_name")?,
                messages: crate::json_col!(r, "messages")?,
                response: r.try_get("response")?,
                finish_reason: r.try_get("finish_reason")?,
                params: crate::json_col!(r, "params")?,
                latency_ms: r.try_get("latency_ms")?,
                ttft_ms: r.try_get("ttft_ms")?,
                prompt_tokens: r.try_get("prompt_tokens")?,
                completion_tokens: r.try_get("completion_tokens")?,
                model_version: r.try_get("model_version")?,
                usage_source: r.try_get("usage_source")?,
                cost_usd: r.try_get("cost_usd")?,
                source: r.try_get("source")?,
                started_at: r.try_get("started_at")?,
                seq: r.try_get("seq")?,
            })
        })()
    }};
}

/// Which predictions to list (every field narrows; none: all of the project's).
#[derive(Debug, Clone, Default)]
pub struct PredictionFilter {
    pub model_id: Option<Uuid>,
    /// Words that must all appear in the messages or the response (full
    /// text: case, accents and English word endings do not matter).
    pub search: Option<String>,
    /// Started at or after / before.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// A failure tag of a current evaluation (any rater).
    pub tag: Option<String>,
    /// A current overall rating (any rater) at least / at most this.
    pub min_rating: Option<i64>,
    pub max_rating: Option<i64>,
    pub outcome: Option<Outcome>,
    /// `graphql`, `openai_api` or `comparison`.
    pub source: Option<String>,
    /// Only exchanges recorded at or before this log position (an export's
    /// position: the same request at the same position, the same rows).
    pub until_position: Option<i64>,
}

/// A judged outcome (any rater's current judgment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Evaluated as a success / a failure.
    Success,
    Failure,
    ThumbsUp,
    ThumbsDown,
}

/// Orders of the predictions table; each pages by cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PredictionSort {
    #[default]
    Newest,
    Oldest,
    Slowest,
    Fastest,
}

/// Where a page ends: the last row's sort key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub seq: i64,
    pub latency_ms: f64,
}

impl Cursor {
    pub fn of(row: &PredictionRow) -> Self {
        Cursor {
            seq: row.seq,
            latency_ms: row.latency_ms,
        }
    }
}

/// The words of a search as an FTS5 query: each a quoted term (so no
/// character of the input is FTS5 syntax), all required. `None`: no word.
pub fn fts5_query(search: &str) -> Option<String> {
    let terms: Vec<String> = search
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(32)
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// A page of predictions in `sort` order after `after`.
pub async fn predictions(
    db: &Db,
    project: Uuid,
    filter: &PredictionFilter,
    sort: PredictionSort,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<PredictionRow>, sqlx::Error> {
    let postgres = matches!(db, Db::Postgres(_));
    let search = match filter.search.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Some(s),
        _ => None,
    };
    // Full text: SQLite walks its FTS5 index (newest match first, joined to
    // the table by seq); PostgreSQL filters by the GIN-indexed tsvector.
    let (from, search_cond, search_bind) = match search {
        None => ("predictions p".to_string(), "", None),
        Some(q) if postgres => (
            "predictions p".to_string(),
            "AND p.search @@ websearch_to_tsquery('english', $16)",
            Some(q.to_string()),
        ),
        Some(q) => {
            let Some(fts) = fts5_query(q) else {
                return Ok(vec![]);
            };
            let g: i64 = crate::on_pool!(db, |pool| {
                sqlx::query_scalar(
                    "SELECT generation FROM projection_active WHERE name = 'predictions'",
                )
                .fetch_one(pool)
                .await?
            });
            let t = format!("predictions_fts{}", crate::runner::suffix(g));
            (
                // CROSS JOIN: SQLite keeps the index outermost (newest match
                // first, stop at the page); left to itself the bundled
                // planner probed the index once per row of the table.
                format!("{t} f CROSS JOIN predictions p ON p.project_id = $1 AND p.seq = f.rowid"),
                "AND f.body MATCH $16",
                Some(fts),
            )
        }
    };
    let key = if search.is_some() && !postgres {
        "f.rowid"
    } else {
        "p.seq"
    };
    let (cursor_cond, order) = match sort {
        PredictionSort::Newest => (format!("{key} < $12"), format!("{key} DESC")),
        PredictionSort::Oldest => (format!("{key} > $12"), format!("{key} ASC")),
        PredictionSort::Slowest => (
            "(p.latency_ms < $13 OR (p.latency_ms = $13 AND p.seq < $12))".to_string(),
            "p.latency_ms DESC, p.seq DESC".to_string(),
        ),
        PredictionSort::Fastest => (
            "(p.latency_ms > $13 OR (p.latency_ms = $13 AND p.seq > $12))".to_string(),
            "p.latency_ms ASC, p.seq ASC".to_string(),
        ),
    };
    let (cursor_seq, cursor_latency, use_cursor) = match after {
        Some(c) => (c.seq, c.latency_ms, true),
        None => (0, 0.0, false),
    };
    let sql = format!(
        "SELECT p.* FROM {from} WHERE p.project_id = $1
           AND ($2 IS NULL OR p.model_id = $2)
           AND ($3 IS NULL OR p.started_at >= $3)
           AND ($4 IS NULL OR p.started_at < $4)
           AND ($5 IS NULL OR EXISTS (SELECT 1 FROM evaluations e WHERE e.prediction_id = p.prediction_id AND e.tags LIKE $5 ESCAPE '\\'))
           AND ($6 IS NULL OR EXISTS (SELECT 1 FROM ratings r WHERE r.prediction_id = p.prediction_id AND r.overall >= $6))
           AND ($7 IS NULL OR EXISTS (SELECT 1 FROM ratings r WHERE r.prediction_id = p.prediction_id AND r.overall <= $7))
           AND ($8 IS NULL OR EXISTS (SELECT 1 FROM evaluations e WHERE e.prediction_id = p.prediction_id AND e.success = $8))
           AND ($9 IS NULL OR EXISTS (SELECT 1 FROM thumbs t WHERE t.prediction_id = p.prediction_id AND t.up = $9))
           AND ($10 IS NULL OR p.source = $10)
           AND ($11 = 0 OR {cursor_cond})
           AND ($15 IS NULL OR p.seq <= $15)
           {search_cond}
         ORDER BY {order} LIMIT $14"
    );
    // Tags are stored as a JSON array of strings: match the quoted tag.
    let tag = filter
        .tag
        .as_ref()
        .map(|t| format!("%\"{}\"%", super::catalog::escape_like(t)));
    let evaluated = match filter.outcome {
        Some(Outcome::Success) => Some(true),
        Some(Outcome::Failure) => Some(false),
        _ => None,
    };
    let thumb = match filter.outcome {
        Some(Outcome::ThumbsUp) => Some(true),
        Some(Outcome::ThumbsDown) => Some(false),
        _ => None,
    };
    crate::on_pool!(db, |pool| {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(project)
            .bind(filter.model_id)
            .bind(filter.from)
            .bind(filter.to)
            .bind(tag.clone())
            .bind(filter.min_rating)
            .bind(filter.max_rating)
            .bind(evaluated)
            .bind(thumb)
            .bind(filter.source.clone())
            .bind(i64::from(use_cursor))
            .bind(cursor_seq)
            .bind(cursor_latency)
            .bind(limit)
            .bind(filter.until_position);
        if let Some(b) = &search_bind {
            q = q.bind(b.clone());
        }
        q.fetch_all(pool)
            .await?
            .iter()
            .map(|r| prediction_row!(r))
            .collect()
    })
}

/// These exchanges of `project` (those that exist), in no set order.
pub async fn predictions_with_ids(
    db: &Db,
    project: Uuid,
    ids: &[Uuid],
) -> Result<Vec<PredictionRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT * FROM predictions WHERE project_id = $1 AND prediction_id IN ({})",
        list.join(", ")
    );
    crate::on_pool!(db, |pool| {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(project);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(pool)
            .await?
            .iter()
            .map(|r| prediction_row!(r))
            .collect()
    })
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

/// The ratings given inside one comparison: (prediction, rater) → the axes
/// given (`clarity`, `accuracy`, `conciseness`, `overall`) as a JSON object.
pub async fn comparison_ratings(
    db: &Db,
    comparison: Uuid,
) -> Result<std::collections::HashMap<(Uuid, String), serde_json::Value>, sqlx::Error> {
    let sql = "SELECT prediction_id, rater, clarity, accuracy, conciseness, overall
               FROM ratings WHERE comparison_id = $1";
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql).bind(comparison).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let mut axes = serde_json::Map::new();
                for axis in ["clarity", "accuracy", "conciseness", "overall"] {
                    if let Some(v) = r.try_get::<Option<i64>, _>(axis)? {
                        axes.insert(axis.into(), v.into());
                    }
                }
                Ok((
                    (r.try_get("prediction_id")?, r.try_get("rater")?),
                    serde_json::Value::Object(axes),
                ))
            })
            .collect()
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
            .map(|r| Ok((r.try_get("success")?, crate::json_col!(r, "tags")?)))
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
                Ok((
                    r.try_get("kind")?,
                    crate::json_col!(r, "payload")?,
                    r.try_get("at")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
}

/// One exchange as the usage history reads it.
#[derive(Debug, Clone, PartialEq)]
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
    crate::on_pool!(db, |pool| {
        let rows = sqlx::query(sql)
            .bind(model)
            .bind(project)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    started_at: r.try_get("started_at")?,
                    latency_ms: r.try_get("latency_ms")?,
                    ttft_ms: r.try_get("ttft_ms")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                    cost_usd: r.try_get("cost_usd")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    })
}
