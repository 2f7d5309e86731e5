//! Exports of any predictions filter, streamed page by page, in the shapes
//! and conventions of `specs/formats.md`:
//! `GET /api/v1/exports/{predictions|conversations|judgments}?format=csv|json|jsonl`
//! with the predictions table's filters as query parameters (`modelId`,
//! `search`, `from`, `to`, `tag`, `minRating`, `maxRating`, `outcome`,
//! `source`, `limit`) and `position`.
//!
//! - conversations (§5): each exchange as a conversation whose assistant
//!   message carries its model, metrics and evaluation (`legacyShape=true`:
//!   the existing web app's `{messages, metrics, evaluation}` lines);
//! - judgments (§6): every thumb, evaluation and rating — changes included,
//!   each earlier one naming what superseded it — one JSONL line with its
//!   criteria, or one CSV row per criterion (long format);
//! - predictions: one row per exchange with what its judgments add up to.
//!
//! Every export is read at a log position (the `position` parameter, by
//! default the read model's at the request; in the JSON manifest and the
//! `X-FTL-Export-Position` header): exchanges and judgments recorded after
//! it are left out, so the same request at the same position gives the
//! same bytes. (Filters on judgments — tag, rating, outcome — use the
//! current ones.)

use crate::state::AppState;
use crate::training::rest::{RestError, RestResult};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use ftl_domain::project::Scope;
use ftl_projections::views::judgments::{self, JudgmentRow, Tally};
use ftl_projections::views::predictions::{
    self as view, Cursor, Outcome, PredictionFilter, PredictionRow, PredictionSort,
};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/exports/{kind}", web::get().to(export));
}

/// Exchanges read per page (and written per chunk).
const PAGE: i64 = 500;
/// The most exchanges one export reads.
pub const MAX_ROWS: usize = 1_000_000;
/// Export shapes' version (in the JSON manifest).
const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Predictions,
    Conversations,
    Judgments,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Predictions => "predictions",
            Kind::Conversations => "conversations",
            Kind::Judgments => "judgments",
        }
    }
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
    position: Option<u64>,
    /// Conversations in the existing web app's shape.
    #[serde(default)]
    legacy_shape: bool,
}

struct Request {
    kind: Kind,
    format: Format,
    filter: PredictionFilter,
    limit: usize,
    legacy: bool,
    /// The filters as given, for the manifest.
    filters: Value,
}

fn parse(kind: &str, q: ExportQuery) -> RestResult<Request> {
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
    ftl_domain::feedback::check_tag_filter(q.tag.as_deref()).map_err(RestError::invalid)?;
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
    if q.legacy_shape && kind != Kind::Conversations {
        return Err(RestError::invalid("legacyShape applies to conversations"));
    }
    let filters = omit_nulls(json!({
        "model_id": q.model_id, "search": q.search, "from": q.from.map(ts), "to": q.to.map(ts),
        "tag": q.tag, "min_rating": q.min_rating, "max_rating": q.max_rating,
        "outcome": q.outcome, "source": q.source, "limit": q.limit,
    }));
    Ok(Request {
        kind,
        format,
        filter: PredictionFilter {
            model_id: q.model_id,
            search: q.search,
            from: q.from,
            to: q.to,
            tag: q.tag,
            min_rating: q.min_rating,
            max_rating: q.max_rating,
            outcome,
            source: q.source,
            until_position: q.position.map(|p| p as i64),
        },
        limit,
        legacy: q.legacy_shape,
        filters,
    })
}

/// `ftl-<type>-<project-slug>-<YYYYMMDDTHHMMSSZ>.<ext>`.
fn file_name(kind: Kind, project: &str, at: DateTime<Utc>, format: Format) -> String {
    let slug: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug.trim_matches('-');
    let ext = match format {
        Format::Csv => "csv",
        Format::Json => "json",
        Format::Jsonl => "jsonl",
    };
    format!(
        "ftl-{}-{}-{}.{ext}",
        kind.name(),
        if slug.is_empty() { "project" } else { slug },
        at.format("%Y%m%dT%H%M%SZ")
    )
}

async fn export(
    st: web::Data<AppState>,
    req: HttpRequest,
    kind: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> RestResult {
    let c = crate::training::http::caller(&st, &req, Scope::Read).await?;
    let mut r = parse(&kind, query.into_inner())?;
    // The position read at: the predictions read model's, unless asked
    // for an earlier one.
    let current = st
        .effects
        .projections
        .position("predictions")
        .await
        .map_err(RestError::internal)?;
    let position = match r.filter.until_position {
        Some(p) if p as u64 > current => {
            return Err(RestError::invalid(format!(
                "position {p} is ahead of the read model ({current})"
            )));
        }
        Some(p) => p as u64,
        None => current,
    };
    r.filter.until_position = Some(position as i64);
    let now = Utc::now();
    let content_type = match r.format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json => "application/json",
        Format::Jsonl => "application/jsonl",
    };
    let name = file_name(r.kind, &c.project_name, now, r.format);
    let manifest = json!({"type": r.kind.name(), "version": VERSION, "created_at": ts(now),
                          "position": position, "filters": r.filters});
    let mut pages = Pages {
        st: st.get_ref().clone(),
        project: c.project_id.0,
        filter: r.filter,
        after: None,
        left: r.limit,
        done: false,
        kind: r.kind,
        legacy: r.legacy,
    };
    // The first page is read before the answer starts, so a failure is an
    // error status rather than a broken download.
    let first = pages.next().await.map_err(RestError::internal)?;
    let mut writer = Writer::new(r.kind, r.format, manifest);
    let head = writer.page(&first);
    // The first chunk, then a chunk per page, then the file's end; an
    // error after the status is sent ends the body early (the client sees
    // a truncated download) and is logged.
    let rest = futures::stream::unfold(Some((pages, writer)), |state| async move {
        let (mut pages, mut writer) = state?;
        if pages.done {
            return Some((Ok(web::Bytes::from(writer.finish())), None));
        }
        match pages.next().await {
            Ok(rows) => Some((
                Ok(web::Bytes::from(writer.page(&rows))),
                Some((pages, writer)),
            )),
            Err(e) => {
                tracing::error!(error = %e, "export failed mid-stream");
                Some((
                    Err(actix_web::error::ErrorInternalServerError("export failed")),
                    None,
                ))
            }
        }
    });
    let stream = futures::stream::once(async move { Ok(web::Bytes::from(head)) }).chain(rest);
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-FTL-Export-Position", position.to_string()))
        .streaming(stream))
}

/// Pages of export items under a filter, newest exchange first.
struct Pages {
    st: AppState,
    project: Uuid,
    filter: PredictionFilter,
    after: Option<Cursor>,
    left: usize,
    done: bool,
    kind: Kind,
    legacy: bool,
}

impl Pages {
    async fn next(&mut self) -> anyhow::Result<Vec<Value>> {
        if self.done || self.left == 0 {
            self.done = true;
            return Ok(vec![]);
        }
        let n = (self.left as i64).min(PAGE);
        let rows = view::predictions(
            &self.st.effects.db,
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
        let history = judgments::history_of(
            &self.st.effects.db,
            self.project,
            &ids,
            self.filter.until_position,
        )
        .await?;
        let by = judgments::by_exchange(history);
        let of = |r: &PredictionRow| by.get(&r.prediction_id).map_or(&[][..], |v| v.as_slice());
        Ok(match self.kind {
            Kind::Predictions => rows.iter().map(|r| prediction_item(r, of(r))).collect(),
            Kind::Conversations if self.legacy => {
                rows.iter().map(|r| legacy_conversation(r, of(r))).collect()
            }
            Kind::Conversations => rows.iter().map(|r| conversation_item(r, of(r))).collect(),
            Kind::Judgments => rows.iter().flat_map(|r| judgment_items(r, of(r))).collect(),
        })
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Money as exact decimal text (`"0.000104"`).
fn money(usd: f64) -> String {
    let s = format!("{usd:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Missing optional values are left out of JSON, never written as null.
fn omit_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, omit_nulls(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(omit_nulls).collect()),
        other => other,
    }
}

fn assistant_id(r: &PredictionRow) -> String {
    format!("{}:answer", r.prediction_id)
}

/// The exchange's messages followed by its answer (OpenAI chat rows).
pub fn conversation(r: &PredictionRow) -> Vec<Value> {
    let mut messages: Vec<Value> = r.messages.as_array().cloned().unwrap_or_default();
    messages.push(json!({"role": "assistant", "content": r.response}));
    messages
}

fn metrics(r: &PredictionRow) -> Value {
    json!({"latency_ms": r.latency_ms, "ttft_ms": r.ttft_ms, "input_tokens": r.prompt_tokens,
           "output_tokens": r.completion_tokens, "total_tokens": r.prompt_tokens + r.completion_tokens,
           "cost_usd": r.cost_usd.map(money)})
}

fn evaluation(v: &Tally) -> Value {
    json!({"thumbs": v.latest_thumb, "rating": v.latest_overall, "success": v.latest_success,
           "failure_tags": v.latest_tags})
}

/// §5: one conversation per exchange.
fn conversation_item(r: &PredictionRow, history: &[JudgmentRow]) -> Value {
    let v = Tally::of_current(history);
    let created = ts(r.started_at);
    let mut messages: Vec<Value> = r
        .messages
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| {
            json!({"message_id": format!("{}:{i}", r.prediction_id), "role": m["role"],
                   "content": m["content"], "created_at": created})
        })
        .collect();
    messages.push(json!({
        "message_id": assistant_id(r), "role": "assistant", "content": r.response, "created_at": created,
        "model": {"id": r.model_id, "name": r.model_name,
                  "provider": if r.usage_source == "tokenizer" { "finetunelab" } else { "external" },
                  "version": r.model_version},
        "metrics": metrics(r),
        "tool_calls": [],
        "evaluation": evaluation(&v),
    }));
    let updated = history.iter().map(|j| j.at).max().unwrap_or(r.started_at);
    omit_nulls(json!({
        "conversation_id": r.prediction_id, "created_at": created, "updated_at": ts(updated),
        "tags": [], "metadata": {"source": r.source, "finish_reason": r.finish_reason},
        "messages": messages,
    }))
}

/// The existing web app's lines: `{messages, metrics?, evaluation?}`.
fn legacy_conversation(r: &PredictionRow, history: &[JudgmentRow]) -> Value {
    let v = Tally::of_current(history);
    let messages: Vec<Value> = conversation(r)
        .into_iter()
        .map(|m| json!({"role": m["role"], "content": m["content"]}))
        .collect();
    omit_nulls(json!({"messages": messages, "metrics": metrics(r), "evaluation": evaluation(&v)}))
}

/// A conversation as an SFT row (§5 "Conversation → SFT"): a bad answer
/// (thumb down, failed evaluation) gets `weight: 0`. `None` when it is bad
/// and `drop_bad` asks to leave such conversations out, or when nothing
/// would be left to train on (its only assistant turn is the bad answer).
pub fn sft_row(r: &PredictionRow, history: &[JudgmentRow], drop_bad: bool) -> Option<Value> {
    let bad = Tally::of_current(history).bad();
    let earlier_answers = r
        .messages
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["role"] == "assistant"));
    if bad && (drop_bad || !earlier_answers) {
        return None;
    }
    let mut messages = conversation(r);
    // System messages first.
    messages.sort_by_key(|m| m["role"] != "system");
    if bad && let Some(last) = messages.last_mut() {
        last["weight"] = json!(0);
    }
    Some(json!({"messages": messages}))
}

fn prediction_item(r: &PredictionRow, history: &[JudgmentRow]) -> Value {
    let v = Tally::of_current(history);
    json!({
        "prediction_id": r.prediction_id,
        "started_at": ts(r.started_at),
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
        "cost_usd": r.cost_usd.map(money),
        "thumbs_up": v.thumbs_up,
        "thumbs_down": v.thumbs_down,
        "evaluated_success": v.successes,
        "evaluated_failure": v.failures,
        "failure_tags": v.latest_tags,
        "ratings": v.ratings,
        "mean_overall": v.mean_overall(),
    })
}

/// The last user message (what was asked).
fn prompt_of(r: &PredictionRow) -> Value {
    r.messages
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map_or(Value::Null, |m| m["content"].clone())
}

/// §6: the judgments of one exchange, each with its criteria; an earlier
/// judgment by the same rater of the same kind names what superseded it.
fn judgment_items(r: &PredictionRow, history: &[JudgmentRow]) -> Vec<Value> {
    let id = |j: &JudgmentRow| format!("jdg_{}", j.position);
    history
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let p = &j.payload;
            let superseded_by = history[i + 1..]
                .iter()
                .find(|l| l.rater == j.rater && l.kind == j.kind)
                .map(id);
            let (criteria, rubric, judge_type, reasoning, evidence, tags) = match j.kind.as_str() {
                "thumb" => {
                    let c = match p["up"].as_bool() {
                        Some(up) => vec![json!({"criterion": "thumbs", "raw_score": if up { 1 } else { -1 },
                            "scale_min": -1, "scale_max": 1, "score": if up { 1.0 } else { 0.0 }, "passed": up})],
                        None => vec![], // cleared
                    };
                    (c, Value::Null, json!("human"), Value::Null, Value::Null, Value::Null)
                }
                "evaluation" => {
                    let ok = p["success"] == true;
                    (
                        vec![json!({"criterion": "success", "raw_score": i64::from(ok), "scale_min": 0,
                                    "scale_max": 1, "score": if ok { 1.0 } else { 0.0 }, "passed": ok})],
                        p["taxonomy"].clone(),
                        p["source"].clone(),
                        p["notes"].clone(),
                        json!({"strengths": p["strengths"], "expected_behaviour": p["expected_behaviour"]}),
                        p["tags"].clone(),
                    )
                }
                _ => {
                    let axes: Vec<Value> = ["clarity", "accuracy", "conciseness", "overall"]
                        .iter()
                        .filter_map(|a| {
                            p["axes"][*a].as_f64().map(|raw| {
                                json!({"criterion": a, "raw_score": raw, "scale_min": 1, "scale_max": 5,
                                       "score": (raw - 1.0) / 4.0})
                            })
                        })
                        .collect();
                    (axes, json!("ftl-axes-v1"), json!("human"), p["comment"].clone(), Value::Null, Value::Null)
                }
            };
            omit_nulls(json!({
                "judgment_id": id(j),
                "created_at": ts(j.at),
                "judge_type": judge_type,
                "judge_name": j.rater,
                "rubric_version": rubric,
                "target_type": "prediction",
                "target_id": r.prediction_id,
                "conversation_id": r.prediction_id,
                "message_id": assistant_id(r),
                "model_id": r.model_id,
                "prompt": prompt_of(r),
                "response": r.response,
                "criteria": criteria,
                "reasoning": reasoning.as_str().filter(|s| !s.is_empty()),
                "evidence": evidence,
                "failure_tags": tags,
                "tag_source": if tags.is_null() { Value::Null } else { judge_type.clone() },
                "status": "scored",
                "superseded_by": superseded_by,
                "comparison_id": p.get("comparison_id"),
            }))
        })
        .collect()
}

/// CSV columns of each export, in order (new ones only ever appended).
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
        Kind::Conversations => &[
            "conversation_id",
            "created_at",
            "updated_at",
            "tags",
            "metadata",
            "messages",
        ],
        Kind::Judgments => &[
            "judgment_id",
            "created_at",
            "judge_type",
            "judge_name",
            "rubric_version",
            "judge_run_id",
            "batch_id",
            "target_type",
            "target_id",
            "conversation_id",
            "message_id",
            "model_id",
            "prompt",
            "response",
            "criterion",
            "raw_score",
            "scale_min",
            "scale_max",
            "score",
            "passed",
            "threshold",
            "reasoning",
            "evidence",
            "failure_tags",
            "tag_source",
            "confidence",
            "status",
            "failure_reason",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "superseded_by",
        ],
    }
}

/// Writes pages of items in one format: JSONL lines, one JSON object with
/// the manifest and `items`, or CSV (§9) with its header once — judgments
/// in long format, a row per criterion.
pub struct Writer {
    kind: Kind,
    format: Format,
    manifest: Value,
    items: usize,
    started: bool,
}

impl Writer {
    pub fn new(kind: Kind, format: Format, manifest: Value) -> Self {
        Writer {
            kind,
            format,
            manifest,
            items: 0,
            started: false,
        }
    }

    pub fn page(&mut self, items: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        match self.format {
            Format::Jsonl => {
                for r in items {
                    out.extend_from_slice(omit_nulls(r.clone()).to_string().as_bytes());
                    out.push(b'\n');
                }
            }
            Format::Json => {
                if !self.started {
                    out.extend_from_slice(
                        format!("{{\"export\":{},\"items\":[", self.manifest).as_bytes(),
                    );
                }
                for (i, r) in items.iter().enumerate() {
                    if self.items + i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(omit_nulls(r.clone()).to_string().as_bytes());
                }
            }
            Format::Csv => {
                let cols = columns(self.kind);
                if !self.started {
                    csv_record(&mut out, cols.iter().map(|c| Value::from(*c)));
                }
                for r in items {
                    match r.get("criteria").and_then(Value::as_array) {
                        // Long format: the judgment's fields on every criterion's row.
                        Some(criteria) if self.kind == Kind::Judgments && !criteria.is_empty() => {
                            for c in criteria {
                                csv_record(
                                    &mut out,
                                    cols.iter().map(|k| c.get(*k).unwrap_or(&r[*k]).clone()),
                                );
                            }
                        }
                        _ => csv_record(&mut out, cols.iter().map(|k| r[*k].clone())),
                    }
                }
            }
        }
        self.items += items.len();
        self.started = true;
        out
    }

    /// What ends the file (the JSON object's brackets).
    pub fn finish(&mut self) -> Vec<u8> {
        match self.format {
            Format::Json if !self.started => {
                format!("{{\"export\":{},\"items\":[]}}", self.manifest).into_bytes()
            }
            Format::Json => b"]}".to_vec(),
            _ => vec![],
        }
    }
}

/// One CSV record by `formats.md` §9 (RFC 4180): quoted when a field holds
/// a comma, a quote, CR or LF (quotes doubled); null → empty field; empty
/// text → `""`; lists and objects as their JSON text; CRLF after it. (By
/// hand: the csv crate's writer cannot tell an empty string from a null.)
fn csv_record(out: &mut Vec<u8>, cells: impl Iterator<Item = Value>) {
    for (i, v) in cells.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let text = match v {
            Value::Null => continue,
            Value::String(s) if s.is_empty() => {
                out.extend_from_slice(b"\"\"");
                continue;
            }
            Value::String(s) => s,
            other => other.to_string(),
        };
        if text.contains([',', '"', '\r', '\n']) {
            out.push(b'"');
            out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_follows_rfc_4180_and_the_spec() {
        let mut out = vec![];
        csv_record(
            &mut out,
            vec![
                json!("plain"),
                json!("a,\"b\"\nc"),
                Value::Null,
                json!(""),
                json!(["x"]),
                json!(true),
                json!(0.25),
            ]
            .into_iter(),
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "plain,\"a,\"\"b\"\"\nc\",,\"\",\"[\"\"x\"\"]\",true,0.25\r\n"
        );
        // Read back by the csv crate: the same cells.
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(out.as_slice());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[1], "a,\"b\"\nc");
        assert_eq!((&rec[2], &rec[3]), ("", ""));
    }

    #[test]
    fn json_is_one_object_with_the_manifest_and_items() {
        let m = json!({"type": "conversations", "position": 7});
        let mut w = Writer::new(Kind::Conversations, Format::Json, m.clone());
        let mut out = w.page(&[json!({"a": 1, "gone": null})]);
        out.extend(w.page(&[]));
        out.extend(w.page(&[json!({"a": 2})]));
        out.extend(w.finish());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"export": m, "items": [{"a": 1}, {"a": 2}]}));
        let mut empty = Writer::new(Kind::Conversations, Format::Json, json!({}));
        let v: Value = serde_json::from_slice(&empty.finish()).unwrap();
        assert_eq!(v, json!({"export": {}, "items": []}));
    }

    #[test]
    fn money_is_exact_decimal_text() {
        assert_eq!(money(0.004832), "0.004832");
        assert_eq!(money(0.000104), "0.000104");
        assert_eq!(money(3.0), "3");
        assert_eq!(money(0.0), "0");
        assert_eq!(money(1.5e-5), "0.000015");
    }

    fn row(messages: Value) -> PredictionRow {
        PredictionRow {
            prediction_id: Uuid::from_u128(1),
            model_id: Uuid::from_u128(2),
            model_name: "m".into(),
            messages,
            response: "answer".into(),
            finish_reason: "stop".into(),
            params: json!({}),
            latency_ms: 1.0,
            ttft_ms: None,
            prompt_tokens: 1,
            completion_tokens: 1,
            model_version: String::new(),
            usage_source: "tokenizer".into(),
            cost_usd: None,
            source: "graphql".into(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            seq: 1,
        }
    }

    fn judged(position: i64, kind: &str, payload: Value) -> JudgmentRow {
        JudgmentRow {
            position,
            prediction_id: Uuid::from_u128(1),
            model_id: Uuid::from_u128(2),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            rater: "ann".into(),
            kind: kind.into(),
            payload,
            at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn bad_answers_are_weighted_zero_or_dropped() {
        let multi = row(
            json!([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                                {"role": "system", "content": "s"}, {"role": "user", "content": "q2"}]),
        );
        let down = [judged(1, "thumb", json!({"up": false}))];
        let r = sft_row(&multi, &down, false).unwrap();
        let m = r["messages"].as_array().unwrap();
        assert_eq!(m[0]["role"], "system", "system first");
        assert_eq!(m.last().unwrap()["content"], "answer");
        assert_eq!(m.last().unwrap()["weight"], 0);
        assert_eq!(m[2].get("weight"), None, "earlier answers keep theirs");
        assert_eq!(sft_row(&multi, &down, true), None);
        // The thumb changed its mind: up now, so nothing is weighted.
        let changed = [down[0].clone(), judged(2, "thumb", json!({"up": true}))];
        assert!(
            sft_row(&multi, &changed, true).unwrap()["messages"][4]
                .get("weight")
                .is_none()
        );
        // One turn whose only answer failed: nothing left to train on.
        let single = row(json!([{"role": "user", "content": "q"}]));
        let failed = [judged(
            1,
            "evaluation",
            json!({"success": false, "tags": []}),
        )];
        assert_eq!(sft_row(&single, &failed, false), None);
        assert!(sft_row(&single, &[], false).is_some());
    }

    #[test]
    fn file_names_follow_the_convention() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T14:05:11.482Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            file_name(Kind::Judgments, "Team A/B", at, Format::Csv),
            "ftl-judgments-team-a-b-20260302T140511Z.csv"
        );
    }
}
