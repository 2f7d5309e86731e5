//! The three file shapes, read into rows of named fields.

use super::{COLUMNS, Errors, Field, MAX_ROWS, RowError, UploadRejected};
use serde_json::{Map, Value};

/// A row: its line, its size in bytes and its fields, or what made it unreadable.
pub(super) type Row = Result<(usize, usize, Vec<(String, Field)>), RowError>;

fn too_many_rows() -> UploadRejected {
    UploadRejected::one(
        None,
        "too_many_rows",
        format!("a file holds at most {MAX_ROWS} rows"),
    )
}

pub(super) fn csv_rows(text: &str) -> Result<Vec<Row>, UploadRejected> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
        Err(e) => {
            return Err(UploadRejected::one(
                Some(1),
                "invalid_header",
                e.to_string(),
            ));
        }
    };
    let mut errors = Errors::default();
    for (i, name) in header.iter().enumerate() {
        if !COLUMNS.contains(&name.as_str()) {
            let message = format!("unknown column {name:?} (known: {})", COLUMNS.join(", "));
            errors.push(1, Some(name), "unknown_column", message);
        } else if header[..i].contains(name) {
            let message = format!("column {name:?} appears twice");
            errors.push(1, Some(name), "duplicate_column", message);
        }
    }
    if !header.iter().any(|h| h == "prompt" || h == "messages") {
        let message = "the header needs a prompt or a messages column".to_string();
        errors.push(1, None, "missing_column", message);
    }
    if errors.count > 0 {
        return Err(UploadRejected {
            errors: errors.list,
            error_count: errors.count,
        });
    }
    // Lines from byte offsets: csv's own line count does not see the
    // newlines inside quoted fields.
    // A record's position may sit on the terminator before it (the `\n`
    // of a CRLF), so terminators there count as before the record.
    let line_at = |byte: u64| {
        let bytes = text.as_bytes();
        let mut end = (byte as usize).min(bytes.len());
        while end < bytes.len() && matches!(bytes[end], b'\r' | b'\n') {
            end += 1;
        }
        1 + bytes[..end].iter().filter(|b| **b == b'\n').count()
    };
    let mut rows = vec![];
    let mut record = csv::StringRecord::new();
    loop {
        let line = line_at(reader.position().byte());
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if rows.len() == MAX_ROWS {
                    return Err(too_many_rows());
                }
                let line = record.position().map_or(line, |p| line_at(p.byte()));
                let size = record.as_byte_record().as_slice().len();
                let fields = header
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(h, v)| (h.clone(), Field::Text(v.to_string())))
                    .collect();
                rows.push(Ok((line, size, fields)));
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| line_at(p.byte()));
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} fields where the header has {expected_len}"),
                    _ => e.to_string(),
                };
                rows.push(Err(RowError {
                    line: Some(line),
                    column: None,
                    code: "invalid_row",
                    message,
                }));
                if rows.len() > MAX_ROWS {
                    return Err(too_many_rows());
                }
            }
        }
    }
    Ok(rows)
}

/// Non-blank lines with their 1-based numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty())
}

pub(super) fn jsonl_rows(text: &str) -> Result<Vec<Row>, UploadRejected> {
    let mut rows = vec![];
    for (line, l) in lines(text) {
        if rows.len() == MAX_ROWS {
            return Err(too_many_rows());
        }
        let bad = |code, message| {
            Err(RowError {
                line: Some(line),
                column: None,
                code,
                message,
            })
        };
        rows.push(match serde_json::from_str::<Value>(l) {
            Err(e) => bad("invalid_json", format!("not JSON: {e}")),
            Ok(Value::Object(map)) => Ok((line, l.len(), object_fields(map))),
            Ok(_) => bad("invalid_row", "each line must be a JSON object".into()),
        });
    }
    Ok(rows)
}

fn object_fields(map: Map<String, Value>) -> Vec<(String, Field)> {
    map.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k, Field::Json(v)))
        .collect()
}

pub(super) fn line_rows(text: &str) -> Result<Vec<Row>, UploadRejected> {
    let mut rows = vec![];
    for (line, l) in lines(text) {
        if rows.len() == MAX_ROWS {
            return Err(too_many_rows());
        }
        let fields = vec![("prompt".to_string(), Field::Text(l.trim().to_string()))];
        rows.push(Ok((line, l.len(), fields)));
    }
    Ok(rows)
}
