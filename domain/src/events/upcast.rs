//! Upcasters: each turns version N of a payload into version N + 1.

use serde_json::{Value, json};

/// Applies the upcasters from `version` up to `latest`, one step at a time.
pub(super) fn to_latest(
    event_type: &str,
    mut version: u32,
    latest: u32,
    mut payload: Value,
) -> Result<Value, String> {
    while version < latest {
        payload = step(event_type, version, payload)?;
        version += 1;
    }
    Ok(payload)
}

fn step(event_type: &str, from: u32, mut payload: Value) -> Result<Value, String> {
    match (event_type, from) {
        // v1 jobs were all reported from outside and had no tags.
        ("job.created", 1) => {
            let obj = payload.as_object_mut().ok_or("payload is not an object")?;
            obj.entry("tags").or_insert_with(|| json!([]));
            obj.entry("provider").or_insert_with(|| json!("external"));
            Ok(payload)
        }
        // v2 jobs were not in an experiment: they belong to the Default one.
        ("job.created", 2) => {
            let obj = payload.as_object_mut().ok_or("payload is not an object")?;
            obj.entry("experiment_id").or_insert_with(|| json!("0"));
            obj.entry("user_id").or_insert_with(|| json!(""));
            obj.entry("start_time_ms").or_insert(Value::Null);
            Ok(payload)
        }
        // v1 predictions were all local models counted by their tokenizer,
        // with no price table.
        ("prediction.recorded", 1) => {
            let obj = payload.as_object_mut().ok_or("payload is not an object")?;
            obj.entry("model_version").or_insert_with(|| json!(""));
            obj.entry("usage_source")
                .or_insert_with(|| json!("tokenizer"));
            Ok(payload)
        }
        _ => Err(format!("no upcaster from {event_type} v{from}")),
    }
}
