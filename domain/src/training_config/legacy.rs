//! Legacy field names (§3) mapped onto the current ones, with their warnings.

use super::path::{get, set, take};
use super::types::{Issue, Severity};
use serde_json::{Value, json};

/// `(legacy path, new path, warn)`: §3. `training.lora_config.*` and
/// `training.checkpoint_resume` are handled in [`map_legacy`].
#[rustfmt::skip]
const LEGACY: &[(&str, &str)] = &[
    ("training.use_lora", "lora.enabled"),
    ("training.lora_r", "lora.r"),
    ("training.lora_alpha", "lora.alpha"),
    ("training.lora_dropout", "lora.dropout"),
    ("training.evaluation_strategy", "evaluation.strategy"),
    ("training.eval_steps", "evaluation.eval_steps"),
    ("training.eval_batch_size", "evaluation.eval_batch_size"),
    ("training.save_strategy", "checkpoint.save_strategy"),
    ("training.save_steps", "checkpoint.save_steps"),
    ("training.save_total_limit", "checkpoint.save_total_limit"),
    ("training.metric_for_best_model", "checkpoint.metric_for_best_model"),
    ("seed", "training.seed"),
    ("provider", "resources.provider"),
    ("tools", "data.tools"),
    ("predictions", "evaluation.predictions"),
    ("data.dataset_format", "data.format"),
    ("training.quantization", "quantization"),
    ("training.distributed", "distributed"),
];

#[rustfmt::skip]
const LORA_CONFIG: &[(&str, &str)] = &[
    ("r", "r"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout"), ("target_modules", "target_modules"),
    ("bias", "bias"), ("task_type", "task_type"), ("modules_to_save", "modules_to_save"),
];
/// Move a legacy value to its new path; both present with different values
/// is `conflicting_fields`.
fn move_legacy(config: &mut Value, old: &str, new: &str, issues: &mut Vec<Issue>) {
    if let Some(value) = take(config, old) {
        place_legacy(config, old, value, new, issues);
    }
}

/// Put the value found at legacy path `old` at `new`, warning; both set and
/// different is `conflicting_fields`.
fn place_legacy(config: &mut Value, old: &str, value: Value, new: &str, issues: &mut Vec<Issue>) {
    let mut warning = Issue::new(
        Severity::Warning,
        old,
        "deprecated_field",
        format!("use {new}"),
    );
    warning.fields = vec![old.to_string(), new.to_string()];
    issues.push(warning);
    match get(config, new) {
        Some(existing) if *existing != value => {
            let mut conflict = Issue::new(
                Severity::Error,
                new,
                "conflicting_fields",
                format!("{old} ({value}) and {new} ({existing}) disagree; set only {new}"),
            );
            conflict.fields = vec![old.to_string(), new.to_string()];
            issues.push(conflict);
        }
        Some(_) => {}
        None => set(config, new, value),
    }
}

pub(super) fn map_legacy(config: &mut Value, issues: &mut Vec<Issue>) {
    if let Some(Value::Object(lora)) = take(config, "training.lora_config") {
        for (old, new) in LORA_CONFIG {
            if let Some(value) = lora.get(*old) {
                let old = format!("training.lora_config.{old}");
                place_legacy(config, &old, value.clone(), &format!("lora.{new}"), issues);
            }
        }
    }
    if let Some(Value::Object(resume)) = take(config, "training.checkpoint_resume") {
        let mut warning = Issue::new(
            Severity::Warning,
            "training.checkpoint_resume",
            "deprecated_field",
            "use checkpoint.resume",
        );
        warning.fields = vec![
            "training.checkpoint_resume".into(),
            "checkpoint.resume".into(),
        ];
        issues.push(warning);
        let enabled = resume
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mut new = json!({"from": "none"});
        if enabled {
            if let Some(path) = resume.get("checkpoint_path").filter(|v| !v.is_null()) {
                new = json!({"from": "checkpoint", "checkpoint_id": path});
            } else if resume.get("resume_from_best").and_then(Value::as_bool) == Some(true) {
                new = json!({"from": "best"});
            } else if let Some(step) = resume.get("resume_from_step").filter(|v| !v.is_null()) {
                new = json!({"from": "step", "step": step});
            } else {
                new = json!({"from": "latest"});
            }
        }
        if get(config, "checkpoint.resume").is_none() {
            set(config, "checkpoint.resume", new);
        }
    }
    for (old, new) in LEGACY {
        move_legacy(config, old, new, issues);
    }
    if let Some(v) = take(config, "tensorboard") {
        let mut warning = Issue::new(
            Severity::Warning,
            "tensorboard",
            "deprecated_field",
            "dropped: metrics are served by FineTune Lab",
        );
        warning.value = Some(v);
        issues.push(warning);
    }
    // `data.max_samples: 0` means "all" in the existing app.
    if get(config, "data.max_samples").and_then(Value::as_i64) == Some(0) {
        set(config, "data.max_samples", Value::Null);
    }
}
