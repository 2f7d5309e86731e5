//! How a recorded exchange enters the predictions table and its full-text
//! index (FTS5 on SQLite, a tsvector column on PostgreSQL).

use crate::runner::{Decoded, ProjectionError};
use crate::{DbTx, execute};
use chrono::{DateTime, Utc};

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

pub(super) async fn record(
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
