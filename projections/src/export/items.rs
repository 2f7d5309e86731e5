//! One export item per exchange or judgment, as `serde_json::Value`s:
//! conversations (§5, and the legacy shape), SFT rows, prediction rows, and
//! judgments with their criteria (§6).

use crate::views::judgments::{JudgmentRow, Tally};
use crate::views::predictions::PredictionRow;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// A timestamp as exports write it (RFC 3339, milliseconds, `Z`).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Money as exact decimal text (`"0.000104"`).
pub(crate) fn money(usd: f64) -> String {
    let s = format!("{usd:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Missing optional values are left out of JSON, never written as null.
pub fn omit_nulls(v: Value) -> Value {
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
pub(crate) fn conversation_item(r: &PredictionRow, history: &[JudgmentRow]) -> Value {
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
pub(crate) fn legacy_conversation(r: &PredictionRow, history: &[JudgmentRow]) -> Value {
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

pub(crate) fn prediction_item(r: &PredictionRow, history: &[JudgmentRow]) -> Value {
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
pub(crate) fn judgment_items(r: &PredictionRow, history: &[JudgmentRow]) -> Vec<Value> {
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
