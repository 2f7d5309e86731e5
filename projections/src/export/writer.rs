//! Pages of items written in one format: JSONL lines, one JSON object with
//! the manifest and `items`, or CSV (§9) with its header once.

use super::items::omit_nulls;
use super::{Format, Kind};
use serde_json::Value;

/// CSV columns of each export, in order (new ones only ever appended).
pub(crate) fn columns(kind: Kind) -> &'static [&'static str] {
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
pub(crate) fn csv_record(out: &mut Vec<u8>, cells: impl Iterator<Item = Value>) {
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
