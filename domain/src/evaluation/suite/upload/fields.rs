//! One row's fields checked and made into a case.

use super::{COLUMNS, Errors, Field, MAX_ID_LEN, MAX_PROMPT_BYTES, MAX_ROW_BYTES};
use crate::evaluation::suite::SuiteCase;
use crate::evaluation::validators::{Message, Passage, TestCase, ValidatorKind, check_config};
use crate::limits::{MAX_TAG_LEN, MAX_TAGS};
use serde_json::Value;

/// The case of one row, every problem with it recorded in `errors`.
pub(super) fn build_case(
    line: usize,
    size: usize,
    fields: Vec<(String, Field)>,
    errors: &mut Errors,
) -> Option<SuiteCase> {
    let before = errors.count;
    if size > MAX_ROW_BYTES {
        let message = format!("the row is {size} bytes; at most {MAX_ROW_BYTES}");
        errors.push(line, None, "row_too_large", message);
        return None;
    }
    let mut id = None;
    let mut prompt = None;
    let mut system = None;
    let mut case = TestCase::default();
    let mut labels = vec![];
    let mut metadata = None;
    let mut messages = None;
    for (column, field) in fields {
        let col = column.as_str();
        let mut bad = |code: &'static str, message: String| {
            errors.push(line, Some(col), code, message);
        };
        match col {
            "id" => id = text(field, &mut bad),
            "prompt" => prompt = text(field, &mut bad),
            "system" => system = text(field, &mut bad),
            "expected_output" => case.reference_answer = text(field, &mut bad),
            "output_pattern" => case.output_pattern = text(field, &mut bad),
            "messages" => {
                messages = json(field, &mut bad).and_then(|v| parse_messages(v, &mut bad))
            }
            "labels" => labels = strings(field, &mut bad).unwrap_or_default(),
            "tags" => case.tags = strings(field, &mut bad).unwrap_or_default(),
            "required_elements" => {
                case.required_elements = strings(field, &mut bad).unwrap_or_default()
            }
            "metadata" => match json(field, &mut bad) {
                Some(v @ Value::Object(_)) => metadata = Some(v),
                Some(_) => bad("invalid_type", "metadata must be a JSON object".into()),
                None => {}
            },
            "context" => {
                case.context = json(field, &mut bad)
                    .and_then(|v| parse_context(v, &mut bad))
                    .unwrap_or_default()
            }
            "output_schema" => match json(field, &mut bad) {
                Some(v @ (Value::Object(_) | Value::Bool(_))) => case.output_schema = Some(v),
                Some(_) => bad(
                    "invalid_type",
                    "output_schema must be a JSON Schema object".into(),
                ),
                None => {}
            },
            "min_length" => case.min_length = count(field, &mut bad),
            "max_length" => case.max_length = count(field, &mut bad),
            "require_citations" => case.require_citations = flag(field, &mut bad).unwrap_or(false),
            other => {
                let message = format!("unknown field {other:?} (known: {})", COLUMNS.join(", "));
                bad("unknown_field", message)
            }
        }
    }
    let mut msgs = match (prompt, messages) {
        (Some(_), Some(_)) => {
            let message = "give prompt or messages, not both".to_string();
            errors.push(line, Some("prompt"), "conflicting_fields", message);
            vec![]
        }
        (Some(p), None) => vec![Message {
            role: "user".into(),
            content: p,
        }],
        (None, Some(m)) => m,
        (None, None) => {
            if errors.count == before {
                let message = "a case needs a prompt or messages".to_string();
                errors.push(line, Some("prompt"), "missing_prompt", message);
            }
            vec![]
        }
    };
    if let Some(s) = system {
        msgs.insert(
            0,
            Message {
                role: "system".into(),
                content: s,
            },
        );
    }
    let prompt_bytes: usize = msgs.iter().map(|m| m.content.len()).sum();
    if prompt_bytes > MAX_PROMPT_BYTES {
        let message = format!("the prompt is {prompt_bytes} bytes; at most {MAX_PROMPT_BYTES}");
        errors.push(line, Some("prompt"), "prompt_too_long", message);
    }
    case.messages = msgs;
    check_lists(line, &case, &labels, errors);
    check_validators(line, &case, errors);
    let id = id.map(|s| s.trim().to_string());
    let id = match id {
        Some(s) if s.is_empty() || s.len() > MAX_ID_LEN => {
            let message = format!("an id is 1 to {MAX_ID_LEN} bytes");
            errors.push(line, Some("id"), "invalid_id", message);
            return None;
        }
        Some(s) => s,
        None => format!("row-{line}"),
    };
    (errors.count == before).then_some(SuiteCase {
        id,
        case,
        labels,
        metadata,
    })
}

fn check_lists(line: usize, case: &TestCase, labels: &[String], errors: &mut Errors) {
    for (name, list) in [("tags", case.tags.as_slice()), ("labels", labels)] {
        if list.len() > MAX_TAGS || list.iter().any(|t| t.is_empty() || t.len() > MAX_TAG_LEN) {
            let message = format!("at most {MAX_TAGS} entries of 1 to {MAX_TAG_LEN} bytes");
            errors.push(line, Some(name), "invalid_value", message);
        }
    }
}

/// A case is checked for every validator its fields ask for, so a schema
/// that does not compile is refused now rather than when a run meets it.
fn check_validators(line: usize, case: &TestCase, errors: &mut Errors) {
    let mut kinds = vec![];
    if !case.context.is_empty() {
        kinds.push(ValidatorKind::Groundedness);
    }
    if !case.required_elements.is_empty() {
        kinds.push(ValidatorKind::RequiredElements);
    }
    if case.output_schema.is_some()
        || case.output_pattern.is_some()
        || case.min_length.is_some()
        || case.max_length.is_some()
    {
        kinds.push(ValidatorKind::Format);
    }
    for kind in kinds {
        if let Err(crate::DomainError::InvalidInput { field, message }) = check_config(kind, case) {
            let column = field.split('[').next().unwrap_or(&field).to_string();
            let code = match column.as_str() {
                "output_schema" => "invalid_schema",
                "output_pattern" => "invalid_pattern",
                _ => "invalid_value",
            };
            errors.push(line, Some(&column), code, format!("{field}: {message}"));
        }
    }
}

fn text(field: Field, bad: &mut impl FnMut(&'static str, String)) -> Option<String> {
    match field {
        Field::Text(s) | Field::Json(Value::String(s)) => Some(s),
        Field::Json(_) => {
            bad("invalid_type", "must be a string".into());
            None
        }
    }
}

fn json(field: Field, bad: &mut impl FnMut(&'static str, String)) -> Option<Value> {
    match field {
        Field::Json(v) => Some(v),
        Field::Text(s) => match serde_json::from_str(&s) {
            Ok(v) => Some(v),
            Err(e) => {
                bad("invalid_json", format!("not JSON: {e}"));
                None
            }
        },
    }
}

fn strings(field: Field, bad: &mut impl FnMut(&'static str, String)) -> Option<Vec<String>> {
    let v = json(field, bad)?;
    let list = v.as_array().and_then(|a| {
        a.iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
    });
    if list.is_none() {
        bad("invalid_type", "must be a JSON array of strings".into());
    }
    list
}

fn count(field: Field, bad: &mut impl FnMut(&'static str, String)) -> Option<usize> {
    let n = match &field {
        Field::Text(s) => s.trim().parse::<usize>().ok(),
        Field::Json(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()),
    };
    if n.is_none() {
        bad("invalid_value", "must be a non-negative integer".into());
    }
    n
}

fn flag(field: Field, bad: &mut impl FnMut(&'static str, String)) -> Option<bool> {
    let b = match &field {
        Field::Text(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Field::Json(v) => v.as_bool(),
    };
    if b.is_none() {
        bad("invalid_value", "must be true or false".into());
    }
    b
}

fn parse_messages(v: Value, mut bad: impl FnMut(&'static str, String)) -> Option<Vec<Message>> {
    const ROLES: [&str; 3] = ["system", "user", "assistant"];
    let parsed: Option<Vec<Message>> = serde_json::from_value(v).ok();
    match parsed {
        Some(m) if !m.is_empty() && m.iter().all(|m| ROLES.contains(&m.role.as_str())) => Some(m),
        _ => {
            let message = "must be a non-empty JSON array of {role, content} with role system, user or assistant";
            bad("invalid_messages", message.into());
            None
        }
    }
}

/// Passages as texts (ids `1`, `2`, …) or as `{id, text}` objects.
fn parse_context(v: Value, mut bad: impl FnMut(&'static str, String)) -> Option<Vec<Passage>> {
    let passages = v.as_array().and_then(|a| {
        a.iter()
            .enumerate()
            .map(|(i, p)| match p {
                Value::String(text) => Some(Passage {
                    id: (i + 1).to_string(),
                    text: text.clone(),
                }),
                other => serde_json::from_value(other.clone()).ok(),
            })
            .collect::<Option<Vec<_>>>()
    });
    if passages.is_none() {
        let message = "must be a JSON array of passage texts or of {id, text} objects";
        bad("invalid_type", message.into());
    }
    passages
}
