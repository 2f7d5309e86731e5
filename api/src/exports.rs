//! Exports of any predictions filter, streamed page by page:
//! `GET /api/v1/exports/{predictions|conversations|judgments}?format=csv|json|jsonl`
//! with the predictions table's filters as query parameters (`modelId`,
//! `search`, `from`, `to`, `tag`, `minRating`, `maxRating`, `outcome`,
//! `source`, `limit`).
//!
//! - predictions: one row per exchange with its metadata and what its
//!   current judgments add up to;
//! - conversations: OpenAI chat rows (`messages` ending with the answer),
//!   the format fine-tuning reads (also `createDatasetFromConversations`);
//! - judgments: every thumb, evaluation and rating, changes included.

use crate::state::AppState;
use crate::training::rest::{RestError, RestResult};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use ftl_domain::project::Scope;
use ftl_projections::views::judgments::{self, JudgmentRow};
use ftl_projections::views::predictions::{
    self as view, Cursor, Outcome, PredictionFilter, PredictionRow, PredictionSort,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/exports/{kind}", web::get().to(export));
}

/// Rows read per page (and written per chunk).
const PAGE: i64 = 500;
/// The most rows one export writes.
pub const MAX_ROWS: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Predictions,
    Conversations,
    Judgments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Jsonl,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    model_id: Option<Uuid>,
    search: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    tag: Option<String>,
    min_rating: Option<i64>,
    max_rating: Option<i64>,
    /// `success`, `failure`, `thumbs_up` or `thumbs_down`.
    outcome: Option<String>,
    source: Option<String>,
    limit: Option<usize>,
}

fn parse(kind: &str, q: ExportQuery) -> RestResult<(Kind, Format, PredictionFilter, usize)> {
    let kind = match kind {
        "predictions" => Kind::Predictions,
        "conversations" => Kind::Conversations,
        "judgments" => Kind::Judgments,
        other => {
            return Err(RestError::not_found(format!(
                "no export {other:?}: predictions, conversations or judgments"
            )));
        }
    };
    let format = match q.format.as_deref().unwrap_or("jsonl") {
        "csv" => Format::Csv,
        "json" => Format::Json,
        "jsonl" => Format::Jsonl,
        other => {
            return Err(RestError::invalid(format!(
                "format {other:?}: csv, json or jsonl"
            )));
        }
    };
    if q.search.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(RestError::invalid("search: at most 1024 bytes"));
    }
    if let Some(t) = &q.tag
        && !ftl_domain::feedback::FAILURE_TAGS.contains(&t.as_str())
    {
        return Err(RestError::invalid(format!(
            "tag must be one of {}",
            ftl_domain::feedback::FAILURE_TAGS.join(", ")
        )));
    }
    let outcome = match q.outcome.as_deref() {
        None => None,
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some("thumbs_up") => Some(Outcome::ThumbsUp),
        Some("thumbs_down") => Some(Outcome::ThumbsDown),
        Some(other) => {
            return Err(RestError::invalid(format!(
                "outcome {other:?}: success, failure, thumbs_up or thumbs_down"
            )));
        }
    };
    let limit = q.limit.unwrap_or(MAX_ROWS);
    if limit == 0 || limit > MAX_ROWS {
        return Err(RestError::invalid(format!(
            "limit must be between 1 and {MAX_ROWS}"
        )));
    }
    Ok((
        kind,
        format,
        PredictionFilter {
            model_id: q.model_id,
            search: q.search,
            from: q.from,
            to: q.to,
            tag: q.tag,
            min_rating: q.min_rating,
            max_rating: q.max_rating,
            outcome,
            source: q.source,
        },
        limit,
    ))
}

async fn export(
    st: web::Data<AppState>,
    req: HttpRequest,
    kind: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> RestResult {
    let c = crate::training::http::caller(&st, &req, Scope::Read).await?;
    let (kind, format, filter, limit) = parse(&kind, query.into_inner())?;
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    let name = match kind {
        Kind::Predictions => "predictions",
        Kind::Conversations => "conversations",
        Kind::Judgments => "judgments",
    };
    // The first page is read before the answer starts, so a bad filter is
    // an error status rather than a broken download.
    let mut pages = Pages {
        st: st.get_ref().clone(),
        project: c.project_id.0,
        filter,
        after: None,
        left: limit,
        done: false,
    };
    let first = pages.next(kind).await.map_err(RestError::internal)?;
    let mut writer = Writer::new(kind, format);
    let head = writer.page(&first);
    // (pages, writer, the first chunk, ended)
    let stream = futures::stream::unfold(
        (pages, writer, Some(head), false),
        move |(mut pages, mut writer, head, ended)| async move {
            if ended {
                return None;
            }
            if let Some(h) = head {
                return Some((Ok(web::Bytes::from(h)), (pages, writer, None, false)));
            }
            if pages.done {
                let tail = writer.finish();
                return Some((Ok(web::Bytes::from(tail)), (pages, writer, None, true)));
            }
            match pages.next(kind).await {
                Ok(rows) => {
                    let bytes = writer.page(&rows);
                    Some((Ok(web::Bytes::from(bytes)), (pages, writer, None, false)))
                }
                Err(e) => {
                    // The status is sent: end the body early (the client
                    // sees a truncated download) and log why.
                    tracing::error!(error = %e, "export failed mid-stream");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        (pages, writer, None, true),
                    ))
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.{ext}\""),
        ))
        .streaming(stream))
}

/// Pages of export rows under a filter, newest exchange first.
struct Pages {
    st: AppState,
    project: Uuid,
    filter: PredictionFilter,
    after: Option<Cursor>,
    left: usize,
    done: bool,
}

impl Pages {
    async fn next(&mut self, kind: Kind) -> anyhow::Result<Vec<Value>> {
        if self.done || self.left == 0 {
            self.done = true;
            return Ok(vec![]);
        }
        let n = (self.left as i64).min(PAGE);
        let rows = view::predictions(
            &self.st.db,
            self.project,
            &self.filter,
            PredictionSort::Newest,
            self.after,
            n,
        )
        .await?;
        self.after = rows.last().map(Cursor::of);
        if (rows.len() as i64) < n {
            self.done = true;
        }
        self.left = self.left.saturating_sub(rows.len());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.prediction_id).collect();
        let history = judgments::history_of(&self.st.db, self.project, &ids).await?;
        Ok(match kind {
            Kind::Predictions => {
                let mut by: BTreeMap<Uuid, Vec<JudgmentRow>> = BTreeMap::new();
                for h in history {
                    by.entry(h.prediction_id).or_default().push(h);
                }
                rows.iter()
                    .map(|r| prediction_record(r, by.get(&r.prediction_id).map_or(&[], |v| v)))
                    .collect()
            }
            Kind::Conversations => rows.iter().map(conversation_record).collect(),
            Kind::Judgments => history.iter().map(judgment_record).collect(),
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The exchange's messages followed by its answer.
pub fn conversation(r: &PredictionRow) -> Vec<Value> {
    let mut messages: Vec<Value> = r.messages.as_array().cloned().unwrap_or_default();
    messages.push(json!({"role": "assistant", "content": r.response}));
    messages
}

/// An OpenAI chat fine-tuning row (`metadata` says where it came from).
pub fn conversation_record(r: &PredictionRow) -> Value {
    json!({
        "messages": conversation(r),
        "metadata": {"prediction_id": r.prediction_id, "model_id": r.model_id,
                     "model_name": r.model_name, "started_at": rfc3339(r.started_at)},
    })
}

fn prediction_record(r: &PredictionRow, history: &[JudgmentRow]) -> Value {
    let now = judgments::current(history);
    let (mut up, mut down, mut ok, mut failed) = (0, 0, 0, 0);
    let mut tags = BTreeSet::new();
    let mut overall = vec![];
    for j in &now {
        match j.kind.as_str() {
            "thumb" if j.payload["up"] == true => up += 1,
            "thumb" => down += 1,
            "evaluation" => {
                if j.payload["success"] == true {
                    ok += 1;
                } else {
                    failed += 1;
                }
                for t in j.payload["tags"].as_array().into_iter().flatten() {
                    if let Some(t) = t.as_str() {
                        tags.insert(t.to_string());
                    }
                }
            }
            _ => {
                if let Some(v) = j.payload["axes"]["overall"].as_f64() {
                    overall.push(v);
                }
            }
        }
    }
    let mean = (!overall.is_empty()).then(|| overall.iter().sum::<f64>() / overall.len() as f64);
    json!({
        "prediction_id": r.prediction_id,
        "started_at": rfc3339(r.started_at),
        "model_id": r.model_id,
        "model_name": r.model_name,
        "model_version": r.model_version,
        "source": r.source,
        "messages": r.messages,
        "response": r.response,
        "finish_reason": r.finish_reason,
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "usage_source": r.usage_source,
        "cost_usd": r.cost_usd,
        "thumbs_up": up,
        "thumbs_down": down,
        "evaluated_success": ok,
        "evaluated_failure": failed,
        "failure_tags": tags.into_iter().collect::<Vec<_>>(),
        "ratings": overall.len(),
        "mean_overall": mean,
    })
}

fn judgment_record(j: &JudgmentRow) -> Value {
    let p = &j.payload;
    json!({
        "prediction_id": j.prediction_id,
        "model_id": j.model_id,
        "rater": j.rater,
        "kind": j.kind,
        "at": rfc3339(j.at),
        "up": p.get("up"),
        "success": p.get("success"),
        "tags": p.get("tags"),
        "strengths": p.get("strengths"),
        "notes": p.get("notes"),
        "expected_behaviour": p.get("expected_behaviour"),
        "clarity": p["axes"].get("clarity"),
        "accuracy": p["axes"].get("accuracy"),
        "conciseness": p["axes"].get("conciseness"),
        "overall": p["axes"].get("overall"),
        "comment": p.get("comment"),
        "comparison_id": p.get("comparison_id"),
    })
}

/// The columns of each export, in order (CSV header; JSON keys).
fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Predictions => &[
            "prediction_id",
            "started_at",
            "model_id",
            "model_name",
            "model_version",
            "source",
            "messages",
            "response",
            "finish_reason",
            "latency_ms",
            "ttft_ms",
            "prompt_tokens",
            "completion_tokens",
            "usage_source",
            "cost_usd",
            "thumbs_up",
            "thumbs_down",
            "evaluated_success",
            "evaluated_failure",
            "failure_tags",
            "ratings",
            "mean_overall",
        ],
        Kind::Conversations => &["messages", "metadata"],
        Kind::Judgments => &[
            "prediction_id",
            "model_id",
            "rater",
            "kind",
            "at",
            "up",
            "success",
            "tags",
            "strengths",
            "notes",
            "expected_behaviour",
            "clarity",
            "accuracy",
            "conciseness",
            "overall",
            "comment",
            "comparison_id",
        ],
    }
}

/// Writes pages of rows in one format: a CSV header once, a JSON array's
/// brackets and commas.
pub struct Writer {
    kind: Kind,
    format: Format,
    rows: usize,
    started: bool,
}

impl Writer {
    pub fn new(kind: Kind, format: Format) -> Self {
        Writer {
            kind,
            format,
            rows: 0,
            started: false,
        }
    }

    pub fn page(&mut self, rows: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        match self.format {
            Format::Jsonl => {
                for r in rows {
                    out.extend_from_slice(r.to_string().as_bytes());
                    out.push(b'\n');
                }
            }
            Format::Json => {
                for (i, r) in rows.iter().enumerate() {
                    out.push(if self.rows + i == 0 { b'[' } else { b',' });
                    out.extend_from_slice(r.to_string().as_bytes());
                }
            }
            Format::Csv => {
                let cols = columns(self.kind);
                let mut w = csv::WriterBuilder::new().from_writer(&mut out);
                // Writing to memory cannot fail.
                if !self.started {
                    let _ = w.write_record(cols);
                }
                for r in rows {
                    let _ = w.write_record(cols.iter().map(|c| cell(&r[*c])));
                }
                let _ = w.flush();
            }
        }
        self.rows += rows.len();
        self.started = true;
        out
    }

    /// What ends the file (a JSON array's bracket).
    pub fn finish(&mut self) -> Vec<u8> {
        match self.format {
            Format::Json if self.rows == 0 => b"[]".to_vec(),
            Format::Json => b"]".to_vec(),
            _ => vec![],
        }
    }
}

/// A CSV cell: text as is, null empty, anything else as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_frame_pages_of_rows() {
        let rows = vec![
            json!({"messages": [{"role": "user", "content": "a,\"b\"\nc"}], "metadata": {"x": 1}}),
            json!({"messages": [], "metadata": null}),
        ];
        let mut w = Writer::new(Kind::Conversations, Format::Json);
        let mut out = w.page(&rows[..1]);
        out.extend(w.page(&rows[1..]));
        out.extend(w.finish());
        let back: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, json!(rows));
        let mut empty = Writer::new(Kind::Conversations, Format::Json);
        let mut out = empty.page(&[]);
        out.extend(empty.finish());
        assert_eq!(out, b"[]");

        let mut w = Writer::new(Kind::Conversations, Format::Csv);
        let mut out = w.page(&rows[..1]);
        out.extend(w.page(&rows[1..]));
        out.extend(w.finish());
        // Read back with the csv crate: the header once, quotes and
        // newlines inside cells intact.
        let mut r = csv::Reader::from_reader(out.as_slice());
        assert_eq!(r.headers().unwrap(), vec!["messages", "metadata"]);
        let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        let cell0: Value = serde_json::from_str(&recs[0][0]).unwrap();
        assert_eq!(cell0[0]["content"], "a,\"b\"\nc");
        assert_eq!(&recs[1][1], "");

        let mut w = Writer::new(Kind::Conversations, Format::Jsonl);
        let out = w.page(&rows);
        let lines: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines, rows);
    }
}
