//! The predictions table: one exchange, a page of them in any order with
//! filters and full-text search, or a set by id.

use crate::json_text::JsonText;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PredictionRow {
    pub prediction_id: Uuid,
    pub model_id: Uuid,
    pub model_name: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub messages: serde_json::Value,
    pub response: String,
    pub finish_reason: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
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
        .map(|t| format!("%\"{}\"%", crate::views::catalog::escape_like(t)));
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
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
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
        q.fetch_all(pool).await
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
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(project);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(pool).await
    })
}

pub async fn prediction(
    db: &Db,
    project: Uuid,
    id: Uuid,
) -> Result<Option<PredictionRow>, sqlx::Error> {
    let sql = "SELECT * FROM predictions WHERE prediction_id = $1 AND project_id = $2";
    crate::fetch!(db, fetch_optional, PredictionRow, sql, id, project)
}
