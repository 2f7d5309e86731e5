//! Bulk upload of test cases (`specs/formats.md` §8): CSV with a header
//! row, JSON Lines, or a plain list (one prompt per line). The whole file is
//! checked before anything is kept: a bad file is refused with every bad
//! row's line, column, stable code and reason (the first [`MAX_ERRORS`],
//! and how many there were), so nothing of it is stored.
//!
//! Columns (CSV) or keys (JSONL): `prompt` (required unless `messages`),
//! `messages` (JSON array of `{role, content}`), `id`, `system`,
//! `expected_output`, `labels`, `required_elements`, `tags` (JSON arrays of
//! strings), `metadata` (JSON object); and for the validators `context`
//! (JSON array of passage texts, or of `{id, text}`), `output_schema` (a
//! JSON Schema), `output_pattern` (a regex), `min_length`, `max_length`,
//! `require_citations` (`true`/`false`). In CSV, an empty cell is absent
//! and list or object cells hold their JSON text.

mod fields;
mod readers;

use super::SuiteCase;
use fields::build_case;
use readers::{csv_rows, jsonl_rows, line_rows};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The largest file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Rows (cases) in one file.
pub const MAX_ROWS: usize = 10_000;
/// The text a model is asked (prompt, or all messages with the system
/// prompt), in bytes.
pub const MAX_PROMPT_BYTES: usize = 32 * 1024;
/// One row as written in the file, in bytes (context passages included).
pub const MAX_ROW_BYTES: usize = 512 * 1024;
/// Length of a case id.
pub const MAX_ID_LEN: usize = 128;
/// Errors listed in a refusal (the count says how many there were).
pub const MAX_ERRORS: usize = 100;

/// The columns a file may have, in the order the house CSV writes them.
pub const COLUMNS: &[&str] = &[
    "id",
    "prompt",
    "messages",
    "system",
    "expected_output",
    "labels",
    "required_elements",
    "tags",
    "metadata",
    "context",
    "output_schema",
    "output_pattern",
    "min_length",
    "max_length",
    "require_citations",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadFormat {
    Csv,
    Jsonl,
    /// One prompt per non-blank line.
    Lines,
}

impl UploadFormat {
    /// The format's name, as [`UploadFormat::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Lines => "lines",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "lines" | "txt" | "text" => Some(Self::Lines),
            _ => None,
        }
    }
}

/// One thing wrong with a file: `line` is 1-based (a CSV header is line 1;
/// `None` for the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// A refused file: its first [`MAX_ERRORS`] errors and their total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadRejected {
    pub errors: Vec<RowError>,
    pub error_count: usize,
}

impl UploadRejected {
    /// Whether the file was refused for its size or row count (a limit)
    /// rather than its contents.
    pub fn is_limit(&self) -> bool {
        self.errors
            .iter()
            .any(|e| matches!(e.code, "file_too_large" | "too_many_rows"))
    }

    pub(super) fn one(line: Option<usize>, code: &'static str, message: String) -> Self {
        Self {
            errors: vec![RowError {
                line,
                column: None,
                code,
                message,
            }],
            error_count: 1,
        }
    }
}

impl std::fmt::Display for UploadRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the file was refused with {} error(s)", self.error_count)?;
        if let Some(e) = self.errors.first() {
            match e.line {
                Some(l) => write!(f, "; first: line {l}: {}", e.message)?,
                None => write!(f, ": {}", e.message)?,
            }
        }
        Ok(())
    }
}

/// A cell as the file gave it: CSV text, or a JSON value from JSONL.
pub(super) enum Field {
    Text(String),
    Json(Value),
}

/// Errors of the whole file, capped.
#[derive(Default)]
pub(super) struct Errors {
    pub(super) list: Vec<RowError>,
    pub(super) count: usize,
}

impl Errors {
    pub(super) fn push(
        &mut self,
        line: usize,
        column: Option<&str>,
        code: &'static str,
        message: String,
    ) {
        self.add(RowError {
            line: Some(line),
            column: column.map(str::to_string),
            code,
            message,
        });
    }

    /// Counts an error; keeps the first [`MAX_ERRORS`].
    pub(super) fn add(&mut self, error: RowError) {
        self.count += 1;
        if self.list.len() < MAX_ERRORS {
            self.list.push(error);
        }
    }
}

/// Parses and checks a whole file into cases, or refuses it.
pub fn parse_upload(format: UploadFormat, bytes: &[u8]) -> Result<Vec<SuiteCase>, UploadRejected> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(UploadRejected::one(
            None,
            "file_too_large",
            format!(
                "the file is {} bytes; at most {MAX_FILE_BYTES} bytes (20 MiB) are accepted",
                bytes.len()
            ),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        UploadRejected::one(
            Some(line),
            "invalid_encoding",
            "the file is not UTF-8 text".into(),
        )
    })?;
    let rows = match format {
        UploadFormat::Csv => csv_rows(text)?,
        UploadFormat::Jsonl => jsonl_rows(text)?,
        UploadFormat::Lines => line_rows(text)?,
    };
    if rows.is_empty() {
        return Err(UploadRejected::one(
            None,
            "empty_file",
            "the file holds no cases".into(),
        ));
    }
    let mut errors = Errors::default();
    let mut cases = Vec::with_capacity(rows.len());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows {
        match row {
            Err(e) => errors.add(e),
            Ok((line, size, fields)) => {
                if let Some(case) = build_case(line, size, fields, &mut errors) {
                    if let Some(first) = seen.insert(case.id.clone(), line) {
                        let message = format!("id {:?} is also on line {first}", case.id);
                        errors.push(line, Some("id"), "duplicate_id", message);
                    }
                    cases.push(case);
                }
            }
        }
    }
    if errors.count > 0 {
        return Err(UploadRejected {
            errors: errors.list,
            error_count: errors.count,
        });
    }
    Ok(cases)
}
